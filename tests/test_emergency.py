"""The emergency cadence against the lab: each emergency detected, the exact calls made to the agent
(which records every request), and the safety rules: graduated, confirmed, once per incident, no
blind retry, nothing resumed by itself, the way in kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import threading

import pytest
from trail_helpers import acts, head_seq

from conftest import ROOT, config_with, run_cadence
from core.vocabulary import LedgerKind

pytestmark = pytest.mark.lab

PAUSE, MODE, VERBOSITY = "/api/trading/pause-non-critical", "/api/errors/emergency-mode/enable", \
    "/api/logging/increase-verbosity"
CLOSE, SHUTDOWN, RESUME = "/api/v1/emergency/close-all-positions", "/api/emergency/shutdown", "/api/trading/resume"
ENABLED = {"close_positions": True, "shutdown": True, "stop_tunnel": True}


@pytest.fixture
def emergency(healthy_lab, lab_config, tmp_path):
    """Run the emergency cadence against the lab, with [emergency.responses] as given."""
    def run(responses: dict | None = None, *args: str, **changes):
        config = config_with(lab_config, tmp_path / "emergency.toml",
                             {"emergency": {"responses": responses or {}}, **changes})
        return run_cadence(config, tmp_path / "reports", *args, cadence="emergency")
    healthy_lab.clear_calls()
    return run


def posts(lab) -> list[str]:
    return [call["path"] for call in lab.calls() if call["method"] == "POST"]


def trading(lab) -> dict:
    """What the agent holds, as it answers GET /api/trading/status."""
    from lab import agentstate

    return agentstate.read(lab.paths.agent_state)


def steps(lab) -> list[dict]:
    """Every step of the box's open incident, taken or held back, with why."""
    incidents = json.loads((lab.paths.root / "maintenance" / "state" / "incidents.json").read_text())
    return incidents["trading-box"]["steps"]


DETECTED = {
    "error-storm": ("EMG-001", "error storm: 75 errors/hour, more than 50"),
    "circuit-breaker-cascade": ("EMG-002", "circuit breaker cascade: 5 open, more than 3"),
    "network-down": ("EMG-003", "network failure: probe target"),
    "tunnel-far-end-down": ("EMG-004", "network failure: nothing answers through the tunnel"),
    "error-handler-broken": ("EMG-005", "error handling system failure"),
    "service-down:trading-agent": ("EMG-006", "critical system failure: the agent's API"),
    "health-critical": ("EMG-007", "critical system failure: health 40%, below 50%"),
    "unexpected-port": ("SEC-001", "listening port(s) not allowed"),
    "unknown-ssh-key": ("SEC-002", "not in [security] allowed_keys"),
    "critical-file-changed": ("SEC-003", "changed since its checksum was recorded"),
    "failed-logins": ("SEC-004", "failed login line(s) in the last 60 min"),
}


@pytest.mark.parametrize("fault", DETECTED)
def test_each_emergency_is_detected(healthy_lab, emergency, fault):
    check_id, says = DETECTED[fault]
    healthy_lab.inject(fault)
    run = emergency(None, "--remediation=off")
    # A dependent of the dead agent (EMG-005) points at its root cause and is no finding of its own.
    found = [r for r in run.results if r.properties["verdict"] == "failed" and "caused_by" not in r.properties]
    assert [r.check_id for r in found] == [check_id], run.output
    assert says in found[0].properties["problem"], found[0].properties["problem"]
    assert run.returncode == 11 and any(a["check_id"] == check_id and a["emergency"] for a in run.alerts)


def test_a_healthy_lab_triggers_nothing_over_20_runs(healthy_lab, emergency):
    statuses = [emergency().returncode for _ in range(20)]
    assert statuses == [0] * 20
    assert posts(healthy_lab) == [], "a healthy lab was acted on"


def test_an_error_storm_gets_the_guides_three_calls_once(healthy_lab, emergency):
    healthy_lab.inject("error-storm")
    first, second = emergency(), emergency()
    assert posts(healthy_lab) == [MODE, PAUSE, VERBOSITY], "each call once, in the guide's order, none repeated"
    assert first.only("EMG-001").properties["remediation_outcome"].startswith("emergency_response: done")
    assert "nothing new to do" in second.only("EMG-001").properties["remediation_outcome"]
    assert trading(healthy_lab)["tradingPaused"] is True


def test_a_single_bad_reading_never_closes_positions(healthy_lab, emergency):
    healthy_lab.inject("health-critical")
    emergency(ENABLED)
    assert posts(healthy_lab) == [PAUSE], "one run, one check: only new entries stopped"
    held = {step["step"]: step["why"] for step in steps(healthy_lab) if step["status"] == "held back"}
    assert held["close all positions"].startswith("not confirmed: found in 1 run(s) of the 2 in a row needed")
    assert held["emergency shutdown"].startswith("not confirmed")
    assert trading(healthy_lab)["openPositions"] == 3


def test_two_confirming_runs_close_then_shut_down_only_when_enabled(healthy_lab, emergency):
    diagnostics = healthy_lab.paths.diagnostics_file
    earlier = len(diagnostics.read_text().splitlines()) if diagnostics.exists() else 0
    healthy_lab.inject("health-critical")
    emergency(), emergency()  # enabled nowhere
    assert CLOSE not in posts(healthy_lab) and SHUTDOWN not in posts(healthy_lab)
    healthy_lab.clear_calls()
    emergency(ENABLED)
    assert posts(healthy_lab) == [CLOSE, SHUTDOWN], "confirmed: positions closed first, then the shutdown"
    backups = [json.loads(line) for line in diagnostics.read_text().splitlines()[earlier:]]
    assert [b["tool"] for b in backups].count("emergency-backup") == 1, "the emergency backup, once per incident"
    assert trading(healthy_lab)["openPositions"] == 0
    assert healthy_lab.program_state("trading-agent") != "RUNNING", "stopped under its own shutdown"


def test_two_checks_in_one_run_confirm_an_emergency(healthy_lab, emergency):
    for fault in ("health-critical", "circuit-breaker-cascade"):
        healthy_lab.inject(fault)
    emergency(ENABLED)
    assert posts(healthy_lab).count(CLOSE) == 1 and posts(healthy_lab).index(CLOSE) < posts(healthy_lab).index(SHUTDOWN)


def test_a_close_that_times_out_is_not_repeated_and_the_state_is_read(healthy_lab, emergency):
    healthy_lab.inject("health-critical")
    healthy_lab.inject("close-hang")
    quick = {"api": {"timeout_seconds": 2.0}}
    runs = [emergency(ENABLED, **quick) for _ in range(3)]
    assert posts(healthy_lab).count(CLOSE) == 1, "a close that timed out is never called again"
    assert SHUTDOWN not in posts(healthy_lab), "the agent stays up while its positions may be open"
    told = runs[1].only("EMG-007").properties["remediation_outcome"]
    assert told.startswith("emergency_response: failed: ") and "close all positions: failed" in told
    [failed] = [step for step in steps(healthy_lab) if step["status"] == "failed"]
    assert failed["step"] == "close all positions" and "not called again" in failed["why"]
    assert "the agent now reports 3 open position(s)" in failed["why"]
    assert healthy_lab.program_state("trading-agent") == "RUNNING"
    # Told in the run whose call failed, not at the next reminder hours later: once, critical, every channel.
    [told_now] = [alert for alert in runs[1].alerts if alert["title"].startswith("emergency response failed")]
    assert (told_now["severity"], told_now["emergency"], told_now["check_id"]) == ("critical", True, "EMG-007")
    assert told_now["message"].startswith("close all positions failed") and "3 open position(s)" in told_now["message"]
    assert not [alert for run in (runs[0], runs[2]) for alert in run.alerts
                if alert["title"].startswith("emergency response failed")], "said once: the call is never repeated"


def test_a_shutdown_that_fails_is_told_at_once_naming_what_the_agent_holds(healthy_lab, emergency):
    healthy_lab.inject("health-critical")
    healthy_lab.inject("shutdown-fails")
    unconfirmed, confirmed = emergency(ENABLED), emergency(ENABLED)
    assert posts(healthy_lab).count(CLOSE) == posts(healthy_lab).count(SHUTDOWN) == 1
    assert not [alert for alert in unconfirmed.alerts if alert["title"].startswith("emergency response failed")]
    [told] = [alert for alert in confirmed.alerts if alert["title"].startswith("emergency response failed")]
    assert (told["severity"], told["emergency"]) == ("critical", True)
    assert told["message"].startswith("emergency shutdown failed") and "trading-agent still runs" in told["message"]
    assert "the agent now reports 0 open position(s)" in told["message"], "closed before the shutdown was asked"


def test_nothing_resumes_by_itself_and_make_resume_does(healthy_lab, emergency, lab_config, tmp_path):
    healthy_lab.inject("health-critical")
    emergency(ENABLED), emergency(ENABLED)
    healthy_lab.clear("health-critical")
    config = tmp_path / "emergency.toml"
    daily = run_cadence(config, tmp_path / "reports", "-k", "service_is_running")
    agent = daily.only("SVC-001", "trading-agent").properties
    assert agent["verdict"] == "failed" and "held back: the emergency response" in agent["remediation_outcome"]
    assert healthy_lab.program_state("trading-agent") != "RUNNING"
    assert "WAITING FOR YOU: trading-box" in daily.output
    healthy_lab.clear_calls()
    trail = healthy_lab.paths.root / "reports"  # the lab's [reports] dir: where its ledger is
    before = head_seq(trail)
    resumed = subprocess.run([sys.executable, "-m", "commands", "resume", "--config", str(config), "--who", "alice",
                              "--why", "health back after the exchange outage"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert healthy_lab.program_state("trading-agent") == "RUNNING" and posts(healthy_lab)[-1] == RESUME
    [line] = acts(trail, LedgerKind.RESUME, after=before)  # one line: who, why, what was undone, the incident
    assert line["who"] == "alice" and line["why"] == "health back after the exchange outage"
    assert line["undone"][-1].endswith(RESUME) and line["incident"]["opened_by"] and line["incident"]["held"]
    assert "WAITING FOR YOU" not in run_cadence(config, tmp_path / "reports", "-k", "service_is_running").output


def test_the_diagnostics_bundle_holds_what_it_should_and_no_secret(healthy_lab, emergency):
    canary = healthy_lab.db_password()  # a secret the configuration knows
    with (healthy_lab.paths.app_log_dir / "trading-agent.log").open("a") as log:
        log.write(f"connecting with password={canary} and DB_PASSWORD={canary}\napi_key: sk-live-0123456789\n")
    emergency()  # a healthy run first: its reports are the last ones the bundle takes
    healthy_lab.inject("error-storm")
    emergency()
    [bundle] = list(healthy_lab.paths.backup_dir.glob("emergency-diagnostics-*.tar.gz"))
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        text = "".join(tar.extractfile(member).read().decode() for member in tar.getmembers() if member.isfile())
    assert any(name.endswith("readings/trading-status.json") for name in names)
    assert any(name.endswith("services.txt") for name in names)
    assert any("/logs/" in name and name.endswith("trading-agent.log") for name in names)
    assert {name.rsplit(".", 1)[-1] for name in names if name.startswith("diagnostics/reports/emergency-")} == \
        {"html", "xml"}
    assert not any(name.endswith(".env") for name in names)
    assert canary not in text and "sk-live-0123456789" not in text
    env = dict(line.split("=", 1) for line in healthy_lab.paths.env_file.read_text().splitlines() if "=" in line)
    assert env["DATABASE_URL"] not in text, "the .env is never read"


def test_an_emergency_run_and_a_daily_run_at_once_restart_the_agent_once(healthy_lab, lab_config, tmp_path):
    config = config_with(lab_config, tmp_path / "both.toml", {})
    healthy_lab.inject("service-down:trading-agent")
    runs = {}
    threads = [threading.Thread(target=lambda cadence=cadence: runs.__setitem__(
        cadence, run_cadence(config, tmp_path / cadence, cadence=cadence))) for cadence in ("daily", "emergency")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    actions = [json.loads(line) for line in (healthy_lab.paths.root / "maintenance" / "state" / "actions.jsonl")
               .read_text().splitlines()]
    assert [a["target"] for a in actions] == ["trading-box service trading-agent"], actions
    assert healthy_lab.program_state("trading-agent") == "RUNNING"


def test_healthy_scheduled_emergency_runs_leave_one_line_each_and_nothing_that_grows(healthy_lab, lab_config,
                                                                                    tmp_path):
    """As the schedule runs it (commands run): 12 healthy runs, the newest 3 kept of everything."""
    healthy_lab.clear_calls()
    config = config_with(lab_config, tmp_path / "scheduled.toml", {
        "reports": {"dir": str(tmp_path / "reports"), "keep_count": 3},
        "schedule": {"log_dir": str(tmp_path / "runs")}})
    sizes = []
    for _ in range(12):
        done = subprocess.run([sys.executable, "-m", "commands", "run", "emergency", "--config", str(config)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        sizes.append(sum(path.stat().st_size for path in tmp_path.rglob("*") if path.is_file()))
    lines = (tmp_path / "runs" / "runs.log").read_text().splitlines()
    assert len(lines) == 3 and all(" emergency exit 0 (all passed)" in line for line in lines), lines
    assert len(list((tmp_path / "reports").glob("emergency-*.html"))) == 3
    assert len(list((tmp_path / "runs").glob("emergency-*.log"))) == 3
    assert max(sizes[4:]) < 1.2 * min(sizes[4:]), f"what the runs leave keeps growing: {sizes}"
    assert posts(healthy_lab) == []
