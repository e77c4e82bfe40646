"""`python -m commands budget clear [CHECK] [--target T] --config PATH`: a human has looked, remediation may resume.

A remediation budget belongs to a target, the thing remediations touch ("nuc-1 service
trading-dashboard"), whichever check acted on it. `clear` lifts the spent budgets whose target
contains T and, with CHECK, that CHECK (an id, or id[param]) acted on; neither: every spent one.
`show` prints what the suite remembers of the matching checks (verdicts, alerts) and targets
(remediations, whether the budget is spent).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from commands import cli
from decision.state import StateStore, state_directory


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("clear", "show"))
    parser.add_argument("check", nargs="?", default="", help="a check id, or id[param]; empty = all")
    parser.add_argument("--target", default="", help='a part of the target\'s name ("service trading-dashboard")')


def run(call: cli.Call) -> int:
    args = call.args
    store = StateStore(state_directory(call.settings()))  # a relative one as the runs take it
    if args.action == "show":
        for key, record in store.load().items():
            if key.startswith(args.check) and not args.target:
                print("check", key, json.dumps(asdict(record)))
        for key, record in store.load_targets().items():
            checks = {record.spent_by, *(check for _, check in record.remediations)}
            if args.target in key and any(check.startswith(args.check) for check in checks):
                print("target", json.dumps(key), json.dumps(asdict(record)))
        return 0
    cleared = store.clear_budget(args.check, args.target)
    print(f"remediation budget cleared for: {', '.join(cleared)}" if cleared else "no spent budget matched")
    return 0


VERB = cli.Verb(
    "budget", "show, or clear once a human has looked, the remediation budgets (make clear-budget)",
    __doc__, arguments, run)
