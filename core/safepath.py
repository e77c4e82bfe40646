"""Reaching a directory as root without being steered: one component at a time, never through a link.

A path string is resolved by the kernel at each use, so whoever may rename or replace a component between two
uses decides where a root process ends up. Here a directory is opened from `/` one name at a time with
O_NOFOLLOW|O_DIRECTORY, each step from the descriptor of the one before, and every step is judged by who owns
what, as systemd-tmpfiles judges its "unsafe path transitions". The descriptor returned stays bound to the
directory that was checked, whatever is renamed afterwards.

Standard library only: the box-side readers use it too (they run on the box's own python3).
"""

from __future__ import annotations

import errno
import os
import stat

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(PermissionError):
    """A path that an untrusted user could redirect: the message names the component, its owner and mode."""


def owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def described(path: str, info: os.stat_result) -> str:
    return f"{path} is owned by {owner_name(info.st_uid)} (mode {stat.S_IMODE(info.st_mode):04o})"


def components(path: str) -> list[str]:
    """The names of an absolute, normalised path; anything else is refused, as it could leave its tree."""
    if not path.startswith("/"):
        raise UnsafePath(f"{path!r} is not an absolute path")
    names = [name for name in path.split("/") if name]
    if any(name in (".", "..") for name in names) or path != "/" + "/".join(names):
        raise UnsafePath(f"{path!r} is not a normalised path (it holds '.', '..' or a doubled '/')")
    return names


def trusted_by_root(info: os.stat_result, me: int) -> bool:
    """A directory only root (or this process's own user) can change: owned by one of them and writable by
    nobody else, or sticky (/tmp: others may add names there but not rename ours)."""
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return info.st_uid in (0, me) and (not writable_by_others or bool(info.st_mode & stat.S_ISVTX))


def unsafe_transition(parent: os.stat_result, child: os.stat_result) -> bool:
    """systemd's rule: stepping from a directory not owned by root into something of another owner is unsafe
    (the parent's owner could have put a link or another user's directory there)."""
    return parent.st_uid != 0 and parent.st_uid != child.st_uid


def _is_link(name: str, directory: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_directory(path: str, *, strict: bool) -> int:
    """A descriptor of the directory `path`, reached from `/` without following any link.

    strict: every directory on the way, the last included, is one only root can change (`trusted_by_root`):
    for the suite's own files. Otherwise only an unsafe transition is refused: for a directory the agent's
    user owns (its logs), where root may act on that user's files but must never be led out of the tree.
    Raises UnsafePath naming the component, FileNotFoundError or NotADirectoryError as the kernel says."""
    me = os.geteuid()
    descriptor = os.open("/", DIRECTORY_FLAGS)
    here = "/"
    try:
        info = os.fstat(descriptor)
        if strict and not trusted_by_root(info, me):
            raise UnsafePath(f"{described(here, info)}: not a directory only root can change")
        for name in components(path):
            there = os.path.join(here, name)
            try:
                child = os.open(name, DIRECTORY_FLAGS, dir_fd=descriptor)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, descriptor):
                    raise UnsafePath(f"{there} is a symbolic link: refusing to follow it") from None
                raise
            os.close(descriptor)
            descriptor, parent, info, here = child, info, os.fstat(child), there
            if strict and not trusted_by_root(info, me):
                raise UnsafePath(f"{described(here, info)}, which could swap what is in it for a link: use a "
                                 f"directory only root can write")
            if not strict and unsafe_transition(parent, info):
                raise UnsafePath(f"unsafe path transition: {described(os.path.dirname(here) or '/', parent)} "
                                 f"and holds {here}, owned by {owner_name(info.st_uid)}")
        return descriptor
    except BaseException:
        os.close(descriptor)
        raise
