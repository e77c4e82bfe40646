"""How long a scheduled run's records are kept: the newest `keep_count` of each cadence, none older than
`keep_days`. One rule for every record of a run (its reports, its output, its line in the runs log), so
they go together and the runs log names few reports that are gone.

Only names this suite writes are touched (`<cadence>-YYYYmmdd-HHMMSS-mmm.<suffix>`, reports/files.py's
`report_stem`); anything else in a directory is never deleted. Reports are pruned by `prune_reports`, which
names them in a prune line of the ledger (core/ledger.py) before deleting them; ledger lines are never
removed.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from pathlib import Path

from core import ledger
from core.vocabulary import LedgerKind
from reports.files import REPORT_SUFFIXES, stamp_of

__all__ = ["REPORT_SUFFIXES", "expired", "expired_files", "prune_directory", "prune_reports", "stamp_of"]

def expired(records: Iterable[tuple[str, datetime.datetime, object]], keep_days: int, keep_count: int,
            now: datetime.datetime) -> list[object]:
    """The items of (cadence, when, item) records past the rule: older than keep_days, or beyond the newest
    keep_count runs of their cadence (records of one run share its time: they count once)."""
    oldest = now - datetime.timedelta(days=keep_days)
    by_cadence: dict[str, list[tuple[datetime.datetime, object]]] = {}
    for cadence, when, item in records:
        by_cadence.setdefault(cadence, []).append((when, item))
    gone = []
    for entries in by_cadence.values():
        kept_runs = sorted({when for when, _ in entries}, reverse=True)[:keep_count]
        newest_kept = set(kept_runs)
        gone += [item for when, item in entries if when < oldest or when not in newest_kept]
    return gone


def expired_files(directory: Path, suffixes: tuple[str, ...], keep_days: int, keep_count: int,
                  now: datetime.datetime | None = None) -> list[Path]:
    """The run files in `directory` (regular files with one of `suffixes`) that the rule expires."""
    now = now or datetime.datetime.now()
    records = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        found = stamp_of(path.stem) if path.suffix in suffixes else None
        if found is not None and path.is_file() and not path.is_symlink():
            records.append((*found, path))
    return sorted(expired(records, keep_days, keep_count, now))


def prune_directory(directory: Path, suffixes: tuple[str, ...], keep_days: int, keep_count: int,
                    now: datetime.datetime | None = None) -> list[Path]:
    """Delete the run files in `directory` (regular files with one of `suffixes`) that the rule expires."""
    return _delete(expired_files(directory, suffixes, keep_days, keep_count, now))


def prune_reports(directory: Path, keep_days: int, keep_count: int,
                  now: datetime.datetime | None = None) -> list[Path]:
    """Delete the reports the rule expires, named first in a "prune" line of the ledger (core/ledger.py),
    so that `make verify-trail` tells them apart from reports removed by hand; their run lines stay.
    When the line cannot be written (ledger.LedgerError, OSError, filelock.Timeout, raised) nothing is
    deleted: a report gone with no line naming it would read as tampering."""
    gone = expired_files(directory, REPORT_SUFFIXES, keep_days, keep_count, now)
    if gone:
        ledger.append(directory, LedgerKind.PRUNE, {"files": [path.name for path in gone]})
    return _delete(gone)


def _delete(paths: list[Path]) -> list[Path]:
    removed = []
    for path in paths:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    return removed
