"""Stand-in for `logrotate -f /etc/logrotate.d/trading-agent`: gzip dated logs older than N days.

    python -m lab.rotate LOG_DIR [--after-days 1]      (or: python /path/to/lab/rotate.py ...)

A dated log (trading-YYYY-MM-DD.log, error-YYYY-MM-DD.log) whose date is more than N full days
before today becomes .log.gz with the same mtime, as `compress` + `dateext` would leave it.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: import the lab package from the repo
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import gzip
import os
import re
import shutil
import sys
from datetime import date
from pathlib import Path

DATED_LOG = re.compile(r"^(?:trading|error)-(\d{4}-\d{2}-\d{2})\.log$")


def rotate(log_dir: Path, after_days: int = 1, today: date | None = None) -> list[Path]:
    today = today or date.today()
    rotated = []
    for path in sorted(log_dir.iterdir()):
        match = DATED_LOG.match(path.name)
        if not match or not path.is_file():
            continue
        if (today - date.fromisoformat(match.group(1))).days <= after_days:
            continue
        stat = path.stat()
        target = path.with_name(path.name + ".gz")
        with path.open("rb") as src, gzip.GzipFile(target, "wb", mtime=int(stat.st_mtime)) as dst:
            shutil.copyfileobj(src, dst)
        os.utime(target, (stat.st_atime, stat.st_mtime))
        path.unlink()
        rotated.append(target)
    return rotated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.rotate", description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", type=Path)
    parser.add_argument("--after-days", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.log_dir.is_dir():
        print(f"lab.rotate: {args.log_dir} is not a directory", file=sys.stderr)
        return 1
    rotated = rotate(args.log_dir, args.after_days)
    print(f"rotated {len(rotated)} log(s) in {args.log_dir}")
    for path in rotated:
        print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
