"""Error Handling Maintenance, daily: error rate, critical errors, health, circuit breakers, error log."""

import pytest

pytestmark = pytest.mark.daily


@pytest.mark.check("API-001", severity="critical", why="the error-handling API is how the agent reports its own state",
                   depends_on="SVC-001")
@pytest.mark.remediate("restart_service", role="agent")
def test_agent_api_answers(agent_api):
    reading = agent_api.get("/api/errors/dashboard")
    assert reading.ok, f"agent API {reading.url}: {reading.problem}"


@pytest.mark.check("ERR-001", severity="warning", why="a high error rate precedes failed orders")
@pytest.mark.remediate("run_diagnostic", which="error_analysis")
def test_error_rate_below_threshold(agent_api, settings):
    limit = settings.api.thresholds.max_error_rate_per_hour
    rate = agent_api.error_rate()
    assert rate <= limit, f"error rate {rate:g}/hour, threshold {limit:g}/hour (over by {rate - limit:g})"


@pytest.mark.check("ERR-002", severity="warning", why="critical errors are the ones that lose money")
def test_critical_errors_within_limit(agent_api, settings):
    limit = settings.api.thresholds.max_critical_errors
    count = agent_api.critical_errors()
    assert count <= limit, f"{count:g} critical error(s), at most {limit} allowed"


@pytest.mark.check("ERR-003", severity="warning", why="low system health is the agent's own distress signal")
@pytest.mark.remediate("run_diagnostic", which="health_check")
def test_system_health_above_minimum(agent_api, settings):
    minimum = settings.api.thresholds.min_overall_health
    health = agent_api.overall_health()
    assert health >= minimum, f"system health {health:g}%, minimum {minimum:g}% (short by {minimum - health:g} points)"


@pytest.mark.check("ERR-004", severity="warning", why="an open circuit breaker means a dependency is failing")
def test_no_open_circuit_breakers(agent_api, settings):
    limit = settings.api.thresholds.max_open_circuit_breakers
    count = agent_api.open_circuit_breakers()
    assert count <= limit, (
        f"{count:g} circuit breaker(s) open, at most {limit} allowed: {agent_api.circuit_breaker_details()}")


@pytest.mark.check("ERR-005", severity="warning", why="a new error type is a failure nobody has seen or handled yet")
def test_no_new_error_types(daily_logs, record_property):
    if not daily_logs.error_log_written():
        pytest.skip(f"no error log today ({daily_logs.error_log.name})")
    errors = daily_logs.errors()
    record_property("error_counts_by_code", ", ".join(f"{code}={n}" for code, n in errors.top(10)))
    new = errors.new_codes(daily_logs.known_errors())
    assert not new, (
        f"new error type(s) in {daily_logs.error_log.name}: {', '.join(new)} (not in {daily_logs.known_errors_file})")
