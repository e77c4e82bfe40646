"""`make attest-rotation WHAT=exchange-api-key WHO=name [WHEN=YYYY-MM-DD] CONFIG=... [BOX=name]`: an operator
records that a secret of [rotation] was rotated (python -m commands.attest --config PATH --what NAME --who NAME
[--when DATE] [--box NAME]).

The quarterly KEY-001 counts the newest of the secret's files' modification and this date. The date is
kept beside the suite's state ([policy] state_dir, fixtures/rotation.py) and the attestation is a line
of the audit file there (decision/audit.py). A date in the future is refused; WHEN defaults to now.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from configuration import ConfigError, load
from core.vocabulary import ExitStatus
from decision import audit
from fixtures import rotation


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
        raise ValueError(f"WHEN={text} is in the future: attest a rotation once it is done")
    return when


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.attest", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--what", required=True, help="the secret, as [rotation] secrets names it")
    parser.add_argument("--who", required=True, help="who rotated it")
    parser.add_argument("--when", help="when: YYYY-MM-DD or an ISO time (default: now)")
    parser.add_argument("--box", help="the box, when the configuration names several")
    args = parser.parse_args(argv)
    if not args.who.strip():
        parser.error("--who must name someone: it is the audit trail of this rotation")
    try:
        settings = load(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    names = [box.host.name for box in settings.boxes()]
    if args.box is None and len(names) > 1:
        parser.error(f"--box NAME: the configuration names {len(names)} boxes ({', '.join(names)})")
    name = args.box or names[0]
    if name not in names:
        parser.error(f"no box {name!r} in the configuration; boxes: {', '.join(names)}")
    box = settings.box(name)
    known = [secret.name for secret in box.rotation.secrets]
    if args.what not in known:
        parser.error(f"no secret {args.what!r} in [rotation] secrets; known: {', '.join(known) or 'none'}")
    try:
        when = when_from(args.when)
    except ValueError as error:
        parser.error(str(error))
    path = rotation.attestations_path(settings)
    entry = rotation.attest(path, name, args.what, args.who.strip(), when)
    log = audit.append(audit.state_directory(settings), {"action": "attest-rotation", "box": name,
                                                        "secret": args.what, "who": entry["who"],
                                                        "rotated": entry["when"]})
    print(f"{name}: {args.what} rotated {entry['when']}, attested by {entry['who']}; recorded in {path} and {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
