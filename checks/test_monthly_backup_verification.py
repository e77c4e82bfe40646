"""Monthly 4: Backup Verification and Testing (the guide's test-backup-restoration.sh), and the monthly
archive of Backup Strategy 1.

The restore drill restores the newest dump into a scratch database, compares its tables with the live
database and drops the scratch whatever happens; its figures (rows, newest created_at, wall time) are in
both reports, passed or not.
"""

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.monthly


@pytest.mark.check("BAK-003", severity="warning", why="the archive is the only backup kept past a month")
@pytest.mark.remediate("take_backup", backup_kind="archive")
def test_archive_backup_is_recent(backups):
    newest = backups.newest("archive")
    assert newest is not None, f"no good archive backup in {backups.directory}"
    age, due = backups.age_days(newest), backups.due_after_days("archive")
    assert age <= due, f"the newest archive backup {newest.name} is {age:.1f} days old, due after {due:.2f}"


@pytest.mark.check("BAK-009", severity="critical", why="a backup never restored is a hope, not a backup")
def test_newest_dump_restores(backups, restore_drill, record_property):
    newest = backups.newest_with_dump()
    assert newest is not None, f"no good backup with a dump in {backups.directory}"
    drill = restore_drill(newest.path("dump"), datetime.fromtimestamp(newest.taken_at, UTC))
    record_property("drill_dump", newest.part("dump"))
    record_property("drill_seconds", f"{drill.seconds:.1f}")
    if drill.comparison is not None:
        record_property("drill_tables", "; ".join(drill.comparison.lines()))
    assert not drill.problems, f"restoring {newest.part('dump')}: " + "; ".join(drill.problems)
