"""Daily Maintenance 4: Log Rotation and Cleanup (logrotate, then the three `find -delete` rules)."""

import pytest

pytestmark = pytest.mark.daily


@pytest.mark.check("LOG-001", severity="warning", why="unrotated logs grow until the disk fills", routine=True)
@pytest.mark.remediate("rotate_logs")
def test_dated_logs_rotated(files):
    stale = files.unrotated()
    assert not stale, (
        f"{len(stale)} log(s) older than {files.rotate_after_days} day(s) not rotated in {files.log_dir}: "
        + ", ".join(path.name for path in stale[:5])
    )


@pytest.mark.check("LOG-002", severity="warning", why="files past retention fill the disk and keep stale data around",
                   routine=True)
@pytest.mark.remediate("delete_expired_files")
def test_no_files_past_retention(files, retention_rule):
    rule = files.rules[retention_rule]
    expired = files.expired(retention_rule)
    assert not expired, (
        f"{len(expired)} file(s) matching {rule.pattern} older than {rule.max_age_days} day(s) in {rule.dir}: "
        + ", ".join(path.name for path in expired[:5])
    )
