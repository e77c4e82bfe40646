"""What reaching boxes over SSH costs: one command, and the daily cadence against 1 and against 8 boxes.

Needs root (a box is a real systemd in its own namespaces: lab/box). Side by side in one run:

  command   one trivial command on a box over SSH, `--commands` times, alternating:
              suite  the suite's way: Box.run(["true"]) (testinfra's ssh backend, its ControlMaster
                     connection reused, the command wrapped in `timeout`)
              ssh    raw OpenSSH to the same box through an established ControlPath master:
                     ssh -F <box ssh_config> -o ControlMaster=auto -o ControlPath=<sock> trading-box true
            the issue's aim: suite/ssh within 1.5x.
  fleet     the daily cadence over SSH (remediation off) against 1 box and against 8 boxes
            ([[boxes]] in one file), each --repeat times, 8 boxes with `-n WORKERS --dist loadgroup`:
            wall time, the ratio 8/1 (the issue's aim: within 3x) and peak memory of the run.

    sudo .venv/bin/python bench/bench_fleet.py            # boxes on ports 29000-29700, in a temporary dir
    sudo .venv/bin/python bench/bench_fleet.py --commands 200 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_daily import FINISHED, venv_python  # noqa: E402
from bench_logscan import load_average, measure, summary  # noqa: E402

PORT_BASE = 29000
BOXES = 8


def command_cost(box, count: int) -> tuple[list[float], list[float]]:
    from configuration import load
    from probes.host import box_of

    settings = load(box.paths.ssh_maintenance_config)
    suite_box = box_of(settings)
    socket = box.paths.root / "bench-ssh.sock"
    raw = ["ssh", "-F", str(box.paths.ssh_config), "-o", "ControlMaster=auto", "-o", f"ControlPath={socket}",
           "-o", "ControlPersist=60", "trading-box", "true"]
    subprocess.run(raw, check=True, capture_output=True)  # both sides start with a live master
    suite_box.run(["true"])
    suite, ssh = [], []
    for index in range(count):
        for side in (("suite", "ssh") if index % 2 == 0 else ("ssh", "suite")):
            started = time.perf_counter()
            if side == "suite":
                assert suite_box.run(["true"]).returncode == 0
                suite.append(time.perf_counter() - started)
            else:
                subprocess.run(raw, check=True, capture_output=True)
                ssh.append(time.perf_counter() - started)
    subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "trading-box"], capture_output=True)
    return suite, ssh


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=100, help="commands per side (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="cadence runs per fleet size (default 3)")
    parser.add_argument("--workers", default="auto", help="pytest-xdist workers for the fleet run (default auto)")
    args = parser.parse_args()
    from lab.box import Box
    from lab.box.fleet import boxes as fleet_boxes
    from lab.box.fleet import fleet_config

    why = Box.unavailable()
    if why:
        print(f"bench_fleet: no box here: {why}", file=sys.stderr)
        return 2
    print(f"machine  {os.cpu_count()} CPUs; load {load_average()} before", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        scratch = Path(scratch)
        boxes = fleet_boxes(scratch, BOXES, PORT_BASE)
        try:
            started = time.monotonic()
            for box in boxes:
                box.up()
            print(f"boxes    {BOXES} up in {time.monotonic() - started:.1f}s", flush=True)

            suite, ssh = command_cost(boxes[0], args.commands)
            print(f"command  suite median {statistics.median(suite) * 1000:6.1f} ms   "
                  f"ssh median {statistics.median(ssh) * 1000:6.1f} ms   "
                  f"ratio suite/ssh {statistics.median(suite) / statistics.median(ssh):.2f}")

            one = boxes[0].paths.ssh_maintenance_config
            all_boxes = fleet_config(boxes, scratch / "fleet.toml", {"resources": {"cpu": {"warning": 100,
                                                                                            "critical": 100}}})
            python = venv_python()
            common = ["-m", "pytest", "-m", "daily", "-q", "-p", "no:cacheprovider", "--remediation=off"]
            sides = {
                "1 box": [python, *common, f"--maintenance-config={one}", f"--reports-dir={scratch / 'r1'}"],
                f"{BOXES} boxes": [python, *common, f"--maintenance-config={all_boxes}", f"--reports-dir={scratch / 'r8'}",
                                   "-n", args.workers, "--dist", "loadgroup"],
            }
            runs = {name: [] for name in sides}
            for index in range(args.repeat):
                order = list(sides.items())
                for name, argv in order if index % 2 == 0 else order[::-1]:
                    runs[name].append(measure(argv, cwd=REPO, allowed_returncodes=FINISHED))
            for name, measured in runs.items():
                print(summary(name, measured))
            ratio = statistics.median(r.seconds for r in runs[f"{BOXES} boxes"]) / statistics.median(
                r.seconds for r in runs["1 box"])
            print(f"ratio    {BOXES} boxes / 1 box  median {ratio:.2f}")
        finally:
            for box in boxes:
                box.down()
    print(f"load     {load_average()} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
