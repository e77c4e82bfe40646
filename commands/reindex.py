"""`make reindex CONFIG=PATH`: the audit trail's pages made again from the ledger and the reports alone.

    python -m commands reindex --config PATH [--reports-dir DIR]

Removes index.html, runs-<n>.html, trends.html, history/*.html, the Prometheus textfile and the cache beside
the ledger, then makes them from `ledger.jsonl` and the runs' JUnit XML in [reports] dir (reports/index.py).
Nothing else in the directory is touched. Status 0, or 1 when the directory holds no ledger.
"""

from __future__ import annotations

import sys
import time

from commands import cli
from core.ledger import LEDGER
from reports import index


def run(call: cli.Call) -> int:
    settings, directory = call.settings(), call.reports_directory()
    if not (directory / LEDGER).is_file():
        print(f"no ledger in {directory}: {LEDGER} is written by every run; nothing to index", file=sys.stderr)
        return 1
    started = time.perf_counter()
    written = index.rebuild(directory, settings)
    print(f"reindexed {directory}: {written.lines_read} ledger lines read, {len(written.paths)} files written "
          f"in {time.perf_counter() - started:.2f} s; open {directory / index.INDEX}")
    return 0


VERB = cli.Verb(
    "reindex", "the audit trail's pages made again from the ledger and the reports (make reindex)",
    __doc__, cli.no_arguments, run, reports_dir=True)
