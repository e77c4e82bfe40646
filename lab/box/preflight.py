"""Can this machine run a box, and as whom? One clear reason when it cannot.

A box needs root (namespaces, mounts, cgroups), a kernel and sandbox that permit unshare, a
cgroup2 hierarchy, and a few Debian packages; each missing tool names the package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lab.box.namespaces import cgroup2_root
from lab.errors import LabError
from lab.postgres import PG_BIN

# tool -> Debian package that has it
TOOLS = {
    "/lib/systemd/systemd": "systemd",
    "unshare": "util-linux", "nsenter": "util-linux", "setpriv": "util-linux", "findmnt": "util-linux",
    "mountpoint": "util-linux", "runuser": "util-linux", "mount": "mount",
    "/usr/sbin/sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
    "sudo": "sudo", "visudo": "sudo", "dbus-daemon": "dbus-daemon",
    str(PG_BIN / "postgres"): f"postgresql-{PG_BIN.parent.name}",
}
PROBE = ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--cgroup", "--propagation", "private", "true"]


class BoxUnavailable(LabError):
    """This machine, or this user, cannot have a box; the message says why in one line."""

    exit_code = 4


def missing_packages() -> dict[str, str]:
    """Missing tool -> the package that has it."""
    found = {}
    for tool, package in TOOLS.items():
        present = Path(tool).exists() if tool.startswith("/") else shutil.which(
            tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if not present:
            found[tool] = package
    return found


def check() -> None:
    """Raise BoxUnavailable with the first reason this process cannot run a box."""
    if os.geteuid() != 0:
        raise BoxUnavailable(f"only root can run a box (it needs namespaces, mounts and a cgroup); "
                             f"you are uid {os.geteuid()}")
    missing = missing_packages()
    if missing:
        packages = sorted(set(missing.values()))
        raise BoxUnavailable(f"missing {', '.join(sorted(missing))}: install with "
                             f"apt-get install {' '.join(packages)}")
    try:
        cgroup2_root()
    except LabError as error:
        raise BoxUnavailable(str(error)) from None
    try:
        probe = subprocess.run(PROBE, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BoxUnavailable(f"unshare cannot run here: {error}") from None
    if probe.returncode != 0:
        detail = " ".join((probe.stderr or probe.stdout).split()) or f"exit status {probe.returncode}"
        raise BoxUnavailable(f"unshare of new PID, mount and cgroup namespaces is not permitted here: {detail}")


def unavailable() -> str | None:
    """Why no box can run here, or None (what the tests skip with)."""
    try:
        check()
    except BoxUnavailable as error:
        return str(error)
    return None
