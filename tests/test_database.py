"""Weekly 2, Database Maintenance, and the daily DB-001, against a lab of their own (port base 27700): every
check passes on the healthy lab and fails with a useful message on its fault; every remediation mends
its fault (the re-check says fixed) and changes nothing in plan mode; a frozen postmaster fails DB-001
within its timeout instead of hanging the run; nothing waits on a lock past lock_timeout; the
clean-up deletes in counted batches, and only rows a backup holds. Over SSH (a box, port base 31700)
the database is reached through the run's SSH connection.

The tests that use `lab` or `box` start them (conftest marks them `lab`); the others need neither.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from configuration import ConfigError, load
from conftest import config_with, run_cadence
from core.vocabulary import ActionStatus, ExitStatus, Mode
from lab import Lab
from probes.database import Database, TableStats, bloat_percent, estimated_index_pages, pretty_size
from probes.host import box_of
from remediations import load_all
from remediations.runner import ActionContext

PORT_BASE = int(os.environ.get("TEST_DATABASE_LAB_PORT_BASE", "27700"))
BOX_PORT_BASE = int(os.environ.get("TEST_DATABASE_BOX_PORT_BASE", "31700"))
WEEKLY_CHECKS = 10  # DB-002, DB-003, DB-005 and DB-006 for trades and logs; DB-004 at two levels


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    instance = Lab(tmp_path_factory.mktemp("dblab"), PORT_BASE)
    instance.up()
    yield instance
    instance.down(purge=True)


@pytest.fixture
def healthy(lab):
    """No fault, and the suite with no memory of earlier runs (state, budgets)."""
    lab.clear()
    shutil.rmtree(lab.paths.root / "maintenance", ignore_errors=True)
    yield lab
    lab.clear()


def config(lab, tmp_path, **database) -> Path:
    """The lab's configuration, [database] keys changed for one test."""
    return config_with(lab.config_path, tmp_path / "maintenance.toml", {"database": database} if database else {})


def run(lab, tmp_path, *args, cadence="weekly", config_path=None):
    """A cadence's run; a weekly one without -k runs the database's checks only (not the backups')."""
    if cadence == "weekly" and "-k" not in args:
        args = (*args, "-k", "test_weekly_database")
    return run_cadence(config_path or config(lab, tmp_path), tmp_path / "reports", *args, cadence=cadence)


def probe(lab) -> Database:
    settings = load(lab.config_path)
    return Database(settings, box_of(settings))


def count(lab, query: str) -> int:
    with lab.cluster().connect() as conn:
        return conn.execute(query).fetchone()[0]


# -- the healthy lab


def test_healthy_lab_passes_every_database_check_and_records_its_readings(healthy, tmp_path):
    weekly = run(healthy, tmp_path)
    assert [r.properties["verdict"] for r in weekly.results] == ["passed"] * WEEKLY_CHECKS, weekly.output
    assert weekly.returncode == 0, weekly.output
    trades = weekly.only("DB-002", "trades").properties
    assert trades["dead_tuples"] == "0" and int(trades["live_tuples"]) > 500 and trades["last_vacuum"] != "never"
    assert weekly.only("DB-003", "logs").properties["last_analyze"] != "never"
    xid = weekly.only("DB-004", "warning").properties
    assert "trading_agent=" in xid["xid_age"] and xid["database_size"].endswith(("kB", "MB"))
    assert "trades_created_at" in weekly.only("DB-005", "trades").properties["index_bloat"]
    assert weekly.only("DB-006", "logs").properties["expired_rows"] == "0"

    daily = run(healthy, tmp_path, "-k", "test_database_answers", cadence="daily")
    answered = daily.only("DB-001").properties
    assert answered["verdict"] == "passed" and float(answered["database_answer_seconds"]) < 2, daily.output

    password = healthy.db_password()
    for report in (weekly.html, weekly.junit, daily.html, daily.junit):
        assert password not in report.read_text()


def test_one_connection_per_run_named_and_bounded(healthy):
    database = probe(healthy)
    try:
        assert database.answers() is None
        name, timeout, lock = database.execute(
            "SELECT application_name, current_setting('statement_timeout'), current_setting('lock_timeout') "
            "FROM pg_stat_activity WHERE pid = pg_backend_pid()", fetch="one")
        assert (name, timeout, lock) == ("trading-maintenance", "10s", "2s")
        first = database.connection()
        database.table("trades"), database.indexes("trades"), database.xid_ages()
        assert database.connection() is first  # every reading on the one connection
        assert healthy.db_password() not in repr(database)
    finally:
        database.close()
    assert first.closed


# -- each fault: found, planned without changing anything, then mended

FAULTS = {
    # fault: (check, instance, what the message says, the action)
    "dead-tuples": ("DB-002", "trades", "trades: 5000 dead rows", "vacuum_analyze"),
    "stale-statistics": ("DB-003", "logs", "3000 rows changed since the last ANALYZE", "vacuum_analyze"),
    "index-bloat": ("DB-005", "trades", "index(es) bloated over 50%", "reindex_bloated"),
    "rows-past-retention": ("DB-006", "trades", "row(s) with created_at older than 90 days", "delete_expired_rows"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_found_planned_and_mended(healthy, tmp_path, fault):
    check, instance, says, action = FAULTS[fault]
    healthy.inject(fault)

    planned = run(healthy, tmp_path, "--remediation=plan")
    found = planned.only(check, instance).properties
    assert found["verdict"] == "failed" and says in found["problem"], planned.output
    assert found["remediation_outcome"].startswith(f"{action}: planned: would "), found
    if fault in ("dead-tuples", "stale-statistics"):
        assert "autovacuum is off for" in found["problem"]  # the cause, for the operator
    others = [r for r in planned.results if r.properties["verdict"] != "passed"]
    assert {r.check_id for r in others} == {check}, [(r.name, r.properties.get("problem")) for r in others]
    assert healthy.active_faults() == [fault], "plan mode changed the database"

    applied = run(healthy, tmp_path, "--remediation=apply")
    mended = applied.only(check, instance).properties
    assert mended["verdict"] == "fixed" and mended["recheck"] == "fixed", applied.output
    assert mended["remediation_outcome"].startswith(f"{action}: done"), mended
    assert [r.properties["verdict"] for r in applied.results if r.check_id != check] == ["passed"] * (
        WEEKLY_CHECKS - len([r for r in applied.results if r.check_id == check])), applied.output
    assert healthy.mended_faults() == [fault] and healthy.active_faults() == []
    assert applied.returncode == ExitStatus.ALL_FIXED and applied.alerts == [], applied.output  # routine: nobody paged


def only_one_backup_taken_at(lab, taken: datetime) -> None:
    """The lab's newest full set alone in its directory, named as if started at `taken`: a set's time is its
    name's (what a copy or a touch of its files cannot change)."""
    from probes.backups import parse, stamp_of

    directory = lab.paths.backup_dir
    sets = parse(directory, {p.name: [p.stat().st_size, 0] for p in directory.iterdir() if p.is_file()})
    [kept] = [s for s in sets if s.kind == "full" and not s.failed and not s.partial][-1:]
    for backup in sets:
        for name in backup.files:
            path = directory / (name + backup.state)
            if backup is kept:
                path.rename(directory / name.replace(kept.stamp, stamp_of(taken.timestamp())))
            else:
                path.unlink()


def test_rows_past_retention_are_deleted_in_counted_batches_only_up_to_the_newest_backup(healthy, tmp_path):
    healthy.inject("rows-past-retention")
    taken = (datetime.now(UTC) - timedelta(days=100)).replace(microsecond=0)  # a set's name holds whole seconds
    only_one_backup_taken_at(healthy, taken)  # the newest backup is 100 days old
    older = count(healthy, f"SELECT count(*) FROM trades WHERE created_at < '{taken.isoformat()}'")
    expired = count(healthy, "SELECT count(*) FROM trades WHERE created_at < now() - interval '90 days'")
    assert 50 < older < expired

    done = run(healthy, tmp_path, "-k", "test_no_rows_past_retention and trades",
               config_path=config(healthy, tmp_path, delete_batch_rows=50))
    result = done.only("DB-006", "trades").properties
    batches = -(-older // 50)
    assert result["remediation_outcome"].startswith(
        f"delete_expired_rows: done: deleted {older} row(s) of trades older than 90 days in {batches} batch(es) "
        f"of at most 50; held by the backup {healthy.paths.backup_dir}/"), result
    assert f"{expired - older} newer than the backup kept until the next one" in result["remediation_outcome"]
    assert result["recheck"] == "still failing" and result["expired_rows"] == str(expired - older)
    assert count(healthy, "SELECT count(*) FROM trades WHERE created_at < now() - interval '90 days'") == expired - older


def test_rows_past_retention_are_kept_without_a_backup_that_holds_them(healthy, tmp_path):
    healthy.inject("rows-past-retention")
    only_one_backup_taken_at(healthy, datetime.now(UTC) - timedelta(days=200))  # before the oldest expired row (120 d)
    refused = run(healthy, tmp_path, "-k", "test_no_rows_past_retention and trades")
    result = refused.only("DB-006", "trades").properties
    assert result["verdict"] == "failed", refused.output
    assert "skipped: guard refused: the newest backup" in result["remediation_outcome"]
    assert "is older than the oldest expired row" in result["remediation_outcome"]

    for backup in healthy.paths.backup_dir.glob("*.dump"):
        backup.unlink()
    refused = run(healthy, tmp_path, "-k", "test_no_rows_past_retention and trades")
    outcome = refused.only("DB-006", "trades").properties["remediation_outcome"]
    assert f"no database backup (full-*.dump, incremental-*.dump, archive-*.dump) in {healthy.paths.backup_dir}" \
        in outcome
    assert count(healthy, "SELECT count(*) FROM trades WHERE created_at < now() - interval '90 days'") > 0


def test_transaction_id_age_over_a_level_fails_at_that_level(healthy, tmp_path):
    path = config_with(healthy.config_path, tmp_path / "xid.toml",
                       {"database": {"thresholds": {"xid_age_warning": 3, "xid_age_critical": 1_400_000_000}}})
    done = run(healthy, tmp_path, "-k", "transaction_id", config_path=path)
    warning, critical = done.only("DB-004", "warning").properties, done.only("DB-004", "critical").properties
    assert warning["verdict"] == "failed" and warning["severity"] == "warning", done.output
    assert warning["problem"].startswith("transaction ID age (age(datfrozenxid)) over the warning threshold 3: ")
    assert "trading_agent " in warning["problem"] and "VACUUM (FREEZE)" in warning["problem"]
    assert critical["verdict"] == "passed"


# -- a frozen postmaster


def test_a_frozen_postmaster_fails_db_001_within_its_timeout(healthy, tmp_path):
    healthy.inject("postgres-frozen")
    started = time.monotonic()
    done = run(healthy, tmp_path, "-k", "test_service_is_running or test_database_answers", "--remediation=plan",
               cadence="daily", config_path=config(healthy, tmp_path))
    took = time.monotonic() - started
    assert done.only("SVC-001", "postgresql").properties["verdict"] == "passed"  # supervisord: RUNNING
    result = done.only("DB-001").properties
    assert result["verdict"] == "failed", done.output
    assert "no answer within 5s while connecting" in result["problem"], result["problem"]
    assert float(result["database_answer_seconds"]) < 5 + 2 and took < 30
    assert result["remediation_outcome"].endswith("restart postgresql"), result  # planned: the lab is supervisord's


def test_a_connection_open_when_the_postmaster_freezes_is_cut_not_waited_on(healthy, tmp_path):
    settings = load(config(healthy, tmp_path, statement_timeout_seconds=1))
    database = Database(settings, box_of(settings))
    try:
        assert database.answers() is None
        healthy.inject("postgres-frozen")
        started = time.monotonic()
        problem = database.answers()
        took = time.monotonic() - started
        assert problem.endswith("no answer within 6s (the connection was cut)") and took < 8, (problem, took)
        healthy.clear("postgres-frozen")
        assert database.answers() is None  # a new connection, once it answers again
    finally:
        database.close()


# -- locks: the agent never waits behind the suite, nor the suite long behind the agent


def test_vacuum_gives_up_on_a_lock_after_lock_timeout(healthy, tmp_path):
    settings = load(config(healthy, tmp_path, lock_timeout_seconds=1))
    ctx = ActionContext(settings, box=box_of(settings), services=None, mode=Mode.APPLY,
                        database=Database(settings, box_of(settings)))
    held, release = threading.Event(), threading.Event()

    def hold_the_table():  # as the agent's ALTER TABLE would
        with healthy.cluster().connect() as conn, conn.transaction():
            conn.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_table)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        outcome = load_all()["vacuum_analyze"](ctx, table="trades")
        took = time.monotonic() - started
    finally:
        release.set()
        holder.join(10)
        ctx.database.close()
    assert outcome.status == ActionStatus.FAILED and "canceling statement due to lock timeout" in outcome.detail
    assert took < 3, took


# -- over SSH, on a box with systemd


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    from lab.box import Box

    why = Box.unavailable()
    if why:
        pytest.skip(f"no box here: {why}")
    instance = Box(tmp_path_factory.mktemp("dbbox") / "box-1", BOX_PORT_BASE)
    instance.up()
    yield instance
    instance.down()


@pytest.mark.lab
def test_over_ssh_the_database_is_reached_through_the_ssh_connection(box, tmp_path):
    box.clear()
    relaxed = config_with(box.paths.ssh_maintenance_config, tmp_path / "ssh.toml", {})
    weekly = run_cadence(relaxed, tmp_path / "reports", "-k", "test_weekly_database", cadence="weekly")
    assert [r.properties["verdict"] for r in weekly.results] == ["passed"] * WEEKLY_CHECKS, weekly.output
    state = Path(load(relaxed).policy.state_dir) / "ssh"
    assert not [p for p in state.iterdir() if "-pg" in p.name], "the forward's socket is left behind"

    box.inject("postgres-frozen")  # systemctl kill -s STOP: the unit stays active
    daily = run_cadence(relaxed, tmp_path / "reports", "-k", "test_service_is_running or test_database_answers",
                        cadence="daily")
    assert daily.only("SVC-001", "postgresql").properties["verdict"] == "passed", daily.output
    result = daily.only("DB-001").properties
    assert "over SSH: no answer within 5s while connecting" in result["problem"], result
    # systemd's restart sends SIGCONT after its stop signal: the restart mends it
    assert result["verdict"] == "fixed" and result["remediation_outcome"].startswith("restart_service: done"), result
    box.clear()


# -- without a lab: the estimate, the staleness rules, the configuration


def test_the_index_estimate_of_a_compact_index_is_its_size():
    # 100000 bigint keys, no nulls: 16 bytes an entry, 366 entries a page at fillfactor 90
    pages = estimated_index_pages(100_000, [8], [0.0], 90)
    assert pages == 1 + -(-100_000 // 366)
    assert bloat_percent(pages, pages) == 0 and bloat_percent(4 * pages, pages) == 75
    assert pretty_size(9000) == "9000 bytes" and pretty_size(1_700_000) == "1660 kB"


def stats(**values) -> TableStats:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    base = dict(table="t", live=100_000, dead=0, changed_since_analyze=0, last_vacuum=None, last_autovacuum=None,
                last_analyze=None, last_autoanalyze=now - timedelta(days=1), autovacuum_off="", size_bytes=0, now=now)
    return TableStats(**{**base, **values})


def test_statistics_are_stale_by_share_by_age_or_never_and_never_for_a_handful():
    limits = load_defaults().database.thresholds
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert stats(changed_since_analyze=20_000).stale(limits).startswith("20000 rows changed since")
    old = stats(changed_since_analyze=2_000, last_autoanalyze=now - timedelta(days=9))
    assert old.stale(limits).startswith("last analyzed 9.0 days ago")
    assert stats(changed_since_analyze=5_000, last_autoanalyze=None).stale(limits).startswith("never")
    assert stats(changed_since_analyze=999, last_autoanalyze=None).stale(limits) is None
    assert stats(changed_since_analyze=2_000).stale(limits) is None  # 2 %, analyzed yesterday


def load_defaults():
    from configuration.schema import Settings

    return Settings()


def test_reindex_is_refused_where_it_would_block_writes():
    database = SimpleNamespace(server_version=lambda: 110022)
    ctx = SimpleNamespace(settings=load_defaults(), database=database, mode=Mode.APPLY)
    outcome = load_all()["reindex_bloated"](ctx, table="trades")
    assert outcome.status == ActionStatus.SKIPPED
    assert "PostgreSQL 11.22 has no REINDEX CONCURRENTLY" in outcome.detail and "block writes" in outcome.detail


@pytest.mark.parametrize(("text", "says"), [
    ('[database]\ntables = ["trades; DROP TABLE x"]', "are not plain table names"),
    ('[[database.retention]]\ntable = "Trades"\nmax_age_days = 90', "database.retention.0.table"),
    ("[database.thresholds]\nxid_age_warning = 1500000000", "must not exceed xid_age_critical"),
    ("[database]\ndelete_batch_rows = 0", "database.delete_batch_rows"),
])
def test_bad_database_keys_are_refused_naming_them(tmp_path, text, says):
    path = tmp_path / "maintenance.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as refused:
        load(path)
    assert says in str(refused.value)
