"""The runs log: one line per scheduled run, so "did last night's run happen, and how did it end?" is
answered by `tail runs.log` without opening a report.

    2026-11-26T02:00:03+00:00 daily exit 11 (failures remain) in 14s report /srv/suite/reports/daily-....html

Appended and pruned under a lock (two cadences may end at once); pruned by the same rule as the
reports (reports/retention.py); a line it cannot read is kept. Made 0600 (a refusal's reason is in it), never
through a link; a prune keeps the mode the operator gave it (core/rootfiles.py).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from filelock import FileLock

from core import rootfiles
from core.atomic import write_atomically
from core.vocabulary import exit_words
from reports.retention import expired

RUNS_LOG = "runs.log"
meaning = exit_words  # a status in words (core/vocabulary.py), as the ledger says it too


def line(started: datetime.datetime, cadence: str, code: int, seconds: float | None = None,
         report: Path | None = None, output: Path | None = None, why: str = "") -> str:
    took = f" in {seconds:.0f}s" if seconds is not None else ""
    tail = f" output {output}" if output is not None else ""
    reason = f": {why}" if why else ""
    return (f"{started.isoformat(timespec='seconds')} {cadence} exit {code} ({meaning(code)}){took} "
            f"report {report or 'none'}{tail}{reason}")


def append(path: Path, text: str, keep_days: int, keep_count: int, now: datetime.datetime | None = None) -> None:
    """Add one line, then drop the lines the rule expires (the file rewritten whole: old or new, never half)."""
    rootfiles.ensure_directory(path.parent)  # checked before the lock is made in it
    with FileLock(str(path.with_name(f".{path.name}.lock")), timeout=60):
        descriptor = rootfiles.open_append(path, rootfiles.PRIVATE, readable=True)
        with os.fdopen(descriptor, "r+b") as handle:
            handle.write((text.rstrip("\n") + "\n").encode())
            handle.seek(0)
            lines = handle.read().decode("utf-8", "replace").splitlines()
            mode = os.fstat(descriptor).st_mode & 0o777
        now = now or datetime.datetime.now().astimezone()
        gone = set(expired(_records(lines), keep_days, keep_count, now))
        if gone:  # as readable as before, from the new file's first byte
            write_atomically(path, "".join(f"{text}\n" for index, text in enumerate(lines) if index not in gone), mode)


def _records(lines: list[str]):
    for index, text in enumerate(lines):
        fields = text.split(" ", 2)
        if len(fields) < 3:
            continue
        try:
            when = datetime.datetime.fromisoformat(fields[0])
        except ValueError:
            continue
        if when.tzinfo is not None:
            # Each line is a run of its own, even two in one second: a microsecond per line keeps them apart.
            yield fields[1], when + datetime.timedelta(microseconds=index), index
