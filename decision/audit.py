"""The audit trail of what operators did to a box: one JSON object a line in `audit.jsonl`, beside the
suite's state ([policy] state_dir). `make resume` (decision/incidents.py) and `make restore`
(commands/restore.py) append to it; nothing is ever rewritten or removed. Mode 0600, one write a line, never
through a link (core/rootfiles.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from configuration import Settings
from core import clock, rootfiles

AUDIT_FILE = "audit.jsonl"
SUITE = Path(__file__).resolve().parent.parent  # a relative state_dir is the suite's directory's


def state_directory(settings: Settings) -> Path:
    """[policy] state_dir, a relative one taken from the suite's directory (as the runs take it)."""
    directory = settings.policy.state_dir
    return directory if directory.is_absolute() else SUITE / directory


def audit_path(directory: Path) -> Path:
    return Path(directory) / AUDIT_FILE


def append(directory: Path, entry: dict) -> Path:
    """One line, stamped with the time unless the entry has its own `at`; the file's path."""
    directory = rootfiles.ensure_directory(directory)  # checked before the lock is made in it
    path = audit_path(directory)
    with FileLock(str(directory / "audit.lock"), timeout=30):
        rootfiles.append(path, json.dumps({"at": clock.now(), **entry}) + "\n", rootfiles.PRIVATE)
    return path
