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
from configuration.backups import KINDS
from probes.backups import BackupProbe, parse, stamp_of
from probes.host import box_of
from probes.remote import backupscan
from probes.restoredb import Table, compare

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


# ---- the backup program (probes/remote/backupscan.py), the guard, and what could not be read (issue 18) ---------------
# `[backups] pg_restore` stands in here as a small command (`true`, or one that says what pg_restore says when it may
# not read the file): no server or dump is needed to show what the program decides from its answer.

PERMISSION_REFUSED = ["sh", "-c", "echo 'pg_restore: error: could not open input file \"$1\": Permission denied' >&2; "
                                  "exit 1", "pg_restore"]
SUDO_REFUSED = ["sh", "-c", "echo 'sudo: a password is required' >&2; exit 1", "sudo"]


def program_config(tmp_path, pg_restore=("true",)):
    import json

    return load(write_config(tmp_path, f"pg_restore = {json.dumps(list(pg_restore))}\n"))


def real_set(directory, kind: str, age_days: float, state: str = "", with_checksums: bool = True) -> str:
    """A set with a real tarball holding the files that matter, a stand-in dump, and their checksums."""
    import hashlib

    moment = time.time() - age_days * DAY
    name = f"{kind}-{stamp_of(moment)}"
    parts = {"tar.gz": _tarball({"./.env": b"A=1\n", "./config/a.json": b"{}", "./keys/oracle_key": b"k"}),
             "dump": b"PGDMP stands in for a dump"}
    for part, data in parts.items():
        (directory / f"{name}.{part}{state}").write_bytes(data)
        if with_checksums:
            digest = hashlib.sha256(data).hexdigest()
            (directory / f"{name}.{part}.sha256{state}").write_text(f"{digest}  {name}.{part}\n")
    return name


def names_in(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture
def backup_dir(tmp_path):
    (tmp_path / "backups").mkdir()
    return tmp_path / "backups"


def test_the_program_sets_aside_only_a_set_that_reads_back_wrong_and_records_no_attempt(tmp_path, backup_dir):
    from probes.backups import BackupProgram

    settings = program_config(tmp_path)
    program = BackupProgram(box_of(settings), settings)
    good, bad = real_set(backup_dir, "full", 2), real_set(backup_dir, "full", 1)
    (backup_dir / f"{bad}.dump").write_bytes(b"cut")
    assert program("set-aside", {"name": good}) == {"problems": [], "kept_as": []}
    done = program("set-aside", {"name": bad})
    assert done["kept_as"] == [f"{bad}.dump.failed", f"{bad}.dump.sha256.failed", f"{bad}.tar.gz.failed",
                               f"{bad}.tar.gz.sha256.failed"]
    assert all((backup_dir / name).exists() for name in done["kept_as"]), "the names said are the files there"
    assert "does not match its checksum" in done["problems"][0]
    probe = BackupProbe(box_of(settings), settings)
    assert [s.name for s in probe.good("full")] == [good]
    assert [s.failed_attempt for s in probe.all_sets() if s.failed] == [False], "set aside is no failed attempt"


@pytest.mark.parametrize(("command", "cause"), [(PERMISSION_REFUSED, "permission denied"),
                                                (SUDO_REFUSED, "sudo refused")])
def test_a_read_back_refused_for_access_is_could_not_read_and_renames_nothing(tmp_path, backup_dir, command, cause):
    from core.unread import CouldNotRead
    from probes.backups import BackupProgram

    settings = program_config(tmp_path, command)
    name = real_set(backup_dir, "incremental", 1)
    before = names_in(backup_dir)
    for operation in ("set-aside", "read"):
        with pytest.raises(CouldNotRead) as refused:
            BackupProgram(box_of(settings), settings)(operation, {"name": name})
        assert refused.value.cause == cause and name in refused.value.what, refused.value
    with pytest.raises(CouldNotRead):
        BackupProbe(box_of(settings), settings).dump_problems(BackupProbe(box_of(settings), settings).newest(
            "incremental"))
    assert names_in(backup_dir) == before, "a set that could not be read is never set aside"


def test_a_take_that_fails_leaves_its_files_and_the_attempt_as_failed(tmp_path, backup_dir):
    from probes.backups import BackupProgram

    settings = load(write_config(tmp_path, 'pg_dump = ["false"]\n'))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".env").write_text("A=1\n")
    done = BackupProgram(box_of(settings), settings)("write", kind="full")
    name = done["name"]
    assert done["problems"] == ["pg_dump failed (exit 1): no output"] and done["kept_as"] == [f"{name}.tar.gz.failed"]
    assert names_in(backup_dir) == [f"{name}.attempt.failed", f"{name}.tar.gz.failed"]
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in backup_dir.iterdir())
    [attempt] = BackupProbe(box_of(settings), settings).failed_attempts("full")
    assert attempt.name == name


def guard(settings, kind="full"):
    from types import SimpleNamespace

    from remediations.backups import _guard

    return _guard(SimpleNamespace(settings=settings, box=box_of(settings)), kind)


def test_the_guard_counts_only_the_suites_own_failed_attempts_by_when_they_were_made(tmp_path, backup_dir):
    settings = program_config(tmp_path)
    set_aside = real_set(backup_dir, "full", 1, ".failed")  # read back wrong and set aside by the program
    assert guard(settings) is None, "a set set aside after verification never stops the next backup"
    attempt = real_set(backup_dir, "full", 2, ".failed")
    (backup_dir / f"{attempt}.attempt.failed").write_text("{}")
    refused = guard(settings)
    assert refused.startswith(f"the full backup attempt {attempt} failed 2.0 days ago") and set_aside not in refused
    assert guard(settings, "incremental") is None, "a failed full stops only the next full"
    for path in backup_dir.glob(f"{attempt}.*"):  # an attempt made 7 days ago, its files touched today
        path.rename(backup_dir / path.name.replace(attempt, f"full-{stamp_of(time.time() - 7 * DAY)}"))
    assert guard(settings) is None, "counted by when the attempt was made (its name), past the kind's period"


def test_program_commands_are_what_the_program_parses_and_refuses_the_live_database(tmp_path, backup_dir):
    from probes.backups import PROGRAM, program_commands

    settings = program_config(tmp_path)
    commands = program_commands(settings, ("write", "finish", "set-aside", "read", "prune", "restore-into"))
    assert [argv[1] for argv in commands] == ["write"] * 3 + ["finish", "set-aside", "read", "prune", "restore-into"]
    write = backupscan.parse_arguments(commands[0][1:])
    assert (commands[0][0], write.kind, write.dir, write.app_dir, write.exclude, write.command) == (
        PROGRAM, "full", str(backup_dir), str(tmp_path / "app"), ["node_modules", "./logs", "./backups"],
        ["sudo", "-u", "postgres", "pg_dump"])
    name = real_set(backup_dir, "full", 1)
    restore_into = commands[-1][1:]
    for database in ("trading_agent", "trading_agent_drill_x; DROP", "postgres"):
        with pytest.raises(backupscan.Refused, match="never restored into"):
            backupscan.operate(restore_into, {"name": name, "database": database})
    with pytest.raises(backupscan.Refused, match="is not a backup set's name"):
        backupscan.operate(commands[5][1:], {"name": "../../etc/shadow"})
    assert backupscan.KINDS == KINDS


def test_over_ssh_a_refusal_or_a_missing_program_is_said_with_its_fix(tmp_path):
    import subprocess
    from types import SimpleNamespace

    from core.unread import CouldNotRead
    from core.vocabulary import Unread
    from probes.backups import INSTALL_FIX, SUDO_FIX, BackupProgram

    settings = program_config(tmp_path)

    def refusing(argv, **_):
        raise CouldNotRead(Unread.SUDO_REFUSED, "`sudo -n ...`", "sudo: a password is required", "add it", "nuc")

    def missing(argv, **_):
        return subprocess.CompletedProcess(argv, 1, "", f"sudo: {argv[0]}: command not found\n")

    for run, fix in ((refusing, SUDO_FIX), (missing, INSTALL_FIX)):
        box = SimpleNamespace(local=False, name="nuc", run=run)
        with pytest.raises(CouldNotRead) as refused:
            BackupProgram(box, settings)("read", {"name": "full-20261122-030000"})
        assert refused.value.cause == Unread.SUDO_REFUSED and refused.value.fix == fix
        assert refused.value.what.startswith("full-20261122-030000 (/usr/local/libexec/trading-maintenance/backup read")


def test_the_database_forward_lives_in_the_state_directory_or_is_refused_naming_the_key(tmp_path_factory):
    from probes.database import SocketPathTooLong, forward_socket

    tmp_path = tmp_path_factory.mktemp("fw")  # short: under xdist a test's own tmp_path can leave no room

    settings = load(write_config(tmp_path, f'[policy]\nstate_dir = "{tmp_path}/state"\n'))
    socket = forward_socket(settings, "nuc-1", "pg")
    assert socket.parent.parent == tmp_path / "state" / "ssh" and socket.name == ".s.PGSQL.5432"
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    settings = load(write_config(tmp_path, f'[policy]\nstate_dir = "{deep}"\n'))
    with pytest.raises(SocketPathTooLong, match=r"set a shorter \[policy\] state_dir"):
        forward_socket(settings, "nuc-1", "pg")


def test_the_row_clean_up_counts_on_the_newest_set_that_reads_back_not_the_newest_file(tmp_path, backup_dir):
    from types import SimpleNamespace

    from remediations.database import backup_covering

    settings = program_config(tmp_path)
    older = real_set(backup_dir, "full", 3)
    newer = real_set(backup_dir, "incremental", 1)
    (backup_dir / f"{newer}.dump").write_bytes(b"cut short")  # the newest dump, and the newest file
    expired = SimpleNamespace(oldest=datetime.fromtimestamp(time.time() - 10 * DAY, UTC))
    backup, refusal = backup_covering(SimpleNamespace(settings=settings, box=box_of(settings)), expired)
    assert refusal is None and backup.name == older
    for name in (f"{older}.dump", f"{newer}.dump"):
        (backup_dir / name).write_bytes(b"cut short")
    backup, refusal = backup_covering(SimpleNamespace(settings=settings, box=box_of(settings)), expired)
    assert backup is None and refusal.startswith("no database backup") and "does not match its checksum" in refusal
