"""What the suite remembers between runs: each check's recent verdicts and alerts, and each target's
remediations (the remediation budget is per thing touched, not per check).

Cron runs are separate processes, so soft states, budgets, deduplication and flapping all need
memory. One JSON file, changed under a file lock and replaced atomically: a run killed mid-write
leaves the previous state whole, and xdist workers never lose each other's updates. Mode 0600 in a
directory of mode 0700 (core/rootfiles.py: as root, only under a path only root can change).

A file that cannot be read (truncated, not UTF-8, not the object it should be) must never stop
monitoring: it is set aside as `state.json.corrupt-<UTC time>` for a human, and the run starts from
empty state (`recover`, which the run calls once at its start and says in its summary and one alert).
"""

from __future__ import annotations

import datetime
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from filelock import FileLock

from configuration import Settings
from core import rootfiles
from core.atomic import write_atomically

HISTORY = 20  # verdicts kept per check: enough for flapping and consecutive-failure counts
KEEP_REMEDIATIONS = 50  # per target: more than any budget counts
STATE_FILE = "state.json"
CORRUPT_INFIX = ".corrupt-"  # state.json.corrupt-<UTC time>: an unreadable state file, kept for a human
DIRECTORY_MODE = 0o700
SUITE = Path(__file__).resolve().parent.parent  # a relative state_dir is the suite's directory's


def state_directory(settings: Settings) -> Path:
    """[policy] state_dir, a relative one taken from the suite's directory (as the runs take it)."""
    directory = settings.policy.state_dir
    return directory if directory.is_absolute() else SUITE / directory


class UnreadableState(ValueError):
    """The state file is there but is not the suite's state: what is wrong with it."""


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

    def settle(self, run: str, result: str) -> None:
        """How the check ended in this run (its verdict, "fixed" included), for the checks that depend on it."""
        self.run, self.run_result = run, result


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


def _records(raw: dict, section: str, kind) -> dict:
    table = raw.get(section, {})
    if not isinstance(table, dict) or not all(isinstance(value, dict) for value in table.values()):
        raise UnreadableState(f"its {section!r} is not an object of records")
    try:
        return {key: _record(kind, value) for key, value in table.items()}
    except TypeError as error:
        raise UnreadableState(f"a record of its {section!r} does not fit: {error}") from None


def parse(data: bytes) -> tuple[dict[str, CheckRecord], dict[str, TargetRecord]]:
    """The checks' and the targets' records of a state file's bytes; UnreadableState says why not."""
    try:
        raw = json.loads(data)
    except ValueError as error:  # UnicodeDecodeError included
        raise UnreadableState(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise UnreadableState(f"a JSON {type(raw).__name__}, not an object")
    return _records(raw, "checks", CheckRecord), _records(raw, "targets", TargetRecord)


class StateStore:
    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / STATE_FILE
        self.lock = FileLock(str(directory / "state.lock"), timeout=30)

    def _read(self) -> tuple[dict[str, CheckRecord], dict[str, TargetRecord]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}, {}
        return parse(data)

    def _load(self) -> tuple[dict[str, CheckRecord], dict[str, TargetRecord]]:
        """What the file holds; an unreadable one as empty state (it is set aside under the lock: `recover`)."""
        try:
            return self._read()
        except UnreadableState:
            return {}, {}

    def recover(self) -> str | None:
        """Once, at a run's start: an unreadable state file set aside (0600) and the run started from empty
        state. What happened, in words for the summary and the alert; None when the state reads."""
        if not self.path.exists():
            return None
        rootfiles.ensure_directory(self.directory, DIRECTORY_MODE)
        with self.lock:
            try:
                self._read()
            except UnreadableState as problem:
                return self._set_aside(problem)
        return None

    def _set_aside(self, problem: UnreadableState) -> str:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        said = f"{self.path} could not be read ({problem})"
        try:
            aside = rootfiles.set_aside(self.path, f"{STATE_FILE}{CORRUPT_INFIX}{stamp}")
        except OSError as error:
            return f"{said} nor set aside ({error}): it is replaced; this run started from empty state"
        return (f"{said}: kept as {aside.name}; this run started from empty state (soft states, remediation "
                f"budgets and alert deduplication begin again)")

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

    def settle(self, key: str, run: str, result: str) -> None:
        """How one check ended in this run, when nothing else of its record changes (waived, skipped)."""
        with self.record(key) as record:
            record.settle(run, result)

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
        rootfiles.ensure_directory(self.directory, DIRECTORY_MODE)  # checked before the lock is made in it
        with self.lock:
            try:
                checks, targets = self._read()
            except UnreadableState as problem:  # damaged during the run: kept all the same, never raised
                self._set_aside(problem)
                checks, targets = {}, {}
            yield checks, targets
            write_atomically(self.path, json.dumps(
                {"checks": {key: asdict(record) for key, record in sorted(checks.items())},
                 "targets": {key: asdict(record) for key, record in sorted(targets.items())}}, separators=(",", ":")))
