"""Unattended operation against the real lab: soft states, budgets, flapping, waivers, dedup over a
controlled clock, the cadence lock, killed runs, the heartbeat and the exit statuses (the schedule:
tests/test_schedule.py, tests/test_schedule_box.py)."""

from __future__ import annotations

import datetime
import http.server
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from filelock import FileLock

from configuration import load
from conftest import ROOT, config_with, run_cadence
from core.atomic import write_atomically
from decision.state import StateStore

pytestmark = pytest.mark.lab

T0 = 1_800_000_000.0  # the controlled clock's origin; runs advance it instead of sleeping
DASHBOARD = "test_dashboard_accessible"


@pytest.fixture
def config(lab_config, tmp_path):
    """A per-test copy of the lab's configuration with some tables changed."""
    return lambda changes=None: config_with(lab_config, tmp_path / "maintenance.toml", changes or {})


@pytest.fixture
def at(healthy_lab, tmp_path):
    """Run the daily cadence at a given time of the controlled clock."""

    def run(config_path, when: float, *args: str):
        return run_cadence(config_path, tmp_path / "reports", *args, env={"MAINTENANCE_CLOCK": str(when)})

    return run


def kinds(run, check_id: str) -> list[str]:
    return [alert["kind"] for alert in run.alerts if alert["check_id"] == check_id]


def test_a_soft_failure_waits_for_the_configured_count(healthy_lab, config, at):
    path = config({"policy": {"checks": {"WEB-001": {"failures_before_action": 2}}}})
    healthy_lab.inject("dashboard-down")

    first = at(path, T0, "-k", DASHBOARD)
    result = first.only("WEB-001")
    assert result.properties["policy"] == "soft failure 1 of 2: no action yet"
    assert "remediation_outcome" not in result.properties and kinds(first, "WEB-001") == []
    assert healthy_lab.program_state("trading-dashboard") != "RUNNING"

    second = at(path, T0 + 60, "-k", DASHBOARD)
    assert second.only("WEB-001").properties["recheck"] == "fixed"
    assert kinds(second, "WEB-001") == ["fixed"]  # told as done, not as a problem
    assert second.returncode == 10  # found and fixed


def test_a_service_that_dies_after_every_restart_gets_k_restarts_then_one_human_needed_alert(
        healthy_lab, config, at, lab_config):
    path = config({"policy": {"budget": {"max_remediations": 3, "window_runs": 5}}})
    healthy_lab.inject("crashloop:trading-dashboard")
    runs = [at(path, T0 + minute * 60, "-k", DASHBOARD) for minute in range(5)]

    outcomes = [run.only("WEB-001").properties.get("remediation_outcome", "") for run in runs]
    assert [bool(outcome) for outcome in outcomes] == [True, True, True, False, False]
    assert all(outcome.startswith("restart_service: failed") for outcome in outcomes[:3]), outcomes
    human = [kind for run in runs for kind in kinds(run, "WEB-001") if kind == "human-needed"]
    assert human == ["human-needed"]
    assert "budget for trading-box service trading-dashboard spent" in runs[4].only("WEB-001").properties["policy"]

    cleared = subprocess.run([sys.executable, "-m", "commands", "budget", "clear", "WEB-001", "--config", str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "trading-box service trading-dashboard" in cleared.stdout
    after = at(path, T0 + 6 * 60, "-k", DASHBOARD)
    assert after.only("WEB-001").properties["remediation_outcome"].startswith("restart_service:")


def test_daily_runs_of_a_crash_looping_dashboard_restart_it_max_remediations_times_then_ask_for_a_human_once(
        healthy_lab, config, at):
    """First contact, finding 11: SVC-001 and WEB-001 both restarted the dashboard, each on its own budget,
    and with the guide's daily schedule a 60-minute window never holds 3 runs: 5 daily runs of a
    crash-looping program gave 10 restarts and no "human needed" at all."""
    path = config({"policy": {"budget": {"max_remediations": 3}}})
    healthy_lab.inject("crashloop:trading-dashboard")
    runs = [at(path, T0 + day * 86400, "-k", f"service_is_running or {DASHBOARD}") for day in range(5)]

    acted = [(run.only(check_id, param).check_id, run.only(check_id, param).properties["remediation_outcome"])
             for run in runs for check_id, param in (("SVC-001", "trading-dashboard"), ("WEB-001", ""))
             if "remediation_outcome" in run.only(check_id, param).properties]
    assert [check_id for check_id, _ in acted] == ["SVC-001"] * 3, acted
    human = [alert for run in runs for alert in run.alerts if alert["kind"] == "human-needed"]
    assert len(human) == 1 and human[0]["check_id"] == "SVC-001", human
    assert "budget for trading-box service trading-dashboard spent: 3 remediation(s) in the last 5 daily runs" \
        in human[0]["message"]
    assert all(run.only("WEB-001").properties["caused_by"] == "SVC-001[trading-dashboard]" for run in runs)
    assert not [alert for run in runs for alert in run.alerts if alert["check_id"] == "WEB-001"]


def test_flapping_is_reported_once_and_the_problem_again_when_it_ends(healthy_lab, config, at):
    path = config()
    pattern = "FPFPFPFFFF"
    seen = []
    for index, state in enumerate(pattern):
        if state == "F":
            healthy_lab.inject("dashboard-down")
        else:
            healthy_lab.clear("service-down:trading-dashboard")
        run = at(path, T0 + index * 60, "-k", DASHBOARD, "--remediation=off")
        seen.append(kinds(run, "WEB-001"))
    assert seen == [["problem"], ["resolved"], ["problem"], ["resolved"], ["flapping"],
                    [], [], [], ["problem"], []]


def test_a_waiver_holds_until_it_expires(healthy_lab, config, at):
    healthy_lab.inject("critical-errors")
    today = datetime.date.fromtimestamp(T0)
    waived = config({"waivers": [{"check": "ERR-002", "reason": "exchange incident #42",
                                  "expires": today + datetime.timedelta(days=1)}]})
    run = at(waived, T0, "-k", "critical_errors")
    result = run.only("ERR-002")
    assert result.properties["verdict"] == "waived"
    assert "exchange incident #42" in result.properties["policy"]
    assert run.alerts == [] and run.returncode == 0

    expired = config({"waivers": [{"check": "ERR-002", "reason": "exchange incident #42",
                                   "expires": today - datetime.timedelta(days=1)}]})
    run = at(expired, T0, "-k", "critical_errors")
    result = run.only("ERR-002")
    assert result.properties["verdict"] == "failed"
    assert "waiver expired" in result.properties["policy"]
    assert kinds(run, "ERR-002") == ["problem"] and run.returncode == 11


def test_a_silence_holds_back_alerts_but_not_the_remediation(healthy_lab, config, at):
    until = datetime.datetime.fromtimestamp(T0 + 3600)
    path = config({"silences": [{"check": "WEB-001", "reason": "dashboard upgrade", "until": until}]})
    healthy_lab.inject("dashboard-down")
    run = at(path, T0, "-k", DASHBOARD)
    result = run.only("WEB-001")
    assert result.properties["recheck"] == "fixed"
    assert "alert silenced" in result.properties["policy"] and kinds(run, "WEB-001") == []


def test_hourly_runs_notify_a_lasting_failure_every_repeat_interval_and_a_new_one_at_once(healthy_lab, config, at):
    path = config({"policy": {"repeat_interval_minutes": 240}})
    healthy_lab.inject("critical-errors")
    notified: dict[str, list[int]] = {"ERR-002": [], "ERR-004": []}
    for hour in range(24):
        if hour == 10:
            healthy_lab.inject("circuit-breakers-open")
        run = at(path, T0 + hour * 3600, "-k", "critical_errors or circuit_breakers")
        for check_id, hours in notified.items():
            hours.extend([hour] * len(kinds(run, check_id)))
    assert notified["ERR-002"] == [0, 4, 8, 12, 16, 20]
    assert notified["ERR-004"] == [10, 14, 18, 22]


def test_exit_status_says_what_happened(healthy_lab, config, at):
    path = config()
    assert at(path, T0).returncode == 0
    healthy_lab.inject("dashboard-down")
    assert at(path, T0 + 60, "-k", DASHBOARD).returncode == 10
    healthy_lab.inject("api-500")
    assert at(path, T0 + 120, "-k", "error_rate").returncode == 12
    assert at(path, T0 + 180, "-k", "agent_api").returncode == 11


def test_an_overlapping_run_of_the_same_cadence_leaves_at_once(healthy_lab, config, tmp_path):
    path = config()
    state_dir = load(path).policy.state_dir
    with FileLock(str(state_dir / "daily.lock")):
        run = run_cadence(path, tmp_path / "reports")
    assert run.returncode == 13, run.output
    assert "another daily run holds" in run.output
    assert run.html is None and run.junit is None


def test_two_real_runs_overlap_and_the_second_touches_nothing(healthy_lab, config, tmp_path):
    path = config()
    healthy_lab.inject("api-slow")  # the first run takes a few seconds
    first = subprocess.Popen([sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={path}",
                              f"--reports-dir={tmp_path / 'first'}"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    for line in first.stdout:  # the header is printed after the lock is taken
        if line.startswith("maintenance: config"):
            break
    second = run_cadence(path, tmp_path / "second")
    output = first.communicate(timeout=300)[0]
    assert second.returncode == 13 and not list((tmp_path / "second").iterdir())
    assert first.returncode in (0, 11), output
    assert list((tmp_path / "first").glob("daily-*.html"))


def test_a_run_killed_at_any_moment_leaves_state_the_next_run_can_read(healthy_lab, config, tmp_path):
    path = config()
    healthy_lab.inject("dashboard-down")
    store = StateStore(load(path).policy.state_dir)
    rng = random.Random(7)
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={path}",
                                    f"--reports-dir={tmp_path / 'killed'}", "--remediation=off"],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        store.load()  # must not raise: never a half-written file
    run = run_cadence(path, tmp_path / "reports")
    assert run.returncode == 10, run.output
    assert store.load()["SVC-001[trading-dashboard]"].verdicts[-1][1] == "failed"


def test_an_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    write_atomically(target, '{"checks": {}}')

    def crash(*args, **kwargs):
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(target, '{"checks": {"half')
    assert target.read_text() == '{"checks": {}}'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


class Pings(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self):
        Pings.seen.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def heartbeat_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Pings.seen = []
    yield f"http://127.0.0.1:{server.server_port}/ping/abc"
    server.shutdown()


def test_heartbeat_pings_start_and_success_or_failure(healthy_lab, config, at, heartbeat_server):
    path = config({"heartbeat": {"url": heartbeat_server, "timeout_seconds": 5}})
    at(path, T0, "-k", DASHBOARD)
    assert Pings.seen == ["/ping/abc/start", "/ping/abc"]
    Pings.seen.clear()
    healthy_lab.inject("dashboard-down")
    at(path, T0 + 60, "-k", DASHBOARD, "--remediation=off")
    assert Pings.seen == ["/ping/abc/start", "/ping/abc/fail"]

