"""The daily cadence against the real lab: each fault is found by the right check, remediated where
the guide says so, alerted and recorded in both reports; a healthy lab passes everything."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from conftest import run_cadence

pytestmark = pytest.mark.lab


def test_healthy_lab_passes_every_daily_check(daily):
    run = daily()
    assert run.returncode == 0, run.output
    assert run.findings() == {}
    assert run.alerts == []
    ids = {result.check_id for result in run.results}
    assert {"RES-001", "RES-002", "RES-003", "SVC-001", "TRD-001", "TRD-002", "LOG-001", "LOG-002",
            "WEB-001", "NET-001", "NET-002", "API-001", "ERR-001", "ERR-002", "ERR-003", "ERR-004",
            "ERR-005"} <= ids


def test_todays_trades_and_profit_are_recorded_in_the_report(daily, healthy_lab):
    log = healthy_lab.paths.log_dir / f"trading-{datetime.date.today():%Y-%m-%d}.log"
    guide = subprocess.run(["bash", "-c", f"grep -c TRADE_EXECUTED {log}; "
                                          f"grep PROFIT {log} | awk '{{sum+=$NF}} END {{printf \"%.2f\", sum}}'"],
                           capture_output=True, text=True, check=True).stdout.split()
    run = daily()
    trades = run.only("TRD-002")
    assert [trades.properties["trades_today"], trades.properties["profit_today_usdt"]] == guide
    assert "profit_today_usdt: " + guide[1] in run.html.read_text()


def test_todays_error_counts_are_recorded_in_the_guides_order(daily, healthy_lab):
    """The top codes as the guide's `sort | uniq -c | sort -nr | head -10` prints them, ties included."""
    log = healthy_lab.paths.log_dir / f"error-{datetime.date.today():%Y-%m-%d}.log"
    guide = subprocess.run(["bash", "-c", f"grep -oE '(TE|AI|NE|SE)[0-9]{{3}}' {log} | sort | uniq -c | sort -nr | head -10"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    expected = ", ".join(f"{code}={count}" for count, code in (line.split() for line in guide if line.strip()))
    run = daily()
    assert run.only("ERR-005").properties["error_counts_by_code"] == expected


@dataclass(frozen=True)
class Expect:
    check_id: str
    param: str = ""
    verdict: str = "failed"
    says: str = ""  # a fragment of the failure message
    remediation: str | None = None  # the action's name, when one must have run
    recheck: str | None = None  # "fixed" or "still failing"


ROUTINE = ("LOG-001", "LOG-002")  # checks marked routine=True: their fixes alert nobody by default
FAULTS = {
    # A stopped service is SVC-001's finding (critical) whatever looks through it (API-001, WEB-001,
    # NET-001 depend on it): SVC-001 runs first and restarts it; they pass after it.
    "service-down:trading-agent": Expect("SVC-001", "trading-agent", says="service trading-agent is STOPPED",
                                         remediation="restart_service", recheck="fixed"),
    "service-down:postgresql": Expect("SVC-001", "postgresql", says="service postgresql is STOPPED, not running",
                                      remediation="restart_service", recheck="fixed"),
    "dashboard-down": Expect("SVC-001", "trading-dashboard", says="service trading-dashboard is STOPPED",
                             remediation="restart_service", recheck="fixed"),
    "tunnel-down": Expect("SVC-001", "ssh-tunnel", says="service ssh-tunnel is STOPPED",
                          remediation="restart_service", recheck="fixed"),
    "api-500": Expect("API-001", says="HTTP 500", remediation="restart_service", recheck="still failing"),
    "api-hang": Expect("API-001", says="no answer within", remediation="restart_service", recheck="still failing"),
    "api-malformed": Expect("API-001", says="malformed JSON", remediation="restart_service",
                            recheck="still failing"),
    "error-rate-high": Expect("ERR-001", says="error rate 25/hour, threshold 10/hour",
                              remediation="run_diagnostic", recheck="still failing"),
    "critical-errors": Expect("ERR-002", says="3 critical error(s), at most 0"),
    "circuit-breakers-open": Expect("ERR-004", says="2 circuit breaker(s) open"),
    "health-low": Expect("ERR-003", says="system health 65%, minimum 80%", remediation="run_diagnostic",
                         recheck="still failing"),
    "no-trades-today": Expect("TRD-002", says="0 trade(s) executed today"),
    "new-error-code": Expect("ERR-005", says="SE999"),
    "logs-unrotated": Expect("LOG-001", says="not rotated", remediation="rotate_logs", recheck="fixed"),
    "exchange-down": Expect("NET-002", says="HTTP 503"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_found_remediated_alerted_and_reported(daily, healthy_lab, fault):
    expect = FAULTS[fault]
    healthy_lab.inject(fault)
    run = daily()

    result = run.only(expect.check_id, expect.param)
    # A finding its remediation fixed is told as fixed, not failed.
    assert result.properties["verdict"] == ("fixed" if expect.recheck == "fixed" else expect.verdict), run.output
    assert expect.says in result.properties["problem"], result.properties["problem"]
    if expect.remediation:
        assert result.properties["remediation_outcome"].startswith(f"{expect.remediation}: done"), result.properties
        assert result.properties["recheck"] == expect.recheck
    else:
        assert result.properties["remediation"] == "none"
    assert run.returncode != 0

    alerted = [a for a in run.alerts if a["check_id"] == expect.check_id]
    if expect.check_id in ROUTINE and expect.recheck == "fixed":  # routine maintenance that did its job
        assert alerted == [] and "routine maintenance done: no alert" in result.properties["policy"]
    else:
        assert alerted and expect.says in alerted[0]["message"]
        assert alerted[0]["severity"] == result.properties["severity"]
        assert alerted[0]["kind"] == ("fixed" if expect.recheck == "fixed" else "problem")

    html = run.html.read_text()
    assert expect.check_id in html and "Remediation" in html


def test_api_failure_makes_dependent_checks_unknown_not_failed(daily, healthy_lab):
    healthy_lab.inject("api-500")
    run = daily()
    for check_id in ("ERR-001", "ERR-002", "ERR-003", "ERR-004"):
        result = run.only(check_id)
        assert result.properties["verdict"] == "unknown", result.properties
        assert "could not check" in result.properties["problem"]
        assert "remediation_outcome" not in result.properties
    unknown_alerts = [a for a in run.alerts if a["kind"] == "unknown"]
    assert {a["check_id"] for a in unknown_alerts} == {"ERR-001", "ERR-002", "ERR-003", "ERR-004"}


def test_files_past_retention_are_deleted_and_fresh_files_kept(daily, healthy_lab):
    from configuration import load
    from probes.files import expired_files

    healthy_lab.inject("files-past-retention")
    rules = load(healthy_lab.config_path).retention
    expired = {p for rule in rules for p in expired_files(rule)}
    everything = {p for rule in rules for p in rule.dir.rglob("*") if p.is_file()}
    assert expired and everything - expired, "the fault must leave both expired and fresh files"

    run = daily()
    for rule in rules:
        result = run.only("LOG-002", rule.name)
        assert result.properties["verdict"] == "fixed"
        assert result.properties["recheck"] == "fixed", result.properties
    remaining = {p for rule in rules for p in rule.dir.rglob("*") if p.is_file()}
    assert not expired & remaining
    assert everything - expired <= remaining
    assert daily().findings() == {}


def test_a_stopped_service_is_restarted_and_running_afterwards(daily, healthy_lab):
    healthy_lab.inject("service-down:trading-dashboard")
    run = daily()
    assert run.only("SVC-001", "trading-dashboard").properties["recheck"] == "fixed"
    assert run.only("WEB-001").properties["verdict"] == "passed"
    assert healthy_lab.program_state("trading-dashboard") == "RUNNING"


def test_a_dead_dashboard_is_svc_001_critical_and_web_001_names_it_as_the_cause(daily, healthy_lab):
    """First contact, finding 12: a dead dashboard came through only as WEB-001 (warning), which restarted
    it before SVC-001 (critical) looked; the critical finding vanished."""
    healthy_lab.inject("dashboard-down")
    run = daily()
    service = run.only("SVC-001", "trading-dashboard").properties
    assert (service["verdict"], service["severity"], service.get("recheck")) == ("fixed", "critical", "fixed")
    assert run.only("WEB-001").properties["verdict"] == "passed"
    assert [(a["check_id"], a["severity"]) for a in run.alerts] == [("SVC-001", "critical")]

    healthy_lab.inject("dashboard-down")  # and when nothing mends it: WEB-001 points at SVC-001
    run = daily("--remediation=off")
    service, page = run.only("SVC-001", "trading-dashboard").properties, run.only("WEB-001").properties
    assert (service["verdict"], service["severity"]) == ("failed", "critical")
    assert page["verdict"] == "failed" and page["caused_by"] == "SVC-001[trading-dashboard]"
    assert [(a["check_id"], a["kind"]) for a in run.alerts if a["check_id"] in ("SVC-001", "WEB-001")] == [
        ("SVC-001", "problem")]
    summary = run.output.split("maintenance summary")[1]
    assert "service trading-dashboard is STOPPED" in summary and "not accessible" not in summary
    assert "test_dashboard_accessible: caused by SVC-001[trading-dashboard]" in summary


def test_diagnostic_tool_runs_on_high_error_rate(daily, healthy_lab):
    healthy_lab.inject("error-rate-high")
    run = daily()
    output = run.only("ERR-001").properties["remediation_outcome"]
    assert "run_diagnostic: done" in output
    records = (healthy_lab.paths.run_dir / "diagnostics.jsonl").read_text().splitlines()
    assert any(json.loads(line)["tool"] == "error-analysis" for line in records)


def test_disk_over_threshold_is_a_real_reading(daily, healthy_lab):
    if "disk-full" not in healthy_lab.available_faults():
        pytest.skip("the lab has no tmpfs to fill here (not root): disk-full cannot be injected")
    healthy_lab.inject("disk-full")
    run = daily()
    warning = run.only("RES-003", "warning")
    critical = run.only("RES-003", "critical")
    assert warning.properties["severity"] == "warning" and critical.properties["severity"] == "critical"
    assert "threshold 85%" in critical.properties["problem"] and critical.properties["verdict"] == "failed"


def test_plan_mode_changes_nothing(daily, healthy_lab):
    healthy_lab.inject("dashboard-down")
    run = daily("--remediation=plan")
    result = run.only("SVC-001", "trading-dashboard")
    assert result.properties["remediation_outcome"].startswith("restart_service: planned: would run")
    assert "remediation_outcome" not in run.only("WEB-001").properties  # SVC-001's to plan
    assert healthy_lab.program_state("trading-dashboard") != "RUNNING"


@pytest.fixture
def cpu_load():
    """Busy loops on every core, detached (double fork) so they count as the host's load, not ours."""
    marker = f"cpu-load-{os.getpid()}"
    for _ in range(os.cpu_count() or 2):
        subprocess.run(["bash", "-c", f"(exec -a {marker} {sys.executable} -c 'while True: pass' &)"], check=True)
    yield
    subprocess.run(["pkill", "-f", marker])


def test_cpu_over_threshold_is_found(healthy_lab, cpu_load, tmp_path):
    run = run_cadence(healthy_lab.config_path, tmp_path / "reports", "-k", "cpu")
    critical = run.only("RES-001", "critical")
    assert critical.properties["verdict"] == "failed", run.output
    assert "critical threshold 85%" in critical.properties["problem"]


def test_parallel_workers_restart_a_service_once(daily, healthy_lab):
    """SVC-001 restarts the dashboard; WEB-001, on the other worker, passes after it, or finds it mended
    at its last look (it waits for its root's outcome) and credits the restart."""
    healthy_lab.inject("dashboard-down")
    run = daily("-n", "2")
    acted = {r.name: r.properties["remediation_outcome"] for r in run.results if "remediation_outcome" in r.properties}
    service = "test_service_is_running[trading-dashboard]"
    assert acted.pop(service).startswith("restart_service: done"), run.output
    assert acted in ({}, {"test_dashboard_accessible": f"restart_service: skipped: passes now: mended by "
                                                      f"restart_service for {service} earlier in this run"}), acted
    assert healthy_lab.program_state("trading-dashboard") == "RUNNING"
    assert run.returncode == 10
