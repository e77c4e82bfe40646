"""`make install-schedule`: the cron file and the systemd units it writes, one schedule at a time, and every
refusal in one line with status 4. Real files in tmp_path; nothing is enabled on this machine (the units
are enabled and fired inside a box: tests/test_schedule_box.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from commands import timers
from commands.schedule import PATH, SCHEDULE, cron_text, unit_texts
from configuration import ConfigError, load
from conftest import ROOT
from core.vocabulary import Cadence


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({"schedule": {"log_dir": str(tmp_path / "logs")},
                                   "reports": {"dir": str(tmp_path / "reports")}}))
    return path


def schedule(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    paths = ["--cron-file", str(tmp_path / "cron.d" / "trading-maintenance"), "--unit-dir", str(tmp_path / "units")]
    return subprocess.run([sys.executable, "-m", "commands.schedule", *args, *paths], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#") and "=" not in line.split()[0]]


def test_the_cron_file_has_a_path_the_directory_and_the_run_command(tmp_path, config):
    done = schedule(tmp_path, "install", "--config", str(config))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "cron.d" / "trading-maintenance").read_text()
    assert "SHELL=/bin/sh\n" in text and f"PATH={PATH}\n" in text
    assert {"/usr/sbin", "/sbin", "/usr/bin", "/bin"} <= set(PATH.split(":"))  # getcap, logrotate: /usr/sbin
    # Only the cadences that have checks (daily, the weekly backup and database maintenance, the monthly restore drill, and emergency's
    # breach indicators): a cron line that checks nothing helps nobody.
    assert entries(text) == [f"{when} root cd {ROOT} && exec {sys.executable} -m commands.run {cadence} "
                             f"--config {config}" for when, cadence in (("0 2 * * *", "daily"),
                                                                        ("0 3 * * 0", "weekly"),
                                                                        ("0 4 1 * *", "monthly"),
                                                                        ("*/5 * * * *", "emergency"))]
    assert oct((tmp_path / "cron.d" / "trading-maintenance").stat().st_mode & 0o777) == "0o644"
    assert (tmp_path / "logs").is_dir()  # created at install, for the run's user


def test_installing_twice_leaves_one_schedule_and_uninstall_removes_it(tmp_path, config):
    cron = tmp_path / "cron.d" / "trading-maintenance"
    assert schedule(tmp_path, "install", "--config", str(config)).returncode == 0
    first = cron.read_text()
    assert schedule(tmp_path, "install", "--config", str(config)).returncode == 0
    assert cron.read_text() == first
    done = schedule(tmp_path, "uninstall")
    assert done.returncode == 0 and not cron.exists() and f"removed {cron}" in done.stdout
    assert "no schedule was installed" in schedule(tmp_path, "uninstall").stdout


def test_a_percent_sign_reaches_the_command_not_a_newline():
    text = cron_text(Path("/etc/tm/50%.toml"), Path("/usr/bin/python3"), "root", {Cadence.DAILY: "0 2 * * *"},
                     Path("/var/log/tm"))
    assert entries(text)[0].endswith("--config /etc/tm/50\\%.toml")  # cron gives the shell /etc/tm/50%.toml


def test_the_systemd_units_are_valid_persistent_and_at_the_guides_times(tmp_path, config):
    times = {cadence: when.calendar for cadence, when in SCHEDULE.items()}
    units = unit_texts(config, Path(sys.executable), "root", times)
    assert sorted(units) == sorted(name for cadence in SCHEDULE for name in timers.names(cadence))
    service, timer = units["trading-maintenance-weekly.service"], units["trading-maintenance-weekly.timer"]
    for line in ("Type=oneshot", f"Environment=PYTHONPATH={ROOT}", f"Environment=PATH={PATH}",
                 f"ExecStart={sys.executable} -m commands.run weekly --config {config}", "SuccessExitStatus=10 11 12 13 14"):
        assert line in service.splitlines()
    assert "EnvironmentFile" not in service  # no [schedule] secrets_file: nothing to load
    secrets = tmp_path / "secrets.env"
    with_secrets = unit_texts(config, Path(sys.executable), "root", times, secrets)["trading-maintenance-weekly.service"]
    assert f"EnvironmentFile={secrets}" in with_secrets.splitlines()  # and the run checks it before it starts
    for line in ("OnCalendar=Sun *-*-* 03:00:00", "Persistent=true", "Unit=trading-maintenance-weekly.service",
                 "WantedBy=timers.target"):
        assert line in timer.splitlines()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the units were not verified")
    (tmp_path / "units").mkdir()
    for name, text in units.items():
        (tmp_path / "units" / name).write_text(text)
    verified = subprocess.run(["systemd-analyze", "verify", *sorted(map(str, (tmp_path / "units").iterdir()))],
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_each_calendar_is_its_cron_time():
    """The next elapses systemd computes fall where cron's fields put them."""
    expected = {Cadence.DAILY: ("", "02:00:00"), Cadence.WEEKLY: ("Sun ", "03:00:00"),
                Cadence.MONTHLY: ("-01 ", "04:00:00")}
    for cadence, when in SCHEDULE.items():
        shown = subprocess.run(["systemd-analyze", "calendar", "--iterations=3", when.calendar], capture_output=True,
                               text=True, timeout=30).stdout
        elapses = [line.split(":", 1)[1].strip() for line in shown.splitlines()
                   if line.strip().startswith(("Next elapse", "Iter."))]
        assert len(elapses) == 3, shown
        if cadence == Cadence.EMERGENCY:
            assert all(int(e.split()[2].split(":")[1]) % 5 == 0 and e.split()[2].endswith(":00") for e in elapses)
        else:
            part, clock = expected[cadence]
            assert all(part in e and e.split()[2] == clock for e in elapses), elapses


def test_switching_to_systemd_removes_the_cron_file_and_back(tmp_path, config):
    cron, units = tmp_path / "cron.d" / "trading-maintenance", tmp_path / "units"
    assert schedule(tmp_path, "install", "--config", str(config)).returncode == 0
    done = schedule(tmp_path, "install", "--config", str(config), "--scheduler", "systemd",
                    "--time", "daily=*:*:0/10")
    assert done.returncode == 0, done.stderr
    assert not cron.exists() and f"removed {cron}" in done.stdout
    assert sorted(p.name for p in units.iterdir()) == [f"trading-maintenance-{cadence}.{kind}"
                                                       for cadence in ("daily", "emergency", "monthly", "weekly")
                                                       for kind in ("service", "timer")]
    assert "OnCalendar=*:*:0/10" in (units / "trading-maintenance-daily.timer").read_text()
    back = schedule(tmp_path, "install", "--config", str(config))
    assert back.returncode == 0 and cron.exists() and list(units.iterdir()) == []


@pytest.mark.parametrize("scheduler, spec, expected", [
    ("cron", "daily=* * *", "a cron time has 5 fields"),
    ("cron", "hourly=* * * * *", "CADENCE one of daily, weekly, monthly, emergency"),
    ("systemd", "daily=at two", "OnCalendar 'at two'"),
])
def test_a_bad_time_is_refused_in_one_line(tmp_path, config, scheduler, spec, expected):
    if scheduler == "systemd" and shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: calendars are not checked here")
    done = schedule(tmp_path, "install", "--config", str(config), "--scheduler", scheduler, "--time", spec)
    assert done.returncode == 4 and done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr


def test_a_bad_configuration_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[tunnel]\nport = 0\n")
    done = schedule(tmp_path, "install", "--config", str(bad))
    assert done.returncode == 4 and "tunnel.port" in done.stderr
    assert not (tmp_path / "cron.d").exists()


def test_an_unsafe_secrets_file_is_refused_at_install(tmp_path, config):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TOKEN=x\n")
    secrets.chmod(0o640)
    config.write_text(tomli_w.dumps({"schedule": {"log_dir": str(tmp_path / "logs"), "secrets_file": str(secrets)}}))
    done = schedule(tmp_path, "install", "--config", str(config))
    assert done.returncode == 4 and done.stderr.count("\n") == 1, done.stderr
    assert f"not installed: secrets file {secrets} is mode 640" in done.stderr and f"chmod 600 {secrets}" in done.stderr
    assert not (tmp_path / "cron.d").exists()
    missing_user = schedule(tmp_path, "install", "--config", str(config), "--user", "no-such-user-here")
    assert missing_user.returncode == 4 and "user 'no-such-user-here' does not exist" in missing_user.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user (nobody)")
@pytest.mark.parametrize("scheduler", ["cron", "systemd"])
def test_not_root_installing_the_systems_schedule_is_one_line_and_status_4(config, scheduler):
    code = ("import os, sys; from commands.schedule import main; os.setgroups([]); os.setgid(65534); "
            f"os.setuid(65534); sys.exit(main(['install', '--config', {str(config)!r}, '--scheduler', {scheduler!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    target = "/etc/cron.d/trading-maintenance" if scheduler == "cron" else "/etc/systemd/system"
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"not installed: {target} belong to root, and you are nobody: run it as root" in done.stderr


def test_make_passes_the_scheduler_and_the_paths():
    shown = subprocess.run(["make", "-n", "install-schedule", "SCHEDULER=systemd", "CONFIG=/etc/tm.toml",
                            "UNIT_DIR=/tmp/u", "RUN_USER=trading"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60).stdout
    import shlex  # the recipe quotes each value (Makefile: arg): compare the words the shell will pass

    [command] = [line for line in shown.replace("\\\n", " ").splitlines() if "commands.schedule install" in line]
    assert ("-m commands.schedule install --config=/etc/tm.toml --scheduler=systemd --user=trading "
            "--cron-file=/etc/cron.d/trading-maintenance --unit-dir=/tmp/u") in " ".join(shlex.split(command))


@pytest.mark.parametrize("text, key, expected", [
    ("[reports]\nkeep_days = 0\n", "reports.keep_days", "greater than or equal to 1"),
    ("[reports]\nkeep_count = -1\n", "reports.keep_count", "greater than or equal to 1"),
    ('[schedule]\nlog_dir = "logs"\n', "schedule", "log_dir 'logs' must be an absolute path"),
    ('[schedule]\nsecrets_file = "secrets.env"\n', "schedule", "secrets_file 'secrets.env' must be an absolute path"),
])
def test_the_schedules_keys_are_validated(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load(path)
    assert key in str(error.value) and expected in str(error.value), str(error.value)


def test_systemd_timers_on_a_machine_without_systemd_are_refused_before_a_file_is_written(tmp_path, config,
                                                                                          monkeypatch, capsys):
    """The system's unit directory stands in tmp_path here; /run/systemd/system is a path that does not exist."""
    from commands import schedule as command

    monkeypatch.setattr(timers, "UNIT_DIR", tmp_path / "system")
    monkeypatch.setattr(timers, "BOOTED", tmp_path / "no-systemd-here")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    status = command.main(["install", "--config", str(config), "--scheduler", "systemd",
                           "--cron-file", str(tmp_path / "cron")])
    err = capsys.readouterr().err
    assert status == 4 and err.count("\n") == 1, err
    assert f"not installed: this machine is not running systemd (no {tmp_path / 'no-systemd-here'})" in err
    assert not (tmp_path / "system").exists() and not (tmp_path / "logs").exists()
