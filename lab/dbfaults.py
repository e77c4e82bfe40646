"""The database's faults, made the way they happen on a real box, and how to tell they are still there.

- dead-tuples: autovacuum is switched off for `trades` and a burst of orders written and removed again
  leaves 5000 dead rows (statistics fresh: an ANALYZE after it), nothing to reclaim them;
- stale-statistics: autovacuum off for `logs` and 3000 rows written since its last ANALYZE;
- index-bloat: 60000 rows come and go in `trades` (written, deleted, vacuumed): its indexes keep the
  pages they grew to, each well over a megabyte for some 600 rows;
- rows-past-retention: trades of 91 to 120 days ago and logs of 31 to 45 days ago (the history the
  healthy lab does not keep; every one of them past retention from the moment it is written);
- postgres-frozen: SIGSTOP to the postmaster and every process of it; its service still looks running
  and its port still accepts connections (the kernel does), but nothing answers. Cleared by SIGCONT.

The healthy database is the lab's seed (lab.postgres.Cluster.seed): clearing a database fault seeds
again, which also switches autovacuum back on.
"""

from __future__ import annotations

import contextlib
import os
import signal
from datetime import datetime

from lab.postgres import LOG_DAYS, TRADE_DAYS, Cluster, settle_statistics

BURST_ID = 900_000_000  # the ids of the rows the faults write and remove again, far above the agent's
DEAD_ROWS = 5000
STALE_ROWS = 3000
BLOAT_ROWS = 60_000
BLOATED_INDEX_BYTES = 1024 * 1024  # what index-bloat makes its indexes grow past
RETENTION = {"trades": 90, "logs": 30}


def dead_tuples(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        conn.execute("SET statement_timeout = '30s'")
        conn.execute("ALTER TABLE trades SET (autovacuum_enabled = false)")
        _burst(conn, DEAD_ROWS, "interval '1 day'")
        conn.execute("DELETE FROM trades WHERE id >= %s", (BURST_ID,))
        settle_statistics(conn, "ANALYZE trades")


def stale_statistics(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        conn.execute("SET statement_timeout = '30s'")
        conn.execute("ALTER TABLE logs SET (autovacuum_enabled = false)")
        conn.execute("INSERT INTO logs (level, code, message, created_at) SELECT 'INFO', NULL, "
                     "'order book snapshot stored', now() - random() * interval '1 hour' "
                     "FROM generate_series(1, %s)", (STALE_ROWS,))
        settle_statistics(conn)


def index_bloat(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        conn.execute("SET statement_timeout = '60s'")
        _burst(conn, BLOAT_ROWS, f"interval '{TRADE_DAYS - 10} days'")
        conn.execute("DELETE FROM trades WHERE id >= %s", (BURST_ID,))
        settle_statistics(conn, "VACUUM (ANALYZE) trades")


def _burst(conn, rows: int, within: str) -> None:
    """`rows` orders of the last `within`, ids from BURST_ID on."""
    conn.execute("INSERT INTO trades (id, pair, side, qty, price, profit_usdt, created_at) "
                 "SELECT %s + n, 'BTC_USDT', 'buy', 0.001, 43000, 0, now() - random() * " + within + " "
                 "FROM generate_series(1, %s) AS n", (BURST_ID, rows))


def rows_past_retention(cluster: Cluster, now: datetime | None = None) -> None:
    now = now or datetime.now().astimezone()
    with cluster.connect() as conn, conn.transaction():
        conn.execute("SET LOCAL statement_timeout = '10s'")
        # From the day after the first one past retention: a row of the day exactly 90 days ago may still be a
        # few seconds younger than 90 days, and would age past it during a run, after its clean-up.
        cluster.copy_history(conn, range(TRADE_DAYS + 1, TRADE_DAYS + 31), range(LOG_DAYS + 1, LOG_DAYS + 16), now)


# -- still there?


def _one(cluster: Cluster, query: str, params=()):
    """One figure, or None when the database cannot tell (down, frozen): a fault is then taken as still on."""
    try:
        with cluster.connect(wait=3) as conn:
            conn.execute("SET statement_timeout = '5s'")
            return conn.execute(query, params).fetchone()[0]
    except Exception:  # LabError, psycopg's errors: no answer is no proof of a mend
        return None


def _at_least(value, limit: float) -> bool:
    return value is None or value >= limit


def has_dead_tuples(cluster: Cluster) -> bool:
    return _at_least(_one(cluster, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'trades'::regclass"), 1000)


def has_stale_statistics(cluster: Cluster) -> bool:
    return _at_least(_one(cluster, "SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                   "WHERE relid = 'logs'::regclass"), 1000)


def has_bloated_index(cluster: Cluster) -> bool:
    return _at_least(_one(cluster, "SELECT max(pg_relation_size(indexrelid)) FROM pg_index "
                                   "WHERE indrelid = 'trades'::regclass"), BLOATED_INDEX_BYTES)


def has_rows_past_retention(cluster: Cluster) -> bool:
    return any(_at_least(_one(cluster, f"SELECT count(*) FROM {table} WHERE created_at < now() - "
                                       "make_interval(days => %s)", (days,)), 1) for table, days in RETENTION.items())


# -- a frozen postmaster (the lab's: supervisord's program; a box's is `systemctl kill -s STOP`)


def postgres_pids(postmaster: int | None) -> list[int]:
    """The postmaster, then every process it started."""
    from lab import processes

    return [postmaster, *processes.children(postmaster)] if postmaster else []


def freeze(pids: list[int]) -> None:
    for pid in pids:
        _signal(pid, signal.SIGSTOP)


def thaw(pids: list[int]) -> None:
    for pid in pids:
        _signal(pid, signal.SIGCONT)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def frozen(pids: list[int]) -> bool:
    """Any of them stopped (state T in /proc/PID/stat)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] == "T":
                    return True
        except OSError:
            continue
    return False
