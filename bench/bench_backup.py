"""What a full backup and the monthly restore drill cost for a database of a million trades.

Against one running lab (`python -m lab up`; LAB_DIR and LAB_PORT_BASE choose it): `--trades` rows
(1,000,000 by default) are added to its `trades` table with COPY, then, each timed by the wall clock:

  backup  the suite's take_backup of a full backup, as a weekly run takes it: the agent and the
          dashboard stopped, tar of /opt/trading-agent, pg_dump --format=custom, both read back (the
          tarball to its end, the dump by pg_restore), their checksums written, the services started
          and checked running;
  verify  BAK-006's reading of that dump: its sha256, and pg_restore reading every block;
  drill   BAK-009's restore drill: a scratch database created, the dump restored into it by
          pg_restore, every table counted against the live database, the scratch dropped.

The lab is returned to healthy afterwards (`clear`: the added trades deleted, the backups rewritten).
Why here and not in a timed test: wall time depends on the machine and its disk.

    python bench/bench_backup.py                  # needs a running lab: python -m lab up
    python bench/bench_backup.py --trades 200000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from configuration import load  # noqa: E402
from core.vocabulary import Mode  # noqa: E402
from lab import Lab  # noqa: E402
from probes import restoredb  # noqa: E402
from probes.backups import DUMP, TARBALL, BackupProbe  # noqa: E402
from probes.host import box_of  # noqa: E402
from probes.services import service_manager  # noqa: E402
from remediations.backups import take_backup  # noqa: E402
from remediations.runner import ActionContext  # noqa: E402

FIRST_ID = 10_000_000  # above the lab's own trade ids
PAIRS = ("BTC_USDT", "ETH_USDT", "SOL_USDT", "XRP_USDT")


def add_trades(lab: Lab, count: int) -> float:
    """`count` trades over the last 90 days, by COPY in chunks; the seconds it took."""
    started, now = time.monotonic(), datetime.now(UTC)
    step = timedelta(days=90) / count
    with lab.cluster().connect() as conn, conn.cursor() as cur:
        with cur.copy("COPY trades (id, pair, side, qty, price, profit_usdt, created_at) FROM STDIN") as copy:
            chunk = []
            for n in range(count):
                at = now - step * (count - n)
                chunk.append(f"{FIRST_ID + n}\t{PAIRS[n % 4]}\t{'buy' if n % 2 else 'sell'}\t{(n % 97) / 10 + 0.1:.4f}"
                             f"\t{20000 + n % 5000}.25\t{(n % 41) - 20}.50\t{at.isoformat()}\n")
                if len(chunk) == 20000:
                    copy.write("".join(chunk))
                    chunk = []
            copy.write("".join(chunk))
        conn.execute("ANALYZE trades")
    return time.monotonic() - started


def timed(action):
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    args = parser.parse_args()
    lab = Lab.from_env()
    if not lab.is_up():
        print(f"the lab in {lab.lab_dir} is not up; start it with: .venv/bin/python -m lab up", file=sys.stderr)
        return 2
    settings = load(Path(lab.config_path))
    box = box_of(settings)
    try:
        print(f"bench_backup: adding {args.trades:,} trades with COPY ...", flush=True)
        copy_seconds = add_trades(lab, args.trades)
        with lab.cluster().connect() as conn:
            total = conn.execute("SELECT count(*) FROM trades").fetchone()[0]
            size = conn.execute("SELECT pg_database_size('trading_agent')").fetchone()[0]
        context = ActionContext(settings, box, service_manager(settings), Mode.APPLY)
        outcome, backup_seconds = timed(lambda: take_backup(context, backup_kind="full"))
        if outcome.status != "done":
            print(f"bench_backup: the backup failed: {outcome.summary()}", file=sys.stderr)
            return 1
        probe = BackupProbe(box, settings)
        newest = probe.newest("full")
        problems, verify_seconds = timed(lambda: probe.dump_problems(newest))
        taken = datetime.fromtimestamp(newest.taken_at, UTC)
        drill, drill_seconds = timed(lambda: restoredb.drill(box, settings, newest.path(DUMP), taken))
        print(f"database  {total:,} trades, {size / 2**20:.0f} MiB on disk (COPY of the added rows: {copy_seconds:.1f}s)")
        print(f"backup    {backup_seconds:6.1f}s  full: tar {newest.size(TARBALL) / 2**10:.0f} KiB, pg_dump -Fc "
              f"{newest.size(DUMP) / 2**20:.1f} MiB, both read back, the agent and dashboard stopped and started")
        print(f"verify    {verify_seconds:6.1f}s  the dump's sha256 and pg_restore reading every block"
              + (f" (problems: {problems})" if problems else ""))
        print(f"drill     {drill_seconds:6.1f}s  restore into a scratch database, count and compare, drop "
              f"({drill.seconds:.1f}s of it restoring and comparing)" + (f"; problems: {drill.problems}"
                                                                         if drill.problems else ""))
    finally:
        lab.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
