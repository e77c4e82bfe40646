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
from commands.schedule import PATH, SCHEDULE, ScheduleError, cadences_with_checks, cron_command, cron_text, unit_texts
from configuration import ConfigError, load
from conftest import ROOT
from core.vocabulary import Cadence

NOBODY = 65534  # the agent user's stand-in on this machine (no user may be created here)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({"schedule": {"log_dir": str(tmp_path / "logs")},
                                   "reports": {"dir": str(tmp_path / "reports")}}))
    return path


def schedule(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    paths = ["--cron-file", str(tmp_path / "cron.d" / "trading-maintenance"), "--unit-dir", str(tmp_path / "units")]
    return subprocess.run([sys.executable, "-m", "commands", "schedule", *args, *paths], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#") and "=" not in line.split()[0]]


def test_the_cron_file_has_a_path_the_directory_and_the_run_command(tmp_path, config):
    done = schedule(tmp_path, "install", "--config", str(config))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "cron.d" / "trading-maintenance").read_text()
    assert "SHELL=/bin/sh\n" in text and f"PATH={PATH}\n" in text and "\nMAILTO=" not in text  # cron's default
    assert {"/usr/sbin", "/sbin", "/usr/bin", "/bin"} <= set(PATH.split(":"))  # getcap, logrotate: /usr/sbin
    # Every cadence that has checks, the guide's manual quarterly one included (at a quiet hour): a cron line that
    # checks nothing helps nobody, a cadence never run checks nothing either.
    times = [(when, cadence) for when, cadence in (("0 2 * * *", "daily"), ("0 3 * * 0", "weekly"),
                                                   ("0 4 1 * *", "monthly"), ("0 5 1 1,4,7,10 *", "quarterly"),
                                                   ("*/5 * * * *", "emergency"))]
    lines = entries(text)
    assert [line.split(" root ")[0] for line in lines] == [when for when, _ in times]
    for line, (_, cadence) in zip(lines, times, strict=True):
        assert line.split(" root ", 1)[1].startswith(f"cd {ROOT} && {sys.executable} -m commands run {cadence} "
                                                     f"--config {config}; s=$?; ")
    assert oct((tmp_path / "cron.d" / "trading-maintenance").stat().st_mode & 0o777) == "0o644"
    assert (tmp_path / "logs").is_dir()  # created at install, for the run's user


@pytest.mark.parametrize("status, said", [(0, False), (10, False), (11, False), (13, False), (12, True), (14, True),
                                          (4, True), (3, True)])
def test_the_cron_line_says_on_stderr_a_run_that_could_not_check_or_tell(tmp_path, status, said):
    """The line as cron runs it (sh -c), with a stand-in python that ends as a run would: cron mails what a job
    prints, so a run that left someone untold (12, 14, or no run at all) prints one sentence; a run whose
    findings were told prints nothing. Its status is the run's either way."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit \"$STATUS\"\n")
    fake.chmod(0o755)
    line = cron_command(fake, "daily", Path("/etc/tm.toml"), Path("/var/log/tm"))
    done = subprocess.run(["sh", "-c", line], env={"STATUS": str(status), "PATH": PATH}, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == status and done.stdout == ""
    if said:
        assert done.stderr == (f"trading maintenance: the daily run ended with exit status {status}: not checked, or "
                               f"not told (README: exit statuses); see /var/log/tm/runs.log\n")
    else:
        assert done.stderr == ""


def test_cron_mails_whom_mail_to_names_and_nothing_else_is_an_address(tmp_path, config, capsys):
    from commands.__main__ import main

    text = cron_text(config, Path(sys.executable), "root", {Cadence.DAILY: "0 2 * * *"}, Path("/var/log/tm"),
                     "ops@example.org")
    assert "\nMAILTO=ops@example.org\n" in text
    with pytest.raises(SystemExit) as refused:
        main(["schedule", "show", "--config", str(config), "--mail-to", "ops@example.org\n* * * * * root rm -rf /"])
    assert refused.value.code == 2 and "is not one mail address" in capsys.readouterr().err


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
    assert " --config /etc/tm/50\\%.toml; " in entries(text)[0]  # cron gives the shell /etc/tm/50%.toml


def test_the_systemd_units_are_valid_persistent_and_at_the_guides_times(tmp_path, config):
    times = {cadence: when.calendar for cadence, when in SCHEDULE.items()}
    units = unit_texts(config, Path(sys.executable), "root", times)
    assert sorted(units) == sorted(name for cadence in SCHEDULE for name in timers.names(cadence))
    service, timer = units["trading-maintenance-weekly.service"], units["trading-maintenance-weekly.timer"]
    for line in ("Type=oneshot", f"Environment=PYTHONPATH={ROOT}", f"Environment=PATH={PATH}",
                 f"ExecStart={sys.executable} -m commands run weekly --config {config}",
                 "Wants=network-online.target", "After=network-online.target"):
        assert line in service.splitlines()
    # Not reached (12) and not told (14) fail the unit: only findings that were told are its success.
    assert [line for line in service.splitlines() if line.startswith("SuccessExitStatus=")] == \
        ["SuccessExitStatus=10 11 13"]
    assert "EnvironmentFile" not in service  # the run reads [schedule] secrets_file itself: no secret in an environment
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
                Cadence.MONTHLY: ("-01 ", "04:00:00"), Cadence.QUARTERLY: ("-01 ", "05:00:00")}
    for cadence, when in SCHEDULE.items():
        shown = subprocess.run(["systemd-analyze", "calendar", "--iterations=3", when.calendar], capture_output=True,
                               text=True, timeout=30).stdout
        elapses = [line.split(":", 1)[1].strip() for line in shown.splitlines()
                   if line.strip().startswith(("Next elapse", "Iter."))]
        assert len(elapses) == 3, shown
        if cadence == Cadence.QUARTERLY:  # the first of January, April, July and October
            assert sorted(int(e.split()[1].split("-")[1]) for e in elapses) in ([1, 4, 7], [1, 4, 10], [1, 7, 10],
                                                                                 [4, 7, 10]), elapses
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
                                                       for cadence in ("daily", "emergency", "monthly", "quarterly",
                                                                       "weekly")
                                                       for kind in ("service", "timer")]
    assert "OnCalendar=*:*:0/10" in (units / "trading-maintenance-daily.timer").read_text()
    back = schedule(tmp_path, "install", "--config", str(config))
    assert back.returncode == 0 and cron.exists() and list(units.iterdir()) == []


@pytest.mark.parametrize("scheduler, spec, expected", [
    ("cron", "daily=* * *", "a cron time has 5 fields"),
    ("cron", "hourly=* * * * *", "CADENCE one of daily, weekly, monthly, quarterly, emergency"),
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
    code = ("import os, sys; from commands.__main__ import main; os.setgroups([]); os.setgid(65534); "
            f"os.setuid(65534); sys.exit(main(['schedule', 'install', '--config', {str(config)!r}, '--scheduler', {scheduler!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    target = "/etc/cron.d/trading-maintenance" if scheduler == "cron" else "/etc/systemd/system"
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"not installed: {target} belong to root, and you are nobody: run it as root" in done.stderr


@pytest.mark.parametrize("target", ["install-schedule", "show-schedule"])
def test_make_passes_the_scheduler_and_the_paths(target):
    shown = subprocess.run(["make", "-n", target, "SCHEDULER=systemd", "CONFIG=/etc/tm.toml", "UNIT_DIR=/tmp/u",
                            "RUN_USER=trading", "MAIL_TO=ops@example.org"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60).stdout
    import shlex  # the recipe quotes each value (Makefile: arg): compare the words the shell will pass

    action = target.split("-")[0]
    [command] = [line for line in shown.replace("\\\n", " ").splitlines() if f"commands schedule {action}" in line]
    assert (f"-m commands schedule {action} --config=/etc/tm.toml --scheduler=systemd --user=trading "
            "--cron-file=/etc/cron.d/trading-maintenance --unit-dir=/tmp/u --mail-to=ops@example.org") \
        in " ".join(shlex.split(command))


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
    from commands.__main__ import main

    monkeypatch.setattr(timers, "UNIT_DIR", tmp_path / "system")
    monkeypatch.setattr(timers, "BOOTED", tmp_path / "no-systemd-here")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    status = main(["schedule", "install", "--config", str(config), "--scheduler", "systemd",
                   "--cron-file", str(tmp_path / "cron")])
    err = capsys.readouterr().err
    assert status == 4 and err.count("\n") == 1, err
    assert f"not installed: this machine is not running systemd (no {tmp_path / 'no-systemd-here'})" in err
    assert not (tmp_path / "system").exists() and not (tmp_path / "logs").exists()


def test_show_prints_what_install_would_write_and_writes_nothing(tmp_path, config):
    cron = schedule(tmp_path, "show", "--config", str(config))
    assert cron.returncode == 0, cron.stderr
    assert cron.stdout.startswith(f"# {tmp_path / 'cron.d' / 'trading-maintenance'}\n")
    installed = schedule(tmp_path, "install", "--config", str(config))
    assert cron.stdout.split("\n", 1)[1] == (tmp_path / "cron.d" / "trading-maintenance").read_text()
    schedule(tmp_path, "uninstall")
    shutil.rmtree(tmp_path / "logs")
    units = schedule(tmp_path, "show", "--config", str(config), "--scheduler", "systemd")
    assert units.returncode == 0 and installed.returncode == 0, units.stderr + installed.stderr
    assert f"# {tmp_path / 'units' / 'trading-maintenance-quarterly.timer'}\n" in units.stdout
    assert "OnCalendar=*-01,04,07,10-01 05:00:00" in units.stdout and "Wants=network-online.target" in units.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cron.d", "maintenance.toml"]  # no log dir, no units
    assert list((tmp_path / "cron.d").iterdir()) == []


@pytest.fixture
def over_ssh(tmp_path) -> Path:
    """A box watched over SSH, everything the run needs under tmp_path: the secrets file is nobody's own and mode
    600 (its owner is right), yet pytest's tmp directories are root's 0700, so nobody reaches none of it."""
    key, secrets = tmp_path / "id_ed25519", tmp_path / "secrets.env"
    for path, text in ((key, "stands in for a private key\n"), (secrets, "TRADING_DB_PASSWORD=stands-in\n")):
        path.write_text(text)
        path.chmod(0o600)
    os.chown(secrets, NOBODY, NOBODY)
    path = tmp_path / "ssh.toml"
    path.write_text(tomli_w.dumps({
        "host": {"backend": "ssh://trading-maint@nuc.lan", "ssh_identity_file": str(key), "sudo": True},
        "schedule": {"log_dir": str(tmp_path / "logs"), "secrets_file": str(secrets)},
        "policy": {"state_dir": str(tmp_path / "state")}, "reports": {"dir": str(tmp_path / "reports")}}))
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to look as another user (nobody)")
def test_a_run_user_who_could_not_do_the_run_is_refused_naming_each_thing(tmp_path, over_ssh):
    done = schedule(tmp_path, "install", "--config", str(over_ssh), "--user", "nobody")
    assert done.returncode == 4 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    said = done.stderr
    assert said.startswith("not installed: the run user nobody could not do the scheduled run's work: ")
    closed = "nobody cannot reach it (a directory on its way is closed to nobody)"
    for what, path in (("box trading-box's SSH key ([host] ssh_identity_file)", tmp_path / "id_ed25519"),
                       ("the secrets file ([schedule] secrets_file)", tmp_path / "secrets.env"),
                       ("box trading-box's trusted host keys ([host] known_hosts; make trust-box BOX=trading-box)",
                        tmp_path / "state" / "known_hosts"),
                       ("the state directory ([policy] state_dir)", tmp_path / "state"),
                       ("the reports directory ([reports] dir)", tmp_path / "reports")):
        assert f"{what} {path}: {closed}" in said
    # The checkout is named exactly when nobody cannot reach it (a clone under /root, mode 0700 on Debian); whether
    # it may run the venv's python depends on where that python came from (a pyenv under /root is closed too).
    reachable = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r",
                                str(ROOT)], timeout=30).returncode == 0
    assert (f"the suite's checkout {ROOT}: {closed}" in said) is not reachable, said
    assert not (tmp_path / "cron.d").exists() and not (tmp_path / "logs").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="root reads what it is given: the refusal is of what is not there")
def test_root_as_the_run_user_is_refused_only_what_is_missing(tmp_path, over_ssh):
    """Root may read anything: of its needs only the box's host keys are missing (no make trust-box yet), and
    show says, after what install would write, that install would refuse it."""
    os.chown(tmp_path / "secrets.env", 0, 0)
    done = schedule(tmp_path, "show", "--config", str(over_ssh))
    assert done.returncode == 4 and "\nMAILTO=" not in done.stdout and " -m commands run daily " in done.stdout
    assert done.stderr == (f"show-schedule: install-schedule would refuse it: the run user root could not do the "
                           f"scheduled run's work: box trading-box's trusted host keys ([host] known_hosts; make "
                           f"trust-box BOX=trading-box) {tmp_path / 'state' / 'known_hosts'}: does not exist. Give root "
                           f"that access, or choose a run user who has it (RUN_USER=, --user)\n")


def test_checks_that_cannot_be_collected_are_no_schedule(tmp_path, config):
    """A stand-in python whose pytest fails to collect, as a broken check module would make the real one."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'E   ImportError: cannot import name x' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ScheduleError, match=r"the checks could not be collected with .*\(E   ImportError: cannot "
                                            r"import name x\): make daily CONFIG=.* shows why"):
        cadences_with_checks(config, fake)
