"""What only the machine the file is loaded on can confirm, checked at load, before anything is written.

The schema says what a value may look like; this says whether it names something real here: the users a
retention rule deletes for exist (when the box is this machine: over SSH they are the box's own, and only
the box can say), the alert file is not a directory, the state directory is one and can be written.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

LOCAL = "local://"
# Over SSH the run's master socket is `<state_dir>/ssh/` and a 6-character name, to which ssh adds 17 while it
# makes it; a unix socket's path holds at most 107 bytes. A longer state directory would make ssh fail on every
# box as if the box were down.
SOCKET_PATH_MAX = 107
SSH_SOCKET_SUFFIX = len("/ssh/") + 6 + 17


def account_uid(name: str) -> int | None:
    """The user's uid on this machine, or None when it has no such user."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def problems(settings) -> list[tuple[str, str]]:
    """(key, what is wrong) for every value this machine contradicts; empty when there is none."""
    found = [*_alert_file(settings), *_state_dir_is_a_directory(settings), *_state_dir_holds_ssh_sockets(settings)]
    boxes = settings.fleet or (settings,)
    for index, box in enumerate(boxes):
        if box.host.backend.startswith(LOCAL):
            prefix = f"boxes.{index} ({box.host.name}): " if settings.fleet else ""
            found += [(prefix + key, why) for key, why in _accounts(box)]
    return found


def _accounts(box) -> list[tuple[str, str]]:
    found = []
    user = box.services.user
    # The name the file gives, and the built-in one wherever it decides what is deleted (a rule's owners).
    named = "user" in box.services.model_fields_set or any(user in rule.owners for rule in box.retention)
    if named and account_uid(user) is None:
        found.append(("services.user", f"no user {user!r} on this machine (the box): name the user the agent "
                                       f"runs as (getent passwd)"))
    for index, rule in enumerate(box.retention):
        for owner in rule.owners:
            uid = account_uid(owner)
            if uid is None and owner != user:
                found.append((f"retention.{index}.owners", f"no user {owner!r} on this machine (the box): a rule "
                                                           f"deletes only the files of users that exist"))
            elif uid == 0 and not rule.allow_root_owned:
                found.append((f"retention.{index}.owners", f"{owner!r} is uid 0, root: root's files are the "
                                                           f"system's; if this rule must delete them, set "
                                                           f"allow_root_owned = true"))
    return found


def _alert_file(settings) -> list[tuple[str, str]]:
    found = []
    if settings.alerts.file.is_dir():
        found.append(("alerts.file", f"{settings.alerts.file} is a directory: name a file in it, e.g. "
                                     f"{settings.alerts.file / 'maintenance-alerts.jsonl'}"))
    if settings.alerts.spool_dir.exists() and not settings.alerts.spool_dir.is_dir():
        found.append(("alerts.spool_dir", f"{settings.alerts.spool_dir} exists and is not a directory"))
    return found


def _state_dir_is_a_directory(settings) -> list[tuple[str, str]]:
    state = settings.policy.state_dir
    if state.exists() and not state.is_dir():
        return [("policy.state_dir", f"{state} exists and is not a directory: name the suite's own directory")]
    return []


def _state_dir_holds_ssh_sockets(settings) -> list[tuple[str, str]]:
    if not any(box.host.backend.startswith("ssh://") for box in (settings.fleet or (settings,))):
        return []
    state = os.fsencode(str(settings.policy.state_dir.absolute()))
    room = SOCKET_PATH_MAX - SSH_SOCKET_SUFFIX
    if len(state) <= room:
        return []
    return [("policy.state_dir", f"{settings.policy.state_dir} is {len(state)} bytes long: the SSH connection's "
                                 f"socket in it would pass a unix socket's {SOCKET_PATH_MAX}; use a state directory "
                                 f"of at most {room} bytes (the default /var/lib/trading-maintenance)")]


def unwritable_state_dir(state: Path) -> str | None:
    """Why the run could not keep its state (its locks first) in `state`, or None. A directory that does
    not exist yet is created by the run: then its nearest existing parent must be writable."""
    existing = state
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        why = "Read-only file system" if _read_only(existing) else "Permission denied"
        return (f"cannot write {existing}: {why}. Make it writable by this user (uid {os.geteuid()}), run as "
                f"the user who owns it, or choose another directory")
    return None


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False
