"""A box of real parts: the lab's servers as systemd units, under a real systemd that is PID 1 of its own namespaces.

Where the lab stands supervisord in for systemd, a box boots systemd 252 itself (unshare: new PID,
mount, UTS, IPC and cgroup namespaces; the machine's network), with the guide's layout at the
guide's paths, an sshd with a maintenance user and sudo rules, and faults made the way they happen
on a real box. Only root can run one; `Box.unavailable()` says why not.
"""

from lab.box.core import Box
from lab.box.preflight import BoxUnavailable

__all__ = ["Box", "BoxUnavailable"]
