"""A dump restored into a database of its own, and compared with the live one.

The monthly restore drill (checks/test_monthly_backup_verification.py) and `make restore`
(commands/restore.py) both restore a dump this way: a new database is created, the backup program loads it
on the box as root (probes/remote/backupscan.py `restore-into`: [backups] pg_restore, `--exit-on-error`, into a
scratch database of the suite's name only), and its tables are counted against the live database's. The live
database is only read. A row the backup must hold is one the live database had created at or before the
backup started; rows created since, and rows deleted since (the weekly retention), are said, never counted as
lost.

The suite's own statements reach the database as the run's do (probes/database.py): on this machine at
[database] host:port; over SSH through a forward of the run's SSH connection to a unix socket in the suite's
state directory (`reach`), never a port of the monitoring host, where [database] host:port would be another
server or none.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from configuration import Settings
from probes.backups import DUMP, BackupProgram
from probes.database import DatabaseUnavailable, forward_socket
from probes.host import Box

CREATED = "created_at"


@dataclass(frozen=True)
class Server:
    """Where libpq reaches [database]: a host and port, or over SSH the directory of the forward's socket."""

    host: str
    port: int


def direct(settings: Settings) -> Server:
    return Server(settings.database.host, settings.database.port)


@contextlib.contextmanager
def reach(box: Box, settings: Settings) -> Iterator[Server]:
    """The database as the box sees it, for as long as the block runs: [database] host:port on this machine;
    over SSH a forward of the run's connection (`Box.forward`), cancelled and its socket removed afterwards."""
    if box.local:
        yield direct(settings)
        return
    config = settings.database
    local = forward_socket(settings, box.name, "restore")
    local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    local.unlink(missing_ok=True)  # left by a run that was killed
    problem = box.forward(str(local), config.host, config.port)
    if problem:
        raise DatabaseUnavailable(f"cannot reach {config.dbname} at {config.host}:{config.port} on box {box.name}: "
                                  f"ssh -O forward failed: {problem} (the box's sshd must let the maintenance user "
                                  f"forward to {config.host}:{config.port}: README, over SSH)")
    try:
        yield Server(str(local.parent), config.port)
    finally:
        box.forward(str(local), config.host, config.port, cancel=True)
        shutil.rmtree(local.parent, ignore_errors=True)


def connect(settings: Settings, dbname: str | None = None, server: Server | None = None):
    """A connection of our own to [database] (autocommit), to `dbname` or the live database, where `server` says
    (by default [database] host:port, as on the box itself)."""
    import psycopg

    config, server = settings.database, server or direct(settings)
    password = config.password()
    return psycopg.connect(host=server.host, port=server.port, user=config.user, dbname=dbname or config.dbname,
                           password=password.get_secret_value() if password else None,
                           connect_timeout=config.connect_timeout_seconds, autocommit=True)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def databases(settings: Settings, prefix: str, server: Server | None = None) -> list[str]:
    with connect(settings, "postgres", server) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname",
                            (prefix,)).fetchall()
    return [row[0] for row in rows]


def create(settings: Settings, dbname: str, owner: str | None = None, server: Server | None = None) -> None:
    """An empty database (from template0, as pg_restore wants one), owned by `owner` when given."""
    owned = f" OWNER {quoted(owner)}" if owner else ""
    with connect(settings, "postgres", server) as conn:
        conn.execute(f"CREATE DATABASE {quoted(dbname)} TEMPLATE template0{owned}")


def owner_of(settings: Settings, dbname: str, server: Server | None = None) -> str | None:
    """The role owning a database, or None when there is no such database."""
    with connect(settings, "postgres", server) as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    return row[0] if row else None


def drop(settings: Settings, dbname: str, server: Server | None = None) -> None:
    """Drop a database of ours, ending whatever is connected to it (WITH (FORCE), PostgreSQL 13+)."""
    with connect(settings, "postgres", server) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {quoted(dbname)} WITH (FORCE)")


def load(box: Box, settings: Settings, dump: Path, dbname: str, owners: bool = False) -> str | None:
    """The backup program restores a set's dump (in [backups] dir) into an existing empty database of the suite's
    (`DBNAME_drill_*`, `DBNAME_restore_*`) on the box; None, or the last thing pg_restore said. `owners`: the
    dump's owners and privileges as they were (a database to swap in), else the restoring role's. Bounded by
    [backups] drill_timeout_seconds."""
    if dump.parent != settings.backups.dir or not dump.name.endswith(f".{DUMP}"):
        raise ValueError(f"{dump} is not a backup's dump in [backups] dir {settings.backups.dir}")
    done = BackupProgram(box, settings)("restore-into", {"name": dump.name.removesuffix(f".{DUMP}"),
                                                         "database": dbname, "owners": owners})
    return done["failed"]


@dataclass
class Table:
    rows: int
    newest: datetime | None = None  # the newest created_at, for tables that have one
    rows_until: int | None = None  # rows created at or before the backup started (live tables)


def figures(settings: Settings, dbname: str | None = None, until: datetime | None = None,
            server: Server | None = None) -> dict[str, Table]:
    """Every table of the public schema: its rows and its newest created_at; `until`: also the rows created
    at or before it."""
    with connect(settings, dbname, server) as conn:
        tables = conn.execute(
            "SELECT c.relname, bool_or(a.attname = %s) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') GROUP BY c.relname ORDER BY c.relname",
            (CREATED,)).fetchall()
        found = {}
        for name, dated in tables:
            table = quoted(name)
            if not dated:
                found[name] = Table(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                continue
            rows, newest, before = conn.execute(
                f"SELECT count(*), max({CREATED}), count(*) FILTER (WHERE {CREATED} <= %s) FROM {table}",
                (until or datetime.now(UTC),)).fetchone()
            found[name] = Table(rows, newest, before if until is not None else None)
    return found


@dataclass
class Comparison:
    restored: dict[str, Table]
    live: dict[str, Table]
    taken_at: datetime
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Each table's figures, as the report and the restore command print them."""
        out = []
        for name in sorted(set(self.restored) | set(self.live)):
            restored, live = self.restored.get(name), self.live.get(name)
            text = f"{name}: restored {restored.rows if restored else 'nothing'}"
            if live is not None:
                text += f", live {live.rows}"
                if live.rows_until is not None:
                    text += f" ({live.rows_until} created by {_at(self.taken_at)})"
            if restored is not None and restored.newest is not None:
                text += f"; newest restored {_at(restored.newest)}"
            if live is not None and live.newest is not None:
                text += f", live {_at(live.newest)}"
            out.append(text)
        return out


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def compare(restored: dict[str, Table], live: dict[str, Table], taken_at: datetime) -> Comparison:
    """The restored database must hold every live table, and every live row created before the backup
    started (rows deleted since, by the retention, make the live count smaller: never a problem)."""
    found = Comparison(restored, live, taken_at)
    for name, table in sorted(live.items()):
        mine = restored.get(name)
        if mine is None:
            found.problems.append(f"table {name} ({table.rows} live rows) is not in the backup")
            continue
        needed = table.rows_until if table.rows_until is not None else (1 if table.rows else 0)
        if mine.rows < needed:
            found.problems.append(f"table {name}: {mine.rows} rows restored, the live database had {needed} by "
                                  f"{_at(taken_at)}: {needed - mine.rows} missing")
    return found


@dataclass
class Drill:
    """What one restore into a scratch database found, and how long it took."""

    database: str
    seconds: float = 0.0
    error: str | None = None
    comparison: Comparison | None = None

    @property
    def problems(self) -> list[str]:
        return [self.error] if self.error else (self.comparison.problems if self.comparison else [])


def restore_and_compare(box: Box, settings: Settings, dump: Path, dbname: str, taken_at: datetime,
                        owner: str | None = None, server: Server | None = None) -> Drill:
    """Create `dbname` (owned by `owner`, restored with the dump's owners then), load the dump into it and
    compare with the live database (when there is one); the database is left for the caller (the drill
    drops it, make restore swaps it in). `server`: where the suite reaches the database (by default `reach`
    opens it for this call)."""
    if server is None:
        with reach(box, settings) as reached:
            return restore_and_compare(box, settings, dump, dbname, taken_at, owner, reached)
    drill, started = Drill(dbname), time.monotonic()
    create(settings, dbname, owner, server)
    drill.error = load(box, settings, dump, dbname, owners=owner is not None)
    if drill.error is None:
        live = figures(settings, until=taken_at, server=server) if owner_of(
            settings, settings.database.dbname, server) else {}
        drill.comparison = compare(figures(settings, dbname, server=server), live, taken_at)
    else:
        drill.error = f"pg_restore into {dbname} failed: {drill.error}"
    drill.seconds = time.monotonic() - started
    return drill


def drill(box: Box, settings: Settings, dump: Path, taken_at: datetime) -> Drill:
    """The monthly drill: the dump restored into trading_agent_drill_<time> and compared, then that database
    dropped whatever happened (and any a killed drill left before it)."""
    prefix = f"{settings.database.dbname}_drill_"
    with reach(box, settings) as server:
        for leftover in databases(settings, prefix, server):
            drop(settings, leftover, server)
        dbname = prefix + time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        try:
            return restore_and_compare(box, settings, dump, dbname, taken_at, server=server)
        finally:
            drop(settings, dbname, server)
