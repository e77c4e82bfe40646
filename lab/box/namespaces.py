"""The box's PID 1 as the machine sees it: which process it is, what lives in its namespaces, its cgroup.

A pid read from a file is never trusted: before anything is signalled or entered, it must still be
the same process (start time), PID 1 of a PID namespace that is not the machine's, in the box's
cgroup. Every process of a box is found by its namespace (/proc/PID/ns/pid), not by its name.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path

from lab.errors import LabError


def ns_inode(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which the process started (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def ns_pids(pid: int) -> list[int]:
    """The NSpid line: the process's pid in each PID namespace, the machine's first."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(p) for p in line.split()[1:]]
    except OSError:
        pass
    return []


def gone(pid: int) -> bool:
    """The process has exited: no such pid, or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def pids_in(kind: str, inode: int) -> list[int]:
    """Live processes in the namespace of this kind ('pid', 'mnt') with this inode; zombies left out."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and ns_inode(entry.name, kind) == inode and not gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill_all(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds have passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# ---- cgroup v2 -------------------------------------------------------------------------------

def cgroup2_root() -> Path:
    """Where the machine mounts the unified (v2) hierarchy: /sys/fs/cgroup or /sys/fs/cgroup/unified."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        if fields[separator + 1] == "cgroup2":
            return Path(fields[4])
    raise LabError("no cgroup2 (unified) hierarchy is mounted on this machine; the box's systemd needs one")


class Cgroup:
    """The box's cgroup at the top of the machine's unified hierarchy; the box's cgroup namespace root."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def for_box(cls, slug: str) -> Cgroup:
        return cls(cgroup2_root() / slug)

    def create(self) -> None:
        self.path.mkdir(exist_ok=True)

    def exists(self) -> bool:
        return self.path.is_dir()

    def procs(self) -> list[int]:
        """Every process in the box's cgroup tree."""
        pids = []
        if not self.exists():
            return pids
        # os.walk, not Path.rglob: a unit's cgroup removed while we walk (a killed service) is skipped
        # (onerror ignores it) instead of ending the walk with FileNotFoundError.
        for directory, _, names in os.walk(self.path, onerror=lambda error: None):
            if "cgroup.procs" in names:
                with suppress(OSError, ValueError):  # a cgroup removed while we read
                    pids += [int(p) for p in (Path(directory) / "cgroup.procs").read_text().split()]
        return pids

    def populated(self) -> bool:
        try:
            return "populated 1" in (self.path / "cgroup.events").read_text()
        except OSError:
            return False

    def move_out(self, pid: int) -> None:
        """Put a process back in the machine's cgroup that holds the box's (its parent)."""
        (self.path.parent / "cgroup.procs").write_text(f"{pid}\n")

    def kill(self) -> None:
        """SIGKILL to every process in the tree (cgroup.kill, Linux 5.14), else one by one."""
        try:
            (self.path / "cgroup.kill").write_text("1\n")
        except OSError:
            kill_all(self.procs())

    def remove(self) -> None:
        """rmdir the tree, deepest first; a cgroup with a process in it stays (and is reported by the caller)."""
        if not self.exists():
            return
        for directory in sorted((p for p in self.path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with suppress(OSError):
                directory.rmdir()
        with suppress(OSError):
            self.path.rmdir()


# ---- the box's PID 1 -------------------------------------------------------------------------

def check_pid1(record: dict, cgroup: Cgroup) -> int | None:
    """The box's PID 1 on the machine, if the recorded process is still exactly it; else None."""
    pid = record.get("pid1")
    if not isinstance(pid, int) or pid <= 1:
        return None
    if start_time(pid) != record.get("start_time") or gone(pid):
        return None
    inode = ns_inode(pid, "pid")
    if inode is None or inode != record.get("pid_ns") or inode == ns_inode("self", "pid"):
        return None
    if ns_pids(pid)[-1:] != [1] or pid not in cgroup.procs():
        return None
    return pid


def find_pid1(cgroup: Cgroup) -> int | None:
    """The process in the box's cgroup that is PID 1 of a PID namespace other than the machine's."""
    mine = ns_inode("self", "pid")
    for pid in cgroup.procs():
        if ns_pids(pid)[-1:] == [1] and ns_inode(pid, "pid") not in (None, mine):
            return pid
    return None


def mounts_of(pid: int) -> dict[str, str]:
    """Mount point -> filesystem type, as the process sees its mount namespace (the last mount wins)."""
    mounts = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        mounts[fields[4].replace("\\040", " ")] = fields[separator + 1]
    return mounts
