"""Monitoring Configuration 1-2: the guide's monitoring-thresholds.json, its network latency, and the
application's answer times.

MON-001 (weekly): the file's cpu, memory and disk levels are the suite's own [resources] levels, which
RES-001..003 apply daily; a difference means one of the two watches something else than the operator
thinks. MON-002 (daily, at both levels): the exchange's answer time through the tunnel (NET-002's
request) against the file's network latency_warning and latency_critical. MON-003 (daily, info): the
agent API's and the database's answer times, as figures (what ERR-003 and DB-001 read this run).
"""

import pytest

from probes.endpoints import ProbeError
from probes.monitoring import differences


@pytest.mark.weekly
@pytest.mark.check("MON-001", severity="warning", why="two sets of thresholds mean one of them alerts on "
                   "levels nobody chose")
def test_monitoring_thresholds_agree_with_the_suite(monitoring, settings, record_property):
    thresholds = monitoring.thresholds
    found = differences(thresholds, settings)
    record_property("thresholds_differing", len(found))
    assert not found, (f"{thresholds.path} and the suite's [resources] disagree on {len(found)} level(s): "
                       f"{'; '.join(found)}: make them the same (the suite's checks use [resources])")


@pytest.mark.daily
@pytest.mark.parametrize("level", ["warning", "critical"])
@pytest.mark.check("MON-002", why="a slow way to the exchange fills orders late, at worse prices",
                   depends_on="SVC-001")
def test_network_latency_below_threshold(monitoring, exchange, level, record_property):
    limit = monitoring.thresholds.latency_ms[level]
    reading = exchange()  # an error answer is still an answer time: the error is NET-002's finding
    if reading.status is None:
        raise ProbeError(f"no answer time: the exchange through the tunnel ({reading.url}) gave no answer: "
                         f"{reading.problem}")
    latency = reading.seconds * 1000
    record_property("network_latency_ms", f"{latency:.0f}")
    assert latency <= limit, (f"the exchange answered through the tunnel in {latency:.0f} ms; {level} threshold "
                              f"{limit:g} ms (over by {latency - limit:.0f} ms)")


@pytest.mark.daily
@pytest.mark.check("MON-003", severity="info", why="the agent's and the database's answer times show a slowdown "
                   "before it fails a check", depends_on="SVC-001")
def test_application_answer_times(agent_api, database, record_property):
    # The agent's /api/health as ERR-003 read it this run (an error answer is still an answer time: the
    # error is ERR-003's finding); the database's SELECT 1 as DB-001 timed it, or timed here.
    reading = agent_api.get("/api/health")
    if reading.status is None:
        raise ProbeError(f"no answer time: GET {reading.url} got no answer: {reading.problem}")
    record_property("api_response_ms", f"{reading.seconds * 1000:.0f}")
    problem = None if database.last_answer_seconds is not None else database.answers()
    if problem is not None:
        raise ProbeError(f"no database answer time: {problem}")
    record_property("database_answer_ms", f"{database.last_answer_seconds * 1000:.0f}")
    assert reading.seconds >= 0 and database.last_answer_seconds >= 0, "a clock that went backwards"
