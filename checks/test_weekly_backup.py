"""Weekly 1: Full System Backup, and what Backup Strategy 2 (Backup Verification) asks of every backup.

The guide's verification looks for the dump at `${BACKUP_FILE%.tar.gz}.sql` while its backup writes
`database-DATE.sql`, and checks that plain-SQL file with `pg_restore --list`, which refuses plain SQL: it
never checked a dump. Here a backup's dump is named by its tarball's name, kept in pg_dump's custom format
and read to its end by pg_restore; every file is compared with the checksum written beside it.
"""

import pytest

pytestmark = pytest.mark.weekly


def _newest(backups, kind):
    __tracebackhide__ = True
    newest = backups.newest(kind)
    assert newest is not None, f"no good {kind} backup in {backups.directory}"
    return newest


@pytest.mark.check("BAK-001", severity="warning", why="without a recent full backup a lost disk loses the week")
@pytest.mark.remediate("take_backup", backup_kind="full")
def test_full_backup_is_recent(backups):
    newest = backups.newest("full")
    assert newest is not None, f"no good full backup in {backups.directory}"
    age, due = backups.age_days(newest), backups.due_after_days("full")
    assert age <= due, (f"the newest full backup {newest.name} is {age:.1f} days old, due after {due:.2f} "
                        f"(every {backups.config.kind('full').every_days:g} days)")


@pytest.mark.check("BAK-004", severity="critical", why="a tarball that does not read back restores nothing",
                   depends_on="BAK-001")
@pytest.mark.remediate("take_backup")
def test_newest_tarball_is_whole(backups, backup_kind):
    problems = backups.tarball_problems(_newest(backups, backup_kind))
    assert not problems, "; ".join(problems)


@pytest.mark.check("BAK-005", severity="critical", why="a backup without the keys and the .env cannot bring "
                   "the agent back", depends_on="BAK-004")
@pytest.mark.remediate("take_backup")
def test_newest_tarball_holds_the_files_that_matter(backups, backup_kind):
    if backup_kind == "incremental":
        pytest.skip("an incremental tarball holds only what changed since its full backup")
    newest = _newest(backups, backup_kind)
    found = backups.tarball(newest)
    cut = f"; it does not read past them ({found['error']})" if found["error"] else ""
    assert not found["missing"], (f"{newest.part('tar.gz')} lacks {', '.join(found['missing'])} "
                                  f"(of {found['members']} entries read{cut})")


@pytest.mark.check("BAK-006", severity="critical", why="a dump cut short loses the trades it did not reach",
                   depends_on="BAK-001")
@pytest.mark.remediate("take_backup")
def test_newest_dump_is_whole(backups, backup_kind):
    problems = backups.dump_problems(_newest(backups, backup_kind))
    assert not problems, "; ".join(problems)
