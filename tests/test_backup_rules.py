"""The backups' rules that need no lab: names, newest and retention by kind, the configuration's refusals,
what the restore's comparison calls a loss, and reading a tarball to its end."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
from datetime import UTC, datetime

import pytest

from configuration import ConfigError, load
from fixtures import backupscan
from fixtures.backups import BackupProbe, parse, stamp_of
from fixtures.host import box_of
from fixtures.restoredb import Table, compare

DAY = 86400


def write_config(tmp_path, text: str = ""):
    path = tmp_path / "maintenance.toml"
    path.write_text(f'[backups]\ndir = "{tmp_path / "backups"}"\napp_dir = "{tmp_path / "app"}"\n' + text)
    return path


def plant(directory, kind: str, age_days: float, state: str = "", parts=("tar.gz", "dump")) -> str:
    moment = time.time() - age_days * DAY
    name = f"{kind}-{stamp_of(moment)}"
    for part in parts:
        for suffix in ("", ".sha256"):
            path = directory / f"{name}.{part}{suffix}{state}"
            path.write_text("x")
            os.utime(path, (moment, moment))
    return name


def test_names_say_their_kind_and_state_and_files_of_other_names_are_no_sets(tmp_path):
    listing = {name: [1, 0] for name in ("full-20261122-030000.tar.gz", "full-20261122-030000.tar.gz.sha256",
                                         "full-20261122-030000.dump", "full-20261129-030000.tar.gz.failed",
                                         "incremental-20261130-020000.dump.partial", "database-20261122.sql",
                                         "emergency-diagnostics-20261122-030000.tar.gz")}
    sets = parse(tmp_path, listing)
    assert [(s.kind, s.stamp, s.failed, s.partial) for s in sets] == [
        ("full", "20261122-030000", False, False), ("full", "20261129-030000", True, False),
        ("incremental", "20261130-020000", False, True)]
    assert sets[0].has("tar.gz") and sets[0].has_checksum("tar.gz") and not sets[0].has_checksum("dump")
    assert sets[0].taken_at == datetime(2026, 11, 22, 3, tzinfo=UTC).timestamp()


def test_the_newest_is_never_a_failed_or_partial_set_and_retention_keeps_the_newest_good_one(tmp_path):
    settings = load(write_config(tmp_path))
    directory = tmp_path / "backups"
    directory.mkdir()
    old_good = plant(directory, "full", 45)
    plant(directory, "full", 40)
    plant(directory, "full", 1, ".failed")
    plant(directory, "full", 0.1, ".partial")
    plant(directory, "incremental", 9)
    probe = BackupProbe(box_of(settings), settings)
    newest = probe.newest("full")
    assert newest is not None and newest.name != old_good and probe.age_days(newest) == pytest.approx(40, abs=0.01)
    assert probe.is_due("full") and probe.due_after_days("full") == pytest.approx(6.75)
    old = {(s.name, s.failed) for s in probe.past_retention()}
    assert old == {(old_good, False)}, "the newest good full (40 days) and incremental (9 days) are kept"


def test_a_retention_rule_that_would_delete_archives_is_refused_at_load(tmp_path):
    text = ('[services]\nuser = "nobody"\n[[retention]]\nname = "backups"\ndir = "' + str(tmp_path / "backups")
            + '"\npattern = "*.tar.gz"\nmax_age_days = 30\n')
    with pytest.raises(ConfigError, match=r"would delete archive backups .* kept 365 days"):
        load(write_config(tmp_path, text))
    assert load(write_config(tmp_path, text.replace("*.tar.gz", "emergency-*.tar.gz")))
    # A recursive rule from a directory above goes down into the backups too.
    above = text.replace(str(tmp_path / "backups"), str(tmp_path)) + "recursive = true\n"
    with pytest.raises(ConfigError, match=r"would delete archive backups"):
        load(write_config(tmp_path, above))


@pytest.mark.parametrize(("text", "says"), [
    ("[backups.kinds.full]\nevery_days = 7\nkeep_days = 3\n", "a backup would be deleted before the next one"),
    ("[backups.kinds.full]\nevery_days = 7\nkeep_days = 30\nstop_services = [\"mysql\"]\n", "not service roles"),
    ('files_that_matter = ["../etc/passwd"]\n', "relative to app_dir"),
])
def test_bad_backup_settings_are_named(tmp_path, text, says):
    with pytest.raises(ConfigError, match=says):
        load(write_config(tmp_path, text))


def test_backups_inside_the_app_dir_must_be_excluded(tmp_path):
    path = tmp_path / "maintenance.toml"
    path.write_text(f'[backups]\ndir = "{tmp_path}/app/bk"\napp_dir = "{tmp_path}/app"\n')
    with pytest.raises(ConfigError, match="add './bk' to excludes"):
        load(path)
    path.write_text(f'[backups]\ndir = "{tmp_path}/app"\napp_dir = "{tmp_path}/app"\n')
    with pytest.raises(ConfigError, match="is app_dir itself"):
        load(path)


def test_rows_deleted_since_are_no_loss_and_rows_the_backup_lacks_are():
    taken = datetime(2026, 11, 22, 3, tzinfo=UTC)
    live = {"trades": Table(90, taken, rows_until=80), "logs": Table(5, taken, rows_until=5), "orders": Table(3)}
    ok = compare({"trades": Table(100), "logs": Table(5), "orders": Table(3)}, live, taken)
    assert ok.problems == [] and ok.lines()[2].startswith("trades: restored 100, live 90 (80 created by")
    bad = compare({"trades": Table(70), "logs": Table(5)}, live, taken)
    assert bad.problems == ["table orders (3 live rows) is not in the backup",
                            "table trades: 70 rows restored, the live database had 80 by 2026-11-22 03:00:00Z: "
                            "10 missing"]


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_tarball_is_read_to_the_end_of_its_gzip_stream(tmp_path):
    whole = _tarball({"./.env": b"A=1\n", "./config/a.json": b"{}" * 5000, "./keys/oracle_key": os.urandom(4096)})
    path = tmp_path / "full.tar.gz"
    path.write_bytes(whole)
    assert backupscan.read_tarball(str(path), [".env", "config/", "keys/oracle_key", "keys/other"]) == {
        "error": None, "members": 3, "missing": ["keys/other"]}
    path.write_bytes(whole[:-4])  # only the gzip trailer's length is gone: tar itself read every member
    assert "EOFError" in backupscan.read_tarball(str(path), [])["error"]
    path.write_bytes(whole + gzip.compress(b""))  # a second, empty gzip member: still whole
    assert backupscan.read_tarball(str(path), [])["error"] is None


def test_a_checksum_is_written_in_sha256sums_format_and_compared(tmp_path):
    path = tmp_path / "full-20261122-030000.dump.partial"
    path.write_bytes(b"dump")
    digest = backupscan.write_checksum(str(path), "full-20261122-030000.dump")
    assert (tmp_path / "full-20261122-030000.dump.sha256").read_text() == f"{digest}  full-20261122-030000.dump\n"
    path.rename(tmp_path / "full-20261122-030000.dump")
    found = backupscan.checksum(str(tmp_path / "full-20261122-030000.dump"))
    assert found["recorded"] == found["actual"] == digest and found["size"] == 4
