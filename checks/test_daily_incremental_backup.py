"""Backup Strategy 1 (Automated Backups), its daily part: the incremental backup (the guide's
`0 2 * * * backup.sh incremental`): the files changed since the newest full backup, and a whole dump."""

import pytest

pytestmark = pytest.mark.daily


@pytest.mark.check("BAK-002", severity="warning", why="the day's trades are only in the database until the "
                   "incremental backup holds them")
@pytest.mark.remediate("take_backup", backup_kind="incremental")
def test_incremental_backup_is_recent(backups):
    newest = backups.newest("incremental")
    assert newest is not None, f"no good incremental backup in {backups.directory}"
    age, due = backups.age_days(newest), backups.due_after_days("incremental")
    assert age <= due, f"the newest incremental backup {newest.name} is {age:.1f} days old, due after {due:.2f}"
