"""Weekly Maintenance 2: Database Maintenance (the guide's section of that name).

The guide runs `VACUUM ANALYZE` and `REINDEX DATABASE` every week whatever the state, and deletes old
trades and logs unconditionally. Here each is a finding first: dead rows or stale statistics call for
VACUUM ANALYZE of that table, a bloated index for REINDEX INDEX CONCURRENTLY of that index, rows past
retention for their deletion in batches, only of rows a backup holds. The readings the guide prints
(the database's size) and those an operator needs to judge autovacuum are recorded in both reports.
Thresholds: `[database.thresholds]`, the tables: `[database] tables` and `[[database.retention]]`.
"""

import pytest

from probes.database import pretty_size

pytestmark = pytest.mark.weekly


def _moment(value) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


@pytest.mark.check("DB-002", severity="warning", why="dead rows autovacuum has not removed slow every query of the "
                   "table and grow it on disk", routine=True)
@pytest.mark.remediate("vacuum_analyze")
def test_dead_rows_below_threshold(database, settings, table, record_property):
    stats = database.table(table)
    limits = settings.database.thresholds
    record_property("dead_tuples", stats.dead)
    record_property("dead_tuple_percent", f"{stats.dead_percent:.1f}")
    record_property("live_tuples", stats.live)
    record_property("table_size", pretty_size(stats.size_bytes))
    record_property("last_vacuum", _moment(stats.last_vacuum))
    record_property("last_autovacuum", _moment(stats.last_autovacuum))
    too_many = stats.dead_percent > limits.max_dead_tuple_percent and stats.dead >= limits.min_changed_rows
    autovacuum = f"; {stats.autovacuum_off}" if stats.autovacuum_off else ""
    assert not too_many, (
        f"{table}: {stats.dead} dead rows, {stats.dead_percent:.1f}% of the table (threshold "
        f"{limits.max_dead_tuple_percent:g}%, from {limits.min_changed_rows} rows); last vacuumed "
        f"{_moment(stats.vacuumed)}{autovacuum}")


@pytest.mark.check("DB-003", severity="warning", why="stale statistics make the planner choose slow plans for the "
                   "agent's queries", routine=True)
@pytest.mark.remediate("vacuum_analyze")
def test_statistics_are_fresh(database, settings, table, record_property):
    stats = database.table(table)
    record_property("last_analyze", _moment(stats.last_analyze))
    record_property("last_autoanalyze", _moment(stats.last_autoanalyze))
    record_property("changed_since_analyze", stats.changed_since_analyze)
    problem = stats.stale(settings.database.thresholds)
    autovacuum = f"; {stats.autovacuum_off}" if stats.autovacuum_off else ""
    assert problem is None, f"{table}: statistics are stale: {problem}{autovacuum}"


@pytest.mark.parametrize("level", ["warning", "critical"])
@pytest.mark.check("DB-004", why="at about 2.1 billion transactions PostgreSQL stops accepting writes to prevent "
                   "wraparound: autovacuum must freeze rows long before")
def test_transaction_id_age_below_threshold(database, settings, level, record_property):
    ages = database.xid_ages()
    record_property("database_size", pretty_size(database.size_bytes()))
    record_property("xid_age", " ".join(f"{name}={age}" for name, age in ages.items()))
    limit = getattr(settings.database.thresholds, f"xid_age_{level}")
    over = {name: age for name, age in ages.items() if age > limit}
    assert not over, (
        f"transaction ID age (age(datfrozenxid)) over the {level} threshold {limit:,}: "
        + ", ".join(f"{name} {age:,}" for name, age in over.items())
        + ": find what holds autovacuum back (long transactions, prepared transactions, replication slots), "
          "then VACUUM (FREEZE) that database")


@pytest.mark.check("DB-005", severity="warning", why="a bloated index is larger and slower to scan than it needs "
                   "to be; the guide rebuilds every index every week instead", routine=True)
@pytest.mark.remediate("reindex_bloated")
def test_indexes_not_bloated(database, settings, table, record_property):
    limits = settings.database.thresholds
    indexes = database.indexes(table)
    record_property("index_bloat", "; ".join(
        f"{index.index} {pretty_size(index.size_bytes)} "
        + (f"{index.bloat_percent:.0f}% bloat" if index.bloat_percent is not None else index.why_no_estimate)
        for index in indexes) or "no B-tree index")
    bloated = database.bloated(indexes)
    assert not bloated, (
        f"{table}: index(es) bloated over {limits.max_index_bloat_percent:g}% (estimated, from "
        f"{limits.min_index_size_mb:g} MB on): " + ", ".join(
            f"{index.index} {index.bloat_percent:.0f}% of {pretty_size(index.size_bytes)} "
            f"(~{pretty_size(index.bloat_bytes)} to gain)" for index in bloated))


@pytest.mark.check("DB-006", severity="info", why="the guide keeps trades 90 days and logs 30: older rows only "
                   "grow the database and its backups", routine=True)
@pytest.mark.remediate("delete_expired_rows")
def test_no_rows_past_retention(database, settings, table_retention, record_property):
    rule = next(rule for rule in settings.database.retention if rule.table == table_retention)
    expired = database.expired(rule)
    record_property("expired_rows", expired.count)
    assert expired.count == 0, (
        f"{rule.table}: {expired.count} row(s) with {rule.column} older than {rule.max_age_days} days "
        f"(before {_moment(expired.cutoff)}), the oldest from {_moment(expired.oldest)}")
