"""`make attest TASK=... NOTE=... [WHO=name] [WHEN=...] CONFIG=... [BOX=name]`: an operator records that a manual
task of [tasks] was done (python -m commands attest --config PATH --task NAME --note TEXT [--who NAME]);
`make attest-rotation WHAT=exchange-api-key WHO=name [WHEN=YYYY-MM-DD] CONFIG=... [BOX=name]`: that a secret
of [rotation] was rotated (python -m commands attest --config PATH --what NAME --who NAME [--when DATE]
[--box NAME]). Key rotation is the second, per secret: `--task key-rotation` is refused, pointing to it.

A task's attestation (who: --who, else $SUDO_USER, else $USER) is kept as the task's latest in [tasks] file
(probes/tasks.py) and as a line of the ledger (core/ledger.py), which keeps every one; the TASK checks read the
first. An unknown task and an empty note are refused, naming the known tasks.

The quarterly KEY-001 counts the newest of the secret's files' modification and this date. The date is
kept beside the suite's state ([policy] state_dir, probes/rotation.py) and the attestation is a line
of the ledger. A date in the future is refused; WHEN defaults to now.
"""

from __future__ import annotations

import argparse
import datetime
import os

from commands import cli
from configuration import Settings
from configuration.tasks import KEY_ROTATION
from core.vocabulary import LedgerKind
from probes import rotation, tasks


def when_from(text: str | None) -> datetime.datetime:
    """A date (midnight UTC) or an ISO time (UTC unless it names its zone); None: now."""
    now = datetime.datetime.now(datetime.UTC)
    if not text:
        return now
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"WHEN={text!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    when = when if when.tzinfo else when.replace(tzinfo=datetime.UTC)
    if when > now + datetime.timedelta(minutes=5):
        raise ValueError(f"WHEN={text} is in the future: attest it once it is done")
    return when


def arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", help="a manual task, as [tasks] names it")
    what.add_argument("--what", help="a rotated secret, as [rotation] secrets names it")
    parser.add_argument("--note", help="a task's note: what was done (required with --task)")
    parser.add_argument("--who", help="who did it (a task: default $SUDO_USER, else $USER)")
    parser.add_argument("--when", help="when: YYYY-MM-DD or an ISO time (default: now)")


def run(call: cli.Call) -> int:
    args = call.args
    who = (args.who or "").strip()
    if args.task is not None:
        who = who or os.environ.get("SUDO_USER") or os.environ.get("USER") or ""
        if not (args.note or "").strip():
            call.error(f"NOTE must say what was done for {args.task}: it is the audit trail of this task")
    if not who:
        call.error("--who must name someone: it is the audit trail of this "
                   + ("task" if args.task is not None else "rotation"))
    box = call.one_box()
    name = box.host.name
    try:
        when = when_from(args.when)
    except ValueError as error:
        call.error(str(error))
    if args.task is not None:
        return attest_task(call, box, args.task, who, args.note.strip(), when)
    known = [secret.name for secret in box.rotation.secrets]
    if args.what not in known:
        call.error(f"no secret {args.what!r} in [rotation] secrets; known: {', '.join(known) or 'none'}")
    path = rotation.attestations_path(box)
    entry = rotation.attest(path, name, args.what, who, when)
    line = {"action": "attest-rotation", "box": name, "secret": args.what, "who": entry["who"],
            "rotated": entry["when"]}
    trail = call.record(LedgerKind.ATTEST, line)
    print(f"{name}: {args.what} rotated {entry['when']}, attested by {entry['who']}; recorded in {path} and {trail}")
    return 0


def attest_task(call: cli.Call, box: Settings, task: str, who: str, note: str, when: datetime.datetime) -> int:
    """A task of the box's own [tasks] (a box of a fleet may have its own), kept where its checks read it."""
    known = [known.name for known in box.tasks.tasks]
    if task == KEY_ROTATION:
        secrets = ", ".join(secret.name for secret in box.rotation.secrets) or "none"
        call.error(f"{KEY_ROTATION} is attested per secret (KEY-001): make attest-rotation WHAT=secret WHO=name "
                   f"CONFIG=...; secrets: {secrets}")
    if box.tasks.task(task) is None:
        call.error(f"no task {task!r} in [tasks]; known: {', '.join(known) or 'none'}")
    path = tasks.attestations_path(box)
    entry = tasks.attest(path, box.host.name, task, who, note, when)
    line = {"action": "attest-task", "box": box.host.name, "task": task, "who": who, "done": entry["when"],
            "note": note}
    trail = call.record(LedgerKind.ATTEST, line)
    print(f"{box.host.name}: {task} done {entry['when']}, attested by {who}; recorded in {path} and {trail}")
    return 0


VERB = cli.Verb(
    "attest", "record that a manual task was done, or a secret rotated (make attest, make attest-rotation)",
    __doc__, arguments, run, boxes=cli.Boxes.ONE)
