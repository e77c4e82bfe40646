"""Stand-ins for /usr/local/bin/trading-error-analysis, trading-health-check, trading-system-recovery and
the guide's emergency-backup.sh.

    python -m lab.diagnostics error-analysis|health-check|system-recovery|emergency-backup \
        [--lab-dir DIR] [--port-base N]

Each prints a short analysis and appends a record to $LAB_DIR/run/diagnostics.jsonl, so a test
can tell that a remediation ran the guide's diagnostic.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: import the lab package from the repo
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import date
from pathlib import Path

from lab.paths import LabPaths, Ports, default_lab_dir, default_port_base

CODE = re.compile(r"(?:TE|AI|NE|SE)[0-9]{3}")


def error_analysis(paths: LabPaths, ports: Ports) -> tuple[int, dict]:
    log = paths.log_dir / f"error-{date.today().isoformat()}.log"
    if not log.exists():
        print(f"no error log for today ({log})")
        return 0, {"log": str(log), "counts": {}}
    counts = Counter(CODE.findall(log.read_text(errors="replace")))
    known = set(paths.known_errors.read_text().split()) if paths.known_errors.exists() else set()
    new = sorted(set(counts) - known)
    print(f"Error counts by type ({log.name}):")
    for code, count in counts.most_common(10):
        print(f"  {count:5d} {code}")
    if new:
        print("New error types: " + " ".join(new))
    return 0, {"log": str(log), "counts": dict(counts), "new": new}


def health_check(paths: LabPaths, ports: Ports) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{ports.api}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            health = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"health check failed: {url}: {error}")
        return 1, {"url": url, "error": str(error)}
    print(f"Overall health: {health.get('overallHealth')}% ({health.get('status')})")
    for name, state in sorted((health.get("components") or {}).items()):
        print(f"  {name}: {state}")
    return 0, {"url": url, "overallHealth": health.get("overallHealth")}


def system_recovery(paths: LabPaths, ports: Ports) -> tuple[int, dict]:
    """The guide's first answer to a circuit breaker cascade. The lab's breakers are faults, so the
    recovery changes nothing: what the guide does next (health below 50: shut down) is up to the faults."""
    url = f"http://127.0.0.1:{ports.api}/api/errors/dashboard"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            breakers = json.loads(response.read())["recoveryMetrics"]["circuitBreakersOpen"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as error:
        print(f"system recovery failed: {url}: {error}")
        return 1, {"url": url, "error": str(error)}
    print(f"System recovery: {breakers} circuit breaker(s) open; reset requested")
    return 0, {"url": url, "circuitBreakersOpen": breakers}


def emergency_backup(paths: LabPaths, ports: Ports) -> tuple[int, dict]:
    """The guide's emergency-backup.sh: the agent's trading state, kept in the backups area."""
    target = paths.backup_dir / time.strftime("emergency-backup-%Y%m%d-%H%M%S.json")
    try:
        target.write_bytes(paths.agent_state.read_bytes() if paths.agent_state.exists() else b"{}")
    except OSError as error:
        print(f"emergency backup failed: {error}")
        return 1, {"error": str(error)}
    print(f"Emergency backup: {target}")
    return 0, {"backup": str(target)}


COMMANDS = {"error-analysis": error_analysis, "health-check": health_check, "system-recovery": system_recovery,
            "emergency-backup": emergency_backup}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.diagnostics", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--lab-dir", type=Path, default=None)
    parser.add_argument("--port-base", type=int, default=None)
    args = parser.parse_args(argv)
    paths = LabPaths(args.lab_dir or default_lab_dir())
    ports = Ports(args.port_base if args.port_base is not None else default_port_base())
    code, details = COMMANDS[args.command](paths, ports)
    record = {"tool": args.command, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "exit": code, **details}
    try:
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        with paths.diagnostics_file.open("a") as out:
            out.write(json.dumps(record) + "\n")
    except OSError as error:
        print(f"cannot record diagnostics: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
