"""Error Handling Maintenance, weekly: error patterns (1), recovery success rate (2), the error handling
configuration (3).

The guide's loop over `error-$DATE.log` for the last 7 days skips rotated days (`.gz`) and says nothing
of a day without a log; here each day's error log is read rotated or not, and a day the agent did not log
at all is named. `trading-error-analysis > /tmp/weekly-error-report-*.txt` is the daily ERR-001's
remediation (`run_diagnostic`), not run again here; `./scripts/optimize-error-thresholds.sh` is the
operator's. The thresholds (more than 5 active patterns, a recovery rate under 70 %) are the guide's,
in `[weekly_review]`.
"""

import pytest

from probes.logs import per_day

pytestmark = pytest.mark.weekly


@pytest.mark.check("EHW-001", severity="info",
                   why="the week's errors per day show a trend the daily rate hides")
def test_errors_per_day(weekly_logs, record_property):
    days = weekly_logs.errors
    record_property("errors_per_day", per_day(days, "lines"))
    record_property("errors_7d", sum(day["figures"]["lines"] for day in days if day["figures"]))
    record_property("critical_errors_7d", sum(day["figures"]["critical_lines"] for day in days if day["figures"]))
    # No error log is no error only on a day the agent logged at all (the guide's `if [ -f ... ]`).
    silent = weekly_logs.silent_days()
    assert not silent, (
        f"no error log and no trading log for {', '.join(silent)} in {weekly_logs.log_dir}: the agent did not "
        "log those days, so their errors are unknown, not zero")


@pytest.mark.check("EHW-002", severity="warning",
                   why="many active error patterns mean failures the error handler keeps meeting and not resolving")
def test_active_error_patterns_within_limit(error_review, settings, record_property):
    patterns = error_review.active_patterns()
    record_property("active_error_patterns", len(patterns))
    limit = settings.weekly_review.max_active_patterns
    assert len(patterns) <= limit, (
        f"{len(patterns)} active error patterns, at most {limit} (over by {len(patterns) - limit}): " + "; ".join(
            f"{p.get('id', '?')} {p.get('description', '')}".strip() if isinstance(p, dict) else str(p)
            for p in patterns))


@pytest.mark.check("EHW-003", severity="warning",
                   why="errors the agent cannot recover from itself become a human's night work")
def test_recovery_success_rate(error_review, weekly_logs, settings, record_property):
    rate = error_review.recovery_rate()
    interventions = error_review.manual_interventions()
    record_property("recovery_rate_percent", f"{rate:g}")
    record_property("manual_interventions", f"{interventions:g}")
    review = settings.weekly_review
    # The week's failed recoveries are read only when the rate is too low: assert evaluates its message then.
    assert rate >= review.min_recovery_rate_percent, (
        f"auto-recovery success rate {rate:g}%, at least {review.min_recovery_rate_percent:g}% expected (short by "
        f"{review.min_recovery_rate_percent - rate:g} points); {interventions:g} manual intervention(s) required; "
        f"last failed recoveries ({review.failed_recovery_pattern!r} in the week's error logs): "
        f"{_failed_recoveries(weekly_logs)}")


def _failed_recoveries(weekly_logs) -> str:
    try:
        return "; ".join(weekly_logs.failed_recoveries()) or "none in the logs"
    except Exception as error:  # the rate is the finding; logs that cannot be read must not hide it
        return f"the error logs could not be read ({error})"


@pytest.mark.check("EHW-004", severity="info",
                   why="the retry settings decide how long a failing order or feed is retried before it alerts")
def test_retry_configurations(error_review, record_property):
    retries = error_review.retry_configurations()
    record_property("retry_configurations", "; ".join(
        f"{name}: " + (", ".join(f"{key}={value}" for key, value in values.items())
                       if isinstance(values, dict) else str(values))
        for name, values in retries.items()))
    loose = [name for name, values in retries.items() if not isinstance(values, dict)]
    assert not loose, f"retryConfigurations of {', '.join(loose)} are not tables of settings: {retries}"


@pytest.mark.check("EHW-005", severity="info",
                   why="alert rules that fired show what went wrong this week; none at all means nothing alerts")
def test_alert_rules_triggered(error_review, record_property):
    rules = error_review.alert_rules()
    triggered = [rule for rule in rules if rule["triggered"] > 0]
    record_property("alert_rules_triggered",
                    ", ".join(f"{rule['name']}={rule['triggered']:g}" for rule in triggered) or "none")
    record_property("alert_rules", len(rules))
    assert rules, "the agent's error handler has no alert rules: nothing it meets would alert anyone"
