"""The audit trail as records: the ledger's lines (one JSON object a line; format in
core/ledger.py) and each run's JUnit XML, read into what the index, the history pages, the trends and
the Prometheus textfile show.

What was read is kept in a cache beside the ledger (`.trail-cache.json`): where in the ledger reading
stopped (byte offset and the hash of the last line read), every run's row, each check instance's recent
results and counts, and each figure's recent points. After one more run only the new ledger lines and
their reports are read: the cost of keeping up does not grow with the number of runs. A cache that does
not match the ledger (it was rewritten, shortened, or the cache is from another format) is thrown away and
everything is read again, which is also what `make reindex` does.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import write_atomically
from core.ledger import LEDGER, file_sha256, parse_line
from core.vocabulary import Prop, Verdict
from decision.verdict import instance_key
from reports.tally import SUITE_PROPERTIES

CACHE = ".trail-cache.json"
FORMAT = 1
TREND_POINTS = 200  # per figure series: the trends show the recent ones
RUN_KIND = "run"
PRUNE_KIND = "prune"
REPORT_KINDS = ("html", "xml")


class ReportState:
    """What became of one report a run wrote, as the index says it."""

    PRESENT = "present"
    PRUNED = "pruned"  # a prune line of the ledger names it: removed by the retention rule, on purpose
    MISSING = "missing"  # gone, and no prune line says why: `make verify-trail` tells more
    ALTERED = "altered"  # its SHA-256 is not the ledger's: its results are not read
    NOT_WRITTEN = "not written"


# A figure's value: a number, optionally followed by a unit (`12.5`, `42 %`, `8192 bytes`, `12 MB`).
NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([A-Za-z%]*)\s*$")
SIZE_UNITS = {"bytes": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def number_of(value: str) -> float | None:
    """The number a figure holds (a size with its unit in bytes), or None for text and lists."""
    match = NUMBER.match(str(value))
    if match is None:
        return None
    number = float(match[1])
    unit = match[2].lower()
    if unit in SIZE_UNITS:
        return number * SIZE_UNITS[unit]
    return number if unit in ("", "%", "s", "ms") else None


@dataclass
class Result:
    """One check instance's result in one run (a JUnit test case)."""

    key: str  # box/instance: unique across the fleet
    check: str
    instance: str
    box: str
    cadence: str
    severity: str
    verdict: str
    outcome: str = ""  # the remediation's outcome (`restart_service: done: ...`)
    policy: str = ""
    human_needed: str = ""
    figures: dict[str, float] = field(default_factory=dict)


def parameter_of(name: str) -> str | None:
    """`test_service_is_running[trading-agent]` -> `trading-agent`."""
    return name[name.index("[") + 1:-1] if "[" in name and name.endswith("]") else None


def verdict_of_case(case: ET.Element, properties: dict[str, str]) -> str:
    """The operator's verdict the run recorded; for a case without one, what JUnit says."""
    if Prop.VERDICT in properties:
        return properties[Prop.VERDICT]
    if case.find("failure") is not None:
        return Verdict.FAILED
    if case.find("error") is not None:
        return Verdict.UNKNOWN
    return Verdict.SKIPPED if case.find("skipped") is not None else Verdict.PASSED


def read_junit(path: Path, default_cadence: str = "") -> list[Result]:
    """Every check's result in a run's JUnit XML; test cases that are no check (collection errors) left out."""
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value", "") for p in case.iter("property")}
        check = properties.get(Prop.CHECK_ID)
        if not check:
            continue
        box = properties.get(Prop.BOX, "")
        instance = instance_key(check, parameter_of(case.get("name", "")))
        figures = {}
        for name, value in properties.items():
            if name not in SUITE_PROPERTIES and (number := number_of(value)) is not None:
                figures[name] = number
        results.append(Result(
            key=f"{box}/{instance}", check=check, instance=instance, box=box,
            cadence=properties.get(Prop.CADENCE, default_cadence), severity=properties.get(Prop.SEVERITY, ""),
            verdict=verdict_of_case(case, properties), outcome=properties.get(Prop.REMEDIATION_OUTCOME, ""),
            policy=properties.get(Prop.POLICY, ""), human_needed=properties.get(Prop.HUMAN_NEEDED, ""),
            figures=figures))
    return results


def read_lines(ledger: Path, offset: int) -> tuple[list[dict], int]:
    """The ledger's complete lines from byte `offset` on, and the offset after the last one. A line being
    written (no newline yet: a run killed mid-append) is left for the next reading."""
    with ledger.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    lines = []
    for raw in data[:end].splitlines():
        if not raw.strip():
            continue
        lines.append(parse_line(raw) or {"kind": "unreadable"})
    return lines, offset + end


def hash_before(ledger: Path, offset: int) -> str:
    """The hash of the ledger line that ends at `offset` ("" at the start): the cache's place in the chain."""
    if offset == 0:
        return ""
    with ledger.open("rb") as handle:
        start = max(0, offset - 65536)
        handle.seek(start)
        data = handle.read(offset - start)
    if not data.endswith(b"\n"):
        return "?"
    last = data[:-1].rsplit(b"\n", 1)[-1]
    line = parse_line(last)
    return line["hash"] if line else "?"


class Trail:
    """Everything read so far; `update` reads what the ledger gained since. Plain JSON-able data."""

    def __init__(self, reports_dir: Path, history_length: int = 30):
        self.dir = Path(reports_dir)
        self.history_length = history_length
        self.offset = 0
        self.last_hash = ""
        self.runs: list[dict] = []  # oldest first
        self.instances: dict[str, dict] = {}
        self.series: dict[str, dict] = {}
        self.latest: dict[str, dict] = {}  # "cadence box" -> the newest run of that cadence on that box
        self.touched: set[str] = set()  # instances whose history changed in the last update
        self.touched_runs: set[int] = set()  # positions in `runs` whose row changed (a prune)

    @property
    def ledger(self) -> Path:
        return self.dir / LEDGER

    @property
    def cache(self) -> Path:
        return self.dir / CACHE

    # -- the cache --
    @classmethod
    def load(cls, reports_dir: Path, history_length: int = 30) -> Trail:
        """The cached trail if it is still the ledger's (same place in the chain), else an empty one."""
        trail = cls(reports_dir, history_length)
        try:
            saved = json.loads(trail.cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return trail
        wanted = (FORMAT, history_length)
        if not isinstance(saved, dict) or (saved.get("format"), saved.get("history_length")) != wanted:
            return trail
        try:
            if hash_before(trail.ledger, saved["offset"]) != saved["last_hash"]:
                return trail  # the ledger is not the one the cache read: read it all again
        except (OSError, KeyError):
            return trail
        trail.offset, trail.last_hash = saved["offset"], saved["last_hash"]
        trail.runs, trail.instances, trail.series = saved["runs"], saved["instances"], saved["series"]
        trail.latest = saved["latest"]
        return trail

    def save(self) -> None:
        write_atomically(self.cache, json.dumps({
            "format": FORMAT, "history_length": self.history_length, "offset": self.offset,
            "last_hash": self.last_hash, "runs": self.runs, "instances": self.instances, "series": self.series,
            "latest": self.latest,
        }, separators=(",", ":")))

    @property
    def fresh(self) -> bool:
        return self.offset == 0

    # -- reading --
    def update(self) -> int:
        """Read the ledger lines written since the last update; the number of lines read."""
        self.touched, self.touched_runs = set(), set()
        if not self.ledger.exists():
            return 0
        lines, self.offset = read_lines(self.ledger, self.offset)
        for line in lines:
            if line.get("kind") == RUN_KIND:
                self._add_run(line)
            elif line.get("kind") == PRUNE_KIND:
                self._prune(set(line.get("files") or ()))
            if "hash" in line:
                self.last_hash = str(line["hash"])
        return len(lines)

    def _add_run(self, line: dict) -> None:
        reports = {}
        results: list[Result] = []
        for kind in REPORT_KINDS:
            entry = (line.get("reports") or {}).get(kind)
            if not entry:
                reports[kind] = {"name": "", "state": ReportState.NOT_WRITTEN}
                continue
            path = self.dir / entry["name"]
            state = ReportState.PRESENT
            try:
                if file_sha256(path) != entry.get("sha256"):
                    state = ReportState.ALTERED
            except FileNotFoundError:
                state = ReportState.MISSING
            reports[kind] = {"name": entry["name"], "state": state}
            if kind == "xml" and state == ReportState.PRESENT:
                try:
                    results = read_junit(path, line.get("cadence", ""))
                except (ET.ParseError, OSError):
                    reports[kind]["state"] = ReportState.ALTERED
        counts = {str(name): int(n) for name, n in (line.get("counts") or {}).items()}
        row = {"seq": line.get("seq"), "run_id": line.get("run_id", ""), "cadence": line.get("cadence", ""),
               "boxes": list(line.get("boxes") or []), "started": line.get("started", ""),
               "ended": line.get("ended", ""), "duration_s": float(line.get("duration_s") or 0),
               "exit_status": line.get("exit_status"), "exit_words": line.get("exit_words", ""),
               "counts": counts, "reports": reports, "checks": len(results)}
        self.runs.append(row)
        for box in row["boxes"] or [""]:
            self.latest[f"{row['cadence']} {box}"] = row
        for result in results:
            self._add_result(row, result)

    def _add_result(self, run: dict, result: Result) -> None:
        at = run["started"]
        record = self.instances.setdefault(result.key, {
            "check": result.check, "instance": result.instance, "box": result.box, "cadence": result.cadence,
            "results": [], "runs": 0, "last_failed": "", "remediations": {}, "figures": []})
        record["severity"] = result.severity
        record["runs"] += 1
        html = run["reports"]["html"]  # each result links its run's report while there is one
        link = html["name"] if html["state"] in (ReportState.PRESENT, ReportState.ALTERED) else ""
        record["results"] = [*record["results"], [at, result.verdict, link]][-self.history_length:]
        if result.verdict in (Verdict.FAILED, Verdict.FIXED):  # a fixed finding failed first
            record["last_failed"] = at
        if result.outcome:
            action, _, rest = result.outcome.partition(": ")
            status = rest.split(":", 1)[0].split(" (exit", 1)[0]
            label = f"{action}: {status}"
            record["remediations"][label] = record["remediations"].get(label, 0) + 1
        record["latest"] = {"at": at, "verdict": result.verdict, "policy": result.policy,
                            "human_needed": result.human_needed, "outcome": result.outcome}
        for name, value in result.figures.items():
            series_key = f"{result.key}\x1f{name}"
            series = self.series.setdefault(series_key, {"key": result.key, "figure": name, "box": result.box,
                                                         "check": result.check, "instance": result.instance,
                                                         "points": []})
            series["points"] = [*series["points"], [at, value]][-TREND_POINTS:]
            if name not in record["figures"]:
                record["figures"].append(name)
        self.touched.add(result.key)

    def _prune(self, names: set[str]) -> None:
        if not names:
            return
        for position, run in enumerate(self.runs):
            for report in run["reports"].values():
                if report["name"] in names:
                    report["state"] = ReportState.PRUNED
                    self.touched_runs.add(position)
        for key, record in self.instances.items():  # the history strips stop linking them too
            if any(report in names for _, _, report in record["results"]):
                record["results"] = [[at, verdict, "" if report in names else report]
                                     for at, verdict, report in record["results"]]
                self.touched.add(key)
