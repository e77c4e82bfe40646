"""The lab's side of the emergency cadence: the agent's trading state, and every emergency as a fault
that really changes what a client sees, until it is cleared — against a real lab of its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from lab import Lab, faults, security
from lab.paths import venv_bin

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
PORT_BASE = int(os.environ.get("TEST_LAB_EMERGENCY_PORT_BASE", "27500"))
INITIAL = {"tradingPaused": False, "emergencyMode": False, "verbosity": "normal", "openPositions": 3,
           "shutdown": False}
SYSLOG = re.compile(r"^(\w{3}) ([ \d]\d) (\d\d:\d\d:\d\d) (\S+) (\S+?)(?:\[\d+\])?: (.*)$")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
NEW_FAULTS = ["close-hang", "close-fails", "shutdown-fails", "error-handler-down", "error-handler-broken",
              "network-down", "tunnel-far-end-down", "unexpected-port", "failed-logins", "unknown-ssh-key",
              "critical-file-changed"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    instance = Lab(tmp_path_factory.mktemp("emlab"), PORT_BASE)
    instance.up()
    yield instance
    instance.down(purge=True)


@pytest.fixture
def healthy(lab):
    lab.clear()
    yield lab
    lab.clear()


def get(lab, path, timeout=3.0):
    return requests.get(f"http://127.0.0.1:{lab.ports.api}{path}", timeout=timeout)


def post(lab, path, timeout=3.0):
    return requests.post(f"http://127.0.0.1:{lab.ports.api}{path}", timeout=timeout)


def status(lab) -> dict:
    reply = get(lab, "/api/trading/status")
    assert reply.status_code == 200, reply.text
    return {key: value for key, value in reply.json().items() if key != "timestamp"}


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def restart_agent(lab):
    """As the suite restarts it: supervisorctl with the lab's configuration."""
    subprocess.run([venv_bin("supervisorctl"), "-c", str(lab.paths.supervisor_conf), "restart", "trading-agent"],
                   check=True, capture_output=True, timeout=30)
    lab.ensure_running(["trading-agent"])


def run_cli(lab, *args):
    env = {**os.environ, "LAB_DIR": str(lab.lab_dir), "LAB_PORT_BASE": str(lab.ports.base)}
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def auth_lines(lab) -> list[tuple[datetime, str, str]]:
    """(time, program, message) of each auth.log line, the year taken as the one that puts it in the past."""
    now = datetime.now()
    lines = []
    for line in lab.paths.auth_log.read_text().splitlines():
        match = SYSLOG.match(line)
        assert match, f"not a syslog line: {line!r}"
        month, day, clock, host, program, message = match.groups()
        at = datetime.strptime(f"{now.year} {MONTHS.index(month) + 1} {int(day)} {clock}", "%Y %m %d %H:%M:%S")
        if at > now + timedelta(days=1):
            at = at.replace(year=now.year - 1)
        assert host == security.HOSTNAME
        lines.append((at, program, message))
    return lines


def failures_within(lab, window: timedelta) -> list[str]:
    now = datetime.now()
    return [message for at, program, message in auth_lines(lab)
            if program == "sshd" and message.startswith("Failed password") and now - at <= window]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the agent's trading state ----------------------------------------------------------------

def test_trading_status_starts_with_open_positions_and_nothing_paused(healthy):
    reply = get(healthy, "/api/trading/status").json()
    assert {key: reply[key] for key in INITIAL} == INITIAL
    assert reply["timestamp"].endswith("Z")


@pytest.mark.parametrize(("path", "action", "field", "value"), [
    ("/api/trading/pause-non-critical", "non-critical-paused", "tradingPaused", True),
    ("/api/errors/emergency-mode/enable", "emergency-mode-enabled", "emergencyMode", True),
    ("/api/logging/increase-verbosity", "verbosity-increased", "verbosity", "debug"),
    ("/api/v1/emergency/close-all-positions", "close-all-positions", "openPositions", 0),
    ("/api/emergency/shutdown", "shutdown-initiated", "shutdown", True),
])
def test_an_emergency_post_changes_only_its_own_field(healthy, path, action, field, value):
    reply = post(healthy, path)
    assert reply.status_code == 200
    assert reply.json()["ok"] is True and reply.json()["action"] == action
    assert status(healthy) == {**INITIAL, field: value}


def test_close_all_positions_says_how_many_it_closed(healthy):
    assert post(healthy, "/api/v1/emergency/close-all-positions").json()["closed"] == 3
    assert post(healthy, "/api/v1/emergency/close-all-positions").json()["closed"] == 0


def test_resume_ends_the_pause_emergency_mode_and_shutdown(healthy):
    for path in ("/api/trading/pause-non-critical", "/api/errors/emergency-mode/enable",
                 "/api/emergency/shutdown", "/api/logging/increase-verbosity"):
        post(healthy, path)
    reply = post(healthy, "/api/trading/resume")
    assert reply.status_code == 200 and reply.json()["action"] == "trading-resumed"
    assert status(healthy) == {**INITIAL, "verbosity": "debug"}  # verbosity is not resume's business


def test_the_state_survives_a_restart_of_the_agent(healthy):
    post(healthy, "/api/trading/pause-non-critical")
    post(healthy, "/api/v1/emergency/close-all-positions")
    restart_agent(healthy)
    assert status(healthy) == {**INITIAL, "tradingPaused": True, "openPositions": 0}


def test_clear_all_returns_the_state_to_its_start(healthy):
    post(healthy, "/api/emergency/shutdown")
    post(healthy, "/api/v1/emergency/close-all-positions")
    healthy.clear()
    assert status(healthy) == INITIAL


def test_a_shut_down_agent_still_answers_its_gets(healthy):
    post(healthy, "/api/emergency/shutdown")
    assert get(healthy, "/api/health").status_code == 200
    assert get(healthy, "/api/errors/dashboard").status_code == 200


# ---- POST faults ------------------------------------------------------------------------------

def test_close_hang_times_the_client_out_records_one_call_and_closes_nothing(healthy):
    healthy.inject("close-hang")
    healthy.clear_calls()
    with pytest.raises(requests.Timeout):
        post(healthy, "/api/v1/emergency/close-all-positions", timeout=1)
    assert [(c["method"], c["path"]) for c in healthy.calls()] == [
        ("POST", "/api/v1/emergency/close-all-positions")]
    healthy.clear("close-hang")  # ends the hang: the agent answers 504 to nobody
    assert status(healthy)["openPositions"] == 3


def test_close_hang_cleared_lets_close_work_again(healthy):
    healthy.inject("close-hang")
    healthy.clear("close-hang")
    assert post(healthy, "/api/v1/emergency/close-all-positions").json()["closed"] == 3


def test_close_fails_answers_500_and_the_positions_stay_open(healthy):
    healthy.inject("close-fails")
    assert post(healthy, "/api/v1/emergency/close-all-positions").status_code == 500
    assert status(healthy)["openPositions"] == 3
    healthy.clear("close-fails")
    assert post(healthy, "/api/v1/emergency/close-all-positions").status_code == 200


def test_shutdown_fails_answers_500_and_the_agent_is_not_shut_down(healthy):
    healthy.inject("shutdown-fails")
    assert post(healthy, "/api/emergency/shutdown").status_code == 500
    assert status(healthy)["shutdown"] is False
    healthy.clear("shutdown-fails")
    assert post(healthy, "/api/emergency/shutdown").status_code == 200
    assert status(healthy)["shutdown"] is True


# ---- the error handling system ----------------------------------------------------------------

@pytest.mark.parametrize("fault", ["error-handler-down", "error-handler-broken"])
def test_error_handler_faults_take_the_errors_endpoints_down_but_not_health(healthy, fault):
    healthy.inject(fault)
    assert get(healthy, "/api/errors/dashboard").status_code == 503
    assert get(healthy, "/api/errors/config").status_code == 503
    assert get(healthy, "/api/health").status_code == 200
    healthy.clear(fault)
    assert get(healthy, "/api/errors/dashboard").status_code == 200


def test_a_restart_of_the_agent_mends_error_handler_down(healthy):
    healthy.inject("error-handler-down")
    restart_agent(healthy)
    assert get(healthy, "/api/errors/dashboard").status_code == 200
    assert healthy.active_faults() == []
    assert healthy.mended_faults() == ["error-handler-down"]


def test_a_restart_of_the_agent_does_not_mend_error_handler_broken(healthy):
    healthy.inject("error-handler-broken")
    restart_agent(healthy)
    assert get(healthy, "/api/errors/dashboard").status_code == 503
    assert healthy.active_faults() == ["error-handler-broken"]


def test_health_critical_composes_with_a_circuit_breaker_cascade(healthy):
    healthy.inject("circuit-breaker-cascade")
    healthy.inject("health-critical")
    assert get(healthy, "/api/errors/dashboard").json()["recoveryMetrics"]["circuitBreakersOpen"] == 5
    assert get(healthy, "/api/health").json()["overallHealth"] == 40
    healthy.clear("health-critical")
    assert get(healthy, "/api/health").json()["overallHealth"] == 96
    assert get(healthy, "/api/errors/dashboard").json()["recoveryMetrics"]["circuitBreakersOpen"] == 5


def test_the_system_recovery_stand_in_runs_and_records_the_open_breakers(healthy):
    healthy.inject("circuit-breaker-cascade")
    healthy.paths.diagnostics_file.unlink(missing_ok=True)
    run = subprocess.run([sys.executable, str(ROOT / "lab" / "diagnostics.py"), "system-recovery",
                          "--lab-dir", str(healthy.lab_dir), "--port-base", str(healthy.ports.base)],
                         capture_output=True, text=True, timeout=30, cwd="/")
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads(healthy.paths.diagnostics_file.read_text().splitlines()[-1])
    assert (record["tool"], record["circuitBreakersOpen"]) == ("system-recovery", 5)


# ---- the network ------------------------------------------------------------------------------

def test_network_down_refuses_the_probe_target_until_cleared(healthy):
    assert accepts(healthy.ports.probe_target)
    healthy.inject("network-down")
    assert not accepts(healthy.ports.probe_target)
    assert healthy.program_state("probe-target") == "STOPPED"
    healthy.clear("network-down")
    assert accepts(healthy.ports.probe_target)


def test_tunnel_far_end_down_accepts_locally_but_nothing_answers_behind(healthy):
    url = f"https://127.0.0.1:{healthy.ports.tunnel}/api/v4/spot/currencies"
    fetch = lambda: requests.get(url, headers={"Host": "api.gateio.ws"},  # noqa: E731
                                 verify=str(healthy.paths.ca_cert), timeout=5)
    healthy.inject("tunnel-far-end-down")
    assert accepts(healthy.ports.tunnel)
    assert not accepts(healthy.ports.exchange)
    with pytest.raises(requests.ConnectionError):
        fetch()
    healthy.clear("tunnel-far-end-down")
    assert fetch().status_code == 200


def test_unexpected_port_listens_only_while_the_fault_is_on(healthy):
    assert not accepts(healthy.ports.unexpected)
    healthy.inject("unexpected-port")
    assert accepts(healthy.ports.unexpected)
    assert healthy.active_faults() == ["unexpected-port"]
    healthy.clear("unexpected-port")
    assert not accepts(healthy.ports.unexpected)


def test_clear_all_stops_the_unexpected_listener(healthy):
    healthy.inject("unexpected-port")
    healthy.clear()
    assert not accepts(healthy.ports.unexpected)


# ---- security-breach indicators ---------------------------------------------------------------

def test_healthy_auth_log_has_accepted_logins_and_no_failure_in_the_last_hour(healthy):
    lines = auth_lines(healthy)
    accepted = [m for _, program, m in lines if program == "sshd" and m.startswith("Accepted publickey for trading")]
    assert len(accepted) == 3
    assert failures_within(healthy, timedelta(hours=1)) == []


def test_failed_logins_adds_25_failures_within_the_last_hour_and_clear_removes_them(healthy):
    healthy.inject("failed-logins")
    recent = failures_within(healthy, timedelta(hours=1))
    assert len(recent) == 25
    assert all(f"from {security.ATTACKER_IP} " in message for message in recent)
    healthy.clear("failed-logins")
    assert failures_within(healthy, timedelta(hours=1)) == []


def test_the_known_key_is_the_one_the_accepted_logins_used(healthy):
    keys = healthy.paths.authorized_keys.read_text().splitlines()
    assert keys == [security.KNOWN_KEY]
    blob = base64.b64decode(keys[0].split()[1])
    digest = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    accepted = [m for _, _, m in auth_lines(healthy) if m.startswith("Accepted publickey")]
    assert accepted and all(m.endswith(f"ED25519 {digest}") for m in accepted)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen to read the keys")
def test_both_keys_are_valid_ed25519_public_keys(healthy):
    healthy.inject("unknown-ssh-key")
    listed = subprocess.run(["ssh-keygen", "-lf", str(healthy.paths.authorized_keys)],
                            capture_output=True, text=True, timeout=10)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == ["(ED25519)", "(ED25519)"]


def test_unknown_ssh_key_appends_a_key_and_clear_removes_it(healthy):
    healthy.inject("unknown-ssh-key")
    assert healthy.paths.authorized_keys.read_text().splitlines() == [security.KNOWN_KEY, security.UNKNOWN_KEY]
    healthy.clear("unknown-ssh-key")
    assert healthy.paths.authorized_keys.read_text().splitlines() == [security.KNOWN_KEY]


def test_removing_the_unknown_key_by_hand_mends_the_fault(healthy):
    healthy.inject("unknown-ssh-key")
    healthy.paths.authorized_keys.write_text(security.KNOWN_KEY + "\n")
    assert healthy.active_faults() == []
    assert healthy.mended_faults() == ["unknown-ssh-key"]


def test_critical_files_are_byte_identical_after_a_clear(healthy):
    before = {path: sha256(path) for path in healthy.paths.critical_files}
    healthy.clear()
    assert {path: sha256(path) for path in healthy.paths.critical_files} == before


def test_the_manifest_lists_every_critical_file_with_its_digest(healthy):
    manifest = dict(reversed(line.split("  ", 1)) for line in healthy.paths.critical_manifest.read_text().splitlines())
    assert manifest == {str(path.relative_to(healthy.paths.root)): sha256(path)
                        for path in healthy.paths.critical_files}


def test_critical_file_changed_changes_one_file_and_clear_restores_it(healthy):
    before = {path: sha256(path) for path in healthy.paths.critical_files}
    healthy.inject("critical-file-changed")
    changed = [path for path in healthy.paths.critical_files if sha256(path) != before[path]]
    assert changed == [healthy.paths.sshd_config_copy]
    assert "PermitRootLogin yes" in healthy.paths.sshd_config_copy.read_text()
    healthy.clear("critical-file-changed")
    assert {path: sha256(path) for path in healthy.paths.critical_files} == before


# ---- the command line -------------------------------------------------------------------------

def test_fault_list_describes_every_new_fault(lab):
    listed = dict(line.split(None, 1) for line in run_cli(lab, "fault", "list").stdout.splitlines())
    assert {name: listed.get(name, "").strip() for name in NEW_FAULTS} == {
        name: faults.FAULTS[name].description for name in NEW_FAULTS}


def test_status_lists_the_active_new_faults(healthy):
    for name in ("network-down", "unexpected-port", "failed-logins"):
        healthy.inject(name)
    out = run_cli(healthy, "status").stdout
    assert "faults: failed-logins, network-down, unexpected-port" in out
