"""Error Handling Maintenance, monthly: the month's error analysis (1), the error handling system's health (2)
and its performance (3).

The guide's analysis selects files by modification time, `cat`s rotated .gz logs and divides by zero when
there were no errors; its health check finds handlers with `pgrep -f`, which matches the checking shell
itself. Here: files by the date in their names, rotated ones read, 0 % without errors, processes matched by
their own name (probes/remote/reviewscan.py).
"""

import pytest

from probes.baselines import ERROR_HANDLING_RESPONSE
from probes.errors import error_handling_response

pytestmark = pytest.mark.monthly


@pytest.mark.check("EHM-001", severity="info", why="a month of errors by code shows what keeps failing")
def test_month_of_errors_is_analysed(error_analysis, settings, record_property):
    month = error_analysis.month()
    record_property("error_window", f"{month.start} to {month.end}")
    record_property("error_logs_read", len(month.files))
    record_property("errors_month", month.total)
    record_property("critical_errors_month", month.critical)
    record_property("critical_error_rate_percent", f"{month.critical_rate_percent:.2f}")
    record_property("top_error_codes_month", ", ".join(f"{code}={n}" for code, n in month.top(10)) or "none")
    missing = month.days_without_log()
    record_property("days_without_error_log", len(missing))
    assert month.files, (f"no error log of {month.start} to {month.end} (error-YYYY-MM-DD.log or .log.gz) in "
                         f"{settings.paths.log_dir}: nothing to analyse")


@pytest.mark.check("EHM-002", severity="warning", why="a handler that is not running leaves its errors unhandled")
def test_error_handler_is_running(error_handlers, error_handler, record_property):
    found = error_handlers.processes(error_handler)
    record_property("handler_processes", len(found))
    record_property("handler_rss_kb", ", ".join(f"{p['rss_kb']} (pid {p['pid']})" for p in found) or "none")
    assert found, f"no process named {error_handler} is running"


@pytest.mark.check("EHM-003", severity="warning", why="the error dashboard is where the agent reports its errors")
def test_error_dashboard_accessible(agent_api, settings):
    reading = agent_api.get(settings.error_handling.dashboard_path)
    assert reading.ok, f"error monitoring dashboard {reading.url}: {reading.problem}"


@pytest.mark.check("EHM-004", severity="warning", why="error handling that slows down delays every recovery")
def test_error_handling_response_within_baseline(agent_api, baselines, settings, record_property):
    value, numbers = error_handling_response(agent_api, settings)
    for key, number in numbers.items():
        record_property(f"error_handling_{key}", f"{number:g}")
    comparison = baselines.compare(settings.host.name, ERROR_HANDLING_RESPONSE, value)
    for name, shown in comparison.properties():
        record_property(name, shown)
    limits = settings.baselines
    assert not comparison.regressed(limits.max_regression_percent, limits.noise_floor_ms), (
        f"error handling response time ({settings.error_handling.performance_field}): {comparison.describe()}, "
        f"{comparison.regression_percent:.0f} % worse (at most {limits.max_regression_percent:g} % allowed)")
