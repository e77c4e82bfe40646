"""The trading database: one connection per run and box, every statement bounded, and what it reads.

The connection is opened at the first statement and kept until the run ends (`close`, a cleanup of the
run), as `application_name = trading-maintenance`, with the configured `statement_timeout` and
`lock_timeout` set at its start: no statement of the suite runs long or makes the agent's statements
queue behind it. A server that does not answer at all (a frozen postmaster: its backends cannot enforce
their own timeout) is given up on from this side a few seconds after the statement timeout: the socket
is shut under the waiting statement and the connection is dropped, so a run never hangs on it.

Over SSH the database listens on the box's own loopback: the suite reaches it through the run's SSH
master connection, a forward from a unix socket in the suite's state directory (`Box.forward`). The
password is read as a secret and unwrapped only in the call that connects.

The checks assert on the readings; the remediations (remediations/database.py) act through the same
connection (`execute`, `maintenance`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from configuration import Settings
from configuration.database import TableRetention
from core.unread import CouldNotRead
from core.vocabulary import Unread
from probes.host import Box

APPLICATION_NAME = "trading-maintenance"
GRACE_SECONDS = 5  # past the server's own timeout, the client stops waiting for an answer
SOCKET_PATH_MAX = 107  # bytes of a unix socket's path (sun_path holds 108, its NUL included)
# 28P01 invalid_password, 28000 invalid_authorization_specification (pg_hba.conf, a role that cannot log in).
LOGIN_REFUSED_STATES = {"28P01", "28000"}
LOGIN_REFUSED = re.compile(r"password authentication failed|no password supplied|authentication failed for user|"
                           r"no pg_hba\.conf entry|pg_hba\.conf rejects|role \"[^\"]*\" does not exist|"
                           r"role \"[^\"]*\" is not permitted to log in")
AUTOVACUUM_OFF = re.compile(r"(^|,)autovacuum_enabled=(false|off|no|0)(,|$)", re.IGNORECASE)


class DatabaseUnavailable(Exception):
    """The database could not be asked (no connection, a statement refused): the check could not look."""


class NoAnswer(DatabaseUnavailable):
    """A statement, or the connection, got no answer in time."""


# -- readings


@dataclass(frozen=True)
class TableStats:
    """One table's row of pg_stat_user_tables, and whether autovacuum may visit it."""

    table: str
    live: int
    dead: int
    changed_since_analyze: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    autovacuum_off: str  # why autovacuum never visits the table ("" when it does)
    size_bytes: int
    now: datetime  # the database's clock when read

    @property
    def dead_percent(self) -> float:
        total = self.live + self.dead
        return 100.0 * self.dead / total if total else 0.0

    @property
    def changed_percent(self) -> float:
        if not self.live:
            return 100.0 if self.changed_since_analyze else 0.0
        return 100.0 * self.changed_since_analyze / self.live

    @property
    def analyzed(self) -> datetime | None:
        """The last ANALYZE, by hand or by autovacuum."""
        return _latest(self.last_analyze, self.last_autoanalyze)

    @property
    def vacuumed(self) -> datetime | None:
        return _latest(self.last_vacuum, self.last_autovacuum)

    def days_since(self, moment: datetime | None) -> float | None:
        return None if moment is None else (self.now - moment).total_seconds() / 86400

    def stale(self, limits) -> str | None:
        """Why the planner's statistics are stale ([database.thresholds]), or None: never analyzed, too many
        rows changed since the last ANALYZE, or that ANALYZE too long ago with rows changed since; never
        for fewer changed rows than min_changed_rows."""
        changed = self.changed_since_analyze
        if changed < limits.min_changed_rows or changed == 0:
            return None
        if self.analyzed is None:
            return f"never analyzed, {changed} rows written since its statistics were reset"
        if self.changed_percent > limits.max_changed_percent:
            return (f"{changed} rows changed since the last ANALYZE ({_moment(self.analyzed)}), "
                    f"{self.changed_percent:.1f}% of {self.live} (threshold {limits.max_changed_percent:g}%)")
        age = self.days_since(self.analyzed)
        if age > limits.stale_statistics_days:
            return (f"last analyzed {age:.1f} days ago ({_moment(self.analyzed)}), {changed} rows changed since "
                    f"(threshold {limits.stale_statistics_days:g} days)")
        return None


def _moment(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


def _latest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


@dataclass(frozen=True)
class IndexReading:
    """One valid B-tree index and its estimated bloat (None when its statistics allow no estimate)."""

    index: str  # as PostgreSQL prints it (schema-qualified when not on the search path)
    schema: str
    name: str
    size_bytes: int
    bloat_percent: float | None
    why_no_estimate: str = ""

    @property
    def bloat_bytes(self) -> int:
        return int(self.size_bytes * (self.bloat_percent or 0) / 100)


@dataclass(frozen=True)
class ExpiredRows:
    """Rows of a table older than its retention, by the database's clock."""

    table: str
    column: str
    max_age_days: int
    count: int
    oldest: datetime | None
    newest: datetime | None
    cutoff: datetime


# The pages a freshly built B-tree index of these rows would fill: ioguix's estimate (pgsql-bloat-estimation,
# the one check_postgres' and postgres-checkup's index bloat reports build on), from the statistics only.
PAGE_HEADER, BTREE_OPAQUE, LINE_POINTER, INDEX_TUPLE_HEADER, NULL_BITMAP = 24, 16, 4, 8, 4


def _aligned(size: float, maxalign: int) -> float:
    return math.ceil(size / maxalign) * maxalign if size else 0


def estimated_index_pages(tuples: float, widths: list[float], null_fractions: list[float], fillfactor: int,
                          block_size: int = 8192, maxalign: int = 8) -> int:
    """The metapage and the leaf pages, at the index's fillfactor, that `tuples` entries of the
    columns' average widths need."""
    header = INDEX_TUPLE_HEADER + (NULL_BITMAP if any(fraction > 0 for fraction in null_fractions) else 0)
    data = sum((1 - fraction) * width for width, fraction in zip(widths, null_fractions, strict=True))
    entry = _aligned(header, maxalign) + _aligned(data, maxalign)
    per_page = math.floor((block_size - PAGE_HEADER - BTREE_OPAQUE) * fillfactor / 100 / (LINE_POINTER + entry))
    return 1 + math.ceil(tuples / max(per_page, 1))


def bloat_percent(pages: int, estimated_pages: int) -> float:
    return max(0.0, 100.0 * (pages - estimated_pages) / pages) if pages else 0.0


def pretty_size(size: float) -> str:
    """As pg_size_pretty: bytes, kB, MB, GB, TB (powers of 1024, the next unit from 10240 on)."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if abs(size) < 10 * 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.0f} TB"


# -- the probe

TABLE_STATS = """
SELECT s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.last_vacuum, s.last_autovacuum, s.last_analyze,
       s.last_autoanalyze, current_setting('autovacuum')::bool, coalesce(array_to_string(c.reloptions, ','), ''),
       pg_table_size(c.oid), now()
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.relid = %s::regclass
"""

# Every valid index of a table, its size, and per column (key and INCLUDE) the average width and null
# fraction the last ANALYZE measured: a plain column's from the table's statistics, an expression's from
# the index's own.
INDEX_COLUMNS = """
SELECT c.oid::regclass::text, n.nspname, c.relname, am.amname, pg_relation_size(c.oid), c.reltuples,
       coalesce(substring(array_to_string(c.reloptions, ' ') from 'fillfactor=([0-9]+)')::int, 90),
       array_agg(s.avg_width ORDER BY a.attnum), array_agg(s.null_frac ORDER BY a.attnum),
       current_setting('block_size')::int
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = c.relam
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
LEFT JOIN pg_stats s ON s.schemaname = n.nspname
     AND ((s.tablename = t.relname AND s.attname = pg_get_indexdef(c.oid, a.attnum, true))
          OR (s.tablename = c.relname AND s.attname = a.attname))
WHERE i.indrelid = %s::regclass AND i.indisvalid
GROUP BY c.oid, n.nspname, c.relname, am.amname, c.reltuples, c.reloptions
ORDER BY 1
"""


class Database:
    """The run's connection to one box's database, and the readings the checks assert on."""

    def __init__(self, settings: Settings, box: Box):
        self.settings = settings
        self.config = settings.database
        self.box = box
        self._connection = None
        self._forwarded: str | None = None  # the local socket of the SSH forward
        self._refused: CouldNotRead | None = None  # the login the server refused, said again for the rest of the run
        self._lock = threading.Lock()
        self.last_answer_seconds: float | None = None  # how long the last `answers()` took

    def __repr__(self) -> str:  # never the password: it is not held here at all
        return f"Database({self.where})"

    @property
    def where(self) -> str:
        db = self.config
        over = f" on {self.box.name} over SSH" if not self.box.local else ""
        return f"{db.dbname} at {db.host}:{db.port}{over}"

    # ---- the connection

    def _connect_arguments(self) -> dict:
        db = self.config
        ms = lambda seconds: int(seconds * 1000)  # noqa: E731
        arguments = {"host": db.host, "port": db.port, "dbname": db.dbname, "user": db.user,
                     "connect_timeout": db.connect_timeout_seconds, "application_name": APPLICATION_NAME,
                     "options": f"-c statement_timeout={ms(db.statement_timeout_seconds)} "
                                f"-c lock_timeout={ms(db.lock_timeout_seconds)}",
                     "autocommit": True}
        if not self.box.local:
            arguments["host"] = self._forward()
        return arguments

    def _forward(self) -> str:
        """The directory of the unix socket that reaches the box's database through SSH. Made again at every
        connection (there is one a run, unless it broke): a master connection that ended took its forward."""
        self._cancel_forward()
        local = forward_socket(self.settings, self.box.name, "pg")
        sockets = local.parent
        sockets.mkdir(parents=True, exist_ok=True, mode=0o700)
        local.unlink(missing_ok=True)  # left by a master that ended, or a run that was killed
        problem = self.box.forward(str(local), self.config.host, self.config.port)
        if problem:
            raise DatabaseUnavailable(f"cannot reach {self.where}: ssh -O forward failed: {problem} (the box's "
                                      f"sshd must allow the maintenance user local forwarding to "
                                      f"{self.config.host}:{self.config.port}: README, over SSH)")
        self._forwarded = str(local)
        return str(sockets)

    def _cancel_forward(self) -> None:
        if self._forwarded is not None:
            self.box.forward(self._forwarded, self.config.host, self.config.port, cancel=True)
            shutil.rmtree(Path(self._forwarded).parent, ignore_errors=True)
            self._forwarded = None

    def connection(self):
        """The open connection, made now if there is none (or the last one broke)."""
        import psycopg

        if self._connection is not None and not self._connection.closed and not self._connection.broken:
            return self._connection
        self._drop()
        if self._refused is not None:  # one refused login a run: never a login attempt per check
            raise self._refused
        password = self._password()
        arguments = self._connect_arguments()
        seconds = self.config.connect_timeout_seconds + GRACE_SECONDS
        try:
            self._connection = _within(seconds, lambda: psycopg.connect(
                **arguments, **({"password": password.get_secret_value()} if password else {})))
        except TimeoutError:
            raise NoAnswer(f"{self.where}: no answer to the connection within {seconds:g}s") from None
        except psycopg.OperationalError as error:
            said = _first_line(error)
            if login_refused(error):
                self._refused = CouldNotRead(Unread.AUTHENTICATION, self._what, said, self._login_fix(), self.box.name)
                raise self._refused from None
            if "timeout" in said:
                raise NoAnswer(f"{self.where}: no answer within {self.config.connect_timeout_seconds}s while "
                               f"connecting ({said})") from None
            hint = (f" (over SSH the box's sshd must let the maintenance user forward to {self.config.host}:"
                    f"{self.config.port}: AllowTcpForwarding local, PermitOpen; README)"
                    if not self.box.local and "closed the connection" in said else "")
            raise DatabaseUnavailable(f"cannot connect to {self.where} as {self.config.user}: {said}{hint}") from None
        return self._connection

    def _password(self):
        """[database]'s password, read at each connection; one not available is could-not-read, never a fault."""
        try:
            return self.config.password()
        except CouldNotRead as missing:
            raise CouldNotRead(missing.cause, self._what, missing.detail, missing.fix, self.box.name) from None

    @property
    def _what(self) -> str:
        return f"database {self.config.dbname} at {self.config.host}:{self.config.port} as {self.config.user}"

    def _login_fix(self) -> str:
        return (f"the server refused {self.config.user}'s login: check the password ({self.config.password_source()}) "
                f"and [database] user, and that the server's pg_hba.conf lets {self.config.user} in from where the "
                f"suite connects")

    def execute(self, query, params=(), *, fetch: str = "all", timeout: float | None = None):
        """One statement, in its own transaction; its rows (`fetch="all"`), one row, or nothing (None).
        Bounded on this side at the server's timeout plus a grace: a server that does not answer at all
        has its connection cut, and the statement raises NoAnswer."""
        import psycopg

        with self._lock:
            connection = self.connection()
            seconds = (timeout or self.config.statement_timeout_seconds) + GRACE_SECONDS

            def run():
                cursor = connection.execute(query, params)
                if fetch == "all":
                    return cursor.fetchall()
                return cursor.fetchone() if fetch == "one" else None

            try:
                return _within(seconds, run, on_timeout=lambda: _cut(connection))
            except TimeoutError:
                self._drop()
                raise NoAnswer(f"{self.where}: no answer within {seconds:g}s (the connection was cut)") from None
            except psycopg.errors.QueryCanceled as error:  # the server's statement_timeout
                raise NoAnswer(f"{self.where}: {_first_line(error)}") from None
            except psycopg.Error as error:  # refused (a lock timeout, no such table) or the connection broke
                if connection.closed or connection.broken:
                    self._drop()
                raise DatabaseUnavailable(f"{self.where}: {_first_line(error)}") from None

    def maintenance(self, query, params=()) -> None:
        """One VACUUM or REINDEX (outside any transaction), under maintenance_timeout_seconds instead of
        the statement timeout; the statement timeout is set back after it, whatever happened."""
        seconds = self.config.maintenance_timeout_seconds
        self.execute("SELECT set_config('statement_timeout', %s, false)", (f"{int(seconds * 1000)}ms",), fetch="one")
        try:
            self.execute(query, params, fetch="none", timeout=seconds)
        finally:
            if self._connection is not None and not self._connection.broken:
                self.execute("SELECT set_config('statement_timeout', %s, false)",
                             (f"{int(self.config.statement_timeout_seconds * 1000)}ms",), fetch="one")

    def forget(self) -> None:
        """Before a re-check: readings are never kept; a connection that broke is dropped."""
        if self._connection is not None and (self._connection.closed or self._connection.broken):
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a cut connection: nothing more to say to it
                connection.close()

    def close(self) -> None:
        """At the end of the run: the connection, then the SSH forward and its socket."""
        self._drop()
        self._cancel_forward()

    # ---- readings

    def answers(self) -> str | None:
        """None when `SELECT 1` answers within the timeouts (connecting included), else what happened."""
        started = time.monotonic()
        try:
            row = self.execute("SELECT 1", fetch="one")
        except DatabaseUnavailable as error:
            self.last_answer_seconds = time.monotonic() - started
            return str(error)
        self.last_answer_seconds = time.monotonic() - started
        return None if row == (1,) else f"{self.where}: SELECT 1 answered {row!r}"

    def server_version(self) -> int:
        """server_version_num: 150004 for 15.4."""
        return int(self.execute("SELECT current_setting('server_version_num')", fetch="one")[0])

    def size_bytes(self) -> int:
        return self.execute("SELECT pg_database_size(current_database())", fetch="one")[0]

    def xid_ages(self) -> dict[str, int]:
        """age(datfrozenxid) of every database that accepts connections, oldest first (check_postgres'
        txn_wraparound)."""
        rows = self.execute("SELECT datname, age(datfrozenxid) FROM pg_database WHERE datallowconn ORDER BY 2 DESC, 1")
        return dict(rows)

    def table(self, name: str) -> TableStats:
        row = self.execute(TABLE_STATS, (name,), fetch="one")
        if row is None:
            raise DatabaseUnavailable(f"{self.where}: {name} is not a table the statistics know")
        live, dead, changed, vacuum, autovacuum, analyze, autoanalyze, enabled, options, size, now = row
        off = ("the server's autovacuum is off" if not enabled else
               f"autovacuum is off for {name} (ALTER TABLE {name} SET (autovacuum_enabled = false))"
               if AUTOVACUUM_OFF.search(options) else "")
        return TableStats(name, live, dead, changed, vacuum, autovacuum, analyze, autoanalyze, off, size, now)

    def indexes(self, table: str) -> list[IndexReading]:
        """Every valid B-tree index of the table, with its estimated bloat."""
        readings = []
        for shown, schema, name, method, size, tuples, fillfactor, widths, fractions, block in self.execute(
                INDEX_COLUMNS, (table,)):
            if method != "btree":
                continue
            why = "no statistics: the table was never analyzed" if tuples < 0 or None in widths else ""
            percent = None if why else bloat_percent(
                math.ceil(size / block), estimated_index_pages(tuples, widths, fractions, fillfactor, block))
            readings.append(IndexReading(shown, schema, name, size, percent, why))
        return readings

    def bloated(self, indexes: list[IndexReading]) -> list[IndexReading]:
        """The indexes over [database.thresholds] max_index_bloat_percent, of min_index_size_mb or more."""
        limits = self.config.thresholds
        return [index for index in indexes if index.bloat_percent is not None
                and index.bloat_percent > limits.max_index_bloat_percent
                and index.size_bytes >= limits.min_index_size_mb * 1024 * 1024]

    def expired(self, rule: TableRetention) -> ExpiredRows:
        from psycopg import sql

        query = sql.SQL("SELECT count(*), min({column}), max({column}), now() - make_interval(days => %s) "
                        "FROM {table} WHERE {column} < now() - make_interval(days => %s)").format(
            table=identifier(rule.table), column=identifier(rule.column))
        count, oldest, newest, cutoff = self.execute(query, (rule.max_age_days, rule.max_age_days), fetch="one")
        return ExpiredRows(rule.table, rule.column, rule.max_age_days, count, oldest, newest, cutoff)


class SocketPathTooLong(ValueError):
    """The state directory is too deep for the forward's unix socket: the message says which key to shorten."""


def forward_socket(settings: Settings, box_name: str, purpose: str) -> Path:
    """Where libpq finds the box's database over SSH: `.s.PGSQL.PORT` in a directory of this process's own under
    the suite's state directory (root's, 0700), never under /tmp, where another user could have made the
    directory first or put a socket there. A path too long for a unix socket is refused, naming the key to change."""
    local = (Path(settings.policy.state_dir).absolute() / "ssh" / f"{box_name}-{purpose}{os.getpid()}"
             / f".s.PGSQL.{settings.database.port}")
    if len(os.fsencode(str(local))) > SOCKET_PATH_MAX:
        raise SocketPathTooLong(
            f"the database forward's socket {local} is {len(os.fsencode(str(local)))} bytes, more than a unix "
            f"socket's {SOCKET_PATH_MAX}: set a shorter [policy] state_dir (now {settings.policy.state_dir}) in "
            f"{settings.source}")
    return local


def login_refused(error: Exception) -> bool:
    """A login the server (or libpq, with no password to send) refused: the suite's credentials, not the database.
    libpq gives no SQLSTATE for a failed connection, so its text is read too (the server's messages in English:
    a translated lc_messages is read as a connection failure)."""
    return getattr(error, "sqlstate", None) in LOGIN_REFUSED_STATES or bool(LOGIN_REFUSED.search(str(error)))


def identifier(name: str):
    """`trades` or `schema.trades` as a quoted SQL identifier (the configuration allows only plain names)."""
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _within(seconds: float, work, on_timeout=None):
    """`work()` in a thread, waited for `seconds`; then `on_timeout()` (which should make it end) and
    TimeoutError. Its exception, if it raised one, is raised here."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed over to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="database-statement", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if on_timeout is not None:
            on_timeout()
            worker.join(GRACE_SECONDS)
        raise TimeoutError(seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _cut(connection) -> None:
    """Shut the connection's socket under the statement that waits on it: the wait ends with an error."""
    try:
        cut = socket.socket(fileno=os.dup(connection.fileno()))
    except OSError:
        return
    try:
        cut.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        cut.close()


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def parameters(settings: Settings) -> dict[str, list]:
    return {"table": list(settings.database.tables),
            "table_retention": [rule.table for rule in settings.database.retention]}
