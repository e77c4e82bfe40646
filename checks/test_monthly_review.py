"""Monthly 1: Comprehensive System Review (the guide's `uptime`, `systemctl --failed` and
`journalctl --since "30 days ago" --priority=err`), as figures in both reports; failed units is a check.

On the lab the service manager is supervisord: its failed programs (FATAL, BACKOFF) are the failed units,
and there is no systemd journal to read (REV-003 skips, saying so).
"""

import pytest

from probes.host import NotApplicable

pytestmark = pytest.mark.monthly


@pytest.mark.check("REV-001", severity="warning", why="a failed unit is a service nobody restarted, or one that "
                   "keeps dying: the box is not what the operator thinks it is")
def test_no_failed_units(system_review, record_property):
    failed = system_review.failed_units()
    record_property("failed_units", len(failed))
    record_property("failed_unit_names", ", ".join(failed) or "none")
    assert not failed, f"{len(failed)} failed unit(s): {', '.join(failed)}"


@pytest.mark.check("REV-002", severity="info", why="the uptime says when the box last rebooted, planned or not")
def test_uptime_is_read(system_review, record_property):
    seconds = system_review.uptime_seconds()
    record_property("uptime_days", f"{seconds / 86400:.2f}")
    assert seconds > 0, f"/proc/uptime says {seconds:g} s: not an uptime"


@pytest.mark.check("REV-003", severity="info", why="a month of the journal's errors shows what kept going wrong")
def test_journal_errors_are_read(system_review, settings, record_property):
    try:
        errors = system_review.journal_errors()
    except NotApplicable as reason:
        pytest.skip(str(reason))
    days = settings.monthly_review.journal_days
    record_property(f"journal_errors_{days}d", errors.count)
    record_property("journal_errors_last", " | ".join(errors.last) or "none")
    record_property("journal_covers_window", str(errors.covers_window).lower())
    assert errors.covers_window, (
        f"the journal holds nothing older than {days} days: its {errors.count} error(s) are those of a shorter "
        f"time (a volatile journal begins at the last boot: journald.conf Storage=persistent keeps a month)")
