"""What the weekly security audit reads on a box, as plain functions of the standard library only.

Like probes/remote/securityscan.py, this module is shipped whole to the box's `python3 -I -S` over SSH (or
called in the suite's process for `local://`), one function per call, JSON in and out, and must run
on Python 3.8: no import outside the standard library, no state between calls.

- the mode and owner of files (secrets), never through a symbolic link;
- the world-writable files and directories under a directory.
"""

from __future__ import annotations

import os
import pwd
import stat


def file_modes(paths: list) -> dict:
    """{path: {mode, uid, owner, link}} or {path: {error, message}}: lstat, so a link is a link."""
    return {path: _guarded(_mode_of, path) for path in paths}


def _mode_of(path: str) -> dict:
    status = os.lstat(path)
    try:
        owner = pwd.getpwuid(status.st_uid).pw_name
    except KeyError:  # a uid no account has
        owner = str(status.st_uid)
    return {"mode": stat.S_IMODE(status.st_mode), "uid": status.st_uid, "owner": owner,
            "link": stat.S_ISLNK(status.st_mode)}


def world_writable(top: str, listed: int = 10) -> dict:
    """Files and directories under `top` (itself included) that anyone may write, links not followed:
    {count, first: [path...], unreadable: [directory...]}. `top` itself must be readable."""
    os.listdir(top)  # FileNotFoundError, PermissionError: named by the caller
    found, first, unreadable = 0, [], []

    def note(path: str, mode: int) -> None:
        nonlocal found
        if mode & stat.S_IWOTH:
            found += 1
            if len(first) < listed:
                first.append(path)

    note(top, os.lstat(top).st_mode)
    for directory, subdirectories, files in os.walk(top, onerror=lambda error: unreadable.append(error.filename)):
        for name in [*subdirectories, *files]:
            path = os.path.join(directory, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:  # gone meanwhile
                continue
            if not stat.S_ISLNK(mode):  # a link's own mode is always 777 and means nothing
                note(path, mode)
    return {"count": found, "first": sorted(first), "unreadable": sorted(unreadable)}


def _guarded(read, path: str) -> dict:
    """A file's reading, or why it could not be read, as data."""
    try:
        return read(path)
    except OSError as error:
        return {"error": type(error).__name__, "message": error.strerror or str(error)}
