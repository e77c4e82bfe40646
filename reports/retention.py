"""How long a scheduled run's records are kept: the newest `keep_count` of each cadence, none older than
`keep_days`. One rule for every record of a run (its reports, its output, its line in the runs log), so
they go together and the runs log names few reports that are gone.

Only names this suite writes are touched (`<cadence>-YYYYmmdd-HHMMSS-mmm.<suffix>`, reports/files.py's
`report_stem`); anything else in a directory is never deleted.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from pathlib import Path

from core.vocabulary import Cadence

STEM = re.compile(rf"^(?P<cadence>{'|'.join(Cadence)})-(?P<stamp>\d{{8}}-\d{{6}})-(?P<ms>\d{{3}})$")
REPORT_SUFFIXES = (".html", ".xml")


def stamp_of(name: str) -> tuple[str, datetime.datetime] | None:
    """(cadence, local time) of a run file's stem, or None for a name the suite did not write."""
    match = STEM.match(name)
    if match is None:
        return None
    try:
        when = datetime.datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S")
    except ValueError:
        return None
    return match["cadence"], when + datetime.timedelta(milliseconds=int(match["ms"]))


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


def prune_directory(directory: Path, suffixes: tuple[str, ...], keep_days: int, keep_count: int,
                    now: datetime.datetime | None = None) -> list[Path]:
    """Delete the run files in `directory` (regular files with one of `suffixes`) that the rule expires."""
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
    removed = []
    for path in expired(records, keep_days, keep_count, now):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    return removed

