"""`python -m commands.budget clear [CHECK] [--target T] --config PATH`: a human has looked, remediation may resume.

A remediation budget belongs to a target, the thing remediations touch ("nuc-1 service
trading-dashboard"), whichever check acted on it. `clear` lifts the spent budgets whose target
contains T and, with CHECK, that CHECK (an id, or id[param]) acted on; neither: every spent one.
`show` prints what the suite remembers of the matching checks (verdicts, alerts) and targets
(remediations, whether the budget is spent).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from commands import cli
from core.vocabulary import ExitStatus
from decision.audit import state_directory
from decision.state import StateStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.budget", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("clear", "show"))
    parser.add_argument("check", nargs="?", default="", help="a check id, or id[param]; empty = all")
    parser.add_argument("--target", default="", help='a part of the target\'s name ("service trading-dashboard")')
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = cli.configuration(args.config)
    if settings is None:
        return ExitStatus.BAD_CONFIGURATION
    store = StateStore(state_directory(settings))  # a relative one as the runs take it
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


if __name__ == "__main__":
    sys.exit(main())
