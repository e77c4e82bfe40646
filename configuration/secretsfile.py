"""Secrets from one place: the variables a `*_env` key names come from [schedule] secrets_file, then the environment.

cron, systemd and `sudo make daily` start the suite without the operator's shell, so a password exported there
is not seen. Every entry point reads the one file the same way before it looks at the box: the plugin when it
loads the configuration (every make target that runs pytest), `commands.run` (the schedule), and the commands
the other make targets run (`commands/cli.py`). The values stay in this process: they are looked up here and
never put in os.environ, so no program the suite starts (a diagnostic, a script of the agent's checkout)
inherits them.

The file is refused, with one line naming it and the fix, unless it is a regular file of the reading user with
no permission for group or others (as OpenSSH's StrictModes refuses a key others could read). Its values are
held as secrets and never printed: a bad line is named by its number only.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

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
        other = user_name(status.st_uid)
        raise SecretsRefused(f"secrets file {path} is owned by {other}, not by {owner} who runs the maintenance: "
                             f"chown {owner} {path} (or run as {other}, the user the file was made for)")
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
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
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


# -- where a variable is looked up: one table per process, set once the configuration is loaded


class _Variables:
    """The secrets file's variables as secrets, and the file they came from (None: the environment alone)."""

    def __init__(self, path: Path | None = None, values: Mapping[str, str] | None = None):
        self.path = path
        self.values = {name: SecretStr(value) for name, value in (values or {}).items()}


_current = _Variables()


def use(path: Path | None) -> None:
    """Read [schedule] secrets_file for this process's lookups (None: the environment alone). A file that is
    refused raises SecretsRefused and changes nothing."""
    global _current
    _current = _Variables(path, read(path) if path is not None else {})


def forget() -> None:
    """Back to the environment alone (the end of a run in a process that outlives it)."""
    use(None)


def secrets_path() -> Path | None:
    return _current.path


def variable(name: str) -> SecretStr | None:
    """The secrets file's value of `name`, else the environment's; None when neither holds a non-empty one."""
    held = _current.values.get(name)
    if held is not None and held.get_secret_value():
        return held
    value = os.environ.get(name, "")
    return SecretStr(value) if value else None


def where(name: str) -> str:
    """Where `name` was found, in words: for a refused login's fix."""
    if name in _current.values and _current.values[name].get_secret_value():
        return f"{name} in the secrets file {_current.path}"
    return f"{name} in the environment"


def not_set(name: str) -> tuple[str, str]:
    """(what is missing, how to fix it) for a variable a `*_env` key names and nobody set."""
    if _current.path is not None:
        return (f"{name} is in neither the secrets file {_current.path} nor the environment",
                f"set {name} in the secrets file {_current.path} ([schedule] secrets_file)")
    return (f"{name} is not set, and no [schedule] secrets_file is configured",
            f"set {name} in a secrets file named by [schedule] secrets_file (KEY=VALUE lines, mode 600, owned by "
            f"the user who runs the suite): every run reads it, where `sudo make ...` and the schedule do not "
            f"keep your shell's variables")
