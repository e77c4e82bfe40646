"""An operator's word that something was done where the box cannot see it (a key rotated at the exchange, a
strategy reviewed): the latest per box and subject, in one JSON file written whole. Every attestation is also
a line of the ledger (core/ledger.py), which keeps them all. Written by commands/attest.py, read by
the probes of probes/rotation.py and probes/tasks.py.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from filelock import FileLock

from core.atomic import write_atomically

SUITE = Path(__file__).resolve().parent.parent  # a relative path is the suite's directory's


def under_suite(path: Path) -> Path:
    return path if path.is_absolute() else SUITE / path


def read(path: Path, command: str) -> dict:
    """{box: {subject: {"when", "who", ...}}}; none yet: {}. `command` is what writes the file."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ValueError(f"{path} is not the JSON `{command}` writes ({error}): move it away and attest "
                         "again") from None


def record(path: Path, command: str, box: str, subject: str, entry: dict) -> dict:
    """Keep the entry unless a later one is kept already: a day attested late never hides a later one."""
    when = datetime.datetime.fromisoformat(entry["when"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock")), timeout=30):
        records = read(path, command)
        previous = records.get(box, {}).get(subject)
        if previous is None or datetime.datetime.fromisoformat(previous["when"]) <= when:
            records.setdefault(box, {})[subject] = entry
            write_atomically(path, json.dumps(records, indent=2, sort_keys=True) + "\n")
    return entry
