"""What the suite remembers between runs: each check's recent verdicts and alerts, and each target's
remediations (the remediation budget is per thing touched, not per check).

Cron runs are separate processes, so soft states, budgets, deduplication and flapping all need
memory. One JSON file, changed under a file lock and replaced atomically: a run killed mid-write
leaves the previous state whole, and xdist workers never lose each other's updates.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from filelock import FileLock

from core.atomic import write_atomically

HISTORY = 20  # verdicts kept per check: enough for flapping and consecutive-failure counts
KEEP_REMEDIATIONS = 50  # per target: more than any budget counts


@dataclass
class CheckRecord:
    verdicts: list[list] = field(default_factory=list)  # [timestamp, verdict], oldest first
    notified_kind: str | None = None  # the problem an alert is out for ("problem", "unknown"), if any
    notified_at: float | None = None
    flapping: bool = False
    # The run that last settled this check, and how it ended there (a verdict, or "fixed"): what a
    # check that depends on this one reads, from any xdist worker.
    run: str = ""
    run_result: str = ""

    def add_verdict(self, when: float, verdict: str) -> None:
        self.verdicts = [*self.verdicts, [when, verdict]][-HISTORY:]

    def recent(self, count: int) -> list[str]:
        return [verdict for _, verdict in self.verdicts[-count:]]


@dataclass
class TargetRecord:
    """One thing remediations touch ("nuc-1 service trading-dashboard"), whichever check acted on it."""

    remediations: list[list] = field(default_factory=list)  # [timestamp, check instance], oldest first
    spent_at: float | None = None  # set when its budget ran out; cleared only by an operator
    spent_by: str = ""  # the check whose action it refused then
    spent_note: str = ""  # what the one "human needed" alert said

    def add_remediation(self, when: float, check: str) -> None:
        self.remediations = [*self.remediations, [when, check]][-KEEP_REMEDIATIONS:]


def _record(kind, value: dict):
    """A record from the file, ignoring what this version no longer keeps (per-check budgets before 11)."""
    known = {f.name for f in fields(kind)}
    return kind(**{key: item for key, item in value.items() if key in known})


class StateStore:
    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / "state.json"
        self.lock = FileLock(str(directory / "state.lock"), timeout=30)

    def _load(self) -> tuple[dict[str, CheckRecord], dict[str, TargetRecord]]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}, {}
        return ({key: _record(CheckRecord, value) for key, value in raw.get("checks", {}).items()},
                {key: _record(TargetRecord, value) for key, value in raw.get("targets", {}).items()})

    def load(self) -> dict[str, CheckRecord]:
        return self._load()[0]

    def load_targets(self) -> dict[str, TargetRecord]:
        return self._load()[1]

    def read(self, key: str) -> CheckRecord:
        return self.load().get(key, CheckRecord())

    @contextmanager
    def record(self, key: str):
        """Read-modify-write one check's record under the lock."""
        with self._changing() as (checks, _):
            yield checks.setdefault(key, CheckRecord())

    @contextmanager
    def target(self, key: str):
        """Read-modify-write one target's record under the lock."""
        with self._changing() as (_, targets):
            yield targets.setdefault(key, TargetRecord())

    def clear_budget(self, check_prefix: str = "", target: str = "") -> list[str]:
        """The operator's word that a human has looked: remediation of the spent targets that match may
        resume. `target`: a part of the target's name; `check_prefix`: a check that acted on it."""
        cleared = []
        with self._changing() as (_, targets):
            for key, record in targets.items():
                acted = {record.spent_by, *(check for _, check in record.remediations)}
                if record.spent_at is None or target not in key:
                    continue
                if check_prefix and not any(check.startswith(check_prefix) for check in acted):
                    continue
                record.spent_at, record.spent_by, record.spent_note, record.remediations = None, "", "", []
                cleared.append(key)
        return cleared

    @contextmanager
    def _changing(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.lock:
            checks, targets = self._load()
            yield checks, targets
            write_atomically(self.path, json.dumps(
                {"checks": {key: asdict(record) for key, record in sorted(checks.items())},
                 "targets": {key: asdict(record) for key, record in sorted(targets.items())}}, separators=(",", ":")))
