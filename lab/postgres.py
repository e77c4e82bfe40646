"""A real PostgreSQL 15 cluster for the lab, with the trading_agent database seeded.

PostgreSQL refuses to run as root, so as root the cluster belongs to the Debian user `postgres`
(initdb through runuser, supervisord's `user=postgres`). That user must reach the data directory:
when LAB_DIR is not traversable for it (a repo under /root, pytest's 0700 tmp dirs) the cluster
lives under /tmp/trading-lab-pg-<hash> instead. Clients log in over TCP with a scram password.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from lab import sample
from lab.errors import LabError
from lab.paths import LabPaths, Ports

PG_BIN = Path(os.environ.get("LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
DBNAME = "trading_agent"
TRADE_DAYS = 90  # trades younger than the guide's 90 days (the fault rows-past-retention adds older ones)
LOG_DAYS = 30  # logs younger than its 30 days
TABLES = ("trades", "logs")

SCHEMA = """
CREATE TABLE IF NOT EXISTS trades (
    id bigint PRIMARY KEY,
    pair text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty numeric(20, 8) NOT NULL,
    price numeric(20, 8) NOT NULL,
    profit_usdt numeric(20, 4) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS trades_created_at ON trades (created_at);
CREATE TABLE IF NOT EXISTS logs (
    id bigserial PRIMARY KEY,
    level text NOT NULL,
    code text,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS logs_created_at ON logs (created_at);
"""


def as_root() -> bool:
    return os.geteuid() == 0


def run_as_owner(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the cluster owner (postgres when we are root)."""
    prefix = ["runuser", "-u", SUPERUSER, "--"] if as_root() else []
    try:
        return subprocess.run(prefix + args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd="/")
    except subprocess.TimeoutExpired:
        raise LabError(f"{args[0]} did not finish within {timeout:.0f}s") from None


def pg_root_for(lab_dir: Path) -> Path:
    """LAB_DIR/pg, or a /tmp directory when `postgres` cannot traverse LAB_DIR."""
    if not as_root():
        return lab_dir / "pg"
    probe = run_as_owner(["test", "-x", str(lab_dir)], timeout=10)
    if probe.returncode == 0:
        return lab_dir / "pg"
    digest = hashlib.sha256(str(lab_dir).encode()).hexdigest()[:10]
    return Path("/tmp") / f"trading-lab-pg-{digest}"


class Cluster:
    def __init__(self, paths: LabPaths, ports: Ports, root: Path):
        self.paths, self.ports, self.root = paths, ports, Path(root)
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"

    @property
    def os_user(self) -> str | None:
        """The user supervisord runs postgres as (None: the lab's own user)."""
        return SUPERUSER if as_root() else None

    def command(self) -> list[str]:
        return [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.ports.postgres),
                "-c", "listen_addresses=127.0.0.1", "-k", str(self.socket_dir),
                "-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40"]

    def password(self) -> str:
        return self.paths.db_password_file.read_text().strip()

    def _chown(self, *targets: Path) -> None:
        if as_root():
            entry = pwd.getpwnam(SUPERUSER)
            for target in targets:
                os.chown(target, entry.pw_uid, entry.pw_gid)

    def ensure(self) -> bool:
        """initdb unless a cluster with a known password exists; True when one was made."""
        if (self.data / "PG_VERSION").exists() and self.paths.db_password_file.exists():
            return False
        if not (PG_BIN / "initdb").exists():
            raise LabError(f"PostgreSQL 15 not found at {PG_BIN} (set LAB_PG_BIN to its bin dir)")
        if as_root():
            try:
                pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise LabError("running as root needs the system user 'postgres'") from None
        shutil.rmtree(self.data, ignore_errors=True)
        for directory in (self.root, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            self._chown(directory)
        password = secrets.token_urlsafe(24)
        pwfile = self.root / "initdb-pw"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            result = run_as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                                   f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                                   "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C",
                                   "--no-sync"], timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LabError(f"initdb failed:\n{(result.stderr or result.stdout).strip()}")
        self.paths.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.paths.secrets_dir, 0o700)
        fd = os.open(self.paths.db_password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password)
        os.chmod(self.paths.db_password_file, 0o600)
        return True

    def connect(self, dbname: str = DBNAME, wait: float = 10.0):
        """A connection, retried while the server is still starting (bounded by `wait`)."""
        import psycopg

        deadline = time.monotonic() + wait
        while True:
            try:
                return psycopg.connect(host="127.0.0.1", port=self.ports.postgres, user=SUPERUSER,
                                       password=self.password(), dbname=dbname, connect_timeout=5,
                                       autocommit=True)
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise LabError(f"cannot connect to the lab database on port "
                                   f"{self.ports.postgres}: {error}".strip()) from None
                time.sleep(0.2)

    def create_database(self) -> None:
        with _db_errors("creating the database"), self.connect("postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DBNAME}"')
        with _db_errors("creating the tables"), self.connect() as conn:
            conn.execute(SCHEMA)

    def drop_other_databases(self) -> list[str]:
        """Databases a test or a restore left beside trading_agent (a restore's _before_, a drill's scratch)."""
        with _db_errors("dropping the other databases"), self.connect("postgres") as conn:
            names = [row[0] for row in conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname NOT IN ('postgres', %s)",
                (DBNAME,)).fetchall()]
            for name in names:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        return names

    def seed(self, now: datetime | None = None) -> None:
        """Replace every row with the reproducible history (trades in the logs are these trades), in the
        order the agent wrote them, as a healthy database keeps it: no dead rows, fresh statistics,
        autovacuum on, compact indexes."""
        now = now or datetime.now().astimezone()
        with _db_errors("seeding the database"), self.connect() as conn:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '3s'")
                conn.execute("SET LOCAL statement_timeout = '10s'")
                conn.execute("TRUNCATE trades, logs")
                for table in TABLES:
                    conn.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
                self.copy_history(conn, range(TRADE_DAYS), range(LOG_DAYS), now)
            settle_statistics(conn, "VACUUM (ANALYZE) trades, logs")

    @staticmethod
    def copy_history(conn, trade_ages, log_ages, now: datetime) -> None:
        """The trades and log events of the days that many days ago, oldest first."""
        trades = sorted((t for age in trade_ages for t in sample.trades_for_day(now.date() - timedelta(days=age), now)),
                        key=lambda t: t.at)
        events = sorted((e for age in log_ages for e in sample.errors_for_day(now.date() - timedelta(days=age), now)),
                        key=lambda e: e.at)
        with conn.cursor() as cur:
            with cur.copy("COPY trades (id, pair, side, qty, price, profit_usdt, created_at) FROM STDIN") as copy:
                for t in trades:
                    copy.write_row((t.number, t.pair, t.side, t.qty, t.price, t.profit, t.at))
            with cur.copy("COPY logs (level, code, message, created_at) FROM STDIN") as copy:
                for e in events:
                    copy.write_row((e.level, e.code, e.message, e.at))

    def dump(self, target: Path, timeout: float = 60) -> None:
        """pg_dump of the seeded database in its custom format (the backups' sets are made from it); the
        file's time is when the dump started, so every row it holds was created before its time."""
        env = dict(os.environ, PGPASSWORD=self.password(), PGCONNECT_TIMEOUT="5")
        started = time.time()
        partial = target.with_name(target.name + ".partial")
        try:
            result = subprocess.run(
                [str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.ports.postgres),
                 "-U", SUPERUSER, "--no-owner", "--format=custom", f"--file={partial}", DBNAME],
                capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LabError(f"pg_dump did not finish within {timeout:.0f}s") from None
        if result.returncode != 0:
            raise LabError(f"pg_dump failed:\n{result.stderr.strip()}")
        os.utime(partial, (started, started))
        os.replace(partial, target)


def settle_statistics(conn, *statements: str) -> None:
    """Run `statements` (VACUUM, ANALYZE) with this session's earlier writes already counted in the
    statistics, and their own counted before returning: a backend reports its row counts when it goes
    idle, up to seconds later, which would land after an ANALYZE and count as changes since it."""
    conn.execute("SET lock_timeout = '3s'")
    conn.execute("SELECT pg_stat_force_next_flush()")
    for statement in statements:
        conn.execute(statement)
    conn.execute("SELECT pg_stat_force_next_flush()")


@contextmanager
def _db_errors(doing: str):
    """A database error while the lab sets things up is the operator's to read, not a traceback."""
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        raise LabError(f"{doing} failed: {error}".strip()) from None
