"""How fast, and in how much memory, the suite reads a big trading log, next to the guide's commands.

What is measured, on one generated daily trading log (1 GiB by default, in the guide's format):

  suite  probes.remote.logscan.scan_trading_log(path) as the daily checks call it, in a fresh Python
         process (interpreter start-up included; on a file this size the scanner cuts it into
         ranges for one worker process per CPU, see PARALLEL_MIN_BYTES; --workers 1 measures the
         single-process scan instead);
  shell  the guide's trading performance check, as one bash script:
             grep -c TRADE_EXECUTED f
             grep PROFIT f | awk '{s+=$NF} END {printf "%.2f", s}'

Each side runs --repeat times, alternating, after one untimed read that puts the file in the page
cache (both then read from memory). Reported: best and median wall time of each side, their ratio
(suite/shell), and each side's peak resident memory: the largest peak of any one of its processes
(for the shell, of bash, grep and awk), and the most its processes held at once (sampled). Both sides must
agree on every run (same trade count, same profit to 2 decimals), or the script exits 1.

Why here and not in a timed test: wall time depends on the machine, its load and the page cache,
so a timing assertion in the test suite would be flaky on a busy box and meaningless on another.
The tests (tests/test_logscan.py) prove the scanner gives the guide's numbers; this script measures
what that costs, on demand, on the box it runs on, with a file big enough for the cost to show.
The load average is printed before and after: on a shared box, compare runs made at equal load.

The log is generated once, deterministically, and kept in bench/.data/ (git-ignored).

    python bench/bench_logscan.py                    # 1 GiB, 5 runs per side
    python bench/bench_logscan.py --size-mib 64 --repeat 3 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil
except ImportError:
    raise SystemExit("psutil is needed (it is in the project's venv): .venv/bin/python bench/...") from None

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA_DIR = REPO / "bench" / ".data"

SHELL_SCRIPT = """grep -c TRADE_EXECUTED "$1"; grep PROFIT "$1" | awk '{s+=$NF} END {printf "%.2f\\n", s}'"""

SUITE_SNIPPET = """
import json, sys
sys.path.insert(0, sys.argv[1])
from probes.remote.logscan import scan_trading_log
workers = None if sys.argv[3] == "auto" else int(sys.argv[3])
totals = scan_trading_log(sys.argv[2], workers=workers)
print(json.dumps({"trades": totals.trades, "profit": f"{totals.profit_usdt:.2f}"}))
"""

PAIRS = {"BTC_USDT": 43000.50, "ETH_USDT": 2300.25, "SOL_USDT": 61.40, "XRP_USDT": 0.6212, "ADA_USDT": 0.3871}


def generate_trading_log(path: Path, size: int, seed: int = 20261125) -> None:
    """Write about `size` bytes of one day's trading log in the guide's format.

    Proportions of a busy agent: per 100 lines roughly 40 market ticks, 20 strategy signals,
    10 orders placed, 10 TRADE_EXECUTED, 8 PROFIT (closing trades; about 45 % of them losses),
    10 heartbeats and 2 risk warnings. Timestamps run through the whole day.
    """
    rng = random.Random(seed)
    pairs = list(PAIRS)
    approx_lines = max(1, size // 88)
    day_start = 1795564800  # 2026-11-25T00:00:00Z
    tmp = path.with_suffix(".partial")
    written = line_no = trade = 0
    stamp_second, stamp = -1, ""
    with tmp.open("wb") as out:
        while written < size:
            batch = []
            for _ in range(10_000):
                line_no += 1
                second = min(86399, line_no * 86400 // approx_lines)
                if second != stamp_second:
                    stamp_second = second
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day_start + second))
                r = rng.random()
                pair = pairs[int(r * 10_000) % len(pairs)]
                price = PAIRS[pair] * (1 + (rng.random() - 0.5) / 50)
                if r < 0.40:
                    batch.append(f"{stamp} INFO MARKET_TICK pair={pair} bid={price * 0.9999:.4f} "
                                 f"ask={price * 1.0001:.4f} vol={rng.random() * 50:.4f}\n")
                elif r < 0.60:
                    batch.append(f"{stamp} INFO SIGNAL strategy=momentum pair={pair} "
                                 f"score={rng.random():.3f} action={'hold' if r < 0.55 else 'enter'}\n")
                elif r < 0.70:
                    batch.append(f"{stamp} INFO ORDER_PLACED id=T{trade + 1:06d} pair={pair} "
                                 f"side=buy qty=0.0100 price={price:.2f}\n")
                elif r < 0.80:
                    trade += 1
                    batch.append(f"{stamp} INFO TRADE_EXECUTED id=T{trade:06d} pair={pair} "
                                 f"side={'buy' if r < 0.75 else 'sell'} qty=0.0100 price={price:.2f}\n")
                elif r < 0.88:
                    batch.append(f"{stamp} INFO PROFIT id=T{trade:06d} pair={pair} {rng.gauss(0.4, 6):.2f}\n")
                elif r < 0.98:
                    batch.append(f"{stamp} INFO HEARTBEAT open_positions={trade % 7} "
                                 f"balance_usdt={10_000 + trade % 997:.2f} latency_ms={rng.randint(3, 90)}\n")
                else:
                    batch.append(f"{stamp} WARN RISK_CHECK pair={pair} exposure={rng.random() * 100:.1f}% limit=80%\n")
            data = "".join(batch).encode()
            out.write(data)
            written += len(data)
    tmp.replace(path)


def cached_log(size_mib: int) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"trading-bench-{size_mib}MiB.log"
    if not path.exists():
        print(f"generating {path.relative_to(REPO)} ({size_mib} MiB, once) ...", flush=True)
        started = time.perf_counter()
        generate_trading_log(path, size_mib << 20)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return path


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int  # the largest peak of any one process of the run (VmHWM)
    together_rss_kib: int  # the most its processes held at once (sampled sum of VmRSS)
    processes: int
    stdout: str
    returncode: int


def _rss_kib(pid: int) -> tuple[int, int]:
    """(peak RSS since the last exec, current RSS) of a process, from /proc/PID/status; 0s if gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    found[line[:5]] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return found.get("VmHWM", 0), found.get("VmRSS", 0)


def measure(argv: list[str], env: dict | None = None, cwd: Path | None = None,
            allowed_returncodes: tuple[int, ...] = (0,), interval: float = 0.05) -> Run:
    """Run argv to completion: wall time, and the peak RSS of each process of its tree.

    An exit status outside `allowed_returncodes` stops the benchmark with the command's output.

    Why not ru_maxrss from wait4 or RUSAGE_CHILDREN: Linux folds into a child's ru_maxrss the
    RSS of the process image it was forked from, so every command would show at least this
    script's own RSS (measured: grep "used" 210 MiB when forked from a 200 MiB Python).
    VmHWM starts afresh at exec, so polling it for every process of the tree gives each
    process's own peak. Polling every `interval` seconds costs this script about 5 % of one CPU at
    the default 50 ms; a process that lives less than that (a curl or jq in the daily script, a
    few MiB each) can be missed, and "at once" is sampled, not exact.
    """
    peaks: dict[int, int] = {}  # pid -> peak RSS (KiB)
    together = 0
    done = threading.Event()

    def poll(root: psutil.Process) -> None:
        nonlocal together
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            now = 0
            for proc in tree:
                peak, current = _rss_kib(proc.pid)
                peaks[proc.pid] = max(peaks.get(proc.pid, 0), peak)
                now += current
            together = max(together, now)
            done.wait(interval)

    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        poller = threading.Thread(target=poll, args=(psutil.Process(child.pid),), daemon=True)
        poller.start()
        returncode = child.wait()
        elapsed = time.perf_counter() - started
        done.set()
        poller.join()
        out.seek(0)
        text = out.read().decode(errors="replace")
    if returncode not in allowed_returncodes:
        raise SystemExit(f"{' '.join(argv[:3])} ... exited {returncode}:\n{text}")
    return Run(elapsed, max(peaks.values(), default=0), together, len(peaks), text, returncode)


def warm_page_cache(path: Path) -> None:
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 << 20):
            pass


def summary(name: str, runs: list[Run]) -> str:
    times = [r.seconds for r in runs]
    peak = max(r.peak_rss_kib for r in runs)
    together = max(r.together_rss_kib for r in runs)
    processes = max(r.processes for r in runs)
    return (f"{name:6s} median {statistics.median(times):6.3f} s   best {min(times):6.3f} s   "
            f"peak RSS {peak / 1024:5.1f} MiB (largest of its {processes} processes; "
            f"at once {together / 1024:.1f} MiB)   runs {' '.join(f'{t:.3f}' for t in times)}")


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "?"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the generated log (default 1024)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per side (default 5)")
    parser.add_argument("--workers", default="auto",
                        help="the scanner's workers argument: auto (as the suite calls it) or a number")
    args = parser.parse_args()
    for tool in ("bash", "grep", "awk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed for the shell side")

    log = cached_log(args.size_mib)
    size = log.stat().st_size
    from probes.remote import logscan

    print(f"log      {log.relative_to(REPO)}  {size / (1 << 20):.0f} MiB")
    print(f"machine  {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{tool_version(['grep', '--version'])}, {tool_version(['awk', '-W', 'version'])}, "
          f"LANG={os.environ.get('LANG', '')} LC_ALL={os.environ.get('LC_ALL', '')}")
    print(f"scanner  workers={args.workers} (auto: one per CPU from "
          f"{logscan.PARALLEL_MIN_BYTES >> 20} MiB), chunk {logscan.CHUNK_SIZE >> 10} KiB")
    print(f"load     {load_average()} (1, 5, 15 min) before", flush=True)
    warm_page_cache(log)

    suite_argv = [sys.executable, "-c", SUITE_SNIPPET, str(REPO), str(log), args.workers]
    shell_argv = ["bash", "-c", SHELL_SCRIPT, "bash", str(log)]
    suite_runs: list[Run] = []
    shell_runs: list[Run] = []
    for index in range(args.repeat):
        # Alternate which side goes first, so drift in machine load hits both alike.
        order = [(suite_argv, suite_runs), (shell_argv, shell_runs)]
        for argv, runs in (order if index % 2 == 0 else order[::-1]):
            runs.append(measure(argv))

    answers = {"suite": set(), "shell": set()}
    for run in suite_runs:
        suite = json.loads(run.stdout)
        answers["suite"].add((suite["trades"], suite["profit"]))
    for run in shell_runs:
        trades, profit = run.stdout.split()
        answers["shell"].add((int(trades), profit))
    agree = len(answers["suite"]) == 1 and answers["suite"] == answers["shell"]
    print(f"result   suite {sorted(answers['suite'])}  shell {sorted(answers['shell'])}  (trades, USDT)"
          f"  -> {'same' if agree else 'DIFFERENT'}")
    print(f"load     {load_average()} after")
    print(summary("suite", suite_runs))
    print(summary("shell", shell_runs))
    best = min(r.seconds for r in suite_runs) / min(r.seconds for r in shell_runs)
    median = statistics.median(r.seconds for r in suite_runs) / statistics.median(r.seconds for r in shell_runs)
    print(f"ratio    suite/shell  best {best:.2f}   median {median:.2f}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
