"""Monthly 2: Performance Benchmarking (the guide's performance-benchmark.sh and compare-performance-metrics.sh),
with Quarterly 2's disk read speed (`hdparm -tT`, without root).

Each benchmark is safe on a trading box: a few GETs of the agent's API, a fixed read-only query, one
sequential read of a file. Each is compared with its baseline (probes/baselines.py): the first run records
it with its date, later runs report the change in percent and fail past `[baselines] max_regression_percent`
(a time also past `noise_floor_ms`). `make baseline` records them again on purpose.
"""

import pytest

from probes.baselines import API_RESPONSE, DB_QUERY, DISK_READ
from probes.host import NotApplicable

pytestmark = pytest.mark.monthly


def assert_within_baseline(comparison, settings, record_property):
    __tracebackhide__ = True
    for name, value in comparison.properties():
        record_property(name, value)
    limits = settings.baselines
    assert not comparison.regressed(limits.max_regression_percent, limits.noise_floor_ms), (
        f"{comparison.figure.name}: {comparison.describe()}, {comparison.regression_percent:.0f} % worse "
        f"(at most {limits.max_regression_percent:g} % allowed)")


@pytest.mark.check("BENCH-001", severity="warning", why="an agent that answers slower reacts slower to the market")
def test_api_response_time_within_baseline(benchmarks, baselines, settings, record_property):
    median, times = benchmarks.api_response_ms()
    record_property("api_response_ms_each", ", ".join(f"{ms:.1f}" for ms in times))
    comparison = baselines.compare(settings.host.name, API_RESPONSE, median)
    assert_within_baseline(comparison, settings, record_property)


@pytest.mark.check("BENCH-002", severity="warning", why="a slower database slows every order the agent records")
def test_database_query_time_within_baseline(benchmarks, baselines, database, settings, record_property):
    median, times = benchmarks.db_query_ms(database)
    record_property("db_query_ms_each", ", ".join(f"{ms:.1f}" for ms in times))
    comparison = baselines.compare(settings.host.name, DB_QUERY, median)
    assert_within_baseline(comparison, settings, record_property)


@pytest.mark.check("BENCH-003", severity="warning", why="a disk that reads slower is often a disk about to fail")
def test_disk_read_speed_within_baseline(benchmarks, baselines, settings, record_property):
    try:
        reading = benchmarks.disk_read()
    except NotApplicable as reason:
        pytest.skip(str(reason))
    record_property("disk_read_file", reading["path"])
    record_property("disk_read_mb", f"{reading['bytes'] / (1 << 20):.0f}")
    comparison = baselines.compare(settings.host.name, DISK_READ, reading["mb_per_s"])
    assert_within_baseline(comparison, settings, record_property)
