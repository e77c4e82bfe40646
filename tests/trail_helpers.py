"""A tiny writer of test ledgers and JUnit XML in the run's format (core/ledger.py: the ledger), for the
audit trail's tests. Not the suite's appender (the run writes the real ledger): just enough lines and reports."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

from core import ledger
from core.vocabulary import LedgerKind

START = datetime.datetime(2026, 11, 1, 2, 0, tzinfo=datetime.UTC)


def dumps(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class LedgerWriter:
    """Lines appended by the run's own appender (core/ledger.py), at the times the test gives."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.seq = max((line["seq"] for line in ledger.entries(directory)), default=0)

    def append(self, kind: str, **fields) -> dict:
        at = fields.pop("at", START.isoformat())
        line = ledger.append(self.dir, LedgerKind(kind), fields, now=datetime.datetime.fromisoformat(at).timestamp())
        self.seq = line["seq"]
        return line

    def close(self):
        pass


def head_seq(directory: Path) -> int:
    """The seq of the ledger's last line in `directory`; 0 when there is none yet."""
    return max((line["seq"] for line in ledger.entries(directory)), default=0)


def acts(directory: Path, kind: LedgerKind, after: int = 0) -> list[dict]:
    """The operator's acts of one kind in the ledger of `directory` (those after seq `after`), each as the act
    recorded it: its own fields and `at`, without the chain's seq, kind, prev and hash."""
    chain = {"seq", "kind", "prev", "hash"}
    return [{key: value for key, value in line.items() if key not in chain} for line in ledger.entries(directory)
            if line["kind"] == kind and line["seq"] > after]


def junit_xml(cadence: str, cases: list[dict]) -> str:
    """cases: {"name", "verdict", "props": {...}}: a failed/unknown case gets a failure/error element."""
    out = [f'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="maintenance-{cadence}" tests="{len(cases)}">']
    for case in cases:
        props = "".join(f"<property name={quoteattr(k)} value={quoteattr(str(v))}/>" for k, v in case["props"].items())
        verdict = case["props"].get("verdict", "passed")
        inner = {"failed": '<failure message="assert">assert</failure>', "fixed": '<failure message="assert">x</failure>',
                 "unknown": '<error message="could not check">x</error>', "skipped": '<skipped message="n/a"/>'}.get(verdict, "")
        out.append(f'<testcase classname="checks.test_x" name={quoteattr(case["name"])} time="0.01">'
                   f"<properties>{props}</properties>{inner}</testcase>")
    out.append("</testsuite></testsuites>")
    return "".join(out)


def case(check: str, name: str, verdict: str, box: str = "trading-box", cadence: str = "daily",
         severity: str = "critical", **extra) -> dict:
    return {"name": name, "props": {"check_id": check, "cadence": cadence, "severity": severity, "box": box,
                                    "verdict": verdict, **extra}}


def add_run(writer: LedgerWriter, when: datetime.datetime, cadence: str, cases: list[dict] | None,
            boxes=("trading-box",), exit_status: int = 0, exit_words: str = "all passed") -> dict:
    """One run: its XML (and a small HTML) written when `cases` is given, its ledger line always."""
    stem = f"{cadence}-{when:%Y%m%d-%H%M%S}-{when.microsecond // 1000:03d}"
    reports = {}
    counts = dict.fromkeys(("passed", "fixed", "failed", "unknown", "waived", "skipped"), 0)
    if cases is not None:
        xml = writer.dir / f"{stem}.xml"
        xml.write_text(junit_xml(cadence, cases))
        html = writer.dir / f"{stem}.html"
        html.write_text(f"<html><body>{stem}</body></html>")
        for kind, path in (("html", html), ("xml", xml)):
            reports[kind] = {"name": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        for one in cases:
            counts[one["props"]["verdict"]] += 1
    else:
        counts["passed"] = 20
        reports = {kind: {"name": f"{stem}.{kind}", "sha256": "0" * 64} for kind in ("html", "xml")}
    ended = when + datetime.timedelta(seconds=42.5)
    return writer.append("run", at=ended.isoformat(), run_id=f"run{writer.seq + 1}", cadence=cadence,
                         boxes=list(boxes), started=when.isoformat(), ended=ended.isoformat(), duration_s=42.5,
                         exit_status=exit_status, exit_words=exit_words, counts=counts, reports=reports)
