"""Daily Maintenance 2: Service Status Verification: every critical service runs, else restart it."""

import pytest


@pytest.mark.daily
@pytest.mark.check("SVC-001", severity="critical", why="a stopped service stops trading or hides its state")
@pytest.mark.remediate("restart_service")
def test_service_is_running(services, service):
    assert services.is_running(service), f"service {service} is {services.state(service)}, not running"


@pytest.mark.daily
@pytest.mark.check("DB-001", severity="critical", why="a database that does not answer stops the agent, even while "
                   "its service looks active (a frozen postmaster passes systemctl is-active)", depends_on="SVC-001")
@pytest.mark.remediate("restart_service", role="database")
def test_database_answers(database, record_property):
    problem = database.answers()
    record_property("database_answer_seconds", f"{database.last_answer_seconds:.3f}")
    assert problem is None, f"the database does not answer SELECT 1: {problem}"
