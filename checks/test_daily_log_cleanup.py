"""Daily Maintenance 4: Log Rotation and Cleanup (logrotate, then the three `find -delete` rules), and its
"Clean old backups".

The guide's backup clean-up deletes every *.tar.gz older than 30 days, its monthly archives too: here each
backup kind keeps its own `keep_days` (BAK-007), the newest good backup of a kind is never deleted however
old, and the `[[retention]]` rule of the backups directory keeps only what is not a backup.
"""

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


@pytest.mark.check("BAK-007", severity="info", why="backups past their retention fill the disk", routine=True)
@pytest.mark.remediate("prune_backups")
def test_no_backup_past_retention(backups):
    old = backups.past_retention()
    assert not old, f"{len(old)} backup(s) past their kind's retention in {backups.directory}: " + ", ".join(
        f"{s.name}{' (failed)' if s.failed else ''} {backups.age_days(s):.0f} d > "
        f"{backups.config.kind(s.kind).keep_days:g} d" for s in old[:5])


@pytest.mark.check("BAK-008", severity="warning", why="backups that crowd the disk stop the database and the logs")
def test_backups_within_their_share_of_the_disk(backups):
    used, limit = backups.usage(), backups.config.max_share_of_disk_percent
    assert used["percent"] <= limit, (
        f"backups take {used['percent']:.1f}% of the filesystem of {backups.directory} "
        f"({used['bytes'] / 2**30:.2f} GiB of {used['fs_bytes'] / 2**30:.2f} GiB), over their {limit:g}% share")
