"""Installs the guide's schedule as one cron file, idempotently: install twice, get one schedule.

    python -m commands.schedule install --config /etc/trading-maintenance/maintenance.toml
    python -m commands.schedule uninstall

The guide's times: daily 02:00, weekly Sunday 03:00, monthly the 1st at 04:00, and the emergency
checks every 5 minutes; a cadence is installed only when it has checks. Quarterly maintenance is
manual in the guide and is not scheduled.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from configuration import ConfigError, load
from core.atomic import write_atomically
from core.vocabulary import Cadence, ExitStatus

CRON_FILE = Path("/etc/cron.d/trading-maintenance")
ROOT = Path(__file__).resolve().parent.parent
SCHEDULE = {
    Cadence.DAILY: "0 2 * * *",
    Cadence.WEEKLY: "0 3 * * 0",
    Cadence.MONTHLY: "0 4 1 * *",
    Cadence.EMERGENCY: "*/5 * * * *",
}


def cadences_with_checks(config: Path, python: Path) -> list[Cadence]:
    """A cadence without a check is not scheduled: every run of it would check nothing."""
    found = []
    for cadence in SCHEDULE:
        listed = subprocess.run([str(python), "-m", "pytest", "-m", cadence, "--collect-only", "-q", "-p",
                                 "no:cacheprovider", f"--maintenance-config={config}"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        if any("::" in line for line in listed.stdout.splitlines()):
            found.append(cadence)
    return found


def cron_text(config: Path, python: Path, user: str, log: Path, cadences: list[Cadence]) -> str:
    lines = [
        "# Trading box maintenance: written by `make install-schedule`; `make uninstall-schedule` removes it.",
        "# Scheduled: the cadences that have checks; the others are added when their checks are.",
        "SHELL=/bin/bash",
    ]
    for cadence, when in SCHEDULE.items():
        if cadence not in cadences:
            continue
        command = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(str(python))} -m pytest -m {cadence} -q "
                   f"--maintenance-config={shlex.quote(str(config))} >> {shlex.quote(str(log))} 2>&1")
        lines.append(f"{when} {user} {command}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.schedule", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("install", "uninstall", "show"))
    parser.add_argument("--config", type=Path, help="the configuration file the scheduled runs use")
    parser.add_argument("--cron-file", type=Path, default=CRON_FILE)
    parser.add_argument("--user", default="root")
    parser.add_argument("--log", type=Path, default=Path("/var/log/trading-agent/maintenance-runs.log"))
    args = parser.parse_args(argv)

    if args.action == "uninstall":
        args.cron_file.unlink(missing_ok=True)
        print(f"removed {args.cron_file}")
        return 0
    if args.config is None:
        parser.error("install and show need --config PATH (the file the scheduled runs will use)")
    try:
        load(args.config)  # a schedule that would fail every night with a bad file is refused now
    except ConfigError as error:
        print(f"not installed: {error}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    cadences = cadences_with_checks(args.config.resolve(), Path(sys.executable))
    text = cron_text(args.config.resolve(), Path(sys.executable), args.user, args.log, cadences)
    if args.action == "show":
        print(text, end="")
        return 0
    try:
        write_atomically(args.cron_file, text)
        args.cron_file.chmod(0o644)
    except OSError as error:
        print(f"not installed: cannot write {args.cron_file}: {error.strerror}. Install the schedule as root "
              f"(sudo make install-schedule ...), or give --cron-file a path this user may write.", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    print(f"installed {args.cron_file}:\n{text}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
