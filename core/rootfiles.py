"""Every file the suite creates, appends to or replaces: never through a link, never where another user could
swap a directory, and with its final mode and group before its first byte.

The suite runs as root beside an agent user an attacker may control. A path string is resolved again at each
use, so whoever can change a directory on the way decides what root writes to; and a file made with the
process's umask and chmod-ed later can be read in between. So, for root:

- the file's directory is reached with core/safepath.open_directory(strict=True): from `/` one component at a
  time, never through a link, each directory owned by root and writable by nobody else. The directory that
  holds the file may not even be sticky (/tmp): anybody may put a name there before root does. A missing
  directory is made from its checked parent, one component at a time;
- the file is opened from that descriptor with O_NOFOLLOW, a new one with O_EXCL; one to append to must be a
  regular file with a single link (a hard link planted to another file is refused);
- a new file gets its group and mode (0600 unless the caller says) before its first byte, whatever the umask;
- a replacement is a new temporary file of the final mode beside the target, synced, renamed over it, and the
  directory synced: readers see the old file or the new one, never half.

Not root: the files are the user's own, in directories the user chose, and the user is the one at risk; the
directories are not judged (a user may keep reports in a group's directory), only O_NOFOLLOW and O_EXCL apply.

Standard library only: the box-side readers use it on the box's own python3 (probes/host.py ships it).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import contextmanager, suppress
from pathlib import Path

from core import asuser, safepath

REMOTE_NEEDS = ("core.safepath", "core.asuser")  # what probes/host.py ships to the box with this module
PRIVATE = 0o600  # anything that can hold a secret or a finding
DIRECTORY_MODE = 0o755  # a directory the suite makes: its files carry their own modes
WHERE_ROOT_WRITES = "/var/lib/trading-maintenance"
NEW_FILE = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
EXISTING_FILE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO planted there cannot hang us


class RefusedFile(safepath.UnsafePath):
    """A file root will not write where it is: the message names the file, what is wrong and what to do."""


def as_root() -> bool:
    return os.geteuid() == 0


def absolute(path: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(path))


# -- directories


@contextmanager
def directory(path: str | os.PathLike, *, create: bool = True, mode: int = DIRECTORY_MODE, file: str = ""):
    """A descriptor of the directory `path`, made if missing (`mode`); for root, one only root can change."""
    descriptor = open_directory(path, create=create, mode=mode, file=file)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def ensure_directory(path: str | os.PathLike, mode: int = DIRECTORY_MODE) -> Path:
    """`path`, made if missing (what `mkdir -p` would do, checked as root writes are: before a lock goes in it)."""
    os.close(open_directory(path, mode=mode))
    return Path(path)


def open_directory(path: str | os.PathLike, *, create: bool = True, mode: int = DIRECTORY_MODE, file: str = "") -> int:
    """`file`: the file the directory is for, named in a refusal."""
    path = absolute(path)
    if not as_root():
        if create:
            os.makedirs(path, mode=mode, exist_ok=True)
        return os.open(path, safepath.DIRECTORY_FLAGS & ~os.O_NOFOLLOW)
    try:
        descriptor = _trusted_directory(path, create, mode)
    except safepath.UnsafePath as error:
        said = str(error)
        advice = (f" (such as {WHERE_ROOT_WRITES})" if said.endswith("only root can write")
                  else f": put the file under a directory only root can write (such as {WHERE_ROOT_WRITES})")
        raise RefusedFile(f"refusing to write {file or path}: {said}{advice}") from None
    try:
        _refuse_shared(descriptor, path, file)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _trusted_directory(path: str, create: bool, mode: int) -> int:
    try:
        return safepath.open_directory(path, strict=True)
    except FileNotFoundError:
        if not create or path == "/":
            raise
    parent = _trusted_directory(os.path.dirname(path), create, DIRECTORY_MODE)  # `mode` is the last one's
    name = os.path.basename(path)
    try:
        made = _make_directory(name, mode, parent)
        descriptor = os.open(name, safepath.DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):  # a link put there before us
            raise safepath.UnsafePath(f"{path} is a symbolic link or no directory: refusing to follow it") from None
        raise
    finally:
        os.close(parent)
    if made:
        os.fchmod(descriptor, mode)  # empty yet: its mode exactly as asked, whatever the umask
    info = os.fstat(descriptor)
    if not safepath.trusted_by_root(info, os.geteuid()):  # someone else's, put there before us
        os.close(descriptor)
        raise safepath.UnsafePath(f"{safepath.described(path, info)}, which could swap what is in it for a link: "
                                  f"use a directory only root can write")
    return descriptor


def _make_directory(name: str, mode: int, parent: int) -> bool:
    try:
        os.mkdir(name, mode & 0o700, dir_fd=parent)  # nobody else's until its mode is set
        return True
    except FileExistsError:
        return False


def _refuse_shared(descriptor: int, path: str, file: str) -> None:
    """The directory that holds root's file: writable by root alone, sticky or not."""
    info = os.fstat(descriptor)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RefusedFile(f"refusing to write {file or path}: {path} is writable by others (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}), who could put a link or a file of theirs where root "
                          f"writes: put the file under a directory only root can write ({WHERE_ROOT_WRITES})")


def _split(path: str | os.PathLike) -> tuple[str, str, str]:
    """(the whole path, its directory, its name)."""
    whole = absolute(path)
    folder, name = os.path.split(whole)
    if not name:
        raise IsADirectoryError(errno.EISDIR, "a file's path is needed, not a directory's", whole)
    return whole, folder, name


# -- files


def _give(descriptor: int, mode: int, group: str | int | None) -> None:
    """The group, then the mode, of a file nothing was written to yet: its final ones before its first byte."""
    if group is not None:
        os.fchown(descriptor, -1, group_id(group))
    os.fchmod(descriptor, mode)


def group_id(group: str | int) -> int:
    if isinstance(group, int):
        return group
    import grp

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise LookupError(f"no group {group!r} on this machine: name one that exists (getent group)") from None


def create_at(folder: int, name: str, mode: int = PRIVATE, group: str | int | None = None, *,
              flags: int = os.O_WRONLY) -> int:
    """A new file `name` in the directory `folder` (FileExistsError if any name is there, a link included)."""
    descriptor = os.open(name, flags | NEW_FILE, mode & 0o700, dir_fd=folder)
    try:
        _give(descriptor, mode, group)
    except BaseException:
        os.close(descriptor)
        os.unlink(name, dir_fd=folder)
        raise
    return descriptor


def create(path: str | os.PathLike, mode: int = PRIVATE, group: str | int | None = None) -> int:
    """A new file, open for writing: O_EXCL, so nothing that was there (a link) is ever written through."""
    whole, folder, name = _split(path)
    with directory(folder, file=whole) as parent:
        return create_at(parent, name, mode, group)


def open_append(path: str | os.PathLike, mode: int = PRIVATE, *, readable: bool = False) -> int:
    """A descriptor to append to `path` (made with `mode` if missing): a regular file with one link, reached
    without a link. `readable`: O_RDWR (a ledger reads its own tail)."""
    whole, folder, name = _split(path)
    with directory(folder, file=whole) as parent:
        return append_at(parent, name, whole, mode, readable=readable)


def append_at(folder: int, name: str, whole: str, mode: int = PRIVATE, *, readable: bool = False) -> int:
    access = os.O_RDWR if readable else os.O_WRONLY
    try:
        return create_at(folder, name, mode, flags=access | os.O_APPEND)
    except FileExistsError:
        pass
    try:
        descriptor = os.open(name, access | os.O_APPEND | EXISTING_FILE, dir_fd=folder)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RefusedFile(f"refusing to write {whole}: it is a symbolic link; remove it") from None
        if error.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO or socket nobody reads, a directory
            raise RefusedFile(f"refusing to write {whole}: it is not a regular file; remove it") from None
        raise
    try:
        refuse_unless_regular(descriptor, whole)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def refuse_unless_regular(descriptor: int, whole: str) -> None:
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        raise RefusedFile(f"refusing to write {whole}: it is not a regular file; remove it")
    if info.st_nlink != 1:
        raise RefusedFile(f"refusing to write {whole}: it has {info.st_nlink} hard links, so another name could be "
                          f"another file's (a link planted to it); remove it")


def write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def encoded(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def append(path: str | os.PathLike, data: bytes | str, mode: int = PRIVATE) -> None:
    """`data` at the end of `path` in one write (concurrent writers of O_APPEND lines never interleave)."""
    descriptor = open_append(path, mode)
    try:
        write_all(descriptor, encoded(data))
    finally:
        os.close(descriptor)


def replace(path: str | os.PathLike, data: bytes | str, mode: int = PRIVATE, group: str | int | None = None) -> None:
    """`path` wholly replaced by `data`: a new temporary file of the final mode beside it, synced, renamed over it
    (over a link too: the link goes, what it pointed to is untouched), then the directory synced."""
    whole, folder, name = _split(path)
    with directory(folder, file=whole) as parent:
        temporary, descriptor = _temporary(parent, name, mode, group)
        try:
            try:
                write_all(descriptor, encoded(data))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            _unlink_quietly(temporary, parent)
            raise
        os.fsync(parent)  # the rename itself survives a power cut


def _temporary(parent: int, name: str, mode: int, group: str | int | None) -> tuple[str, int]:
    """`.NAME.<random>.tmp`: what core/atomic.remove_stale_temporaries clears after a killed writer."""
    while True:
        temporary = f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return temporary, create_at(parent, temporary, mode, group)
        except FileExistsError:
            continue


def _unlink_quietly(name: str, parent: int) -> None:
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=parent)


def rename(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """A file renamed within its directory, replacing `target` (a link there goes, its target stays as it was)."""
    whole, folder, name = _split(source)
    _, target_folder, target_name = _split(target)
    if target_folder != folder:
        raise ValueError(f"{target} is not in the directory of {source}: a rename stays in one directory")
    with directory(folder, create=False, file=whole) as parent:
        os.replace(name, target_name, src_dir_fd=parent, dst_dir_fd=parent)


def restrict(path: str | os.PathLike, mode: int = PRIVATE, group: str | int | None = None) -> None:
    """An existing regular file's group and mode, reached without a link (chmod(1) follows one)."""
    whole, folder, name = _split(path)
    with directory(folder, create=False, file=whole) as parent:
        try:
            descriptor = os.open(name, os.O_RDONLY | EXISTING_FILE, dir_fd=parent)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise RefusedFile(f"refusing to change {whole}: it is a symbolic link") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise RefusedFile(f"refusing to change {whole}: it is not a regular file")
            _give(descriptor, mode, group)
        finally:
            os.close(descriptor)


def set_aside(path: str | os.PathLike, new_name: str, mode: int = PRIVATE) -> Path:
    """A file kept for a human under another name in its directory, readable by root alone; the new path."""
    whole, folder, _ = _split(path)
    restrict(whole, mode)
    target = os.path.join(folder, new_name)
    rename(whole, target)
    return Path(target)


# -- a file in another user's directory


def append_as_owner(path: str | os.PathLike, data: bytes | str, mode: int = 0o640) -> None:
    """A line in a log of a directory another user owns (the agent's network-failures.log), as logrotate's `su`
    does it: root never opens a name there; a child process that is the directory's owner appends, so a link
    planted there reaches nothing its owner could not write anyway. The directory is reached without a link
    and without an unsafe transition (core/safepath, not strict); a root directory others may write is refused
    (there is nobody to write as)."""
    whole, folder, name = _split(path)
    if not as_root():
        return append(whole, data, mode)
    try:
        parent = safepath.open_directory(folder, strict=False)
    except safepath.UnsafePath as error:
        raise RefusedFile(f"refusing to write {whole}: {error}") from None
    try:
        info = os.fstat(parent)
        if info.st_uid == 0:
            _refuse_shared(parent, folder, whole)
            descriptor = append_at(parent, name, whole, mode)
            try:
                write_all(descriptor, encoded(data))
            finally:
                os.close(descriptor)
            return None
        return _append_as(info.st_uid, _group_of(info), parent, name, whole, encoded(data), mode)
    finally:
        os.close(parent)


def _group_of(info: os.stat_result) -> int:
    """The owner's own group (its files' usual group); the directory's group if the owner has no entry."""
    try:
        import pwd

        return pwd.getpwuid(info.st_uid).pw_gid
    except (ImportError, KeyError):
        return info.st_gid


def _append_as(uid: int, gid: int, parent: int, name: str, whole: str, data: bytes, mode: int) -> None:
    """The append done by a child that has become uid/gid (no supplementary group); its refusal comes back."""
    def append() -> None:
        write_all(append_at(parent, name, whole, mode), data)

    kind, said = asuser.as_user(uid, gid, [], append)
    if kind is None:
        return
    message = said.decode(errors="replace")[:4000]
    owner = safepath.owner_name(uid)
    if kind in ("UnsafePath", "RefusedFile"):
        raise RefusedFile(f"{message} (written as {owner}, the owner of {os.path.dirname(whole)})")
    raise PermissionError(errno.EACCES, f"as {owner}, the owner of its directory: {message or 'the child died'}",
                          whole)
