"""Backups that restore, and recovery that cannot lose data: every backup check healthy and on its fault,
each remediation fixing its fault, take_backup starting what it stopped even when a step fails, and make
restore / make restore-config on a lab of their own (port base 27900) and on a box (31900). On that box, over
SSH as the README's maintenance user with the rules `make sudoers` printed there: a backup taken, read back and
drilled through the SSH forward; a read-back sudo refuses is UNKNOWN and sets nothing aside; a corrupt set is set
aside once and the next backup is taken.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from trail_helpers import acts, head_seq

from conftest import ROOT, config_with, run_cadence
from core.vocabulary import LedgerKind
from lab import Lab
from probes.backups import parse

pytestmark = pytest.mark.lab

PORT_BASE = int(os.environ.get("TEST_LAB_BACKUPS_PORT_BASE", "27900"))
BACKUP_CHECKS = "backup or tarball or dump"  # -k: the BAK checks of a cadence, nothing that reads the CPU
# fault, its check (and instance), what its message must say
FAULTS = [
    ("backup-missing", "BAK-001", "", "weekly", "is 7.0 days old, due after 6.75"),
    ("dump-truncated", "BAK-006", "[full]", "weekly", "does not match its checksum"),
    ("dump-killed", "BAK-006", "[full]", "weekly", "does not read to its end (pg_restore: error: could not read"),
    ("dump-zero", "BAK-006", "[full]", "weekly", ".dump is empty (0 bytes)"),
    ("checksum-mismatch", "BAK-006", "[full]", "weekly", "does not match its checksum"),
    ("tarball-corrupt", "BAK-004", "[full]", "weekly", ".tar.gz does not read to its end"),
    ("backups-past-retention", "BAK-007", "", "daily", "2 backup(s) past their kind's retention"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    instance = Lab(tmp_path_factory.mktemp("backuplab"), PORT_BASE)
    instance.up()
    yield instance
    instance.down(purge=True)


@pytest.fixture
def healthy(lab):
    """No fault, no memory of earlier runs (the remediation budget of the backups is per target)."""
    import shutil

    lab.clear()
    shutil.rmtree(lab.paths.root / "maintenance", ignore_errors=True)
    yield lab
    lab.clear()


def run(lab, tmp_path, cadence, *args, config=None):
    return run_cadence(config or lab.config_path, tmp_path / "reports", "-k", BACKUP_CHECKS, *args, cadence=cadence)


def own_findings(done) -> list[str]:
    """The checks that found something themselves (not one that names its root as the cause)."""
    return sorted(check for check, results in done.findings().items()
                  if any("caused_by" not in result.properties for result in results))


def sets(lab, kind=None):
    listing = {p.name: [p.stat().st_size, p.stat().st_mtime] for p in lab.paths.backup_dir.iterdir() if p.is_file()}
    return [s for s in parse(lab.paths.backup_dir, listing) if kind is None or s.kind == kind]


def good_fulls(lab):
    return [s.name for s in sets(lab, "full") if not s.failed and not s.partial]


def rows(lab, table="trades", dbname="trading_agent"):
    with lab.cluster().connect(dbname) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def databases(lab):
    with lab.cluster().connect("postgres") as conn:
        return sorted(r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate"))


def restore(config, what, backup, *args):
    return subprocess.run([sys.executable, "-m", "commands", "restore", what, "--config", str(config), "--backup", backup,
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


# -- the checks


def test_the_healthy_lab_passes_every_backup_check_and_the_drill_says_its_figures(healthy, tmp_path):
    for cadence, expected in (("weekly", 10), ("daily", 3), ("monthly", 2)):
        done = run(healthy, tmp_path, cadence)
        backup_checks = [r for r in done.results if r.check_id.startswith("BAK-")]
        assert len(backup_checks) == expected, done.output
        assert done.findings() == {} and done.returncode == 0, done.output
    drill = done.only("BAK-009").properties
    assert drill["drill_dump"].startswith("incremental-") and float(drill["drill_seconds"]) >= 0
    assert "trades: restored " in drill["drill_tables"] and "logs: restored " in drill["drill_tables"]
    assert databases(healthy) == ["postgres", "trading_agent"], "the drill's scratch database is dropped"


@pytest.mark.parametrize(("fault", "check", "instance", "cadence", "said"), FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_fails_its_check_saying_which_and_its_remediation_fixes_it(healthy, tmp_path, fault, check,
                                                                              instance, cadence, said):
    healthy.inject(fault)
    found = run(healthy, tmp_path, cadence, "--remediation=off")
    assert own_findings(found) == [check], found.output
    result = found.only(check, instance)
    assert result.properties["verdict"] == "failed" and said in result.message, result.message
    fixed = run(healthy, tmp_path, cadence)
    assert fixed.only(check, instance).properties["verdict"] == "fixed", fixed.output
    assert fault in healthy.mended_faults() and not healthy.active_faults(), fixed.output
    assert fixed.returncode == 10, fixed.output


def test_a_bad_newest_set_is_kept_aside_as_failed_and_never_counts_as_the_newest(healthy, tmp_path):
    healthy.inject("dump-zero")
    damaged = good_fulls(healthy)[-1]
    assert run(healthy, tmp_path, "weekly").returncode == 10
    aside = [s for s in sets(healthy, "full") if s.failed]
    assert [s.name for s in aside] == [damaged] and aside[0].files[f"{damaged}.dump"] == 0
    assert good_fulls(healthy)[-1] > damaged


def test_a_drill_of_a_dump_that_does_not_restore_fails_and_leaves_no_scratch_database(healthy, tmp_path):
    newest = max((s for s in sets(healthy) if not s.failed), key=lambda s: s.stamp)
    dump = newest.path("dump")
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    done = run(healthy, tmp_path, "monthly", "--remediation=off")
    drill = done.only("BAK-009")
    assert drill.properties["verdict"] == "failed" and f"restoring {newest.name}.dump: pg_restore into " \
        "trading_agent_drill_" in drill.message, drill.message
    assert databases(healthy) == ["postgres", "trading_agent"], "the scratch database is dropped whatever happens"


def test_backups_over_their_share_of_the_disk_are_found(healthy, tmp_path):
    tight = config_with(healthy.config_path, tmp_path / "tight.toml", {"backups": {"max_share_of_disk_percent": 1e-6}})
    done = run(healthy, tmp_path, "daily", config=tight)
    assert list(done.findings()) == ["BAK-008"], done.output
    assert "over their 1e-06% share" in done.only("BAK-008").message and "GiB of" in done.only("BAK-008").message


def test_take_backup_starts_what_it_stopped_when_a_step_fails_and_keeps_the_set_as_failed(healthy, tmp_path):
    from lab import agentstate

    broken = config_with(healthy.config_path, tmp_path / "broken.toml", {"backups": {"pg_dump": ["false"]}})
    healthy.inject("backup-missing")
    agent_run = agentstate.current_instance(healthy.paths.agent_instance)
    done = run(healthy, tmp_path, "weekly", config=broken)
    outcome = done.only("BAK-001").properties["remediation_outcome"]
    assert outcome.startswith("take_backup: failed") and "pg_dump failed (exit 1)" in outcome, outcome
    kept = list(healthy.paths.backup_dir.glob("full-*.tar.gz.failed"))  # it holds the agent's .env and keys
    assert len(kept) == 1 and f"kept as {kept[0].name}: pg_dump failed" in outcome, outcome  # the file that is there
    for program in ("trading-agent", "trading-dashboard"):
        assert healthy.program_state(program) == "RUNNING"
    assert agentstate.current_instance(healthy.paths.agent_instance) != agent_run, "the agent was stopped for it"
    assert [s.partial for s in sets(healthy, "full")].count(True) == 0
    [attempt] = [s for s in sets(healthy, "full") if s.failed]
    assert attempt.failed_attempt, "the suite's own failed attempt is recorded beside it, for the guard"
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in kept), [oct(p.stat().st_mode) for p in kept]
    again = run(healthy, tmp_path, "weekly", config=broken)
    outcome = again.only("BAK-001").properties["remediation_outcome"]
    assert "guard refused" in outcome and "one attempt per period" in outcome, outcome


def test_an_incremental_holds_what_changed_since_the_full_and_stops_nothing(healthy, tmp_path):
    from lab import agentstate

    for path in healthy.paths.backup_dir.glob("incremental-*"):
        path.unlink()
    agent_run = agentstate.current_instance(healthy.paths.agent_instance)
    full = [s for s in sets(healthy, "full") if not s.failed][-1]
    for path in healthy.paths.opt_dir.rglob("*"):  # as a real box's: unchanged since before the full backup
        if path.is_file() and healthy.paths.backup_dir not in path.parents:
            os.utime(path, (full.taken_at - 600, full.taken_at - 600))
    (healthy.paths.config_dir / "changed-today.json").write_text("{}\n")
    done = run(healthy, tmp_path, "daily")
    assert done.only("BAK-002").properties["verdict"] == "fixed", done.output
    assert agentstate.current_instance(healthy.paths.agent_instance) == agent_run, "an incremental stops nothing"
    [taken] = [s for s in sets(healthy, "incremental") if not s.failed]
    import tarfile

    with tarfile.open(taken.path("tar.gz")) as tar:
        names = [member.name for member in tar.getmembers() if member.isfile()]
    assert "./config/changed-today.json" in names and "./.env" not in names, names


# -- recovery


def test_a_truncated_dump_is_refused_and_the_live_database_is_untouched(healthy, tmp_path):
    healthy.inject("dump-truncated")
    before, dbs = rows(healthy), databases(healthy)
    newest = good_fulls(healthy)[-1]
    done = restore(healthy.config_path, "full", newest)
    assert done.returncode == 4, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "NOT restored, the backup was refused" in done.stderr
    assert "does not read to its end" in done.stderr
    assert rows(healthy) == before and databases(healthy) == dbs
    assert all(healthy.program_state(p) == "RUNNING" for p in ("trading-agent", "trading-dashboard", "ssh-tunnel"))


def test_the_plan_prints_each_step_and_changes_nothing(healthy):
    newest = good_fulls(healthy)[-1]
    before = head_seq(healthy.paths.root / "reports")  # the lab's [reports] dir: where its ledger is
    done = restore(healthy.config_path, "full", newest, "--plan")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 8 and lines[0].endswith("held") and all("] would " in line for line in lines[1:]), lines
    assert "ALTER DATABASE trading_agent RENAME TO trading_agent_before_" in done.stdout
    assert databases(healthy) == ["postgres", "trading_agent"]
    assert not acts(healthy.paths.root / "reports", LedgerKind.RESTORE, after=before), "a plan records nothing"


def test_restore_brings_back_deleted_rows_and_a_deleted_config_file_keeping_the_old_database(healthy):
    newest = good_fulls(healthy)[-1]
    whole = rows(healthy)
    with healthy.cluster().connect() as conn:
        conn.execute("DELETE FROM trades WHERE id % 2 = 0")
    deleted = rows(healthy)
    healthy.paths.trading_config.unlink()
    seq = head_seq(healthy.paths.root / "reports")
    done = restore(healthy.config_path, "full", newest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(healthy) >= whole > deleted and healthy.paths.trading_config.exists()
    [before] = [name for name in databases(healthy) if name.startswith("trading_agent_before_")]
    assert rows(healthy, dbname=before) == deleted, "the database as it was is kept whole"
    assert f'DROP DATABASE "{before}"' in done.stdout
    assert all(healthy.program_state(p) == "RUNNING" for p in ("trading-agent", "trading-dashboard", "ssh-tunnel"))
    trail = acts(healthy.paths.root / "reports", LedgerKind.RESTORE, after=seq)
    assert [entry["status"] for entry in trail] == ["done"] * 8 and {e["event"] for e in trail} == {"restore-full"}


def test_restore_config_puts_back_the_env_and_config_and_restarts_the_agent(healthy):
    newest = good_fulls(healthy)[-1]
    env = healthy.paths.env_file.read_text()
    healthy.paths.env_file.write_text("BROKEN=1\n")
    healthy.paths.trading_config.unlink()
    done = restore(healthy.config_path, "config", newest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert healthy.paths.env_file.read_text() == env and healthy.paths.trading_config.exists()
    assert oct(healthy.paths.env_file.stat().st_mode & 0o777) == "0o600"
    kept = list(healthy.paths.backup_dir.glob("config-before-*.tar.gz"))
    assert len(kept) == 1, "the .env and config/ as they were are kept"
    assert "restart trading-agent, trading-dashboard and check them running: done" in done.stdout


def test_a_failed_or_unknown_backup_is_refused_by_name(healthy):
    done = restore(healthy.config_path, "full", "full-20200101-000000")
    assert done.returncode == 4 and "no backup full-20200101-000000" in done.stderr
    done = restore(healthy.config_path, "config", "full-20200101-000000.tar.gz.failed")
    assert done.returncode == 4 and "never verified" in done.stderr


# -- on a box: a backup taken by the suite on it, then both recoveries; and the same over SSH as the README's
# maintenance user, with the sudo rules `make sudoers` printed on the box (lab/box: the box programs installed)

BOX_PORT_BASE = int(os.environ.get("TEST_BOX_BACKUPS_PORT_BASE", "31900"))
BACKUP_PROGRAM = "/usr/local/libexec/trading-maintenance/backup"


@pytest.fixture(scope="module")
def backup_box(tmp_path_factory):
    from lab.box import Box

    why = Box.unavailable()
    if why is not None:
        pytest.skip(f"no box here: {why}")
    box = Box(tmp_path_factory.mktemp("backupbox") / "box", BOX_PORT_BASE)
    box.up()
    yield box
    box.down()


@pytest.fixture
def healthy_box(backup_box):
    """The box's healthy backups (box.clear() writes them again), no fault, and no memory of earlier runs."""
    import shutil

    backup_box.clear()
    for state in (backup_box.paths.maintenance_dir, backup_box.paths.root / "outside"):
        shutil.rmtree(state, ignore_errors=True)
    yield backup_box


def over_ssh(box, tmp_path, cadence, *args):
    """A run from this machine, every probe and remediation on the box over SSH as trading-maint."""
    return run_cadence(box.paths.ssh_maintenance_config, tmp_path / "reports", *args, cadence=cadence)


def sudo_lines(box, cursor: str) -> str:
    """What sudo logged on the box since `cursor`: each command the maintenance user ran as root."""
    return box.run(["journalctl", "--no-pager", "-q", "--after-cursor", cursor, "-t", "sudo", "-o", "cat"]).stdout


def without_the_backup_rules(text: str) -> str:
    """The printed rules less every rule of the backup program (as a box where they were never installed)."""
    alias = "Cmnd_Alias TRADING_MAINTENANCE = "
    head, _, rest = text.partition(alias)
    body, _, user_line = rest.rpartition("\ntrading-maint ")
    separator = ", \\\n    "
    commands = [command for command in body.split(separator) if not command.startswith(BACKUP_PROGRAM)]
    return head + alias + separator.join(commands) + "\ntrading-maint " + user_line


def write_rules(box, text: str) -> None:
    """The box's sudoers drop-in rewritten in place (it is bind-mounted into the box: same inode)."""
    rules = box.paths.sudoers_dir / "trading-maint"
    os.chmod(rules, 0o640)
    rules.write_text(text)
    os.chmod(rules, 0o440)


def test_restore_on_a_box_from_a_backup_the_suite_took_on_it(healthy_box):
    _restore_on(healthy_box)


def test_over_ssh_the_maintenance_user_takes_reads_back_and_drills_a_backup(healthy_box, tmp_path):
    box = healthy_box
    for path in box.paths.backup_dir.glob("full-*"):
        path.unlink()
    cursor = box.journal_cursor()
    taken = over_ssh(box, tmp_path, "weekly", "-k", "test_full_backup_is_recent")
    assert taken.only("BAK-001").properties["verdict"] == "fixed", taken.output
    [full] = good_fulls(box)
    written = [p for p in box.paths.backup_dir.glob(f"{full}.*")]
    assert len(written) == 4 and all(p.stat().st_mode & 0o777 == 0o600 and p.stat().st_uid == 0 for p in written)
    said = sudo_lines(box, cursor)  # as trading-maint, through its rules: the program's write, then its finish
    assert said.count("trading-maint : ") >= 2 and f"USER=root ; COMMAND={BACKUP_PROGRAM} write full " in said, said
    assert f"COMMAND={BACKUP_PROGRAM} finish " in said, said
    read = over_ssh(box, tmp_path, "weekly", "-k", BACKUP_CHECKS)
    assert read.findings() == {} and read.returncode == 0, read.output
    drilled = over_ssh(box, tmp_path, "monthly", "-k", "test_newest_dump_restores")
    drill = drilled.only("BAK-009").properties
    assert drill["verdict"] == "passed" and drill["drill_dump"] == f"{full}.dump", drilled.output
    assert "trades: restored " in drill["drill_tables"]
    with box.cluster().connect("postgres") as conn:
        assert not conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%drill%'").fetchall()
    assert not list((box.paths.root / "outside" / "state" / "ssh").glob("*restore*")), "the forward's socket is gone"


def test_over_ssh_a_read_back_sudo_refuses_is_unknown_and_no_valid_set_is_set_aside(healthy_box, tmp_path):
    box = healthy_box
    for newer in [s for s in sets(box, "incremental") if time.time() - s.taken_at < 86400]:
        for name in newer.files:  # the newest incremental is now a day old: due
            (box.paths.backup_dir / name).unlink()
    newest = [s.name for s in sets(box, "incremental")][-1]
    before = sorted(p.name for p in box.paths.backup_dir.iterdir())
    rules = (box.paths.sudoers_dir / "trading-maint").read_text()
    write_rules(box, without_the_backup_rules(rules))
    try:
        read = over_ssh(box, tmp_path, "weekly", "-k", "tarball or dump")
        looked = [r for r in read.results if r.properties["verdict"] != "skipped"]
        assert looked and all(r.properties["verdict"] == "unknown" for r in looked), read.output
        said = [r.message for r in looked if r.check_id == "BAK-004"]
        assert len(said) == 3 and all("sudo refused" in m and "make sudoers" in m for m in said), said
        due = over_ssh(box, tmp_path, "daily", "-k", "test_incremental_backup_is_recent")
        outcome = due.only("BAK-002").properties["remediation_outcome"]
        assert outcome.startswith("take_backup: could not act") and "sudo refused" in outcome, outcome
        assert sorted(p.name for p in box.paths.backup_dir.iterdir()) == before, "nothing renamed, nothing written"
    finally:
        write_rules(box, rules)
    again = over_ssh(box, tmp_path, "daily", "-k", "test_incremental_backup_is_recent")
    assert again.only("BAK-002").properties["verdict"] == "fixed", again.output
    assert newest in [s.name for s in sets(box, "incremental") if not s.failed], "the valid set was read, and kept"
    assert not [s for s in sets(box) if s.failed]


def test_over_ssh_a_corrupt_set_is_set_aside_once_and_the_next_backup_is_taken(healthy_box, tmp_path):
    import re

    box = healthy_box
    corrupt = good_fulls(box)[-1]
    dump = box.paths.backup_dir / f"{corrupt}.dump"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    done = over_ssh(box, tmp_path, "weekly", "-k", BACKUP_CHECKS)
    result = done.only("BAK-006", "full")
    outcome = result.properties["remediation_outcome"]
    assert result.properties["verdict"] == "fixed", done.output
    named = re.findall(r"\b(full-[0-9-]+\.[a-z0-9.]+\.failed)\b", outcome)
    assert f"set aside {corrupt} as " in outcome and named, outcome
    assert all((box.paths.backup_dir / name).exists() for name in named), "the message names the files there"
    [aside] = [s for s in sets(box) if s.failed]
    assert aside.name == corrupt and not aside.failed_attempt, "set aside after reading it: no failed attempt"
    newer = good_fulls(box)[-1]
    assert newer > corrupt
    for path in box.paths.backup_dir.glob(f"{newer}.*"):  # the week's full is due again
        path.unlink()
    next_one = over_ssh(box, tmp_path, "weekly", "-k", "test_full_backup_is_recent")
    assert next_one.only("BAK-001").properties["verdict"] == "fixed", next_one.output
    assert [s.name for s in sets(box) if s.failed] == [corrupt], "set aside once"
def _inside(box, *argv, timeout=300):
    done = box.run(["sh", "-c", f"cd {ROOT} && exec \"$@\"", "sh", *argv], timeout=timeout)
    return done


def _restore_on(box) -> None:
    config = str(box.inside_path(box.config_path))
    before = head_seq(box.paths.reports_dir)  # the box's [reports] dir, seen from outside: where its ledger is
    backups = box.paths.backup_dir
    for path in backups.glob("full-*"):
        path.unlink()  # no full backup: the weekly run takes one, on the box, with systemd stopping the agent
    taken = _inside(box, sys.executable, "-m", "pytest", "-m", "weekly", f"--maintenance-config={config}",
                    f"--reports-dir={box.inside_path(box.paths.reports_dir)}", "-k", "test_full_backup_is_recent")
    assert taken.returncode == 10, taken.stdout + taken.stderr
    [full] = sorted({p.name.split(".")[0] for p in backups.glob("full-*.tar.gz")})
    assert (backups / f"{full}.dump").stat().st_size > 0
    states = box.unit_states(["trading-agent", "trading-dashboard"])
    assert all(state["ActiveState"] == "active" for state in states.values()), states
    with box.cluster().connect() as conn:
        whole = conn.execute("SELECT count(*) FROM trades").fetchone()[0]
        conn.execute("DELETE FROM trades WHERE id % 3 = 0")
    box.paths.trading_config.unlink()
    config_only = _inside(box, sys.executable, "-m", "commands", "restore", "config", "--config", config, "--backup", full)
    assert config_only.returncode == 0, config_only.stdout + config_only.stderr
    assert box.paths.trading_config.exists()
    done = _inside(box, sys.executable, "-m", "commands", "restore", "full", "--config", config, "--backup", full)
    assert done.returncode == 0, done.stdout + done.stderr
    with box.cluster().connect() as conn:
        assert conn.execute("SELECT count(*) FROM trades").fetchone()[0] >= whole
    states = box.unit_states(["trading-agent", "trading-dashboard", "ssh-tunnel"])
    assert all(state["ActiveState"] == "active" for state in states.values()), states
    assert {line["event"] for line in acts(box.paths.reports_dir, LedgerKind.RESTORE, after=before)} == {
        "restore-config", "restore-full"}
