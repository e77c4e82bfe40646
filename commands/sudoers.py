"""`make sudoers CONFIG=PATH`: the sudo rules a maintenance user needs on the box, and nothing more.

Each remediation declares the commands it runs as root for a configuration (services to restart,
the logrotate command, the backup program's take), and the weekly audit and the backups their readings that
need root (`sshd -T`, `fail2ban-client status`, the backup program's read-back and restore drill); this
prints them as one sudoers drop-in, every command with its exact arguments (`""` where it takes none: a
program named bare in sudoers accepts any arguments). Install it on the box and check it there:

    python -m commands sudoers --config PATH --user trading-maint > trading-maintenance
    visudo -cf trading-maintenance && install -m 0440 trading-maintenance /etc/sudoers.d/

Run it on the box: a command is left out, named on stderr and as a comment, when its program is not installed
here, when a user other than root could change the program (or a file root would read as an argument: a
directory on its way, the file itself, a link), and when sudo could not match it exactly (a control character,
a space, an empty argument). The user is taken from an `ssh://USER@host` backend when --user is not given.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel

from commands import cli
from configuration import Settings
from core.safepath import UnsafePath, components, open_directory, owner_name
from core.vocabulary import ExitStatus
from probes import backups
from probes.securityaudit import root_reads
from remediations import load_all

# How an argument is written so that sudo matches exactly it. sudoers' parser takes `\,` `\:` `\=` `\#` for the
# character and `\\` for one backslash; sudo then matches the arguments with fnmatch(3), where `*?[]` are
# wildcards (a bare `*` matches anything, spaces and further arguments included: `find /tmp -name trading-*`
# would allow `-exec`), `\` escapes, and an argument string starting with `^` is a regular expression.
# A backslash therefore takes four: two for the parser, two for fnmatch.
SPECIAL = str.maketrans({"\\": "\\" * 4, **{c: "\\" + c for c in ",:=#*?[]!^"}})
NO_ARGUMENTS = '""'  # sudoers: the command only without arguments
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # where `sudo -n NAME` looks
PLAIN_PROGRAM = re.compile(r"/[A-Za-z0-9._+@%/-]+")  # a program path sudoers takes as it is
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
MAX_LINKS = 40  # as the kernel's own limit on links followed in one lookup


class LeftOut(Exception):
    """A command that gets no rule; the message says why and what to do."""


class ProgramUnsafe(LeftOut):
    """Someone other than root could change the program."""


class FileUnsafe(LeftOut):
    """Someone other than root could change a file the command reads as root."""


@dataclass(frozen=True)
class Unsafe:
    """Someone other than root who can change a file root would run or read."""

    who: str  # a user's name, "the group G", "any user"
    detail: str  # the path that lets them, with its owner and mode


def shown(text: str) -> str:
    """Text for a comment or a message: a control character as its escape, so it can never end the line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown_command(argv: list[str]) -> str:
    return " ".join(map(shown, argv))


def privileged_commands(settings: Settings) -> list[list[str]]:
    """Every command any registered remediation may run as root, and every reading of the weekly audit and of the
    backups that needs root, for every box of the configuration."""
    found: list[list[str]] = []
    for box in settings.boxes():
        for action in load_all().values():
            found += [argv for argv in action.privileged(box) if argv not in found]
        found += [argv for argv in [*root_reads(box), *backups.root_reads(box)] if argv not in found]
    return found


def changed_by(path: str, info: os.stat_result, directory: bool) -> Unsafe | None:
    """Who besides root could change this file or what a directory holds: its owner, a group or everyone
    that may write it (a sticky directory lets no one replace another's entry)."""
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != 0:
        owner = owner_name(info.st_uid)
        return Unsafe(owner, f"{path} is owned by {owner}, mode {mode:04o}")
    if directory and info.st_mode & stat.S_ISVTX:
        return None
    if info.st_mode & stat.S_IWOTH:
        return Unsafe("any user", f"{path} is writable by any user, mode {mode:04o}")
    if info.st_mode & stat.S_IWGRP:
        group = _group_name(info.st_gid)
        return Unsafe(f"the group {group}", f"{path} is writable by the group {group}, mode {mode:04o}")
    return None


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _open_rootly(directory: str) -> tuple[int | None, Unsafe | None]:
    """The directory, reached from `/` without links (core/safepath.py), when only root can change it;
    else who else can."""
    try:
        descriptor = open_directory(directory, strict=True)
    except UnsafePath as error:
        return None, changed_by(directory, os.lstat(directory), True) or Unsafe("another user", str(error))
    unsafe = changed_by(directory, os.fstat(descriptor), True)  # root's, not merely this process's user's
    if unsafe:
        os.close(descriptor)
        return None, unsafe
    return descriptor, None


def who_else_can_change(path: str) -> tuple[Unsafe | None, os.stat_result | None]:
    """Walks `path` from `/` as exec would, one directory at a time, each opened by core/safepath.py and
    required to be root's; a link is followed only from such a directory (where only root could have put
    it), and its target walked the same way. Returns who else could change what `path` names, or its
    status. Raises FileNotFoundError, NotADirectoryError or PermissionError as the kernel says."""
    pending, here, links = components(path), "/", 0
    while pending:
        name = pending.pop(0)
        descriptor, unsafe = _open_rootly(here)
        if descriptor is None:
            return unsafe, None
        try:
            info = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            target = os.readlink(name, dir_fd=descriptor) if stat.S_ISLNK(info.st_mode) else None
        finally:
            os.close(descriptor)
        if target is not None:
            links += 1
            if links > MAX_LINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            pending = components(os.path.normpath(os.path.join(here, target))) + pending
            here = "/"
        elif pending:
            here = os.path.join(here, name)  # a directory on the way: judged when it is opened
        else:
            return changed_by(os.path.join(here, name), info, stat.S_ISDIR(info.st_mode)), info
    return changed_by("/", os.stat("/"), True), os.stat("/")


def inexpressible(argv: list[str]) -> str | None:
    """Why sudo could not match exactly this command, if it could not."""
    for word in argv:
        if any(not c.isprintable() for c in word):  # a space is printable; a tab, a newline, a NUL are not
            return f"'{shown(word)}' holds a control character: a sudo rule is one line, and what follows it " \
                   f"would be read as a rule of its own"
        if not word:
            return "an argument is empty, which a sudo rule cannot name"
        if any(c.isspace() for c in word):
            return f"'{word}' holds a space: sudo joins the arguments with spaces, so the rule would allow it " \
                   f"split in two as well"
        if word == NO_ARGUMENTS:
            return f"an argument is {NO_ARGUMENTS}, which sudoers reads as \"no arguments\""
    return None


def program_of(argv: list[str]) -> str:
    """The program as sudo matches it: by its full path, as it finds it in its secure_path."""
    program = argv[0] if argv[0].startswith("/") else shutil.which(argv[0], path=SECURE_PATH)
    if not program:
        raise LeftOut("its program is not installed here (run this on the box)")
    if not PLAIN_PROGRAM.fullmatch(program):
        raise LeftOut(f"its path '{shown(program)}' holds characters a sudo rule cannot name as they are: "
                      f"install it under a plain name")
    return program


def check_program(program: str) -> None:
    try:
        unsafe, info = who_else_can_change(program)
    except (FileNotFoundError, NotADirectoryError):
        raise LeftOut("its program is not installed here (run this on the box)") from None
    except OSError as error:
        raise LeftOut(f"{program} could not be checked here ({error.strerror or error}): run this on the box, "
                      f"as root") from None
    if unsafe:
        raise ProgramUnsafe(f"{unsafe.who} could rewrite it and become root ({unsafe.detail})")
    if not stat.S_ISREG(info.st_mode):
        raise LeftOut(f"{program} is not a regular file")


def check_files_read(argv: list[str]) -> None:
    """An argument naming a file that exists here: root reads it (a configuration, a ruleset), so only root
    may be able to change it. A directory, or what does not exist here, is not judged."""
    for word in argv[1:]:
        if not word.startswith("/") or os.path.isdir(word):  # a directory: the program judges its own walk
            continue                                          # (the retention walker, probes/remote/expiry.py)
        try:
            unsafe, info = who_else_can_change(word)
        except OSError:  # not here (run on the box), or not a path core/safepath.py takes: not judged
            continue
        if unsafe and (info is None or not stat.S_ISDIR(info.st_mode)):
            raise FileUnsafe(f"root would read {word}, which {unsafe.who} could rewrite ({unsafe.detail})")


def rule_line(argv: list[str]) -> str:
    """The command as sudoers matches exactly it, checked where this runs (on the box). Raises LeftOut."""
    problem = inexpressible(argv)
    if problem:
        raise LeftOut(problem)
    program = program_of(argv)
    check_program(program)
    check_files_read(argv)
    arguments = [word.translate(SPECIAL) for word in argv[1:]] or [NO_ARGUMENTS]
    return " ".join([program, *arguments])


def where_configured(settings: Settings, argv: list[str]) -> str | None:
    """The configuration key that names this command (`[emergency] backup_command`), for the fix."""
    for box in settings.boxes():
        for key, value in _lists(box, []):
            if value == argv or (value and argv[0] in value):
                return key
    return None


def _lists(model: BaseModel, path: list[str]) -> Iterator[tuple[str, list]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _lists(value, [*path, name])
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            yield (f"[{'.'.join(path)}] {name}" if path else name), value


def left_out_note(settings: Settings, argv: list[str], error: LeftOut) -> str:
    """The line that says what was left out, why, and what to change (the configuration key, when one names it)."""
    key, fix = where_configured(settings, argv), ""
    if isinstance(error, ProgramUnsafe):
        fix = (f"; install a root-owned copy under /usr/local/sbin and point {key} at it" if key else
               "; make it root's, in a directory only root can write")
    elif isinstance(error, FileUnsafe):
        fix = "; keep it where only root can write" + (f" and point {key} at it" if key else "")
    return f"NOT INCLUDED, {shown_command(argv)}: {error}{fix}"


def sudoers_rules(settings: Settings, user: str) -> tuple[str, list[str]]:
    """The drop-in's text, and what it leaves out (each also a comment in it)."""
    commands, notes = [], []
    for argv in privileged_commands(settings):
        try:
            commands.append(rule_line(argv))
        except LeftOut as error:
            notes.append(left_out_note(settings, argv, error))
    lines = [f"# Written by `make sudoers` from {shown(str(settings.source))}: what the maintenance suite's "
             "remediations", "# run as root on the box, each with its exact arguments. Check: visudo -cf FILE."]
    lines += [f"# {note}" for note in notes]
    if not commands:
        return "\n".join([*lines, "# (no remediation of this configuration needs root)"]) + "\n", notes
    lines.append("Cmnd_Alias TRADING_MAINTENANCE = " + ", \\\n    ".join(commands))
    lines.append(f"{user} ALL=(root) NOPASSWD: TRADING_MAINTENANCE")
    return "\n".join(lines) + "\n", notes


def backend_user(settings: Settings) -> str | None:
    return urlsplit(settings.host.backend).username


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="the maintenance user (default: the user of an ssh:// backend)")


def run(call: cli.Call) -> int:
    settings = call.settings(refused="no rules written")
    user = call.args.user or backend_user(settings)
    if not user:
        print(f"no rules written: {call.config_path} reaches the box as the user running the suite "
              f"(backend {settings.host.backend}); name the maintenance user with --user USER", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    if not USER_NAME.fullmatch(user):
        print(f"no rules written: the maintenance user '{shown(user)}' is not a user name a sudo rule can take "
              f"(letters, digits, '_', '.', '-'): name it with --user USER", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    text, notes = sudoers_rules(settings, user)
    for note in notes:
        print(f"make sudoers: {note}", file=sys.stderr)
    print(text, end="")
    return 0


# Run as root on the box for another user's rules: the secrets file (the run user's) is not read.
VERB = cli.Verb(
    "sudoers", "the sudo rules the maintenance user needs on the box (make sudoers)",
    __doc__, arguments, run, secrets=False)
