"""Daily Maintenance 2: Service Status Verification: every critical service runs, else restart it."""

import pytest


@pytest.mark.daily
@pytest.mark.check("SVC-001", severity="critical", why="a stopped service stops trading or hides its state")
@pytest.mark.remediate("restart_service")
def test_service_is_running(services, service):
    assert services.is_running(service), f"service {service} is {services.state(service)}, not running"
