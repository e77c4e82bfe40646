"""The stored baselines of the benchmarks (Monthly 2, Error Handling Monthly 3, Quarterly 2's read speed):
one value per figure and box, with the date it was recorded.

The first run that measures a figure records it; later runs compare with it (the change in percent) and
the check fails past `[baselines] max_regression_percent`. `make baseline` (commands/baseline.py) records
it again on purpose, with a line in the ledger. The store is the suite's own memory, beside its state
([policy] state_dir), like decision/state.py's, one JSON file written whole under a lock; it lives here,
with the probes, because the checks read it and the first run's value is recorded as it is read.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from configuration import Settings
from core.atomic import write_atomically

BASELINES = "baselines.json"
SUITE = Path(__file__).resolve().parent.parent  # a relative state_dir is the suite's directory's


def baselines_path(settings: Settings) -> Path:
    directory = settings.policy.state_dir
    return (directory if directory.is_absolute() else SUITE / directory) / BASELINES


@dataclass(frozen=True)
class Figure:
    """What is measured: its name in the reports, its unit, and which way is worse."""

    name: str
    unit: str
    higher_is_worse: bool  # a time; a speed is worse lower

    @property
    def is_time(self) -> bool:
        return self.unit == "ms"


API_RESPONSE = Figure("api_response_ms", "ms", True)
DB_QUERY = Figure("db_query_ms", "ms", True)
DISK_READ = Figure("disk_read_mb_per_s", "MB/s", False)
ERROR_HANDLING_RESPONSE = Figure("error_handling_response_ms", "ms", True)
FIGURES = {figure.name: figure for figure in (API_RESPONSE, DB_QUERY, DISK_READ, ERROR_HANDLING_RESPONSE)}


@dataclass(frozen=True)
class Comparison:
    figure: Figure
    value: float
    baseline: float
    recorded: str  # when the baseline was recorded (ISO, UTC)
    first: bool  # this run recorded it

    @property
    def change_percent(self) -> float:
        """Signed change of the value against the baseline (+ is more, whichever way is worse)."""
        if self.baseline == 0:
            return 0.0 if self.value == 0 else float("inf")
        return (self.value - self.baseline) / self.baseline * 100

    @property
    def regression_percent(self) -> float:
        """How much worse than the baseline (negative: better)."""
        return self.change_percent if self.figure.higher_is_worse else -self.change_percent

    def regressed(self, max_percent: float, noise_floor_ms: float) -> bool:
        if self.first or self.regression_percent <= max_percent:
            return False
        return not (self.figure.is_time and abs(self.value - self.baseline) <= noise_floor_ms)

    def describe(self) -> str:
        unit = self.figure.unit
        if self.first:
            return f"{self.value:.4g} {unit}, recorded now as the baseline"
        return (f"{self.value:.4g} {unit} against the baseline {self.baseline:.4g} {unit} of {self.recorded[:10]} "
                f"({self.change_percent:+.1f} %)")

    def properties(self) -> list[tuple[str, str]]:
        """The figures for the reports: the value, the baseline with its date, the change."""
        name = self.figure.name
        return [(name, f"{self.value:.4g}"), (f"{name}_baseline", f"{self.baseline:.4g}"),
                (f"{name}_baseline_recorded", self.recorded),
                (f"{name}_change_percent", "first run: recorded" if self.first else f"{self.change_percent:+.1f}")]


class BaselineStore:
    """{box: {figure: {"value", "unit", "recorded", "why"}}} in one JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = FileLock(str(self.path.with_suffix(".lock")), timeout=30)

    def load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise ValueError(f"{self.path} is not the JSON the suite writes ({error}): move it away and record "
                             "the baselines again (make baseline)") from None

    def get(self, box: str, figure: str) -> dict | None:
        return self.load().get(box, {}).get(figure)

    def record(self, box: str, figure: Figure, value: float, why: str) -> dict:
        """Store a figure's baseline (replacing any): the entry written."""
        with self.lock:
            return self._store(box, figure, value, why)

    def compare(self, box: str, figure: Figure, value: float) -> Comparison:
        """The value against the stored baseline; none yet: this value is recorded as the baseline."""
        with self.lock:
            entry = self.get(box, figure.name)
            first = entry is None
            if first:
                entry = self._store(box, figure, value, "first measurement")
        return Comparison(figure, value, float(entry["value"]), entry["recorded"], first)

    def _store(self, box: str, figure: Figure, value: float, why: str) -> dict:
        entry = {"value": value, "unit": figure.unit,
                 "recorded": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "why": why}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stored = self.load()
        stored.setdefault(box, {})[figure.name] = entry
        write_atomically(self.path, json.dumps(stored, indent=2, sort_keys=True) + "\n")
        return entry
