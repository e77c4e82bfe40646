"""`make baseline CONFIG=PATH [WHAT=api,database,disk,error-handling] [BOX=name] [WHO=name] [WHY=text]`: measure
the benchmarks now and record them as their baselines, on purpose (after a hardware change, an upgrade that
made the box faster or slower for good).

    python -m commands.baseline --config PATH [--what NAME[,NAME]] [--box NAME] [--who NAME] [--why TEXT]

The monthly checks BENCH-001..003 and EHM-004 compare with these (probes/baselines.py); their first run
records a missing baseline by itself. Each recording is a line in the audit file beside the suite's state
(decision/audit.py) and in the ledger (reports/ledger.py) with the old and new values. A figure that cannot be
measured is not recorded (status 1), the others are.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from commands import cli
from configuration import Settings
from core.unread import CouldNotRead
from core.vocabulary import ExitStatus, LedgerKind
from decision import audit
from probes import baselines
from probes.benchmarks import Benchmarks
from probes.database import Database, DatabaseUnavailable
from probes.endpoints import AgentApi, ProbeError
from probes.errors import error_handling_response
from probes.host import NotApplicable, ReaderFailed, box_of
from reports import ledger

NOT_DONE = 1
# WHAT's words: the figures' own names, or these.
ALIASES = {"api": baselines.API_RESPONSE.name, "database": baselines.DB_QUERY.name, "disk": baselines.DISK_READ.name,
           "error-handling": baselines.ERROR_HANDLING_RESPONSE.name}


def chosen(what: str | None) -> list[baselines.Figure]:
    """The figures WHAT names (all when empty); an unknown word raises ValueError naming the known ones."""
    if not what:
        return list(baselines.FIGURES.values())
    figures = []
    for word in (part.strip() for part in what.split(",") if part.strip()):
        name = ALIASES.get(word, word)
        if name not in baselines.FIGURES:
            known = ", ".join([*ALIASES, *baselines.FIGURES])
            raise ValueError(f"WHAT={word!r} names no benchmark; known: {known}")
        figures.append(baselines.FIGURES[name])
    return figures


def measure(settings: Settings, figure: baselines.Figure) -> float:
    box = box_of(settings)
    bench = Benchmarks(box, settings)
    if figure is baselines.API_RESPONSE:
        return bench.api_response_ms()[0]
    if figure is baselines.DB_QUERY:
        database = Database(settings, box)
        try:
            return bench.db_query_ms(database)[0]
        finally:
            database.close()
    if figure is baselines.DISK_READ:
        return bench.disk_read()["mb_per_s"]
    api = AgentApi(box, settings.api.base_url, settings.api.timeout_seconds)
    return error_handling_response(api, settings)[0]


def record(settings: Settings, figures: list[baselines.Figure], who: str, why: str) -> tuple[int, list[str]]:
    """Measure and record each figure on this box: (status, lines for the operator)."""
    name = settings.host.name
    store = baselines.BaselineStore(baselines.baselines_path(settings))
    problem = box_of(settings).reachable()
    if problem:
        return NOT_DONE, [f"{name}: nothing recorded: {problem}"]
    status, lines = 0, []
    for figure in figures:
        try:
            value = measure(settings, figure)
        except NotApplicable as reason:
            lines.append(f"{name}: {figure.name}: not measured: {reason}")
            continue
        except (ProbeError, DatabaseUnavailable, CouldNotRead, ReaderFailed, OSError) as error:
            status = NOT_DONE
            lines.append(f"{name}: {figure.name}: not recorded, it could not be measured: {error}")
            continue
        before = store.get(name, figure.name)
        entry = store.record(name, figure, value, why)
        line = {"action": "record-baseline", "box": name, "figure": figure.name, "value": value, "unit": figure.unit,
                "previous": before["value"] if before else None,
                "previous_recorded": before["recorded"] if before else None, "who": who, "why": why}
        audit.append(audit.state_directory(settings), line)
        cli.record_in_ledger(settings, LedgerKind.BASELINE, line)
        was = f" (was {before['value']:.4g} of {before['recorded'][:10]})" if before else ""
        lines.append(f"{name}: {figure.name} = {value:.4g} {figure.unit} recorded {entry['recorded']}{was}")
    return status, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--what", help="comma-separated: api, database, disk, error-handling (default: all)")
    parser.add_argument("--box", help="one box of a fleet, by name (default: every box)")
    parser.add_argument("--who", default=os.environ.get("SUDO_USER") or getpass.getuser())
    parser.add_argument("--why", default="recorded on purpose (make baseline)")
    args = parser.parse_args(argv)
    try:
        figures = chosen(args.what)
    except ValueError as error:
        parser.error(str(error))
    settings = cli.configuration(args.config)
    if settings is None:
        return ExitStatus.BAD_CONFIGURATION
    boxes = cli.some_boxes(settings, args.box)
    if not boxes:
        return ExitStatus.BAD_CONFIGURATION
    worst = 0
    for box in boxes:
        status, lines = record(box, figures, args.who, args.why)
        print("\n".join(lines), file=sys.stdout if status == 0 else sys.stderr)
        worst = max(worst, status)
    print(f"baselines in {baselines.baselines_path(settings)}; audit in "
          f"{audit.audit_path(audit.state_directory(settings))} and "
          f"{ledger.ledger_path(ledger.reports_directory(settings))}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
