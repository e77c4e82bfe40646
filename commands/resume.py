"""`make resume CONFIG=... WHO=... WHY=... [BOX=name]`: an operator lets a box trade again after an
emergency response (python -m commands resume --config PATH --who NAME --why TEXT [--box NAME]).

Nothing resumes by itself: what the responses stopped stays stopped, and a reminder goes out every
repeat interval, until this is run. It undoes what the incident records, in the reverse order of
the responses: the firewall lock removed, the services the responses stopped started, then the
agent's resume call. Only when all of it worked does the incident end, with who, why and what was
undone and what the incident held in the ledger (core/ledger.py); otherwise it
says which step failed and keeps the incident (exit 1), so that running it again finishes the job.
"""

from __future__ import annotations

import argparse
import sys
import time

from commands import cli
from configuration import Settings
from core.vocabulary import LedgerKind
from decision.incidents import Incident, IncidentStore
from decision.state import state_directory
from probes.endpoints import http_get, http_post
from remediations import firewall


def undo(call: cli.Call, settings: Settings, incident: Incident) -> tuple[list[str], str | None]:
    """What was undone, and the first step that failed (None when all worked)."""
    box, timeout = call.box(settings), settings.remediation.timeout_seconds
    commands = [firewall.unlock_argv()] if incident.firewall_locked else []
    services = call.services(settings)
    commands += [services.argv("start", name) for name in reversed(incident.services_stopped)]
    undone = []
    for argv in commands:
        completed = box.run(argv, privileged=True, timeout=timeout)
        if completed.returncode != 0:
            said = (completed.stderr or completed.stdout).strip().splitlines()
            return undone, f"{' '.join(argv)} exit {completed.returncode}: {said[-1] if said else 'no output'}"
        undone.append(" ".join(argv))
    if incident.paused or incident.emergency_mode or incident.shutdown_called_at is not None:
        api = settings.api
        if commands:  # a service just started: the agent answers once it is up
            wait_for_the_agent(box, api.base_url.rstrip("/") + "/api/health", api.timeout_seconds, timeout)
        url = api.base_url.rstrip("/") + settings.emergency.endpoints.resume
        reading = http_post(box, url, api.timeout_seconds)
        if reading.problem:
            return undone, f"POST {url}: {reading.problem}"
        undone.append(f"POST {url}")
    return undone, None


def wait_for_the_agent(box, url: str, each: float, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not http_get(box, url, each).ok:
        time.sleep(0.5)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--who", required=True, help="who decided it is safe to trade again")
    parser.add_argument("--why", required=True, help="why it is safe: what was found and done")


def run(call: cli.Call) -> int:
    args = call.args
    if not args.who.strip() or not args.why.strip():
        call.error("--who and --why must say something: they are the audit trail of this resume")
    settings, box = call.settings(), call.one_box()
    name = box.host.name
    store = IncidentStore(state_directory(settings))
    incident = store.current(name)
    if incident is None:
        print(f"{name}: no emergency response holds anything: nothing to resume")
        return 0
    undone, failure = undo(call, box, incident)
    for step in undone:
        print(f"{name}: undone: {step}")
    if failure:
        print(f"{name}: NOT resumed: {failure}. The incident stays open; fix that and run make resume again.",
              file=sys.stderr)
        return 1
    ended = store.resolve(name) or incident
    trail = call.record(LedgerKind.RESUME, {"box": name, "who": args.who.strip(), "why": args.why.strip(),
                                            "undone": undone, "incident": ended.trail()})
    print(f"{name}: resumed by {args.who.strip()} ({args.why.strip()}); recorded in {trail}")
    return 0


VERB = cli.Verb(
    "resume", "a box trades again after an emergency response (make resume)",
    __doc__, arguments, run, boxes=cli.Boxes.ONE)
