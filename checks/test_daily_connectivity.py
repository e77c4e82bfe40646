"""Manual Daily Checks 1-3: dashboard, SSH tunnel and exchange API connectivity."""

import pytest

pytestmark = pytest.mark.daily


@pytest.mark.check("WEB-001", severity="warning", why="the dashboard is how the operator sees positions",
                   depends_on="SVC-001")  # a stopped dashboard is SVC-001's finding, restart and alert
@pytest.mark.remediate("restart_service", role="dashboard")
def test_dashboard_accessible(dashboard):
    reading = dashboard()
    assert reading.ok, f"dashboard {reading.url} not accessible: {reading.problem}"


@pytest.mark.check("NET-001", severity="critical", why="without the tunnel the agent cannot reach the exchange",
                   depends_on="SVC-001")
@pytest.mark.remediate("restart_service", role="tunnel")
def test_ssh_tunnel_accepts_connections(tunnel):
    problem = tunnel()
    assert problem is None, f"SSH tunnel not accepting connections: {problem}"


@pytest.mark.check("NET-002", severity="critical", why="Gate.io API connectivity issues stop order execution")
def test_exchange_api_reachable_through_tunnel(exchange):
    reading = exchange()
    assert reading.ok, f"Gate.io API via the tunnel ({reading.url}) failed: {reading.problem}"
