"""`make install-box-helpers`: the programs root runs on the box for the suite, installed where only root can write.

Over SSH the maintenance user may run as root only what its sudo rules name exactly, so what must act as root on
the box runs a fixed program of the suite's: the retention walker (probes/remote/expiry.py, its text written by
probes/files.py from this checkout) and the backup program (probes/remote/backupscan.py, by probes/backups.py). Each
must live where no other user can change it: `install` writes them through core/rootfiles.py (every directory of
its path root's and writable by root alone, made if missing; the file replaced whole, root's, mode 0755) and
refuses anything else, naming the directory and its owner.

    sudo .venv/bin/python -m commands boxhelpers install     # on the box, from the suite's checkout
    .venv/bin/python -m commands boxhelpers show             # where each is, its sha256, whether it is this suite's

Install them again after updating the suite: the suite refuses to run a copy that is not this one's.
`--root DIR` installs under DIR instead of `/` (the lab's boxes install into their own root this way).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys

from commands import cli
from core import rootfiles, safepath
from probes import backups
from probes.files import program_sha256, program_text
from probes.remote import backupscan, expiry

# Each program's path and its text, as this checkout writes it.
PROGRAMS = ((expiry.PROGRAM, program_text, program_sha256),
            (backupscan.PROGRAM, backups.program_text, backups.program_sha256))

MODE = 0o755
REFUSED = 1


def installed_path(root: str = "/", program: str = expiry.PROGRAM) -> str:
    return os.path.join(os.path.abspath(root), program.lstrip("/"))


def install(root: str = "/") -> str:
    """Every program written at its path under `root`; what was done, in words, a line each. Raises UnsafePath
    (naming the directory and its owner) where another user could change the path, PermissionError when not
    root."""
    if os.geteuid() != 0:
        raise PermissionError("the box helpers are root's: run this as root (sudo make install-box-helpers)")
    done = []
    for program, text, sha256 in PROGRAMS:
        path = installed_path(root, program)
        rootfiles.replace(path, text(), mode=MODE, group=0)
        done.append(f"installed {path} (root:root, mode {MODE:04o}, sha256 {sha256()})")
    return "\n".join(done)


def show(root: str = "/") -> str:
    """Where each program is and whether it is this suite's own, read without following a link; a line each."""
    return "\n".join(_shown(installed_path(root, program), sha256()) for program, _, sha256 in PROGRAMS)


def _shown(path: str, expected: str) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"{path}: not installed (this suite's sha256 {expected}): sudo make install-box-helpers"
    except OSError as error:
        return f"{path}: cannot be read ({error.strerror}): sudo make install-box-helpers"
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        digest = hashlib.sha256(handle.read()).hexdigest()
    verdict = "this suite's" if digest == expected else "NOT this suite's: sudo make install-box-helpers"
    return (f"{path}: sha256 {digest} ({verdict}); owned by {safepath.owner_name(info.st_uid)}, "
            f"mode {stat.S_IMODE(info.st_mode):04o}")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("install", "show"))
    parser.add_argument("--root", default="/", help="install under this directory instead of / (the lab's boxes)")


def run(call: cli.Call) -> int:
    args = call.args
    if args.action == "show":
        print(show(args.root))
        return 0
    try:
        print(install(args.root))
    except (safepath.UnsafePath, PermissionError, FileNotFoundError) as error:
        print(f"not installed: {error}", file=sys.stderr)
        return REFUSED
    return 0


VERB = cli.Verb(
    "boxhelpers", "install, or show, the programs root runs on the box for the suite (make install-box-helpers)",
    __doc__, arguments, run, config=cli.Config.NONE)
