"""The backups area of the healthy host, and the faults of backups that would not restore.

Healthy: sets of each kind as the suite names them (`KIND-YYYYmmdd-HHMMSS.tar.gz` and `.dump`, each with
a `.sha256`), all within their retention: the newest full, incremental and archive made from the lab's
own pg_dump (custom format, taken at `up`, its file's time the moment it started) and a real tarball of
/opt/trading-agent without node_modules, logs and backups; older fulls and incrementals before them.
Stamps are UTC and never later than the dump started, so the restore drill's "rows created before the
backup" are all in it. The faults each damage the newest full set the way it happens: a dump cut short
(its checksum then no longer matches), a pg_dump killed half-way (checksummed as if whole), an empty
dump, a checksum file that no longer matches, a tarball whose gzip stream is damaged, backups past
their retention, the week's full backup missing.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import os
import re
import tarfile
import time
from datetime import datetime
from pathlib import Path

from lab.paths import LabPaths

STAMP = "%Y%m%d-%H%M%S"
NAME = re.compile(r"^(full|incremental|archive)-(\d{8}-\d{6})\.(tar\.gz|dump)(\.sha256)?$")
EXCLUDED = ("node_modules", "logs", "backups")  # the guide's excludes, at the top of /opt/trading-agent
FULL_DUE_DAYS = 7 - 6 / 24  # the lab's [backups]: every 7 days, 6 hours of slack
# (kind, hours before the dump) of the healthy sets: the newest of each kind first
HEALTHY = [("incremental", 0), ("full", 1), ("archive", 2), ("incremental", 24), ("incremental", 48),
           ("full", 1 + 7 * 24), ("full", 1 + 14 * 24)]
PAST_RETENTION = [("full", 40 * 24), ("incremental", 10 * 24)]  # the backups-past-retention fault


def stamp(moment: float) -> str:
    return time.strftime(STAMP, time.gmtime(moment))


def taken_at(name: str) -> float:
    """When a set named KIND-STAMP was started (its stamp is UTC)."""
    return float(calendar.timegm(time.strptime(name.split("-", 1)[1], STAMP)))


def dump_time(paths: LabPaths) -> float | None:
    """When the lab's dump started (its file's time), or None before the database was dumped."""
    try:
        return paths.db_dump.stat().st_mtime
    except FileNotFoundError:
        return None


def app_tarball(paths: LabPaths) -> bytes:
    """/opt/trading-agent as `tar -C /opt/trading-agent -czf ... --exclude=... .` writes it."""
    buffer = io.BytesIO()
    root = paths.opt_dir
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname=".", filter=lambda info: None if info.name.split("/")[1:2] and
                info.name.split("/")[1] in EXCLUDED else info)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(path: Path, data: bytes, moment: float) -> None:
    """A new file, wholly or not at all."""
    partial = path.with_name(path.name + ".lab-partial")
    partial.write_bytes(data)
    os.utime(partial, (moment, moment))
    os.replace(partial, path)


def _checksum(path: Path, digest: str, moment: float) -> None:
    _put(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n".encode(), moment)


def write_set(paths: LabPaths, kind: str, moment: float, tarball: bytes, dump: bytes | None) -> str:
    name = f"{kind}-{stamp(moment)}"
    for part, data in (("tar.gz", tarball), ("dump", dump)):
        if data is not None:
            target = paths.backup_dir / f"{name}.{part}"
            _put(target, data, moment)
            _checksum(target, _sha(data), moment)
    return name


def write_healthy(paths: LabPaths, now: datetime | None = None) -> None:
    """The healthy sets (the backups area is emptied of files first by the caller)."""
    started = dump_time(paths)
    if started is None:
        return  # before the first dump (a box's files are written before its database runs)
    tarball, dump = app_tarball(paths), paths.db_dump.read_bytes()
    for kind, hours in HEALTHY:
        write_set(paths, kind, started - hours * 3600, tarball, dump)


def sets(paths: LabPaths, kind: str | None = None) -> list[str]:
    """The good sets in the backups area by name (KIND-STAMP), oldest first."""
    found = {f"{m[1]}-{m[2]}" for m in map(NAME.match, os.listdir(paths.backup_dir)) if m}
    return sorted((name for name in found if kind is None or name.startswith(kind + "-")),
                  key=lambda name: name.split("-", 1)[1])


def newest_full(paths: LabPaths) -> str | None:
    found = [name for name in sets(paths, "full") if (paths.backup_dir / f"{name}.tar.gz").exists()]
    return found[-1] if found else None


def lab_newest_full(paths: LabPaths) -> str | None:
    started = dump_time(paths)
    return None if started is None else f"full-{stamp(started - 3600)}"


def still_the_lab_full(paths: LabPaths) -> bool:
    """The full set a fault damaged is still the newest: nothing took a new one and set it aside."""
    return lab_newest_full(paths) is not None and newest_full(paths) == lab_newest_full(paths)


def _damage(paths: LabPaths, part: str, data: bytes | None, checksum: bytes | None) -> None:
    """Replace the newest lab full's part (`tar.gz` or `dump`) and/or its checksum file."""
    name = lab_newest_full(paths)
    if name is None:
        return
    target = paths.backup_dir / f"{name}.{part}"
    moment = target.stat().st_mtime if target.exists() else time.time()
    if data is not None:
        target.unlink(missing_ok=True)
        _put(target, data, moment)
    if checksum is not None:
        _put(target.with_name(target.name + ".sha256"), checksum, moment)


def _newest_full_part(paths: LabPaths, part: str) -> bytes:
    return (paths.backup_dir / f"{lab_newest_full(paths)}.{part}").read_bytes()


def dump_truncated(paths: LabPaths, now: datetime | None = None) -> None:
    """The dump cut to half after its checksum was written (a copy that stopped, a full disk)."""
    data = _newest_full_part(paths, "dump")
    _damage(paths, "dump", data[: len(data) // 2], None)


def dump_killed(paths: LabPaths, now: datetime | None = None) -> None:
    """What a pg_dump killed half-way leaves, checksummed as if whole (the guide's script goes on)."""
    whole = _newest_full_part(paths, "dump")
    data = whole[: len(whole) // 2]
    name = f"{lab_newest_full(paths)}.dump"
    _damage(paths, "dump", data, f"{_sha(data)}  {name}\n".encode())


def dump_zero(paths: LabPaths, now: datetime | None = None) -> None:
    """A zero-byte dump (pg_dump could not connect; the redirect made the file anyway), checksummed."""
    _damage(paths, "dump", b"", f"{_sha(b'')}  {lab_newest_full(paths)}.dump\n".encode())


def checksum_mismatch(paths: LabPaths, now: datetime | None = None) -> None:
    """The dump's checksum file names another content: the dump is not the one that was written."""
    wrong = _sha(b"not this dump")
    _damage(paths, "dump", None, f"{wrong}  {lab_newest_full(paths)}.dump\n".encode())


def tarball_corrupt(paths: LabPaths, now: datetime | None = None) -> None:
    """Bytes in the middle of the tarball's gzip stream overwritten, checksummed as if whole."""
    data = bytearray(_newest_full_part(paths, "tar.gz"))
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    name = f"{lab_newest_full(paths)}.tar.gz"
    _damage(paths, "tar.gz", bytes(data), f"{_sha(bytes(data))}  {name}\n".encode())


def backup_missing(paths: LabPaths, now: datetime | None = None) -> None:
    """This week's full backup never happened: every full set younger than a week is gone."""
    limit = time.time() - FULL_DUE_DAYS * 86400
    for name in sets(paths, "full"):
        if taken_at(name) > limit:
            for path in paths.backup_dir.glob(f"{name}.*"):
                path.unlink()


def full_missing(paths: LabPaths) -> bool:
    newest = newest_full(paths)
    if newest is None:
        return True
    return time.time() - taken_at(newest) > FULL_DUE_DAYS * 86400


def past_retention_names(paths: LabPaths) -> list[str]:
    started = dump_time(paths) or time.time()
    return [f"{kind}-{stamp(started - hours * 3600)}" for kind, hours in PAST_RETENTION]


def backups_past_retention(paths: LabPaths, now: datetime | None = None) -> None:
    """A full set of 40 days and an incremental of 10 (kept 30 and 7), as if the clean-up had not run."""
    tarball = app_tarball(paths)
    dump = paths.db_dump.read_bytes() if paths.db_dump.exists() else None
    for kind, hours in PAST_RETENTION:
        write_set(paths, kind, (dump_time(paths) or time.time()) - hours * 3600, tarball, dump)


def past_retention_left(paths: LabPaths) -> bool:
    return any((paths.backup_dir / f"{name}.tar.gz").exists() for name in past_retention_names(paths))


def write_keys(paths: LabPaths) -> None:
    """/opt/trading-agent/keys/oracle_key (mode 600), one of the files a backup must hold."""
    paths.keys_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.oracle_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("-----BEGIN LAB KEY-----\nnot a real key: the lab's stand-in of the cloud VM's key\n"
                  "-----END LAB KEY-----\n")
    os.chmod(paths.oracle_key, 0o600)


def write_pgpass(paths: LabPaths, port: int, password: str) -> None:
    """libpq's password file for pg_dump and pg_restore ([backups] names it with PGPASSFILE), mode 600."""
    fd = os.open(paths.pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"127.0.0.1:{port}:*:postgres:{password}\n")
    os.chmod(paths.pgpass, 0o600)
