"""The guide's weekly database maintenance, done where a check found it needed (Weekly 2).

Every action goes through the run's database connection (probes/database.py), with its statement and
lock timeouts: `VACUUM (ANALYZE)` of one table, `REINDEX INDEX CONCURRENTLY` of a table's bloated
indexes (neither blocks the agent's reads and writes; a server older than 12 has no concurrent REINDEX
and is refused, since a plain one would block writes for its whole duration), and the deletion of rows
past retention in short batches, each its own transaction, only of rows older than the newest backup that reads
back whole (its dump's checksum, and pg_restore reading every block): a newer dump that does not holds nothing.
Each names its target (`database trading_agent table trades`), so the per-target budget applies.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from configuration.backups import KINDS
from core.vocabulary import ActionStatus
from probes.backups import DUMP, BackupProbe, BackupSet
from probes.database import DatabaseUnavailable, identifier, pretty_size
from remediations import Outcome, remediation

CONCURRENT_REINDEX = 120000  # server_version_num of PostgreSQL 12
BACKUP_PATTERNS = [f"{kind}-*.{DUMP}" for kind in KINDS]  # the dumps the backups take (remediations/backups.py)


def _configured(ctx, table: str) -> str | None:
    if table not in ctx.settings.database.tables:
        return f"{table!r} is not one of [database] tables {ctx.settings.database.tables}"
    return None


def _table_target(ctx, table: str = "", table_retention: str = "") -> str:
    return f"database {ctx.settings.database.dbname} table {table or table_retention}"


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _failed(action: str, error: Exception, done: str = "") -> Outcome:
    return Outcome(action, ActionStatus.FAILED, f"{done}{error}")


# -- VACUUM ANALYZE


def _vacuum_statement(table: str):
    from psycopg import sql

    return sql.SQL("VACUUM (ANALYZE) {}").format(identifier(table))


def _plan_vacuum(ctx, table: str) -> str:
    stats = ctx.database.table(table)
    return (f"run VACUUM (ANALYZE) {table} on {ctx.settings.database.dbname}: {stats.dead} dead rows, "
            f"{stats.changed_since_analyze} changed since the last ANALYZE")


@remediation("vacuum_analyze", touches="one configured table: VACUUM (ANALYZE), which blocks no read or write",
             plan=_plan_vacuum, guard=_configured, target=_table_target)
def vacuum_analyze(ctx, table: str) -> Outcome:
    database = ctx.database
    started = time.monotonic()
    try:
        database.maintenance(_vacuum_statement(table))
        after = database.table(table)
    except DatabaseUnavailable as error:
        return _failed("vacuum_analyze", error, f"VACUUM (ANALYZE) {table}: ")
    return Outcome("vacuum_analyze", ActionStatus.DONE,
                   f"VACUUM (ANALYZE) {table} took {time.monotonic() - started:.1f}s: {after.dead} dead rows left, "
                   f"{after.live} live, {after.changed_since_analyze} changed since ANALYZE")


# -- REINDEX CONCURRENTLY


def _reindexable(ctx, table: str) -> str | None:
    refusal = _configured(ctx, table)
    if refusal:
        return refusal
    version = ctx.database.server_version()
    if version < CONCURRENT_REINDEX:
        return (f"PostgreSQL {version // 10000}.{version % 10000} has no REINDEX CONCURRENTLY (12 and later): a "
                f"plain REINDEX would block writes to {table} for its whole duration; rebuild it in a maintenance "
                f"window")
    return None


def _reindex_statement(index):
    from psycopg import sql

    return sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(index.schema, index.name))


def _plan_reindex(ctx, table: str) -> str:
    bloated = ctx.database.bloated(ctx.database.indexes(table))
    steps = [f"run REINDEX INDEX CONCURRENTLY {index.index} ({index.bloat_percent:.0f}% of "
             f"{pretty_size(index.size_bytes)})" for index in bloated]
    return "; ".join(steps) or f"nothing: no index of {table} is bloated"


@remediation("reindex_bloated", touches="the bloated indexes of one configured table: REINDEX INDEX CONCURRENTLY, "
             "which blocks no read or write", plan=_plan_reindex, guard=_reindexable,
             target=lambda ctx, table: f"database {ctx.settings.database.dbname} indexes of {table}")
def reindex_bloated(ctx, table: str) -> Outcome:
    database = ctx.database
    done = []
    try:
        for index in database.bloated(database.indexes(table)):
            started = time.monotonic()
            try:
                database.maintenance(_reindex_statement(index))
            except DatabaseUnavailable:
                _drop_leftovers(database, index)
                raise
            after = next((i for i in database.indexes(table) if i.name == index.name), None)
            size = pretty_size(after.size_bytes) if after else "?"
            took = time.monotonic() - started
            done.append(f"{index.index}: {pretty_size(index.size_bytes)} -> {size} in {took:.1f}s")
    except DatabaseUnavailable as error:
        return _failed("reindex_bloated", error, "".join(f"{line}; " for line in done) + "REINDEX: ")
    return Outcome("reindex_bloated", ActionStatus.DONE, "rebuilt " + ("; ".join(done) or "nothing"))


def _drop_leftovers(database, index) -> None:
    """A REINDEX CONCURRENTLY that failed leaves an invalid copy (<name>_ccnew): it costs every write."""
    from psycopg import sql

    rows = database.execute(
        "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND n.nspname = %s "
        "AND c.relname LIKE %s", (index.schema, index.name[:55] + "_ccnew%"))
    for schema, name in rows:
        database.maintenance(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name)))


# -- rows past retention


def _rule(ctx, table_retention: str):
    return next((rule for rule in ctx.settings.database.retention if rule.table == table_retention), None)


def backup_covering(ctx, expired) -> tuple[BackupSet | None, str | None]:
    """The newest database backup that reads back whole, and why it does not hold the expired rows (None when
    it does).

    A row is in a backup started after it was written: only rows older than the start of the newest backup whose
    dump verifies are deleted (its name's time, never a file's modification time, which a copy or a touch
    changes), and nothing at all when that backup started before the oldest expired row. A newer dump that does
    not read back holds nothing, and is passed over, saying why."""
    backup, passed_over = BackupProbe(ctx.box, ctx.settings).newest_verified_dump()
    where = ctx.settings.backups.dir
    if backup is None:
        why = f" ({'; '.join(passed_over)})" if passed_over else ""
        return None, (f"no database backup ({', '.join(BACKUP_PATTERNS)}) in {where} that reads back whole{why}: the "
                      f"rows would be gone for good")
    taken = _taken(backup)
    if expired.oldest is not None and taken <= expired.oldest:
        return backup, (f"the newest backup {backup.path(DUMP)} that reads back whole (started {_at(taken)}) is older "
                        f"than the oldest expired row ({_at(expired.oldest)}): it does not hold it")
    return backup, None


def _taken(backup: BackupSet) -> datetime:
    return datetime.fromtimestamp(backup.taken_at, UTC)


def _deletable(ctx, table_retention: str) -> str | None:
    rule = _rule(ctx, table_retention)
    if rule is None:
        return f"no [[database.retention]] rule for table {table_retention!r}"
    expired = ctx.database.expired(rule)
    return backup_covering(ctx, expired)[1] if expired.count else None


def _backup(backup: BackupSet) -> str:
    return f"{backup.path(DUMP)} (started {_at(_taken(backup))}, read back whole)"


def _cutoff(expired, backup: BackupSet) -> datetime:
    return min(expired.cutoff, _taken(backup))


def _plan_delete(ctx, table_retention: str) -> str:
    rule = _rule(ctx, table_retention)
    expired = ctx.database.expired(rule)
    backup, _ = backup_covering(ctx, expired)
    if not expired.count:
        return f"nothing: no row of {rule.table} is older than {rule.max_age_days} days"
    return (f"delete {expired.count} row(s) of {rule.table} with {rule.column} before "
            f"{_at(_cutoff(expired, backup))} (oldest {_at(expired.oldest)}), "
            f"{ctx.settings.database.delete_batch_rows} per transaction; held by the backup {_backup(backup)}")


def _batch_statement(rule):
    from psycopg import sql

    return sql.SQL(
        "WITH gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM {table} WHERE {column} < %s ORDER BY {column} LIMIT %s)) RETURNING {column}) "
        "SELECT count(*), min({column}), max({column}) FROM gone").format(
        table=identifier(rule.table), column=identifier(rule.column))


@remediation("delete_expired_rows", touches="rows of one [[database.retention]] table older than its retention and "
             "than the newest backup, in batches", plan=_plan_delete, guard=_deletable, target=_table_target)
def delete_expired_rows(ctx, table_retention: str) -> Outcome:
    database, rule = ctx.database, _rule(ctx, table_retention)
    batch = ctx.settings.database.delete_batch_rows
    budget = ctx.settings.remediation.timeout_seconds
    expired = database.expired(rule)
    backup, refusal = backup_covering(ctx, expired)
    if refusal:  # the guard said yes a moment ago; the backup may have gone since
        return Outcome("delete_expired_rows", ActionStatus.SKIPPED, f"refused: {refusal}")
    cutoff = _cutoff(expired, backup)
    statement, started = _batch_statement(rule), time.monotonic()
    deleted, lines, stopped = 0, [], ""
    while True:
        try:
            count, oldest, newest = database.execute(statement, (cutoff, batch), fetch="one")
        except DatabaseUnavailable as error:
            return Outcome("delete_expired_rows", ActionStatus.FAILED,
                           f"deleted {deleted} row(s) of {rule.table} in {len(lines)} batch(es), then: {error}",
                           output="\n".join(lines))
        if count:
            deleted += count
            lines.append(f"batch {len(lines) + 1}: {count} row(s), {rule.column} {_at(oldest)}"
                         f" .. {_at(newest)}")
        if count < batch:
            break
        if time.monotonic() - started > budget:
            stopped = f"; stopped after {budget:g}s ([remediation] timeout_seconds), the rest is for the next run"
            break
    kept = database.expired(rule).count
    held = f"; {kept} newer than the backup kept until the next one" if kept and not stopped else ""
    return Outcome("delete_expired_rows", ActionStatus.DONE,
                   f"deleted {deleted} row(s) of {rule.table} older than {rule.max_age_days} days in {len(lines)} "
                   f"batch(es) of at most {batch}; held by the backup {_backup(backup)}{held}{stopped}",
                   output="\n".join(lines))
