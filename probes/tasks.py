"""When each manual task of [tasks] was last done, as operators attested it (`make attest TASK=... NOTE=...`,
commands/attest.py).

The latest attestation of each task is kept per box in one JSON file written whole ([tasks] file, by
default tasks.json beside the suite's state, as rotations.json is); every attestation is also a line of
the ledger (core/ledger.py), which keeps them all.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from configuration import Settings
from probes import attestations

ATTESTATIONS = "tasks.json"
COMMAND = "make attest"


def attestations_path(settings: Settings) -> Path:
    return attestations.under_suite(settings.tasks.file or settings.policy.state_dir / ATTESTATIONS)


def attest(path: Path, box: str, task: str, who: str, note: str, when: datetime.datetime) -> dict:
    entry = {"when": when.isoformat(timespec="seconds"), "who": who, "note": note}
    return attestations.record(path, COMMAND, box, task, entry)


@dataclass(frozen=True)
class LastDone:
    task: str
    at: float  # seconds since the epoch
    who: str
    note: str

    def age_days(self, now: float) -> float:
        return (now - self.at) / 86400

    @property
    def date(self) -> str:
        return datetime.datetime.fromtimestamp(self.at, datetime.UTC).strftime("%Y-%m-%d")


class TaskProbe:
    def __init__(self, settings: Settings):
        self.config = settings.tasks
        self.path = attestations_path(settings)
        self.box_name = settings.host.name

    def last(self, name: str) -> LastDone | None:
        """The task's latest attestation on this box; None: never attested."""
        entry = attestations.read(self.path, COMMAND).get(self.box_name, {}).get(name)
        if entry is None:
            return None
        return LastDone(name, datetime.datetime.fromisoformat(entry["when"]).timestamp(), entry.get("who", "?"),
                        entry.get("note", ""))


def parameters(settings: Settings) -> dict[str, list]:
    return {f"{cadence}_task": settings.tasks.of(cadence) for cadence in ("weekly", "monthly", "quarterly")}
