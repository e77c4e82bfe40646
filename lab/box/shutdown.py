"""Ending a box: systemd's own poweroff first, then whatever is left is killed, then proof that nothing remains.

The box's cgroup holds only its processes; its PID namespace is looked at only while its PID 1 is
still the recorded process (once PID 1 is gone the kernel has ended the namespace, and a recorded
namespace inode may since belong to another one).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from lab.box import namespaces
from lab.box.namespaces import Cgroup

POWEROFF = signal.SIGRTMIN + 4  # what systemd takes for `systemctl poweroff` (as container managers send it)


def power_off(pid: int, timeout: float) -> bool:
    """Ask the box's systemd to stop every unit in order and exit; True when PID 1 is gone in time."""
    os.kill(pid, POWEROFF)
    return namespaces.wait_until(lambda: namespaces.gone(pid), timeout)


def end_leftovers(record: dict, cgroup: Cgroup) -> int:
    """SIGKILL whatever is left of the box; returns how many processes there were."""
    found = set(cgroup.procs())
    if namespaces.check_pid1(record, cgroup) is not None:
        found |= set(namespaces.pids_in("pid", record["pid_ns"]))
    found.discard(os.getpid())
    if found:
        if cgroup.exists():
            cgroup.kill()
        namespaces.kill_all(sorted(found))
        namespaces.wait_until(lambda: all(namespaces.gone(p) for p in found), 10)
        namespaces.wait_until(lambda: not cgroup.populated(), 10)
    cgroup.remove()
    return len(found)


def what_remains(record: dict, cgroup: Cgroup, box_dir: Path) -> list[str]:
    """Anything of the box still on the machine: processes in its namespaces, its cgroup, mounts under BOX_DIR."""
    problems = []
    # unshare itself is in the box's mount namespace (not its PID namespace): it ends right after PID 1
    for kind, key, what in (("pid", "pid_ns", "are still in the box's PID namespace"),
                            ("mnt", "mnt_ns", "still hold the box's mount namespace")):
        inode = record.get(key)
        if inode and inode != namespaces.ns_inode("self", kind):
            # the last of them (nsenter's parents of commands run in the box) end after their children: on a
            # busy machine that can take seconds; waiting costs nothing when none is left
            namespaces.wait_until(lambda k=kind, i=inode: not namespaces.pids_in(k, i), 15)
            left = namespaces.pids_in(kind, inode)
            if left:
                problems.append(f"processes {left} {what}")
    if cgroup.exists():
        problems.append(f"its cgroup {cgroup.path} is still there (processes {cgroup.procs()})")
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    mine = [m for m in mounts if m == str(box_dir) or m.startswith(f"{box_dir}/")]
    if mine:
        problems.append(f"mounts under BOX_DIR on the machine: {', '.join(mine)}")
    return problems
