"""`python -m commands.budget clear SVC-001 --config PATH`: a human has looked, remediation may resume.

`show` prints what the suite remembers of the matching checks (verdicts, remediations, alerts).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from configuration import ConfigError, load
from core.vocabulary import ExitStatus
from decision.state import StateStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.budget", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("clear", "show"))
    parser.add_argument("check", nargs="?", default="", help="a check id, or id[param]; empty = all")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        settings = load(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    store = StateStore(settings.policy.state_dir)
    if args.action == "show":
        for key, record in store.load().items():
            if key.startswith(args.check):
                print(key, json.dumps(asdict(record)))
        return 0
    cleared = store.clear_budget(args.check)
    print(f"remediation budget cleared for: {', '.join(cleared)}" if cleared else "no spent budget matched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
