"""`make baseline CONFIG=PATH [WHAT=api,database,disk,error-handling] [BOX=name] [WHO=name] [WHY=text]`: measure
the benchmarks now and record them as their baselines, on purpose (after a hardware change, an upgrade that
made the box faster or slower for good).

    python -m commands baseline --config PATH [--what NAME[,NAME]] [--box NAME] [--who NAME] [--why TEXT]

The monthly checks BENCH-001..003 and EHM-004 compare with these (probes/baselines.py); their first run
records a missing baseline by itself. Each recording is a line in the ledger (core/ledger.py) with the old and
new values. A figure that cannot be measured is not recorded (status 1), the others are.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from commands import cli
from configuration import Settings
from core import ledger
from core.unread import CouldNotRead
from core.vocabulary import LedgerKind
from probes import baselines
from probes.benchmarks import Benchmarks
from probes.database import Database, DatabaseUnavailable
from probes.endpoints import AgentApi, ProbeError
from probes.errors import error_handling_response
from probes.host import NotApplicable, ReaderFailed

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


def measure(call: cli.Call, settings: Settings, figure: baselines.Figure) -> float:
    """One figure measured on this box, with the command's one box, benchmark probe and database connection."""
    box, name = call.box(settings), settings.host.name
    bench = call.probes.get("benchmarks", name, lambda: Benchmarks(box, settings))
    if figure is baselines.API_RESPONSE:
        return bench.api_response_ms()[0]
    if figure is baselines.DB_QUERY:
        return bench.db_query_ms(call.probes.get("database", name, lambda: Database(settings, box)))[0]
    if figure is baselines.DISK_READ:
        return bench.disk_read()["mb_per_s"]
    api = AgentApi(box, settings.api.base_url, settings.api.timeout_seconds)
    return error_handling_response(api, settings)[0]


def record(call: cli.Call, settings: Settings, figures: list[baselines.Figure], who: str,
           why: str) -> tuple[int, list[str]]:
    """Measure and record each figure on this box: (status, lines for the operator)."""
    name = settings.host.name
    store = baselines.BaselineStore(baselines.baselines_path(settings))
    problem = call.box(settings).reachable()
    if problem:
        return NOT_DONE, [f"{name}: nothing recorded: {problem}"]
    status, lines = 0, []
    for figure in figures:
        try:
            value = measure(call, settings, figure)
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
        call.record(LedgerKind.BASELINE, line)
        was = f" (was {before['value']:.4g} of {before['recorded'][:10]})" if before else ""
        lines.append(f"{name}: {figure.name} = {value:.4g} {figure.unit} recorded {entry['recorded']}{was}")
    return status, lines


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--what", help="comma-separated: api, database, disk, error-handling (default: all)")
    parser.add_argument("--who", help="who records them (default: $SUDO_USER, else this user)")
    parser.add_argument("--why", default="recorded on purpose (make baseline)")


def run(call: cli.Call) -> int:
    args = call.args
    try:
        figures = chosen(args.what)
    except ValueError as error:
        call.error(str(error))
    settings = call.settings()

    def on(box: Settings) -> int:
        status, lines = record(call, box, figures, args.who or os.environ.get("SUDO_USER") or getpass.getuser(),
                               args.why)
        print("\n".join(lines), file=sys.stdout if status == 0 else sys.stderr)
        return status

    worst = call.each_box(on)
    print(f"baselines in {baselines.baselines_path(settings)}; recorded in {ledger.ledger_path(settings.reports.dir)}")
    return worst


VERB = cli.Verb(
    "baseline", "measure the benchmarks now and record them as their baselines (make baseline)",
    __doc__, arguments, run, boxes=cli.Boxes.EACH)
