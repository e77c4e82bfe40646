"""A scheduled run (`python -m commands run CADENCE --config PATH`), as cron and the systemd timers start it:
its secrets file refused unless mode 600 and the run user's, its secrets reaching the run and nothing
else, one line per run in runs.log, and old runs' records pruned by age and count, nothing else touched.

Real files and real runs of the daily cadence against this machine (no lab: its checks fail or cannot
look, quickly, which is all a line in the runs log needs).
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from commands import runslog
from configuration import secretsfile
from conftest import ROOT
from core import ledger
from reports.files import report_stem
from reports.retention import REPORT_SUFFIXES, prune_directory
from tests.alert_servers import ScriptedHTTPServer

LINE = re.compile(r"^(?P<when>\S+) (?P<cadence>\w+) exit (?P<code>-?\d+) \((?P<meaning>[^)]*)\) in \d+s "
                  r"report (?P<report>\S+) output (?P<output>\S+)$")
SECRET = "canary-7f3a9c-webhook-token"


def write_config(tmp_path: Path, **tables) -> Path:
    """A configuration whose every output is under tmp_path; remediation off (nothing on this machine changes)."""
    data = {
        "schedule": {"log_dir": str(tmp_path / "logs")},
        "reports": {"dir": str(tmp_path / "reports")},
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool")},
        "remediation": {"mode": "off"},
        "resources": {"cpu_sample_seconds": 0.2},
    }
    for name, values in tables.items():
        data[name] = {**data.get(name, {}), **values}
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def scheduled_run(config: Path, cadence: str = "daily") -> subprocess.CompletedProcess:
    """As cron would: in the suite's directory, with none of the operator's variables (the secret is not there)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "commands", "run", cadence, "--config", str(config)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)


def runs_log(tmp_path: Path) -> list[str]:
    return (tmp_path / "logs" / "runs.log").read_text().splitlines()


# ---- the secrets file ------------------------------------------------------------------------

def test_a_secrets_file_others_may_read_is_refused_in_one_line_and_status_4(tmp_path):
    secrets = secrets_file(tmp_path, f"WEBHOOK_TOKEN={SECRET}\n", mode=0o644)
    done = scheduled_run(write_config(tmp_path, schedule={"secrets_file": str(secrets)}))
    assert done.returncode == 4, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"secrets file {secrets} is mode 644" in done.stderr and f"chmod 600 {secrets}" in done.stderr
    [line] = runs_log(tmp_path)
    assert " daily exit 4 (bad configuration) report none: secrets file" in line
    assert SECRET not in done.stdout + done.stderr + line
    assert not (tmp_path / "reports").exists()  # nothing ran


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the file to another owner needs root (chown)")
def test_a_secrets_file_of_another_user_is_refused_naming_the_chown(tmp_path):
    secrets = secrets_file(tmp_path, f"WEBHOOK_TOKEN={SECRET}\n")
    os.chown(secrets, 65534, 65534)
    done = scheduled_run(write_config(tmp_path, schedule={"secrets_file": str(secrets)}))
    assert done.returncode == 4 and done.stderr.count("\n") == 1, done.stderr
    assert f"is owned by nobody, not by root who runs the maintenance: chown root {secrets}" in done.stderr


def test_a_missing_secrets_file_and_a_bad_line_are_named_never_echoed(tmp_path):
    missing = tmp_path / "nowhere.env"
    done = scheduled_run(write_config(tmp_path, schedule={"secrets_file": str(missing)}))
    assert done.returncode == 4 and f"secrets file {missing} does not exist" in done.stderr, done.stderr
    assert "install -m 600" in done.stderr
    bad = secrets_file(tmp_path, f"# tokens\nGOOD=1\n{SECRET}\n")
    with pytest.raises(secretsfile.SecretsRefused, match=r"line 3 is not KEY=VALUE") as refused:
        secretsfile.read(bad)
    assert SECRET not in str(refused.value)


def test_the_secrets_file_is_key_value_lines_with_comments_and_quotes(tmp_path):
    path = secrets_file(tmp_path, '# for cron\n\nA=plain\nB = "with spaces = and more"\nC=\'single\'\nD=\n')
    assert secretsfile.read(path) == {"A": "plain", "B": "with spaces = and more", "C": "single", "D": ""}


# ---- the run and its line --------------------------------------------------------------------

def test_a_run_writes_one_line_and_its_secret_reaches_the_run_only(tmp_path):
    """The webhook's header comes from WEBHOOK_TOKEN, which only the secrets file has: the alert that reaches
    the receiver carries it, and neither the runs log, the run's output nor its reports do."""
    webhook = ScriptedHTTPServer().start()
    try:
        secrets = secrets_file(tmp_path, f'WEBHOOK_TOKEN="{SECRET}"\n')
        config = write_config(
            tmp_path, schedule={"secrets_file": str(secrets)},
            alerts={"webhook": {"url": webhook.url, "header_name": "X-Token", "header_value_env": "WEBHOOK_TOKEN",
                                "severities": ["critical", "warning", "info"]}})
        done = scheduled_run(config)
    finally:
        webhook.stop()
    [line] = runs_log(tmp_path)
    match = LINE.match(line)
    assert match, line
    assert done.returncode == int(match["code"]) and match["cadence"] == "daily"
    assert match["meaning"] == runslog.meaning(done.returncode) and done.returncode in (10, 11, 12, 14)
    started = datetime.datetime.fromisoformat(match["when"])
    assert started.tzinfo is not None and abs((datetime.datetime.now().astimezone() - started).total_seconds()) < 120
    report, output = Path(match["report"]), Path(match["output"])
    assert report.parent == tmp_path / "reports" and report.name.startswith("daily-") and report.exists()
    assert output.parent == tmp_path / "logs" and re.search(r"\d+ (passed|failed)", output.read_text())
    assert done.stdout == "" and done.stderr == ""  # cron mails nothing when the run ran
    assert [request.headers.get("X-Token") for request in webhook.requests][:1] == [SECRET]
    for written in (tmp_path / "logs" / "runs.log", output, report, report.with_suffix(".xml")):
        assert SECRET not in written.read_text(), written


def test_a_bad_configuration_is_a_line_in_the_configured_runs_log(tmp_path):
    config = write_config(tmp_path, tunnel={"port": 0})
    done = scheduled_run(config)
    assert done.returncode == 4 and "tunnel.port" in done.stderr and "Traceback" not in done.stderr
    [line] = runs_log(tmp_path)
    assert " daily exit 4 (bad configuration) report none: " in line and "tunnel.port" in line


def test_a_run_stopped_by_sigterm_still_gets_its_line(tmp_path):
    """What systemd does at TimeoutStartSec= or `systemctl stop`: the run is told, passes it on, and says so."""
    config = write_config(tmp_path, resources={"cpu_sample_seconds": 3})
    run = subprocess.Popen([sys.executable, "-m", "commands", "run", "daily", "--config", str(config)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not re.search(r"\d+ passed|\d+ failed|%\]", _outputs(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)  # until pytest is running checks (the CPU sample holds it for 3s)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == -signal.SIGTERM
    [line] = runs_log(tmp_path)
    assert " daily exit -15 (killed by SIGTERM) in " in line, line


def _outputs(tmp_path: Path) -> str:
    return "".join(path.read_text() for path in (tmp_path / "logs").glob("daily-*.log"))


def test_meanings_of_statuses():
    assert [runslog.meaning(code) for code in (0, 10, 11, 12, 13, 14, 4, 5, 2, -15)] == [
        "all passed", "all fixed", "failures remain", "could not check", "locked out", "alerts spooled",
        "bad configuration", "no checks", "interrupted, or a check file not collected", "killed by SIGTERM"]


# ---- pruning by age and count ---------------------------------------------------------------

def make_run_files(directory: Path, cadence: str, when: datetime.datetime, suffixes) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for suffix in suffixes:
        path = directory / f"{report_stem(cadence, when)}{suffix}"
        path.write_text("x")
        made.append(path)
    return made


def test_pruning_keeps_the_newest_per_cadence_within_the_age_and_nothing_else_is_touched(tmp_path):
    now = datetime.datetime(2026, 11, 26, 2, 0, 3)
    reports = tmp_path / "reports"
    daily = [make_run_files(reports, "daily", now - datetime.timedelta(days=d), REPORT_SUFFIXES) for d in range(5)]
    old_weekly = make_run_files(reports, "weekly", now - datetime.timedelta(days=40), REPORT_SUFFIXES)
    weekly = make_run_files(reports, "weekly", now - datetime.timedelta(days=7), REPORT_SUFFIXES)
    emergency = [make_run_files(reports, "emergency", now - datetime.timedelta(minutes=5 * i), REPORT_SUFFIXES)
                 for i in range(4)]
    others = [reports / "notes.txt", reports / "daily-latest.html", reports / "custom-20200101-000000-000.html",
              reports / "daily-20200101-000000-000.html.bak", reports / "daily-20200101-000000-000.log"]
    for path in others:
        path.write_text("the operator's")
    (reports / "daily-20200101-000000-001.html").mkdir()  # a directory named like a report stays
    (reports / "daily-20200101-000000-002.html").symlink_to(others[0])  # so does a link

    removed = prune_directory(reports, REPORT_SUFFIXES, keep_days=30, keep_count=3, now=now)

    expected = {*daily[3], *daily[4], *old_weekly, *emergency[3]}
    assert set(removed) == expected
    assert all(not path.exists() for path in expected)
    kept = [*daily[0], *daily[1], *daily[2], *weekly, *emergency[0], *emergency[1], *emergency[2], *others]
    assert all(path.exists() for path in kept)
    assert (reports / "daily-20200101-000000-001.html").is_dir()
    assert (reports / "daily-20200101-000000-002.html").is_symlink() and others[0].read_text() == "the operator's"


def test_the_runs_log_keeps_the_newest_lines_per_cadence_and_lines_it_cannot_read(tmp_path):
    log = tmp_path / "runs.log"
    now = datetime.datetime(2026, 11, 26, 2, 0, 3, tzinfo=datetime.UTC)
    old = runslog.line(now - datetime.timedelta(days=100), "daily", 0, 3)
    lines = [old, "something an operator wrote"]
    lines += [runslog.line(now - datetime.timedelta(minutes=5 * i), "emergency", 0, 1) for i in (3, 2, 1)]
    log.write_text("".join(f"{text}\n" for text in lines))
    log.chmod(0o644)
    newest = runslog.line(now, "daily", 11, 14, Path("/r/daily.html"), Path("/l/daily.log"))
    runslog.append(log, newest, keep_days=90, keep_count=2, now=now)
    assert log.read_text().splitlines() == ["something an operator wrote", *lines[3:], newest]
    assert oct(log.stat().st_mode & 0o777) == "0o644"


def test_a_run_prunes_old_reports_outputs_and_lines_from_the_configuration(tmp_path):
    now = datetime.datetime.now()
    config = write_config(tmp_path, reports={"keep_days": 30, "keep_count": 2})
    old = make_run_files(tmp_path / "reports", "daily", now - datetime.timedelta(days=45), REPORT_SUFFIXES)
    recent = [make_run_files(tmp_path / "reports", "daily", now - datetime.timedelta(days=d), REPORT_SUFFIXES)
              for d in (1, 2)]
    old_output = make_run_files(tmp_path / "logs", "daily", now - datetime.timedelta(days=45), (".log",))
    (tmp_path / "logs" / "runs.log").write_text(
        runslog.line(now.astimezone() - datetime.timedelta(days=45), "daily", 0, 2) + "\n")
    mine = tmp_path / "reports" / "keep-me.html"
    mine.write_text("the operator's")

    done = scheduled_run(config)

    assert done.returncode in (10, 11, 12, 14), done.stderr
    [line] = runs_log(tmp_path)
    report = Path(LINE.match(line)["report"])
    pages = {"index.html", "trends.html", "history", ".trail-cache.json", ".trail.lock"}  # the trail's, rebuilt each run
    left = sorted(p.name for p in (tmp_path / "reports").iterdir() if p.name not in pages and p.suffix != ".prom")
    assert left == sorted([mine.name, report.name, report.with_suffix(".xml").name, *(p.name for p in recent[0]),
                           "ledger.jsonl"])
    assert not any(p.exists() for p in [*old, *recent[1], *old_output])
    run_line, prune_line = ledger.entries(tmp_path / "reports")  # the run's line, then what pruning removed
    assert run_line["reports"]["html"]["name"] == report.name
    assert sorted(prune_line["files"]) == sorted(p.name for p in [*old, *recent[1]])
    assert [p.name for p in (tmp_path / "logs").glob("daily-*.log")] == [Path(LINE.match(line)["output"]).name]
