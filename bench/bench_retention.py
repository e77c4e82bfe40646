"""What deleting expired files with the retention walker costs, next to the `find -delete` it replaced.

One directory of `--files` expired files (10,000 by default; `trading-N.tmp`, three days old, owned by whoever
runs this) plus as many young ones the rule must keep, made again before every timed run (untimed). Then, each
timed by the wall clock, alternating, `--repeat` times:

  walker   probes.remote.expiry.expire(..., delete=True) in this process: what a run on the box itself does (the
           directory reached from / one component at a time, fstatat and unlinkat on its descriptor per name);
  program  the same walker as the box's root program runs it over SSH: `/usr/bin/python3 -IS` on the text
           `make install-box-helpers` installs (probes/files.py program_text), interpreter start included;
  find     `find DIR -xdev -maxdepth 1 -name 'trading-*' -type f -user USER -mtime +1 -delete`, what root ran
           before on a path string.

Every side must delete exactly the expired files and keep the young ones, or the script exits 1. Reported: best
and median of each, and each side's median over find's (aim: within 1.5x). Why here and not in a timed test:
wall time depends on the machine, its disk and its load.

    python bench/bench_retention.py                 # 10,000 files, 5 runs per side
    python bench/bench_retention.py --files 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from probes import expiry  # noqa: E402
from probes.files import program_text  # noqa: E402

DATA_DIR = REPO / "bench" / ".data"
DAY = 86400
PATTERN, MAX_AGE_DAYS = "trading-*", 1
BOX_PYTHON = "/usr/bin/python3"
AIM = 1.5


def fill(directory: Path, count: int) -> None:
    """`count` expired files and `count` young ones, in a directory made anew."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    old = time.time() - 3 * DAY
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for n in range(count):
        os.close(os.open(directory / f"trading-{n}.tmp", flags))
        os.utime(directory / f"trading-{n}.tmp", (old, old))
        os.close(os.open(directory / f"trading-young-{n}.tmp", flags))


def by_walker(directory: Path, user: str, _program: Path) -> None:
    done = expiry.expire(str(directory), PATTERN, MAX_AGE_DAYS, [user], delete=True)
    if done["refused"]:
        raise SystemExit(f"the walker refused: {done['refused']}")


def by_program(directory: Path, user: str, program: Path) -> None:
    subprocess.run([BOX_PYTHON, "-IS", str(program), str(directory), PATTERN, str(MAX_AGE_DAYS), user, "flat"],
                   check=True, stdout=subprocess.DEVNULL)


def by_find(directory: Path, user: str, _program: Path) -> None:
    subprocess.run(["find", str(directory), "-xdev", "-maxdepth", "1", "-name", PATTERN, "-type", "f", "-user", user,
                    "-mtime", f"+{MAX_AGE_DAYS}", "-delete"], check=True)


SIDES = {"walker": by_walker, "program": by_program, "find": by_find}


def timed_run(side, directory: Path, count: int, user: str, program: Path) -> float:
    fill(directory, count)
    started = time.perf_counter()
    side(directory, user, program)
    seconds = time.perf_counter() - started
    left = os.listdir(directory)
    if len(left) != count or any(not name.startswith("trading-young-") for name in left):
        raise SystemExit(f"{side.__name__} left {len(left)} file(s), not the {count} young ones")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="expired files (as many young ones are kept)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    user = getpass.getuser()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    sides = dict(SIDES) if Path(BOX_PYTHON).exists() else {k: v for k, v in SIDES.items() if k != "program"}
    with tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="retention-") as scratch:
        program = Path(scratch) / "expire"
        program.write_text(program_text())
        directory = Path(scratch) / "tmp"
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeat):
            for name, side in sides.items():
                times[name].append(timed_run(side, directory, args.files, user, program))
    print(f"bench_retention: deleting {args.files:,} expired files beside {args.files:,} young ones, "
          f"{args.repeat} runs per side (load {os.getloadavg()[0]:.2f})")
    find = statistics.median(times["find"])
    print(f"{'side':>8} {'best (ms)':>10} {'median (ms)':>12} {'/ find':>8}")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:>8} {min(seconds) * 1000:>10.1f} {median * 1000:>12.1f} {median / find:>7.2f}x")
    worst = max(statistics.median(times[name]) / find for name in times if name != "find")
    print(f"the walker's slowest side is {worst:.2f}x find -delete (aim: within {AIM}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
