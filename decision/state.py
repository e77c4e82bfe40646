"""What the suite remembers between runs: each check's recent verdicts, its remediations, its alerts.

Cron runs are separate processes, so soft states, budgets, deduplication and flapping all need
memory. One JSON file, changed under a file lock and replaced atomically: a run killed mid-write
leaves the previous state whole, and xdist workers never lose each other's updates.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from core.atomic import write_atomically

HISTORY = 20  # verdicts kept per check: enough for flapping and consecutive-failure counts


@dataclass
class CheckRecord:
    verdicts: list[list] = field(default_factory=list)  # [timestamp, verdict], oldest first
    remediations: list[float] = field(default_factory=list)  # timestamps of remediations run
    budget_spent_at: float | None = None  # set when the budget ran out; cleared only by an operator
    notified_kind: str | None = None  # the problem an alert is out for ("problem", "unknown"), if any
    notified_at: float | None = None
    flapping: bool = False

    def add_verdict(self, when: float, verdict: str) -> None:
        self.verdicts = [*self.verdicts, [when, verdict]][-HISTORY:]

    def recent(self, count: int) -> list[str]:
        return [verdict for _, verdict in self.verdicts[-count:]]


class StateStore:
    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / "state.json"
        self.lock = FileLock(str(directory / "state.lock"), timeout=30)

    def load(self) -> dict[str, CheckRecord]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {key: CheckRecord(**value) for key, value in raw.get("checks", {}).items()}

    def read(self, key: str) -> CheckRecord:
        return self.load().get(key, CheckRecord())

    @contextmanager
    def record(self, key: str):
        """Read-modify-write one check's record under the lock."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.lock:
            records = self.load()
            record = records.setdefault(key, CheckRecord())
            yield record
            self._save(records)

    def clear_budget(self, key_prefix: str) -> list[str]:
        """The operator's word that a human has looked: remediation may resume."""
        cleared = []
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.lock:
            records = self.load()
            for key, record in records.items():
                if key.startswith(key_prefix) and record.budget_spent_at is not None:
                    record.budget_spent_at, record.remediations = None, []
                    cleared.append(key)
            self._save(records)
        return cleared

    def _save(self, records: dict[str, CheckRecord]) -> None:
        write_atomically(self.path, json.dumps(
            {"checks": {key: asdict(record) for key, record in sorted(records.items())}}, indent=1))
