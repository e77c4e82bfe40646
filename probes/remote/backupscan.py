"""The backups on the box: what anyone may read of them, and the program root runs for everything else.

Standard library only, in two roles. As a module of readers, shipped to the box's python3 like
probes/remote/readers.py (probes/host.py's `Box.call`): the listing of the backup directory and the space it
takes, which the maintenance user may read. As the box program `PROGRAM` (installed by root,
commands/boxhelpers.py): every operation on a set's files, which only root may read and write (they hold the
agent's `.env` and keys, 0600 from their first byte). Its arguments are fixed by the configuration (the
directory, what tar leaves out, the files that matter, the pg_dump and pg_restore commands), so that
`make sudoers` can allow each operation as one exact command; only the set, the scratch database and the
parts to read come on standard input as JSON, and are checked here against the names the suite gives them
(KIND-YYYYmmdd-HHMMSS, DBNAME_drill_* / DBNAME_restore_*). The maintenance user can make root take, read
back, set aside, prune and restore into a scratch database the backups of that one directory, and nothing else.
Where the suite runs as root on the box itself, the same operations run in its process (`operate`).

What must not be left to a caller is decided here: a set is set aside only once it was read and found wrong
(its checksum, its tarball or its dump); a read refused for access (sudo, a permission) or cut by its timeout
is answered as `unread` and nothing is renamed; a take that fails leaves its files as `.failed` with an
`KIND-STAMP.attempt.failed` beside them, the record of the suite's own failed attempt (its stamp is when the
attempt started) that the backup guard counts, which a set set aside by verification never has.
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import time

PROGRAM = "/usr/local/libexec/trading-maintenance/backup"
KINDS = ("full", "incremental", "archive")  # configuration/backups.py's, which this program cannot import
TARBALL, DUMP, ATTEMPT = "tar.gz", "dump", "attempt"
CHUNK = 1 << 20
CHECKSUM = ".sha256"
FAILED, PARTIAL = ".failed", ".partial"
DAY = 86400
STAMP = "%Y%m%d-%H%M%S"
NAME = re.compile(r"^(?P<kind>" + "|".join(KINDS) + r")-(?P<stamp>\d{8}-\d{6})\.(?P<part>tar\.gz|dump|attempt)"
                  r"(?P<sha>\.sha256)?(?P<state>\.failed|\.partial)?$")
SET_NAME = re.compile(r"^(?:" + "|".join(KINDS) + r")-\d{8}-\d{6}$")
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Why a reading did not happen (core/vocabulary.py Unread's words, and two of its own): never a fault of the set.
PERMISSION, SUDO_REFUSED, TIMED_OUT, NOT_RUN = "permission denied", "sudo refused", "timed out", "could not run"
SUDO_WORDS = ("a password is required", "a terminal is required", "is not allowed to execute",
              "is not in the sudoers file", "you must have a tty")


# ---- readers: what the maintenance user may read


def backup_files(directory: str) -> dict:
    """The regular files directly in `directory` ({name: [size, mtime]}) and the box's clock."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"backup directory {directory} does not exist (or is not a directory)")
    found = {}
    for name in os.listdir(directory):
        info = os.lstat(os.path.join(directory, name))
        if stat.S_ISREG(info.st_mode):
            found[name] = [info.st_size, info.st_mtime]
    return {"files": found, "now": time.time()}


def usage(directory: str) -> dict:
    """Bytes of the regular files under `directory` (on its filesystem) and the size of that filesystem."""
    device = os.lstat(directory).st_dev
    total = 0
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(root, d)).st_dev == device]
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    fs = os.statvfs(directory)
    return {"bytes": total, "fs_bytes": fs.f_blocks * fs.f_frsize}


# ---- names, kinds and retention (the suite's probes/backups.py reads the listing with these too)


def stamp_of(epoch: float) -> str:
    return time.strftime(STAMP, time.gmtime(epoch))


def taken_at(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, STAMP)))


def sets_of(files) -> dict:
    """{(kind, stamp, state): {file name without its state: size}} of the names that are a set's files."""
    sets: dict = {}
    for name in files:
        found = NAME.match(name)
        if found:
            state = found["state"] or ""
            size = files[name][0] if isinstance(files, dict) else 0
            sets.setdefault((found["kind"], found["stamp"], state), {})[name.removesuffix(state)] = size
    return sets


def newest_good(sets: dict) -> set:
    """The (kind, stamp) of the newest set of each kind that is neither being written nor set aside."""
    newest: dict = {}
    for kind, stamp, state in sets:
        if not state and stamp > newest.get(kind, ""):
            newest[kind] = stamp
    return set(newest.items())


def past_retention(sets: dict, now: float, keep_days: dict) -> list:
    """Keys of sets older than their kind's keep_days, set-aside ones included; never the newest good one of a
    kind, whatever its age: when backups stop, the last good one is all there is."""
    kept = newest_good(sets)
    return sorted(key for key in sets if key[2] != PARTIAL and (key[2] == FAILED or key[:2] not in kept)
                  and (now - taken_at(key[1])) / DAY > keep_days.get(key[0], float("inf")))


def stale_partials(sets: dict, now: float, stale_after_seconds: float) -> list:
    """Keys of partial sets older than a take may run: what a killed backup left."""
    return sorted(key for key in sets if key[2] == PARTIAL and now - taken_at(key[1]) > stale_after_seconds)


# ---- reading a set's files (as root, in the program)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(os.open(path, OPEN_FLAGS), "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum(path: str) -> dict:
    """{"recorded": the sha256 in PATH.sha256 (None: no such file), "actual": the file's, "size"}."""
    try:
        with open(os.open(path + CHECKSUM, OPEN_FLAGS)) as handle:
            words = handle.read().split()
        recorded = words[0].lower() if words else ""
    except FileNotFoundError:
        recorded = None
    return {"recorded": recorded, "actual": sha256_of(path), "size": os.path.getsize(path)}


def write_checksum(path: str, name: str) -> str:
    """PATH's sha256 into DIR/NAME.sha256 in sha256sum's format (`sha256sum -c` reads it), wholly or not at all."""
    digest = sha256_of(path)
    target = os.path.join(os.path.dirname(path), name + CHECKSUM)
    partial = target + PARTIAL
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(descriptor, "w") as handle:
        handle.write(f"{digest}  {name}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return digest


def read_tarball(path: str, wanted: list) -> dict:
    """Read a tar.gz to the end of its gzip stream (every member, the CRC and length of the stream):
    {"error": why it does not read to its end or None, "members": how many were read, "missing": the
    `wanted` paths (relative; a trailing / is a directory that must hold a file) it does not hold}.
    Raises PermissionError: a tarball this user may not read says nothing about the tarball."""
    import gzip
    import tarfile
    import zlib

    names, error = set(), None
    try:
        with open(os.open(path, OPEN_FLAGS), "rb") as raw, gzip.open(raw, "rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    name = member.name[2:] if member.name.startswith("./") else member.name
                    names.add(name + "/" if member.isdir() else name)
            while stream.read(CHUNK):  # past tar's end-of-archive blocks: the gzip trailer is checked at its end
                pass
    except PermissionError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as problem:
        error = f"{type(problem).__name__}: {problem}" if str(problem) else type(problem).__name__
    missing = [entry for entry in wanted if not _holds(names, entry)]
    return {"error": error, "members": len(names), "missing": missing}


def _holds(names: set, entry: str) -> bool:
    if entry.endswith("/"):
        return any(name.startswith(entry) and not name.endswith("/") for name in names)
    return entry in names


def refusal(said: str) -> str | None:
    """The cause when a command's words say it was not let read (sudo, a permission), else None."""
    lowered = said.lower()
    if "sudo:" in lowered and any(word in lowered for word in SUDO_WORDS):
        return SUDO_REFUSED
    return PERMISSION if "permission denied" in lowered else None


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run_command(argv: list, timeout: float) -> tuple:
    """(None, None) when `argv` ran and exited 0; (what it said, None) when it ran and failed; (None, unread) when
    it was not let read or did not finish. Whatever it writes is its owner's alone from the first byte."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, umask=0o077)
    except subprocess.TimeoutExpired:
        return None, {"cause": TIMED_OUT, "detail": f"{argv[0]} did not finish within {timeout:g}s"}
    except OSError as error:
        return None, {"cause": NOT_RUN, "detail": f"{argv[0]}: {error.strerror or error}"}
    if done.returncode == 0:
        return None, None
    said = _last_line(done.stderr) or _last_line(done.stdout) or f"exit {done.returncode}"
    cause = refusal(done.stderr.decode("utf-8", "replace"))
    return (None, {"cause": cause, "detail": said}) if cause else (said, None)


def part_findings(path: str, part: str, wanted: list, pg_restore: list, timeout: float, *, checksums: bool) -> dict:
    """What reading one part of a set found: its size (None: not there), its checksum recorded and actual (when
    `checksums`), the tarball's members and `missing` of `wanted`, why it does not read to its end ("error"), or
    why it could not be read at all ("unread")."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"size": None}
    found = {"size": info.st_size if stat.S_ISREG(info.st_mode) else None}
    if not found["size"]:
        return found
    try:
        if checksums:
            found.update({key: value for key, value in checksum(path).items() if key != "size"})
        if part == TARBALL:
            found.update(read_tarball(path, wanted))
        else:
            found["error"], found["unread"] = run_command([*pg_restore, "--file=/dev/null", path], timeout)
    except PermissionError as error:
        found["unread"] = {"cause": PERMISSION, "detail": f"{path}: {error.strerror or error}"}
    return found


def problems_of(set_name: str, part: str, found: dict) -> list:
    """Why one part of a set would not restore, in the operator's words (its findings, not an access problem)."""
    name = f"{set_name}.{part}"
    if found.get("size") is None:
        return [f"{set_name} has no {'tarball' if part == TARBALL else 'dump'} {name}"]
    if found["size"] == 0:
        return [f"{name} is empty (0 bytes)" + (": pg_dump wrote nothing" if part == DUMP else "")]
    problems = []
    if "actual" in found and found["recorded"] is None:
        problems.append(f"{name} has no checksum file {name}{CHECKSUM}")
    elif "actual" in found and found["recorded"] != found["actual"]:
        problems.append(f"{name} does not match its checksum (sha256 {found['actual'][:12]}..., recorded "
                        f"{(found['recorded'] or 'nothing')[:12]}...): changed or cut since it was written")
    if found.get("error"):
        problems.append(f"{name} does not read to its end ({found['error']})" + (
            ": cut short, as a pg_dump killed half-way or a copy that stopped leaves it" if part == DUMP else ""))
    return problems


# ---- the program's operations


class Refused(ValueError):
    """A request the program does not carry out: the message says which value and what it must be."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # never exit: the suite may run the operations in its own process
        raise Refused(f"{PROGRAM}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, add_help=False)
    parser.add_argument("operation", choices=sorted(OPERATIONS))
    parser.add_argument("kind", nargs="?", choices=KINDS)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--app-dir")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--want", action="append", default=[])
    parser.add_argument("--dbname")
    parser.add_argument("--keep", action="append", default=[])  # KIND:DAYS
    parser.add_argument("--stale-after", type=float)
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser


def parse_arguments(argv: list) -> argparse.Namespace:
    """The fixed arguments; what follows `--` is the command the operation runs (pg_dump or pg_restore)."""
    split = argv.index("--") if "--" in argv else len(argv)
    options = _parser().parse_args(argv[:split])
    options.command = argv[split + 1:]
    if not os.path.isabs(options.dir):
        raise Refused(f"{PROGRAM}: --dir {options.dir!r} must be an absolute path")
    return options


def _set_name(request: dict) -> str:
    name = request.get("name")
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise Refused(f"{name!r} is not a backup set's name (KIND-YYYYmmdd-HHMMSS, KIND one of {', '.join(KINDS)})")
    return name


def _open_directory(path: str) -> int:
    return os.open(path, DIRECTORY_FLAGS)


def _regular(directory: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _rename_set(options, name: str, state: str, new_state: str) -> list:
    """Every file of the set named with `state` renamed with `new_state`, in its directory; the new names."""
    directory = _open_directory(options.dir)
    try:
        done = []
        for old in sorted(os.listdir(directory)):
            found = NAME.match(old)
            if not found or f"{found['kind']}-{found['stamp']}" != name or (found["state"] or "") != state:
                continue
            if _regular(directory, old):
                new = old.removesuffix(state) + new_state
                os.rename(old, new, src_dir_fd=directory, dst_dir_fd=directory)
                done.append(new)
        return done
    finally:
        os.close(directory)


def _record_attempt(options, name: str, problems: list) -> None:
    """KIND-STAMP.attempt.failed: the suite's own failed attempt and why, which the backup guard counts."""
    directory = _open_directory(options.dir)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with open(os.open(f"{name}.{ATTEMPT}{FAILED}", flags, 0o600, dir_fd=directory), "w") as handle:
            json.dump({"at": time.time(), "problems": problems}, handle)
    except FileExistsError:
        pass
    finally:
        os.close(directory)


def _failed_attempt(options, name: str, state: str, problems: list) -> list:
    kept = _rename_set(options, name, state, FAILED)
    _record_attempt(options, name, problems)
    return kept


def _read_set(options, name: str, state: str, wanted: list, parts=(TARBALL, DUMP), checksums: bool = True) -> dict:
    """Each part's findings, the tarball's with which of `wanted` it lacks."""
    return {part: part_findings(os.path.join(options.dir, f"{name}.{part}{state}"), part, wanted, options.command,
                                options.timeout, checksums=checksums) for part in parts}


def _files_that_matter(options, name: str) -> list:
    """--want, of a set that is not incremental: an incremental holds only what changed since its full."""
    return [] if name.startswith("incremental-") else list(options.want)


def _unread(findings: dict) -> dict | None:
    return next((found["unread"] for found in findings.values() if found.get("unread")), None)


def _set_problems(name: str, findings: dict) -> list:
    """Everything that keeps a set from restoring: its tarball's, the files that matter it lacks, its dump's."""
    problems = problems_of(name, TARBALL, findings[TARBALL])
    missing = findings[TARBALL].get("missing")
    if missing and not problems:
        problems.append(f"{name}.{TARBALL} lacks {', '.join(missing)}")
    return problems + problems_of(name, DUMP, findings[DUMP])


def op_read(options, request: dict) -> dict:
    """Read back the parts a caller asks of a good set, and which of `want` its tarball holds: {part: findings,
    "unread": why a part could not be read, or None}."""
    name = _set_name(request)
    parts = [part for part in request.get("parts", [TARBALL, DUMP]) if part in (TARBALL, DUMP)]
    findings = _read_set(options, name, "", [str(entry) for entry in request.get("want", [])], parts)
    return {**findings, "unread": _unread(findings)}


def op_set_aside(options, request: dict) -> dict:
    """A good set that reads back wrong becomes `.failed` (never one that verifies, never one that could not be
    read): {"problems", "kept_as": the names it now has, "unread"}."""
    name = _set_name(request)
    findings = _read_set(options, name, "", _files_that_matter(options, name))
    unread = _unread(findings)
    if unread:
        return {"problems": [], "kept_as": [], "unread": unread}
    problems = _set_problems(name, findings)
    return {"problems": problems, "kept_as": _rename_set(options, name, "", FAILED) if problems else []}


def op_write(options, request: dict) -> dict:
    """A new set of the kind under `.partial` names: tar of the application directory (an incremental: what
    changed since the newest good full), then pg_dump; a step that fails leaves it `.failed` with its attempt."""
    if options.kind is None or not options.app_dir or not options.dbname or not options.command:
        raise Refused(f"{PROGRAM} write needs a KIND, --app-dir, --dbname and the pg_dump command after --")
    os.makedirs(options.dir, mode=0o755, exist_ok=True)
    listing = backup_files(options.dir)
    name = f"{options.kind}-{stamp_of(listing['now'])}"
    if any(file.startswith(name + ".") for file in listing["files"]):
        raise Refused(f"{name} exists already in {options.dir}: one take a second")
    said, newer = [], []
    if options.kind == "incremental":
        fulls = sorted(stamp for (kind, stamp, state), files in sets_of(listing["files"]).items()
                       if kind == "full" and not state and f"full-{stamp}.{TARBALL}" in files)
        newer = [f"--newer-mtime=@{int(taken_at(fulls[-1]))}"] if fulls else []
        said.append(f"the files changed since the full backup full-{fulls[-1]}" if fulls
                    else "no full backup to build on: every file")
    tarball = os.path.join(options.dir, f"{name}.{TARBALL}{PARTIAL}")
    problems = _step(["tar", "-C", options.app_dir, "-czf", tarball, *[f"--exclude={p}" for p in options.exclude],
                      *newer, "."], "tar", options.timeout, said)
    if not problems:
        dump = os.path.join(options.dir, f"{name}.{DUMP}{PARTIAL}")
        problems = _step([*options.command, "--format=custom", f"--file={dump}", options.dbname], "pg_dump",
                         options.timeout, said)
    kept = _failed_attempt(options, name, PARTIAL, problems) if problems else []
    return {"name": name, "said": said, "problems": problems, "kept_as": kept}


def _step(argv: list, what: str, timeout: float, said: list) -> list:
    """One step of a take; its problems (none when it did its work). tar's exit 1 is files changed as it read."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, umask=0o077)
    except subprocess.TimeoutExpired:
        return [f"{what} did not finish within {timeout:g}s"]
    except OSError as error:
        return [f"{what} could not run: {error.strerror or error}"]
    if done.returncode == 0 or (what == "tar" and done.returncode == 1):
        said.append(f"{what}: done" + (" (tar: some files changed as it read them)" if done.returncode else ""))
        return []
    text = _last_line(done.stderr) or _last_line(done.stdout) or "no output"
    return [f"{what} failed (exit {done.returncode}): {text}"]


def op_finish(options, request: dict) -> dict:
    """A set just written: read back whole (its tarball to its end, the files that matter, its dump), then its
    checksums written and its final names; or kept as `.failed`, with its attempt. Unread: left as it is."""
    name = _set_name(request)
    findings = _read_set(options, name, PARTIAL, _files_that_matter(options, name), checksums=False)
    unread = _unread(findings)
    if unread:
        return {"problems": [], "kept_as": [], "unread": unread}
    problems = _set_problems(name, findings)
    if problems:
        return {"problems": problems, "kept_as": _failed_attempt(options, name, PARTIAL, problems)}
    for part in (TARBALL, DUMP):
        write_checksum(os.path.join(options.dir, f"{name}.{part}{PARTIAL}"), f"{name}.{part}")
    return {"problems": [], "kept_as": _rename_set(options, name, PARTIAL, "")}


def op_prune(options, request: dict) -> dict:
    """Delete the sets past their kind's retention and what killed takes left: {"sets", "removed"}."""
    keep = {}
    for entry in options.keep:
        kind, _, days = entry.partition(":")
        if kind not in KINDS:
            raise Refused(f"--keep {entry!r}: expected KIND:DAYS, KIND one of {', '.join(KINDS)}")
        keep[kind] = float(days)
    listing = backup_files(options.dir)
    sets = sets_of(listing["files"])
    old = past_retention(sets, listing["now"], keep) + stale_partials(sets, listing["now"], options.stale_after or 1e12)
    directory = _open_directory(options.dir)
    removed = []
    try:
        for key in old:
            for file in sorted(sets[key]):
                if _regular(directory, file + key[2]):
                    os.unlink(file + key[2], dir_fd=directory)
                    removed.append(file + key[2])
    finally:
        os.close(directory)
    return {"sets": [f"{kind}-{stamp}{state}" for kind, stamp, state in old], "removed": removed}


def op_restore_into(options, request: dict) -> dict:
    """pg_restore a good set's dump into a scratch database of the suite's (DBNAME_drill_* or DBNAME_restore_*,
    made empty by the suite): {"failed": what pg_restore said last, or None; "unread"}."""
    name = _set_name(request)
    database = request.get("database")
    scratch = re.compile(r"^" + re.escape(options.dbname or "") + r"_(drill|restore)_\d{8}_\d{6}$")
    if not options.dbname or not isinstance(database, str) or not scratch.match(database):
        raise Refused(f"{database!r} is not a scratch database of the suite's ({options.dbname}_drill_YYYYmmdd_HHMMSS "
                      f"or {options.dbname}_restore_YYYYmmdd_HHMMSS): the live database is never restored into")
    path = os.path.join(options.dir, f"{name}.{DUMP}")
    if not _regular_path(path):
        raise Refused(f"{path} is not a backup's dump")
    mine = [] if request.get("owners") else ["--no-owner", "--no-privileges"]
    failed, unread = run_command([*options.command, *mine, "--exit-on-error", f"--dbname={database}", path],
                                 options.timeout)
    return {"failed": failed, "unread": unread}


def _regular_path(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


OPERATIONS = {"read": op_read, "set-aside": op_set_aside, "write": op_write, "finish": op_finish, "prune": op_prune,
              "restore-into": op_restore_into}


def operate(argv: list, request: dict) -> dict:
    """One operation, its fixed arguments `argv` (what the sudo rule names) and the caller's `request`."""
    options = parse_arguments(argv)
    return OPERATIONS[options.operation](options, request)


def main(argv: list) -> int:
    """The box program: one JSON object out; exit 0, or 2 with {"error", "message"} when it refused or failed."""
    try:
        request = json.loads(sys.stdin.read() or "{}")
        if not isinstance(request, dict):
            raise Refused(f"{PROGRAM} reads one JSON object on its standard input")
        expected = request.get("sha256")
        if expected and expected != sha256_of(os.path.abspath(__file__)):
            raise Refused(f"{PROGRAM} is not the one this suite writes: install it again on the box "
                          f"(sudo make install-box-helpers)")
        answer = operate(argv, request)
    except (Refused, OSError, LookupError, ValueError) as error:
        sys.stdout.write(json.dumps({"error": type(error).__name__, "message": str(error)}) + "\n")
        return 2
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
