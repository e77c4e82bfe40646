"""The emergency faults in a box: made the way they happen under systemd, and cleared back to healthy."""

from __future__ import annotations

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
