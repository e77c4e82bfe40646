"""Emergency Procedures and Error Handling Emergency Procedures: what makes an emergency, looked at
every few minutes (the emergency cadence). Each check names the response it starts
(remediations/emergency.py): the first step always stops new entries; closing positions, shutting
down and stopping services are later steps, off unless enabled and only on a confirmed emergency.
The breach indicators are in test_emergency_security.py.
"""

import pytest

pytestmark = pytest.mark.emergency


@pytest.mark.check("EMG-006", severity="critical",
                   why="a dead agent trades blind or not at all, and holds its positions")
@pytest.mark.remediate("emergency_response", kind="agent-down")
def test_agent_answers(agent_api):
    reading = agent_api.get("/api/health")
    assert reading.ok, f"critical system failure: the agent's API {reading.url} does not answer: {reading.problem}"


@pytest.mark.check("EMG-001", severity="critical", depends_on="EMG-006",
                   why="an error storm means orders are failing faster than anyone can look")
@pytest.mark.remediate("emergency_response", kind="error-storm")
def test_no_error_storm(agent_api, settings):
    limit = settings.emergency.error_storm_per_hour
    rate = agent_api.error_rate()
    assert rate <= limit, f"error storm: {rate:g} errors/hour, more than {limit:g} (over by {rate - limit:g})"


@pytest.mark.check("EMG-002", severity="critical", depends_on="EMG-006",
                   why="a cascade of open circuit breakers leaves the agent trading half-blind")
@pytest.mark.remediate("emergency_response", kind="breaker-cascade")
def test_no_circuit_breaker_cascade(agent_api, settings):
    limit = settings.emergency.cascade_breakers
    open_now = agent_api.open_circuit_breakers()
    assert open_now <= limit, (f"circuit breaker cascade: {open_now:g} open, more than {limit} "
                               f"({agent_api.circuit_breaker_details()})")


@pytest.mark.check("EMG-007", severity="critical", depends_on="EMG-006",
                   why="critical health is the agent saying it can no longer trade safely")
@pytest.mark.remediate("emergency_response", kind="critical-health")
def test_health_not_critical(agent_api, settings):
    floor = settings.emergency.health_critical_below
    health = agent_api.overall_health()
    assert health >= floor, (f"critical system failure: health {health:g}%, below {floor:g}% "
                             f"(by {floor - health:g} points)")


@pytest.mark.check("EMG-005", severity="critical", depends_on="EMG-006",
                   why="without its error handling the agent fails without telling anyone")
@pytest.mark.remediate("restart_service", role="agent")
def test_error_handling_answers(agent_api):
    reading = agent_api.get("/api/errors/dashboard")
    assert reading.ok, f"error handling system failure: {reading.url} does not answer: {reading.problem}"


@pytest.mark.check("EMG-003", severity="critical",
                   why="without the network the agent cannot reach the exchange to manage positions")
@pytest.mark.remediate("emergency_response", kind="network")
def test_network_target_reachable(probe, probe_target):  # `probe_target`: each of [emergency] probe_targets
    problem = probe(probe_target)
    assert problem is None, f"network failure: probe target {probe_target} unreachable: {problem}"


@pytest.mark.check("EMG-004", severity="critical",
                   why="a tunnel whose far end is gone leaves the agent without the exchange")
@pytest.mark.remediate("emergency_response", kind="network")
def test_tunnel_far_end_answers(exchange, settings):
    reading = exchange()
    tunnel = f"{settings.tunnel.host}:{settings.tunnel.port}"
    assert reading.status is not None, (f"network failure: nothing answers through the tunnel ({tunnel} -> "
                                        f"{reading.url}): {reading.problem}")
