"""What the emergency cadence costs, and how soon it tells, against one running lab.

Side by side in one run, alternating, after one warm-up each:

  bare       pytest on one empty test, same venv and plugins:  <venv python> -m pytest -q <tmp>/test_one.py
  emergency  the emergency cadence on the healthy lab:  <venv python> -m pytest -m emergency -q --maintenance-config=...

Reported: median and best wall time and peak RSS of each, the ratio emergency/bare (aim: within 1.5x),
the CPU time of one emergency run (its whole process tree) and the share of one core it costs at the
interval (aim: at most 2 %), and the detection time: a fault is injected at a random moment while the
cadence runs every INTERVAL seconds (as its timer would), and the time until its alert is in the alert
file (delivered) is measured, per fault (aim: within 60 s).

    python bench/bench_emergency.py                      # needs a running lab: python -m lab up
    python bench/bench_emergency.py --interval 30 --detections 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bench_daily import FINISHED, running_lab, venv_python  # noqa: E402
from bench_logscan import Run, load_average, measure, summary  # noqa: E402

FAULTS = {"service-down:trading-agent": "EMG-006", "error-storm": "EMG-001"}


def cpu_seconds(argv: list[str], env: dict, cwd: Path) -> float:
    """User + system CPU of one run and every process it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def alerted(alerts: Path, offset: int, check_id: str) -> bool:
    if not alerts.exists():
        return False
    with alerts.open() as handle:
        handle.seek(offset)
        for line in handle:  # one alert a line; a digest carries the alerts it sums up
            record = json.loads(line)
            items = record["items"] if record["kind"] == "digest" else [record]
            if any(item["check_id"] == check_id for item in items):
                return True
    return False


def detection(lab, argv: list[str], env: dict, interval: float, fault: str, check_id: str, alerts: Path) -> float:
    """Seconds from the fault to its alert in the file, with the cadence running every `interval`."""
    lab.clear()
    shutil.rmtree(Path(lab.lab_dir) / "maintenance", ignore_errors=True)  # the suite's memory: a fresh incident
    offset = alerts.stat().st_size if alerts.exists() else 0
    stop = threading.Event()

    def timer() -> None:
        while not stop.is_set():
            started = time.monotonic()
            subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    thread = threading.Thread(target=timer, daemon=True)
    thread.start()
    time.sleep(random.uniform(0, interval))  # the fault comes at any moment of the timer's period
    injected = time.monotonic()
    lab.inject(fault)
    while not alerted(alerts, offset, check_id):
        if time.monotonic() - injected > 4 * interval + 120:
            stop.set()
            raise SystemExit(f"{fault}: no {check_id} alert within {4 * interval + 120:.0f}s")
        time.sleep(0.2)
    seconds = time.monotonic() - injected
    stop.set()
    thread.join()
    lab.clear()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per side (default 7)")
    parser.add_argument("--interval", type=float, default=30, help="seconds between emergency runs (default 30)")
    parser.add_argument("--detections", type=int, default=2, help="detections measured per fault (default 2)")
    args = parser.parse_args()
    lab = running_lab()
    config = Path(lab.config_path)
    print(f"machine  load {load_average()} (1, 5, 15 min) before; lab {lab.lab_dir}", flush=True)
    lab.clear()
    with tempfile.TemporaryDirectory(prefix="bench-emergency-") as scratch:
        scratch = Path(scratch)
        (scratch / "test_one.py").write_text("def test_one():\n    pass\n")
        python, common = venv_python(), ["-p", "no:cacheprovider", "-q"]
        emergency = [python, "-m", "pytest", "-m", "emergency", *common, f"--maintenance-config={config}",
                     f"--reports-dir={scratch / 'reports'}"]
        sides = {"bare": ([python, "-m", "pytest", *common, str(scratch / "test_one.py")], scratch),
                 "emergency": (emergency, REPO)}
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        for argv, cwd in sides.values():
            measure(argv, env=env, cwd=cwd, allowed_returncodes=FINISHED)
        runs: dict[str, list[Run]] = {name: [] for name in sides}
        for index in range(args.repeat):
            order = list(sides.items())
            for name, (argv, cwd) in order if index % 2 == 0 else order[::-1]:
                runs[name].append(measure(argv, env=env, cwd=cwd, allowed_returncodes=FINISHED))
        cpu = statistics.median(cpu_seconds(emergency, env, REPO) for _ in range(args.repeat))
        alerts = Path(tomllib.loads(config.read_text())["alerts"]["file"])
        detected = {fault: [detection(lab, emergency, env, args.interval, fault, check_id, alerts)
                            for _ in range(args.detections)] for fault, check_id in FAULTS.items()}
    print(f"load     {load_average()} after")
    for name, measured in runs.items():
        print(summary(name, measured))
    bare = statistics.median(r.seconds for r in runs["bare"])
    ratio = statistics.median(r.seconds for r in runs["emergency"]) / bare
    print(f"ratio    emergency/bare  median {ratio:.2f}   (aim: within 1.5)")
    print(f"cpu      one emergency run {cpu:.2f} s of CPU; every {args.interval:g} s that is "
          f"{100 * cpu / args.interval:.2f} % of one core   (aim: at most 2 %)")
    for fault, seconds in detected.items():
        print(f"detect   {fault:28} {', '.join(f'{s:.1f}' for s in seconds)} s from the fault to its alert "
              f"(every {args.interval:g} s; aim: within 60 s)")
    lab.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
