"""Alerts that could not reach a channel yet, kept on disk until a later run delivers them.

Layout: SPOOL_DIR/<channel>/<key>.json, one file per message per channel. The key is the
message's stable key, so spooling the same message twice for a channel keeps one file.

Every write is atomic (temporary file in the same directory, fsync, rename): a run killed at
any point leaves either the old entry or the new one, never half a file. Entries hold findings: mode 0600,
in directories of mode 0700, as root only under a path only root can change (core/rootfiles.py).

Taking an entry for delivery renames <key>.json to <key>.inflight (atomic); it is deleted only
after the channel accepted the message, and put back as <key>.json if it did not. A run killed
between "accepted" and "deleted" leaves the .inflight file, which the next flush sends again.
That is at-least-once delivery, chosen over at-most-once (delete first, then send) because for
alerts about a machine trading real money a duplicate message costs a glance, while a lost one
can cost the account; the stable key (Message-ID, webhook "key") lets a receiver drop duplicates.
Only one flush runs at a time (a file lock), so a live flush's .inflight is never taken as a leftover.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from core import rootfiles
from core.atomic import remove_stale_temporaries, write_atomically

PENDING, INFLIGHT, CORRUPT = ".json", ".inflight", ".corrupt"
FOLDER_MODE = 0o700


@dataclass
class Entry:
    channel: str
    key: str
    data: dict | None  # what the writer stored (delivery.py owns its meaning); None if unreadable
    path: Path  # where it is now: pending or in flight


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory

    def put(self, channel: str, key: str, data: dict) -> Path:
        folder = self.directory / channel
        rootfiles.ensure_directory(folder, FOLDER_MODE)
        path = folder / f"{key}{PENDING}"
        write_atomically(path, json.dumps(data, ensure_ascii=False, indent=1))
        return path

    def lock(self) -> FileLock:
        """Held for a whole flush. Non-blocking: a run that finds it busy leaves the spool to the other."""
        rootfiles.ensure_directory(self.directory, FOLDER_MODE)  # checked before a lock is made in it
        return FileLock(str(self.directory / "flush.lock"), timeout=0)

    def entries(self) -> list[Entry]:
        """Pending entries and in-flight leftovers of killed runs, one per channel and key.

        An unreadable file comes back with data=None; the caller reports it and quarantines it.
        """
        found: dict[tuple[str, str], Entry] = {}
        if not self.directory.is_dir():
            return []
        for folder in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            remove_stale_temporaries(folder)
            # .inflight first, so a pending file of the same key (newer) replaces it in the dict.
            for suffix in (INFLIGHT, PENDING):
                for path in sorted(folder.glob(f"*{suffix}")):
                    found[(folder.name, path.stem)] = Entry(folder.name, path.stem, _read(path), path)
        return list(found.values())

    def take(self, entry: Entry) -> None:
        """Mark in flight: the atomic rename is the commit point of 'a flush is sending this'."""
        inflight = entry.path.with_suffix(INFLIGHT)
        if entry.path != inflight:
            rootfiles.rename(entry.path, inflight)  # replaces a leftover .inflight of the same message
            entry.path = inflight

    def quarantine(self, entry: Entry) -> None:
        """Out of the way as .corrupt: kept for a human, not retried by every run."""
        corrupt = entry.path.with_suffix(CORRUPT)
        rootfiles.rename(entry.path, corrupt)
        entry.path = corrupt

    def done(self, entry: Entry) -> None:
        entry.path.unlink(missing_ok=True)

    def release(self, entry: Entry, data: dict) -> None:
        """Back to pending with updated bookkeeping; the .inflight goes only once the .json exists."""
        self.put(entry.channel, entry.key, data)
        entry.path.unlink(missing_ok=True)
        entry.path, entry.data = entry.path.with_suffix(PENDING), data


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


