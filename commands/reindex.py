"""`make reindex CONFIG=PATH`: the audit trail's pages made again from the ledger and the reports alone.

    python -m commands.reindex --config PATH [--reports-dir DIR]

Removes index.html, runs-<n>.html, trends.html, history/*.html, the Prometheus textfile and the cache beside
the ledger, then makes them from `ledger.jsonl` and the runs' JUnit XML in [reports] dir (reports/index.py).
Nothing else in the directory is touched. Status 0, or 1 when the directory holds no ledger.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from commands import cli
from commands.run import reports_of
from core.vocabulary import ExitStatus
from reports import index
from reports.ledger import LEDGER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.reindex", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--reports-dir", type=Path, help="override [reports] dir")
    args = parser.parse_args(argv)
    settings = cli.configuration(args.config)
    if settings is None:
        return ExitStatus.BAD_CONFIGURATION
    directory = args.reports_dir or reports_of(settings)
    if not (directory / LEDGER).is_file():
        print(f"no ledger in {directory}: {LEDGER} is written by every run; nothing to index", file=sys.stderr)
        return 1
    started = time.perf_counter()
    written = index.rebuild(directory, settings)
    print(f"reindexed {directory}: {written.lines_read} ledger lines read, {len(written.paths)} files written "
          f"in {time.perf_counter() - started:.2f} s; open {directory / index.INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
