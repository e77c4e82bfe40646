"""The retention walker: lists, or deletes as root, the files a [[retention]] rule owns, and cannot be steered.

A path string is looked up again at every use, so a link planted higher up, or a parent directory swapped
(renameat2) between two uses, can lead a root `find DIR ... -delete` into another tree. Here the rule's directory
is reached once, from `/`, one component at a time (core/safepath.py: no link followed, systemd's "unsafe path
transition" refused), and everything after happens on that directory's descriptor: each name is judged by
`fstatat(AT_SYMLINK_NOFOLLOW)` (a regular file, of one of the rule's owners, on the directory's filesystem, older
than the rule's days as `find -mtime +N` counts them) and removed by `unlinkat` on the same descriptor. Whatever is
renamed meanwhile, a name is only ever removed from the directory that was checked. A recursive rule goes down
the same way, each step judged like a step of the path.

What the walker refuses (a link or an unsafe transition where it had to go, a name it could not remove) is
returned and said, and a run with refusals is a failure. What is simply not the rule's (a link, another owner's
file, another filesystem, a name or age that does not match) is left alone as `find`'s tests leave it, counted
but never named: naming it would put what is not the rule's into reports.

Standard library only: the same code runs in the suite's process on this machine, and on a box as the program
`PROGRAM` that root installs (commands/boxhelpers.py; probes/files.py writes its text from this module and
core/safepath.py), the one command the maintenance user's sudo rule allows for each rule. Run as a program it
prints one JSON object; `--list` first lists instead of deleting (no root needed).
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import stat
import sys
import time

from core.safepath import UnsafePath, open_directory, owner_name, unsafe_transition  # inlined in the box program

PROGRAM = "/usr/local/libexec/trading-maintenance/expire"
DAY = 86400
MAX_DEPTH = 64  # directories below the rule's: deeper is refused, not walked (a tree built to exhaust descriptors)
DESCEND_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RECURSIVE, FLAT = "recursive", "flat"  # the program's last argument
USAGE = (f"usage: {PROGRAM} [--list] DIR PATTERN MAX_AGE_DAYS OWNER[,OWNER...] {RECURSIVE}|{FLAT}\n"
         "Deletes (--list: lists) the regular files named PATTERN, older than MAX_AGE_DAYS whole days, owned by\n"
         "one of the OWNERs, on DIR's filesystem, in DIR (recursive: and below), never through a link.\n")


def shown(path: str) -> str:
    """A name as text any report can hold: bytes that are not UTF-8 and control characters as \\xNN."""
    if path.isascii() and path.isprintable():
        return path
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


def owner_ids(owners: list[str]) -> set[int]:
    import pwd

    try:
        return {pwd.getpwnam(owner).pw_uid for owner in owners}
    except KeyError as error:
        raise LookupError(f"retention owner {error.args[0]!r} is no user on this box") from None


class Walk:
    """One rule's walk: what it found (or deleted), what it refused and why, what it left as not the rule's."""

    def __init__(self, pattern: str, max_age_days: int, uids: set[int], recursive: bool, delete: bool, now: float):
        self.matches = re.compile(fnmatch.translate(pattern)).match  # fnmatchcase's own test, compiled once
        self.max_age_days, self.uids = max_age_days, uids
        self.recursive, self.delete, self.now = recursive, delete, now
        self.expired: list[str] = []
        self.refused: list[dict] = []
        self.left: dict[str, int] = {}

    def refuse(self, path: str, why: str) -> None:
        self.refused.append({"path": shown(path), "why": why})

    def leave(self, reason: str) -> None:
        self.left[reason] = self.left.get(reason, 0) + 1

    def result(self) -> dict:
        return {"expired": sorted(self.expired), "refused": self.refused, "left": self.left, "deleted": self.delete}

    def directory(self, descriptor: int, path: str, depth: int) -> None:
        """Every name of one directory, through its descriptor; subdirectories after its own files. Each name that
        matches is judged by fstatat without following it and removed by unlinkat from this descriptor. One loop
        over local names: it is most of the cost of a large directory (bench/bench_retention.py)."""
        here = os.fstat(descriptor)
        names, below = [], []
        with os.scandir(descriptor) as entries:
            for entry in entries:
                (below if entry.is_dir(follow_symlinks=False) else names).append(entry.name)
        prefix, matches, uids, device, now = path.rstrip("/") + "/", self.matches, self.uids, here.st_dev, self.now
        max_age, delete, expired = self.max_age_days, self.delete, self.expired
        for name in filter(matches, names):
            try:
                info = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone meanwhile: nothing to do
            # find -mtime +N: whole days of age, rounded down, over N. A directory is walked or not the rule's.
            if (now - info.st_mtime) // DAY <= max_age or stat.S_ISDIR(info.st_mode):
                continue
            if not (stat.S_ISREG(info.st_mode) and info.st_uid in uids and info.st_dev == device):
                self.leave(self.not_the_rules(info))
                continue
            if delete:
                try:
                    os.unlink(name, dir_fd=descriptor)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    self.refuse(prefix + name, f"could not delete it: {error.strerror}")
                    continue
            expired.append(shown(prefix + name))
        if self.recursive:
            for name in below:
                self.descend(descriptor, prefix + name, name, here, depth)

    def not_the_rules(self, info: os.stat_result) -> str:
        """Why a matching, old enough name is left alone: counted in the result, never named."""
        if stat.S_ISLNK(info.st_mode):
            return "symbolic link"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_uid not in self.uids:
            return "another owner's file"
        return "file on another filesystem"

    def descend(self, descriptor: int, there: str, name: str, parent: os.stat_result, depth: int) -> None:
        """Into the subdirectory `name` (shown as `there`), judged as a step of the rule's path is."""
        if depth >= MAX_DEPTH:
            self.refuse(there, f"more than {MAX_DEPTH} directories below the rule's: not walked")
            return
        try:
            child = os.open(name, DESCEND_FLAGS, dir_fd=descriptor)
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                self.refuse(there, "it became a symbolic link (or no directory) while it was walked: not followed")
                return
            raise
        try:
            info = os.fstat(child)
            if info.st_dev != parent.st_dev:
                self.leave("directory on another filesystem, not crossed")
            elif unsafe_transition(parent, info):
                self.refuse(there, f"unsafe path transition: {shown(os.path.dirname(there))} is owned by "
                                   f"{owner_name(parent.st_uid)} and holds this directory of "
                                   f"{owner_name(info.st_uid)}: not walked")
            else:
                self.directory(child, there, depth + 1)
        finally:
            os.close(child)


def expire(directory: str, pattern: str, max_age_days: int, owners: list[str], recursive: bool = False, *,
           delete: bool, now: float | None = None) -> dict:
    """`find DIR -xdev [-maxdepth 1] -name PATTERN -type f -user OWNER... -mtime +N [-delete]`, unsteerable.

    Returns {"expired": paths found (deleted when `delete`), "refused": [{"path", "why"}], "left": {reason: count},
    "deleted": delete}, every path shown escaped. Raises FileNotFoundError naming a directory that is not there,
    LookupError naming an owner the box does not have: the rule could not be looked at, which is no refusal."""
    walk = Walk(pattern, max_age_days, owner_ids(owners), recursive, delete, time.time() if now is None else now)
    try:
        descriptor = open_directory(directory, strict=False)
    except UnsafePath as error:
        walk.refuse(directory, str(error))
        return walk.result()
    except OSError as error:
        # O_NOFOLLOW|O_DIRECTORY on a link fails with ELOOP or ENOTDIR; safepath names a link it still sees, but
        # one swapped back meanwhile (renameat2) leaves only the error: refused all the same, never "not there".
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            walk.refuse(directory, "a component of its path was a symbolic link or no directory when it was opened "
                                   "(swapped while it was walked?): not followed")
            return walk.result()
        if error.errno == errno.ENOENT:
            raise FileNotFoundError(f"retention directory {shown(directory)} does not exist (or is not a directory)"
                                    ) from None
        raise
    try:
        walk.directory(descriptor, directory, 0)
    finally:
        os.close(descriptor)
    return walk.result()


def main(argv: list[str]) -> int:
    """The box program: exit 0 when nothing was refused, 1 with refusals, 2 when the rule could not be looked at
    (the JSON's "error") or the arguments are wrong."""
    listing = argv[:1] == ["--list"]
    arguments = argv[1:] if listing else argv
    if len(arguments) != 5 or arguments[4] not in (RECURSIVE, FLAT) or not arguments[2].isdigit():
        sys.stderr.write(USAGE)
        return 2
    directory, pattern, days, owners, depth = arguments
    try:
        result = expire(directory, pattern, int(days), owners.split(","), depth == RECURSIVE, delete=not listing)
    except (LookupError, OSError) as error:
        sys.stdout.write(json.dumps({"error": type(error).__name__, "message": str(error)}) + "\n")
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    return 1 if result["refused"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
