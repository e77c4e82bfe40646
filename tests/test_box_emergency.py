"""The emergency faults in a box: made the way they happen under systemd, and cleared back to healthy."""

from __future__ import annotations

import json
import os
import socket

import pytest
import requests

from lab import security
from lab.box import Box

PORT_BASE = int(os.environ.get("TEST_BOX_EMERGENCY_PORT_BASE", "31500"))
WHY_NOT = Box.unavailable()

pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=f"no box here: {WHY_NOT}")]


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    instance = Box(tmp_path_factory.mktemp("embox"), PORT_BASE)
    instance.up()
    yield instance
    instance.down()


@pytest.fixture
def healthy(box):
    box.clear()
    yield box
    box.clear()


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def active(box: Box, unit: str) -> str:
    return box.unit_states([unit])[unit]["ActiveState"]


def api(box: Box, method: str, path: str) -> requests.Response:
    return requests.request(method, f"http://127.0.0.1:{box.ports.api}{path}", timeout=3)


def test_network_down_is_the_probe_target_unit_stopped(healthy):
    assert active(healthy, "probe-target") == "active" and accepts(healthy.ports.probe_target)
    healthy.inject("network-down")
    assert active(healthy, "probe-target") == "inactive"
    assert not accepts(healthy.ports.probe_target)
    healthy.clear("network-down")
    assert accepts(healthy.ports.probe_target)


def test_tunnel_far_end_down_stops_the_exchange_unit_only(healthy):
    healthy.inject("tunnel-far-end-down")
    assert active(healthy, "exchange-endpoint") == "inactive"
    assert accepts(healthy.ports.tunnel) and not accepts(healthy.ports.exchange)
    healthy.clear("tunnel-far-end-down")
    assert accepts(healthy.ports.exchange)


def test_unexpected_port_is_a_unit_started_only_by_its_fault(healthy):
    assert active(healthy, "unexpected-listener") == "inactive"
    assert not accepts(healthy.ports.unexpected)
    healthy.inject("unexpected-port")
    assert active(healthy, "unexpected-listener") == "active"
    assert accepts(healthy.ports.unexpected)
    healthy.clear()
    assert not accepts(healthy.ports.unexpected)


def test_the_agents_state_survives_systemctl_restart(healthy):
    api(healthy, "POST", "/api/trading/pause-non-critical")
    assert healthy.systemctl("restart", "trading-agent.service").returncode == 0
    healthy.wait_ready(["trading-agent"])
    assert api(healthy, "GET", "/api/trading/status").json()["tradingPaused"] is True
    healthy.clear()
    assert api(healthy, "GET", "/api/trading/status").json()["tradingPaused"] is False


def test_systemctl_restart_mends_error_handler_down(healthy):
    healthy.inject("error-handler-down")
    assert api(healthy, "GET", "/api/errors/dashboard").status_code == 503
    assert api(healthy, "GET", "/api/health").status_code == 200
    assert healthy.systemctl("restart", "trading-agent.service").returncode == 0
    healthy.wait_ready(["trading-agent"])
    assert api(healthy, "GET", "/api/errors/dashboard").status_code == 200


def test_the_security_indicators_are_at_the_guides_paths_inside(healthy):
    healthy.inject("failed-logins")
    healthy.inject("unknown-ssh-key")
    auth = healthy.run(["grep", "-c", f"Failed password .* from {security.ATTACKER_IP} ", "/var/log/auth.log"])
    assert auth.stdout.strip() == str(security.FAILED_LOGINS)
    keys = healthy.inside_path(healthy.paths.authorized_keys)
    assert healthy.run(["cat", str(keys)]).stdout.splitlines() == [security.KNOWN_KEY, security.UNKNOWN_KEY]
    healthy.clear()
    assert healthy.run(["cat", str(keys)]).stdout.splitlines() == [security.KNOWN_KEY]


def test_the_critical_files_check_inside_the_box(healthy):
    check = ["sh", "-c", f"cd {healthy.inside_path(healthy.paths.root)} && sha256sum -c --quiet run/critical-files.sha256"]
    assert healthy.run(check).returncode == 0
    healthy.inject("critical-file-changed")
    assert "etc/ssh/sshd_config: FAILED" in healthy.run(check).stdout


# ---- the suite's response on the box, over SSH: systemd stops the agent, no run starts it, resume does


def suite_run(box: Box, tmp_path, cadence: str, responses: dict):
    from conftest import config_with, run_cadence

    config = config_with(box.paths.ssh_maintenance_config, tmp_path / "emergency-ssh.toml",
                         {"emergency": {"responses": responses},
                          "resources": {"cpu": {"warning": 100, "critical": 100}}})
    return config, run_cadence(config, tmp_path / "reports", cadence=cadence)


def test_a_confirmed_critical_failure_is_shut_down_by_systemd_and_only_resume_starts_it(healthy, tmp_path):
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    shutil.rmtree(healthy.paths.root / "outside", ignore_errors=True)  # the suite's memory of this box
    enabled = {"close_positions": True, "shutdown": True}
    config, _ = suite_run(healthy, tmp_path, "emergency", enabled)
    # The operator who enables the shutdown installs the sudo rules it needs (README: make sudoers).
    printed = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config", str(config), "--user",
                              "trading-maint"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    rule = healthy.paths.sudoers_dir / "trading-maint"  # replaced in place: it is bind-mounted into the box
    before = rule.read_text()
    rule.chmod(0o640)
    rule.write_text(printed.stdout)
    rule.chmod(0o440)
    calls_before = healthy.paths.calls_file.stat().st_size
    healthy.inject("health-critical")
    config, first = suite_run(healthy, tmp_path, "emergency", enabled)
    assert active(healthy, "trading-agent") == "active", first.output  # one reading: only new entries stopped
    config, second = suite_run(healthy, tmp_path, "emergency", enabled)
    assert active(healthy, "trading-agent") == "inactive", second.output
    with healthy.paths.calls_file.open() as calls:
        calls.seek(calls_before)
        posts = [c["path"] for c in map(json.loads, calls) if c["method"] == "POST"]
    assert posts == ["/api/trading/pause-non-critical", "/api/v1/emergency/close-all-positions",
                     "/api/emergency/shutdown"], posts

    config, daily = suite_run(healthy, tmp_path, "daily", enabled)
    agent = daily.only("SVC-001", "trading-agent").properties
    assert "held back: the emergency response" in agent["remediation_outcome"], agent
    assert active(healthy, "trading-agent") == "inactive", "a later run started what the emergency stopped"

    resumed = subprocess.run([sys.executable, "-m", "commands", "resume", "--config", str(config), "--who", "bob",
                              "--why", "health restored, positions checked on the exchange"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert active(healthy, "trading-agent") == "active"
    rule.chmod(0o640)
    rule.write_text(before)
    rule.chmod(0o440)
