"""How long the suite's daily run takes against the lab, next to the guide's own daily commands.

What is measured, against one running lab (`python -m lab up`; LAB_DIR and LAB_PORT_BASE choose it):

  suite  the daily cadence as cron runs it, with remediation forced off so neither side changes
         the lab:  <venv python> -m pytest -m daily --maintenance-config=<lab config>
                   -p no:cacheprovider -q --remediation=off --reports-dir <temporary dir>
         (the reports go to a temporary directory, not to the repository's reports/);
  shell  bench/guide_daily.sh: the guide's daily sections transcribed as written (top/free/df,
         service status, the trading greps, the cleanups as `find -print`, the dashboard, tunnel
         and exchange curls, the error-rate/critical/health/circuit-breaker curls with jq, the
         error counts with grep/sort/uniq/comm), with paths and ports from the lab's config.

Each side runs --repeat times (3 by default), alternating. Reported: median and best wall time,
their ratio (suite/shell), each side's exit status, and each side's peak resident memory: the
largest peak of any one of its processes (pytest, or bash/grep/awk/curl/jq/supervisorctl/...),
and the most its processes held at once (sampled).

The two sides do not do the same work, and the numbers say what the suite's extras cost: the
suite validates its configuration, samples CPU over [resources] cpu_sample_seconds where the
guide reads one `top` frame, times every request out, classifies each failure and writes HTML and
JUnit reports; the guide's script does none of that.

Why here and not in a timed test: wall time depends on the machine, its load and the lab, so a
timing assertion would be flaky; the suite's own tests check behaviour, this script measures cost.

    python bench/bench_daily.py               # needs a running lab: python -m lab up
    python bench/bench_daily.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_logscan import Run, load_average, measure, summary  # noqa: E402

GUIDE_SCRIPT = REPO / "bench" / "guide_daily.sh"
SHELL_TOOLS = ("bash", "top", "free", "df", "grep", "awk", "cut", "bc", "find", "curl", "jq",
               "sort", "uniq", "comm", "head", "timeout")
# The suite's exit statuses of a run that checked (suite/run.py): all passed, all fixed, failures
# remain (a fault injected, or a busy box over a CPU threshold), could not check, alert spooled.
# 4 (bad configuration) and 13 (another daily run holds the lock) mean nothing was measured.
FINISHED = (0, 10, 11, 12, 14)
START_HINT = "start it from the repository root with:  .venv/bin/python -m lab up   (or: make lab-up)"


def running_lab():
    """The lab named by LAB_DIR/LAB_PORT_BASE, or exit 2 saying how to start it."""
    try:
        from lab import Lab
    except ImportError as error:
        print(f"the lab package cannot be imported ({error}); {START_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
    lab = Lab.from_env()
    if not lab.is_up() or not Path(lab.config_path).is_file():
        print(f"the lab in {lab.lab_dir} is not up; {START_HINT}", file=sys.stderr)
        raise SystemExit(2)
    return lab


def guide_environment(config: dict) -> dict[str, str]:
    """The GUIDE_* variables guide_daily.sh reads, from the lab's maintenance.toml."""
    services = config.get("services", {})
    exchange = config["exchange"]
    verify = exchange.get("verify_tls", True)
    if not isinstance(verify, str):
        raise SystemExit("bench_daily: [exchange] verify_tls is not a CA path; the shell side needs one")
    # The guide's order: ssh-tunnel trading-agent trading-dashboard postgresql.
    roles = ("tunnel", "agent", "dashboard", "database")
    defaults = {"tunnel": "ssh-tunnel", "agent": "trading-agent", "dashboard": "trading-dashboard",
                "database": "postgresql"}
    return {
        "GUIDE_LOG_DIR": config["paths"]["log_dir"],
        "GUIDE_KNOWN_ERRORS": config["paths"]["known_errors"],
        "GUIDE_DISK_PATHS": "\n".join(config.get("resources", {}).get("disk_paths", ["/"])),
        "GUIDE_SUPERVISORCTL": "\n".join(config["host"]["supervisorctl"]),
        "GUIDE_SERVICES": "\n".join(services.get(role, defaults[role]) for role in roles),
        "GUIDE_RETENTION": "\n".join(f"{rule['dir']}|{rule['pattern']}|{rule['max_age_days']}"
                                     for rule in config.get("retention", [])),
        "GUIDE_DASHBOARD_URL": config["dashboard"]["url"],
        "GUIDE_TUNNEL_HOST": str(config["tunnel"].get("host", "127.0.0.1")),
        "GUIDE_TUNNEL_PORT": str(config["tunnel"]["port"]),
        "GUIDE_EXCHANGE_URL": exchange["url"],
        "GUIDE_EXCHANGE_HOST": exchange["host_header"],
        "GUIDE_EXCHANGE_CA": verify,
        "GUIDE_API_BASE": config["api"]["base_url"].rstrip("/"),
    }


def venv_python() -> str:
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (default 3)")
    args = parser.parse_args()
    missing = [tool for tool in SHELL_TOOLS if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"the shell side needs: {' '.join(missing)}")

    lab = running_lab()
    config_path = Path(lab.config_path)
    config = tomllib.loads(config_path.read_text())
    shell_env = {**os.environ, **guide_environment(config)}
    faults = lab.active_faults()
    print(f"lab      {lab.lab_dir} (config {config_path}); faults: {', '.join(faults) or 'none'}")
    print(f"machine  {os.cpu_count()} CPUs; load {load_average()} (1, 5, 15 min) before", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-daily-reports-") as reports:
        suite_argv = [venv_python(), "-m", "pytest", "-m", "daily", f"--maintenance-config={config_path}",
                      "-p", "no:cacheprovider", "-q", "--remediation=off", f"--reports-dir={reports}"]
        shell_argv = ["bash", str(GUIDE_SCRIPT)]
        suite_runs: list[Run] = []
        shell_runs: list[Run] = []
        for index in range(args.repeat):
            order = [(suite_argv, suite_runs, None), (shell_argv, shell_runs, shell_env)]
            for argv, runs, env in (order if index % 2 == 0 else order[::-1]):
                runs.append(measure(argv, env=env, cwd=REPO, allowed_returncodes=FINISHED))

    print(f"load     {load_average()} after")
    print(f"suite    exit {sorted({r.returncode for r in suite_runs})}: {last_line(suite_runs[-1].stdout)}")
    shell_alerts = sum(line.lstrip().startswith("[alert]") for line in shell_runs[-1].stdout.splitlines())
    print(f"shell    exit {sorted({r.returncode for r in shell_runs})}: {shell_alerts} alert line(s) in its output")
    print(summary("suite", suite_runs))
    print(summary("shell", shell_runs))
    median = statistics.median(r.seconds for r in suite_runs) / statistics.median(r.seconds for r in shell_runs)
    best = min(r.seconds for r in suite_runs) / min(r.seconds for r in shell_runs)
    print(f"ratio    suite/shell  median {median:.2f}   best {best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
