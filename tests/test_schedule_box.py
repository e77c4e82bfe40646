"""The installed schedule, on a box with a real systemd: the scheduler starts the run, the run happens in
the scheduler's own environment, and its line appears in the runs log. Root only (a box is).

- systemd: the daily timer at the guide's 02:00, last fired two days ago (its stamp file): Persistent=true
  makes the missed run happen as soon as the timer starts, as it would at boot.
- cron: the box's own cron daemon (a transient unit: the machine's cron.service is masked in a box)
  reads /etc/cron.d, where the install put a `* * * * *` line (`--time`): the run starts within a minute.

Every wait is a poll with a deadline, on the runs log or on the unit's state. This module's box has its own
directory and the port base 31000 (TEST_SCHEDULE_BOX_PORT_BASE), clear of the other boxes' 28000-30999.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from lab.box import Box

ROOT = Path(__file__).resolve().parent.parent
PORT_BASE = int(os.environ.get("TEST_SCHEDULE_BOX_PORT_BASE", "31000"))
WHY_NOT = Box.unavailable()
CRON = Path("/usr/sbin/cron")
STAMP = Path("/var/lib/systemd/timers/stamp-trading-maintenance-daily.timer")
LINE = re.compile(r"^\S+ daily exit (?P<code>\d+) \((?P<meaning>[^)]*)\) in \d+s report (?P<report>\S+) "
                  r"output (?P<output>\S+)$")

pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=f"no box here: {WHY_NOT}")]


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    instance = Box(tmp_path_factory.mktemp("schedule-box"), PORT_BASE)
    instance.up()
    yield instance
    instance.down()


@pytest.fixture
def config(box) -> str:
    """The box's configuration (paths inside it), with a secrets file, nothing changed by a run (plan),
    and CPU thresholds at 100%: the box shares the machine's CPU, which a busy machine fills."""
    data = tomllib.loads(box.config_path.read_text())
    secrets = box.paths.root / "schedule-secrets.env"
    secrets.write_text("TRADING_DB_PASSWORD=unused-by-the-daily-checks\n")
    secrets.chmod(0o600)
    data["resources"]["cpu"] = {"warning": 100, "critical": 100}
    data["remediation"]["mode"] = "plan"
    data["schedule"] = {"log_dir": "/var/log/trading-maintenance", "secrets_file": str(box.inside_path(secrets))}
    path = box.paths.root / "schedule.toml"
    path.write_text(tomli_w.dumps(data))
    return str(box.inside_path(path))


@pytest.fixture
def runs_log(box) -> Path:
    """The box's runs log as the machine reaches it (the box's /var/log is BOX_DIR/var/log)."""
    path = box.paths.var_log / "trading-maintenance" / "runs.log"
    path.unlink(missing_ok=True)
    return path


def schedule(box: Box, *args: str) -> subprocess.CompletedProcess:
    """python -m commands schedule inside the box, as root, from the suite's directory."""
    return box.run(["sh", "-c", f'cd "{ROOT}" && exec "$0" -m commands schedule "$@"', sys.executable, *args],
                   timeout=180)


def first_line(path: Path, timeout: float) -> str:
    """The daily run's first line: the emergency cadence, scheduled too, may write its own lines before."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daily = [line for line in (path.read_text() if path.exists() else "").splitlines() if " daily " in line]
        if daily:
            return daily[0]
        time.sleep(0.5)
    pytest.fail(f"no daily line in the runs log {path} within {timeout:.0f}s")


def settled(box: Box, unit: str, timeout: float = 60) -> str:
    """The unit's ActiveState once it is no longer changing: the run writes its line before its service ends."""
    deadline = time.monotonic() + timeout
    while True:
        state = box.systemctl("show", unit, "--property=ActiveState", "--value").stdout.strip()
        if state not in ("activating", "deactivating", "reloading"):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"{unit} is still {state} {timeout:.0f}s after its run wrote its line")
        time.sleep(0.2)


def check_line(box: Box, line: str) -> re.Match:
    match = LINE.match(line)
    assert match, line
    output = box.paths.var_log / Path(match["output"]).relative_to("/var/log")
    assert (int(match["code"]), match["meaning"]) == (0, "all passed"), output.read_text()[-3000:]
    report = box.paths.root / Path(match["report"]).relative_to(box.inside_path(box.paths.root))
    assert report.exists() and report.name.startswith("daily-")
    return match


def test_the_systemd_timer_fires_a_missed_run_and_its_line_appears(box, config, runs_log):
    assert box.run(["sh", "-c", f"mkdir -p {STAMP.parent} && touch -d '2 days ago' {STAMP}"]).returncode == 0
    try:
        installed = schedule(box, "install", "--scheduler", "systemd", "--config", config)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        line = first_line(runs_log, 120)
        match = check_line(box, line)
        assert settled(box, "trading-maintenance-daily.service") == "inactive"
        service = box.systemctl("show", "trading-maintenance-daily.service",
                                "--property=Result,ExecMainStatus,ActiveState").stdout.split()
        assert sorted(service) == ["ActiveState=inactive", f"ExecMainStatus={match['code']}", "Result=success"]
        timer = box.systemctl("show", "trading-maintenance-daily.timer", "--property=Persistent,ActiveState,"
                              "LastTriggerUSec").stdout
        assert "Persistent=yes" in timer and "ActiveState=active" in timer and "LastTriggerUSec=n/a" not in timer
        listed = box.systemctl("list-timers", "--no-legend", "trading-maintenance-daily.timer").stdout
        assert " 02:00:00 " in listed, listed  # and next at the guide's time
        journal = box.journal("trading-maintenance-daily", 20)
        assert "Starting trading-maintenance-daily.service" in journal, journal
    finally:
        removed = schedule(box, "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert "trading-maintenance-daily.timer" in removed.stdout
    assert box.systemctl("list-timers", "--all", "--no-legend").stdout.count("trading-maintenance") == 0


@pytest.mark.skipif(not CRON.exists(), reason=f"{CRON} is not installed: make system-deps installs it (BOX_DEPS)")
def test_cron_runs_the_installed_line_and_its_line_appears(box, config, runs_log):
    # The box sees the machine's /etc read-only: an /etc/cron.d and an empty /etc/crontab of its own (its
    # mount namespace only), so its cron runs our file and none of the machine's jobs.
    crontab = box.paths.root / "crontab"
    crontab.write_text("# the box's system crontab: empty\n")
    mounted = box.run(["sh", "-c", "mount -t tmpfs -o mode=755 box-cron.d /etc/cron.d && "
                                   f"mount --bind {box.inside_path(crontab)} /etc/crontab"])
    assert mounted.returncode == 0, mounted.stderr
    try:
        installed = schedule(box, "install", "--config", config, "--time", "daily=* * * * *")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        started = box.run(["systemd-run", "--unit=schedule-test-cron", "--collect", str(CRON), "-f"])
        assert started.returncode == 0, started.stderr
        line = first_line(runs_log, 150)  # the next minute, then the run
        check_line(box, line)
        journal = box.journal("schedule-test-cron", 30)
        assert f"(root) CMD (cd {ROOT} && {sys.executable} -m commands run daily --config {config}; s=$?;" in journal
    finally:
        box.systemctl("stop", "schedule-test-cron")
        removed = schedule(box, "uninstall")
        box.run(["sh", "-c", "umount /etc/crontab; umount /etc/cron.d"])
    assert removed.returncode == 0 and "removed /etc/cron.d/trading-maintenance" in removed.stdout, removed.stderr


def test_a_run_that_could_not_check_its_box_fails_the_unit(box, config):
    """The box watches a box whose sshd is gone (nothing listens on port 9): every check is UNKNOWN, the run exits
    12, and the unit fails, as `systemctl --failed` shows; a run whose findings were told would be a success."""
    data = tomllib.loads((box.paths.root / "schedule.toml").read_text())
    data["host"] = {"name": "gone", "backend": "ssh://trading-maint@127.0.0.1:9", "connect_timeout_seconds": 2,
                    "known_hosts": str(box.inside_path(box.paths.known_hosts))}
    path = box.paths.root / "unreachable.toml"
    path.write_text(tomli_w.dumps(data))
    unit = "trading-maintenance-daily.service"
    try:
        installed = schedule(box, "install", "--scheduler", "systemd", "--config", str(box.inside_path(path)))
        assert installed.returncode == 0, installed.stdout + installed.stderr
        box.systemctl("start", unit, timeout=180)  # as the timer starts it; returns once the oneshot has ended
        shown = box.systemctl("show", unit, "--property=Result,ExecMainStatus,ActiveState").stdout.split()
        assert sorted(shown) == ["ActiveState=failed", "ExecMainStatus=12", "Result=exit-code"], shown
        assert unit in box.systemctl("list-units", "--failed", "--no-legend").stdout
    finally:
        box.systemctl("reset-failed")  # the emergency timer may have fired against the gone box too
        removed = schedule(box, "uninstall")
    assert removed.returncode == 0, removed.stderr
