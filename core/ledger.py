"""The ledger, the one operator trail: an append-only file of JSON lines chained by hashes, `ledger.jsonl` in
the reports directory ([reports] dir). What a run, a pruning of old reports and every operator's act
(attest, resume, baseline, restore, an application or package update; core.vocabulary.LedgerKind) leave.

It sits at the bottom so that every layer records its acts in it without reaching up: the run (plugin/), the
retention of reports (reports/retention.py), a remediation that installs packages (remediations/updates.py)
and the operator's commands (commands/). Verifying it, with the reports it names, is reports/verification.py.

Each line is one JSON object, keys sorted, no spaces, with `seq` (1, 2, ... no gaps), `kind`, `at` (ISO-8601
UTC, when it was written), `prev` (the previous line's `hash`, "" for the first) and `hash` (the SHA-256 of
the line's JSON without its `hash`); the other keys are the act's own. A run's line names its reports with
their SHA-256; a prune line names the reports retention removed.

Appending (`append`) holds a lock on the file (a daily and an emergency run may end together) and writes the
whole line with one write, then fsync: a process killed at any point leaves either no line or the whole
line. What a power cut or a full disk can still leave, an incomplete last line, is never chained onto:
the next append keeps its bytes aside in `ledger.jsonl.torn-<time>`, cuts the file back to its last
whole line and writes a "repair" line naming that file, its size and SHA-256, before its own line.
Nothing else ever rewrites or removes a line. The ledger and a torn file are mode 0600, opened without a link
(core/rootfiles.py: as root, only under a path only root can change; the ledger a regular file of one link).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import Timeout

from core import clock, rootfiles
from core.vocabulary import LedgerKind

LEDGER = "ledger.jsonl"
TORN_PREFIX = f"{LEDGER}.torn-"
LOCK_TIMEOUT_SECONDS = 60
RESERVED = frozenset({"seq", "kind", "at", "prev", "hash"})


class LedgerError(Exception):
    """The ledger cannot be appended to as it is (its last whole line is not a ledger line)."""


def ledger_path(directory: Path) -> Path:
    return Path(directory) / LEDGER


def serialise(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def digest(entry: dict) -> str:
    """The SHA-256 of a line's JSON without its `hash`."""
    return hashlib.sha256(serialise({k: v for k, v in entry.items() if k != "hash"}).encode()).hexdigest()


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="milliseconds")


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


# --- appending ---------------------------------------------------------------------------------------

def append(directory: Path, kind: LedgerKind, fields: dict, now: float | None = None) -> dict:
    """Append one line of `kind` with `fields` (no reserved key) to the ledger in `directory`; the line
    as written. Raises LedgerError when the last whole line is not a ledger line (run verify-trail),
    OSError when the file cannot be written, filelock.Timeout when another writer holds it too long."""
    clash = RESERVED & set(fields)
    if clash:
        raise ValueError(f"a ledger line's own keys cannot be given: {', '.join(sorted(clash))}")
    directory = Path(directory)
    path = ledger_path(directory)
    descriptor = rootfiles.open_append(path, rootfiles.PRIVATE, readable=True)
    try:
        _lock(descriptor, path)  # released when the file is closed, by this process or by its death
        size = os.fstat(descriptor).st_size
        last, torn = _tail(descriptor, size)
        previous = _parse_last(path, last)
        if torn:
            previous = _repair(directory, descriptor, size, torn, previous, now)
        entry = _chained(previous, kind, fields, now)
        _write_line(descriptor, entry)
    finally:
        os.close(descriptor)
    if size == 0:
        _sync_directory(directory)  # the new file's name survives a power cut
    return entry


def _lock(descriptor: int, path: Path) -> None:
    """An exclusive lock on the ledger itself (flock: no lock file is left beside the reports), waited
    for at most LOCK_TIMEOUT_SECONDS (filelock.Timeout, as the suite's other locks say it)."""
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise Timeout(str(path)) from None
            time.sleep(0.01)


def _chained(previous: dict | None, kind: LedgerKind, fields: dict, now: float | None) -> dict:
    entry = {**fields, "seq": (previous["seq"] + 1) if previous else 1, "kind": str(kind),
             "at": iso(clock.now() if now is None else now), "prev": previous["hash"] if previous else ""}
    entry["hash"] = digest(entry)
    return entry


def _write_line(descriptor: int, entry: dict) -> None:
    """One write of the whole line, then fsync; a short write (a full disk) is taken back."""
    data = (serialise(entry) + "\n").encode()
    before = os.fstat(descriptor).st_size
    written = os.write(descriptor, data)
    if written != len(data):
        os.ftruncate(descriptor, before)
        raise OSError(28, f"only {written} of {len(data)} bytes of the ledger line were written (disk full?)")
    os.fsync(descriptor)


def _tail(descriptor: int, size: int) -> tuple[bytes, bytes]:
    """(the last whole line, the bytes after it) of the file, read from its end: an append's cost does
    not grow with the ledger."""
    chunk = 8192
    while True:
        start = max(0, size - chunk)
        data = os.pread(descriptor, size - start, start)
        end = data.rfind(b"\n")
        if end == -1 and start > 0:
            chunk *= 4
            continue
        if end == -1:
            return b"", data
        begin = data.rfind(b"\n", 0, end)
        if begin == -1 and start > 0:
            chunk *= 4
            continue
        return data[begin + 1:end], data[end + 1:]


def _parse_last(path: Path, raw: bytes) -> dict | None:
    if not raw:
        return None
    entry = parse_line(raw)
    if entry is None:
        raise LedgerError(f"{path}: its last line is not a ledger line ({raw[:60]!r}...): nothing is chained "
                          f"onto it; make verify-trail says what happened to it")
    return entry


def parse_line(raw: bytes | str) -> dict | None:
    """A ledger line's object, or None when the text is not one (not JSON, no int seq, no str hash/prev)."""
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int) or isinstance(entry.get("seq"), bool):
        return None
    if not isinstance(entry.get("hash"), str) or not isinstance(entry.get("prev"), str):
        return None
    return entry


def _repair(directory: Path, descriptor: int, size: int, torn: bytes, previous: dict | None,
            now: float | None) -> dict:
    """Keep the torn bytes aside, cut the ledger back to its last whole line, record the repair."""
    stamp = datetime.datetime.fromtimestamp(time.time(), datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = directory / f"{TORN_PREFIX}{stamp}"
    kept = rootfiles.create(aside, rootfiles.PRIVATE)
    try:
        os.write(kept, torn)
        os.fsync(kept)
    finally:
        os.close(kept)
    _sync_directory(directory)
    os.ftruncate(descriptor, size - len(torn))
    os.fsync(descriptor)
    repair = _chained(previous, LedgerKind.REPAIR, {
        "torn": {"name": aside.name, "bytes": len(torn), "sha256": hashlib.sha256(torn).hexdigest()}}, now)
    _write_line(descriptor, repair)
    return repair


def _sync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# --- reading ------------------------------------------------------------------------------------------

def entries(directory: Path) -> Iterator[dict]:
    """Every whole line that is a ledger line, in file order (an incomplete last line and a line that is
    not one are left out: `verify` names them). Nothing when there is no ledger yet."""
    path = ledger_path(directory)
    if not path.exists():
        return
    with open(path, "rb") as handle:
        for raw in handle:
            if raw.endswith(b"\n"):
                entry = parse_line(raw)
                if entry is not None:
                    yield entry
