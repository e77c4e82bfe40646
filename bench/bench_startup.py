"""The suite's fixed cost, paid on every run (every 5 minutes for the emergency cadence).

Side by side in one run, alternating, against one running lab (`python -m lab up`):

  bare      pytest on one empty test, in the same venv with the same plugins installed (pytest-html,
            xdist, testinfra, metadata load from their entry points on every pytest run):
            <venv python> -m pytest -p no:cacheprovider -q <tmp>/test_one.py
  collect   the daily cadence, collected only: everything a run pays before its first check
            (configuration, the plugin, the probes, the remediation registry, collection):
            <venv python> -m pytest -m daily --collect-only -q --maintenance-config=<lab config>
  empty     the emergency cadence, which selects no check today: what a 5-minute cron run costs
            <venv python> -m pytest -m emergency -q --maintenance-config=<lab config> (exit 5 allowed)

Reported: median and best wall time of each and the ratios collect/bare and empty/bare.
The issue's aim: collect within 1.2x bare.

Each side runs without PYTHONDONTWRITEBYTECODE, as cron runs it on a box, after one warm-up run:
with it set, the suite's own modules are compiled (and assertion-rewritten) on every run, which a
box never pays twice; the bare side has no module of its own to compile.

    python bench/bench_startup.py             # needs a running lab: python -m lab up
    python bench/bench_startup.py --repeat 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bench_daily import FINISHED, running_lab, venv_python  # noqa: E402
from bench_logscan import Run, load_average, measure, summary  # noqa: E402

NO_TESTS = 5  # pytest's exit status when the selection is empty


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per side (default 7)")
    args = parser.parse_args()
    lab = running_lab()
    config = Path(lab.config_path)
    print(f"machine  load {load_average()} (1, 5, 15 min) before; lab {lab.lab_dir}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        scratch = Path(scratch)
        (scratch / "test_one.py").write_text("def test_one():\n    pass\n")
        python = venv_python()
        common = ["-p", "no:cacheprovider", "-q"]
        sides = {
            "bare": ([python, "-m", "pytest", *common, str(scratch / "test_one.py")], scratch, (0,)),
            "collect": ([python, "-m", "pytest", "-m", "daily", "--collect-only", *common,
                         f"--maintenance-config={config}", f"--reports-dir={scratch / 'reports'}"], REPO, (0,)),
            "empty": ([python, "-m", "pytest", "-m", "emergency", *common, f"--maintenance-config={config}",
                       f"--reports-dir={scratch / 'reports'}"], REPO, (*FINISHED, NO_TESTS)),
        }
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        for argv, cwd, allowed in sides.values():  # warm-up: bytecode written once, as on a box
            measure(argv, env=env, cwd=cwd, allowed_returncodes=allowed)
        runs: dict[str, list[Run]] = {name: [] for name in sides}
        for index in range(args.repeat):
            order = list(sides.items())
            for name, (argv, cwd, allowed) in order if index % 2 == 0 else order[::-1]:
                runs[name].append(measure(argv, env=env, cwd=cwd, allowed_returncodes=allowed))
    print(f"load     {load_average()} after")
    for name, measured in runs.items():
        print(summary(name, measured))
    bare = statistics.median(r.seconds for r in runs["bare"])
    best_bare = min(r.seconds for r in runs["bare"])
    for name in ("collect", "empty"):
        median = statistics.median(r.seconds for r in runs[name]) / bare
        best = min(r.seconds for r in runs[name]) / best_bare
        print(f"ratio    {name}/bare  median {median:.2f}   best {best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
