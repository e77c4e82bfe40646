"""The scheduled run's secrets file: KEY=VALUE lines, read only when nobody else can read or change it.

cron and systemd start a run without the operator's shell, so the variables the configuration's
`*_env` keys name come from this file instead. It is refused, with one line naming the file and the
fix, unless it is a regular file of the run's own user with no permission for group or others. Its
values are never printed: a bad line is named by its number only.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import stat
from pathlib import Path

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretsRefused(Exception):
    """The secrets file cannot be used; the message names it, what is wrong and how to fix it."""


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check(path: Path, status: os.stat_result, uid: int) -> None:
    """Refuse a file that is not a regular file of `uid` with mode 600 (or stricter)."""
    owner = user_name(uid)
    if not stat.S_ISREG(status.st_mode):
        raise SecretsRefused(f"secrets file {path} is not a regular file: make it one (install -m 600 -o {owner} "
                             f"/dev/null {path}, then add KEY=VALUE lines)")
    if status.st_uid != uid:
        raise SecretsRefused(f"secrets file {path} is owned by {user_name(status.st_uid)}, not by {owner} who runs "
                             f"the maintenance: chown {owner} {path}")
    if status.st_mode & 0o077:
        raise SecretsRefused(f"secrets file {path} is mode {stat.S_IMODE(status.st_mode):o}: group or others may "
                             f"read or change the secrets; chmod 600 {path}")


def check_path(path: Path, uid: int) -> None:
    """The same refusal, before the run (at install): for the user who will run the schedule."""
    try:
        status = path.lstat()
    except OSError as error:
        raise SecretsRefused(_unreadable(path, error, user_name(uid))) from None
    if stat.S_ISLNK(status.st_mode):
        raise SecretsRefused(_unreadable(path, OSError(errno.ELOOP, "link"), user_name(uid)))
    check(path, status, uid)


def read(path: Path) -> dict[str, str]:
    """The variables of the file, checked for this process's user (opened once: what is checked is what is read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise SecretsRefused(_unreadable(path, error, user_name(os.geteuid()))) from None
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as handle:
        check(path, os.fstat(handle.fileno()), os.geteuid())
        return parse(path, handle.read())


def parse(path: Path, text: str) -> dict[str, str]:
    """KEY=VALUE per line; blank lines and # comments skipped; one pair of surrounding quotes removed."""
    variables = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not NAME.fullmatch(key):
            raise SecretsRefused(f"secrets file {path} line {number} is not KEY=VALUE (KEY: letters, digits, _)")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        variables[key] = value
    return variables


def _unreadable(path: Path, error: OSError, owner: str) -> str:
    if isinstance(error, FileNotFoundError):
        return (f"secrets file {path} does not exist: create it (install -m 600 -o {owner} /dev/null {path}) "
                f"or remove [schedule] secrets_file")
    if error.errno == errno.ELOOP:
        return f"secrets file {path} is a symbolic link: name the file itself in [schedule] secrets_file"
    return f"cannot read secrets file {path}: {error.strerror}; it must be readable by {owner} (chown {owner} {path})"
