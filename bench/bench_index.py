"""What the audit trail's pages cost: rebuilding them from 1,000 and from 10,000 runs (`make reindex`), and
keeping them up to date after one more run (what every run pays), side by side.

Each ledger is made here in the run's format (core/ledger.py): the newest 300 runs with a JUnit XML of
40 checks each (figures included), the older ones ledger lines only, as after the retention rule pruned
their reports. The aim: the cost of one more run does not grow with the number of runs on record.
Why here and not in a timed test: wall time depends on the machine and its disk.

    python bench/bench_index.py
    python bench/bench_index.py --runs 1000 10000 50000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reports import index  # noqa: E402

WITH_XML = 300
CHECKS = 40
START = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)


def junit(cadence: str, n: int) -> str:
    cases = []
    for check in range(CHECKS):
        verdict = "failed" if (n + check) % 97 == 0 else "passed"
        props = {"check_id": f"CHK-{check:03d}", "box": "trading-box", "cadence": cadence, "severity": "warning",
                 "verdict": verdict, "trades_today": (n * 7 + check) % 50, "disk_percent": 40 + (n + check) % 30}
        inner = '<failure message="assert">x</failure>' if verdict == "failed" else ""
        cases.append(f'<testcase classname="checks.test_x" name="test_{check}[trading-box]" time="0.01"><properties>'
                     + "".join(f'<property name="{k}" value="{v}"/>' for k, v in props.items())
                     + f"</properties>{inner}</testcase>")
    return f'<testsuites><testsuite name="maintenance-{cadence}">{"".join(cases)}</testsuite></testsuites>'


class Ledger:
    def __init__(self, directory: Path):
        self.dir, self.seq, self.prev = directory, 0, ""
        self.handle = (directory / "ledger.jsonl").open("a", encoding="utf-8")

    def run(self, n: int, with_xml: bool) -> None:
        when = START + timedelta(hours=n)
        stem = f"daily-{when:%Y%m%d-%H%M%S}-000"
        reports = {}
        for kind in ("html", "xml"):
            text = junit("daily", n) if kind == "xml" else f"<html>{stem}</html>"
            if with_xml:
                (self.dir / f"{stem}.{kind}").write_text(text)
            reports[kind] = {"name": f"{stem}.{kind}", "sha256": hashlib.sha256(text.encode()).hexdigest()}
        self.seq += 1
        line = {"seq": self.seq, "kind": "run", "at": when.isoformat(), "prev": self.prev, "run_id": f"r{n}",
                "cadence": "daily", "boxes": ["trading-box"], "started": when.isoformat(),
                "ended": (when + timedelta(seconds=40)).isoformat(), "duration_s": 40.0, "exit_status": 0,
                "exit_words": "all passed", "counts": {"passed": CHECKS, "fixed": 0, "failed": 0, "unknown": 0,
                                                       "waived": 0, "skipped": 0}, "reports": reports}
        line["hash"] = hashlib.sha256(json.dumps(line, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        self.prev = line["hash"]
        self.handle.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")
        self.handle.flush()


def measure(runs: int, repeats: int) -> tuple[float, float]:
    """(seconds to rebuild everything from `runs` runs, median seconds to take in one more run)."""
    data = REPO / "bench" / ".data"  # the benches' own scratch (git-ignored), not the machine's /tmp
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-index-", dir=data) as name:
        directory = Path(name)
        ledger = Ledger(directory)
        for n in range(runs):
            ledger.run(n, with_xml=n >= runs - WITH_XML)
        started = time.perf_counter()
        index.rebuild(directory)
        rebuild = time.perf_counter() - started
        one_more = []
        for extra in range(repeats):
            ledger.run(runs + extra, with_xml=True)
            started = time.perf_counter()
            index.after_run(directory)
            one_more.append(time.perf_counter() - started)
        return rebuild, statistics.median(one_more)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeats", type=int, default=5, help="runs added one at a time after the rebuild")
    args = parser.parse_args()
    results = {runs: measure(runs, args.repeats) for runs in args.runs}
    print(f"bench_index: audit trail pages ({WITH_XML} newest runs with a JUnit XML of {CHECKS} checks, the rest "
          f"ledger lines only)")
    print(f"{'runs in the ledger':>20} {'make reindex (s)':>18} {'one more run (ms)':>18}")
    for runs, (rebuild, one_more) in results.items():
        print(f"{runs:>20,} {rebuild:>18.2f} {one_more * 1000:>18.1f}")
    first, last = args.runs[0], args.runs[-1]
    print(f"one more run at {last:,} runs costs {results[last][1] / results[first][1]:.2f}x what it costs at "
          f"{first:,} (aim: about 1x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
