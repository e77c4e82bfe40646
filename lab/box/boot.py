"""Booting a box: boot.sh makes the box's mounts as PID 1 of new namespaces, then execs systemd.

Order matters and is checked at every step: nothing of systemd runs before the box has its own
/tmp, /var/tmp, /run, /var/log and /etc/systemd, a read-only view of the machine's root, /proc/sys
and /sys, a private /dev and its own cgroup tree. boot.sh refuses to go on unless it is PID 1 of a
new PID namespace with private mount propagation and cannot see the machine's sentinel files in
/tmp and /var/tmp; then it waits for the launcher, which looks at the box's mounts from outside
(/proc/PID/mountinfo) before it lets systemd start.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import subprocess
import time
from pathlib import Path

from lab.box import namespaces
from lab.box.layout import MAINT_USER, OVERLAID_ETC, BoxPaths, Guide
from lab.box.namespaces import Cgroup
from lab.errors import LabError
from lab.paths import REPO
from lab.postgres import SUPERUSER

SYSTEMD = "/lib/systemd/systemd"
UNSHARE = ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--cgroup", "--mount-proc",
           "--propagation", "private"]  # never --net: the box serves on the machine's loopback
# Capabilities no process of the box can ever have: the kernel, the clock, the network setup and
# the kernel log are the machine's.
DROPPED_CAPS = ["sys_module", "sys_time", "wake_alarm", "net_admin", "sys_rawio", "mac_admin",
                "mac_override", "audit_control", "audit_read", "syslog"]
MUST_BE_MOUNTED = ["/tmp", "/var/tmp", "/run", "/var/log", "/etc", "/var/lib", "/etc/systemd", "/var/lib/systemd",
                   "/dev"]
# The machine's directories the box may write to as a real box would (an operator's
# /etc/trading-maintenance, the suite's state in /var/lib/trading-maintenance, its root programs in
# /usr/local/libexec/trading-maintenance): overlays whose writes land in BOX_DIR/box/overlay, the
# machine's own files unchanged underneath.
WRITABLE_OVERLAYS = {"/etc": "etc", "/var/lib": "var-lib", "/usr/local": "usr-local"}
DISK_MIB = 64
MOUNTED_TIMEOUT = 20.0
SYSTEMD_EXEC_TIMEOUT = 20.0


def sentinels(paths: BoxPaths) -> list[Path]:
    """Files of the machine's /tmp and /var/tmp that the box must neither see nor remove."""
    return [Path("/tmp") / f".{paths.slug()}-sentinel", Path("/var/tmp") / f".{paths.slug()}-sentinel"]


def render(paths: BoxPaths) -> str:
    q = shlex.quote
    pg = pwd.getpwnam(SUPERUSER)
    tty_gid = grp.getgrnam("tty").gr_gid
    b = Guide.stable_box_dir
    overlays = "\n".join(f"mount --bind {q(str(b / 'box' / 'etc' / name))} /etc/{name}"
                         for name in OVERLAID_ETC)
    checks = " ".join(q(str(p)) for p in MUST_BE_MOUNTED)
    writable = "\n".join(
        f'mkdir -p "$B/box/overlay/{name}/upper" "$B/box/overlay/{name}/work"\n'
        f'mount -t overlay box-overlay-{name} -o "lowerdir={target},upperdir=$B/box/overlay/{name}/upper,'
        f'workdir=$B/box/overlay/{name}/work" {target}' for target, name in WRITABLE_OVERLAYS.items())
    hidden = " ".join(q(str(p)) for p in sentinels(paths))
    caps = ",".join(f"-{cap}" for cap in DROPPED_CAPS)
    return f"""#!/bin/sh
# Written by `python -m lab box up`: the box's mounts, made as PID 1 of its new namespaces, then systemd.
# Everything mounted here exists in the box's mount namespace only and ends with it.
set -eu
BOX={q(str(paths.root))}
B={q(str(b))}
REPO={q(str(REPO))}
fail() {{ echo "box boot: $*" >&2; exit 1; }}

[ "$$" = 1 ] || fail "not PID 1 of a new PID namespace (pid $$): refusing to boot systemd"
propagation=$(findmnt -no PROPAGATION /)
[ "$propagation" = private ] || fail "/ has $propagation mount propagation, not private: refusing"
mount --make-rprivate /

# The box's own /run first, and BOX_DIR at a path no later mount can hide: what runs inside names it $B.
mount -t tmpfs -o mode=755,nosuid,nodev box-run /run
mkdir -p "$B"
mount --bind "$BOX" "$B"
# The repository the box's programs run from (the lab's servers, its virtualenv), kept in reach too.
mkdir -p /run/.box-repo
mount --bind "$REPO" /run/.box-repo

# Mounts inherited from the machine (other labs' tmpfs, ...) are of no use in the box: drop its copies.
findmnt -rn -o TARGET | sort -r | while read -r target; do
    case "$target" in /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/run|/run/*) continue ;; esac
    case "$BOX/" in "$target"/*) continue ;; esac
    umount -l "$target" 2>/dev/null || true
done

# /etc and /var/lib writable as on a real box: what the box writes there lands in BOX_DIR; the machine's stay.
{writable}

# The box's /tmp, /var/tmp and /var/log: its own directories. Nothing of the machine's is visible there.
mount --bind "$B/tmp" /tmp
mount --bind "$B/var/tmp" /var/tmp
mount --bind "$B/var/log" /var/log
for sentinel in {hidden}; do
    [ ! -e "$sentinel" ] || fail "$sentinel of the machine is still visible: refusing to boot"
done

# systemd's configuration and state: tmpfs, filled from BOX_DIR/box/systemd (units, masks).
mount -t tmpfs -o mode=755 box-etc-systemd /etc/systemd
cp -a "$B/box/systemd/." /etc/systemd/
mount -t tmpfs -o mode=755 box-var-lib-systemd /var/lib/systemd

# The guide's layout: /opt/trading-agent, PostgreSQL's data, the maintenance user's home, a small disk.
mount -t tmpfs -o mode=755 box-opt /opt
mkdir -p {q(str(Guide.opt_dir))}
mount --bind "$B/opt/trading-agent" {q(str(Guide.opt_dir))}
mount -t tmpfs -o mode=755,uid={pg.pw_uid},gid={pg.pw_gid} box-var-lib-postgresql /var/lib/postgresql
mkdir -p {q(str(Guide.pg_data))}
chown -R {pg.pw_uid}:{pg.pw_gid} /var/lib/postgresql
mount --bind "$B/pg/data" {q(str(Guide.pg_data))}
mount -t tmpfs -o mode=755 box-home /home
mkdir -p /home/{MAINT_USER}
mount --bind "$B/home/{MAINT_USER}" /home/{MAINT_USER}
mount -t tmpfs -o mode=755,size={DISK_MIB}m box-disk {q(str(Guide.disk))}

# The box's own users, hosts, hostname, machine id and sudo rules, over the machine's (which stay as they are).
{overlays}
mount --bind "$B/box/etc/sudoers.d" /etc/sudoers.d
mount --bind "$B/box/machine-id" /etc/machine-id

# A private /dev: a few device nodes of the machine, its own pts, shm and /dev/log.
mkdir -p /run/.box-hostdev
mount --bind /dev /run/.box-hostdev
mount -t tmpfs -o mode=755,nosuid,size=4m box-dev /dev
for node in null zero full random urandom tty; do
    touch "/dev/$node"
    mount --bind "/run/.box-hostdev/$node" "/dev/$node"
done
umount /run/.box-hostdev
rmdir /run/.box-hostdev
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid={tty_gid} box-devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev box-shm /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr

# The kernel's knobs read-only; a cgroup2 tree rooted at the box's own cgroup (its cgroup namespace).
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
if [ -e /proc/sysrq-trigger ]; then
    mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
    mount -o remount,bind,ro /proc/sysrq-trigger
fi
umount -R /sys/fs/cgroup 2>/dev/null || true
mount -o remount,bind,ro /sys
mount -t cgroup2 -o nosuid,nodev,noexec box-cgroup2 /sys/fs/cgroup

# Where the box's own mounts hide the repository (a checkout under /tmp), it comes back at its own
# path, read-only as the rest of the machine's files.
if [ ! -e "$REPO/lab/box/boot.py" ]; then
    mkdir -p "$REPO"
    mount --bind /run/.box-repo "$REPO"
    mount -o remount,bind,ro "$REPO"
fi

# The machine's root read-only: what the box writes goes to its own mounts (BOX_DIR is $B inside).
mount -o remount,bind,ro /

for path in {checks}; do
    mountpoint -q "$path" || fail "$path is not a mount of the box's own"
done
if touch /.box-write-probe 2>/dev/null; then rm -f /.box-write-probe; fail "the machine's root is writable"; fi

echo "$$" > "$B/box/mounted"
i=0
while [ ! -e "$B/box/go" ]; do
    i=$((i + 1))
    [ "$i" -le {int(MOUNTED_TIMEOUT * 10)} ] || fail "the launcher did not say go"
    sleep 0.1
done
exec env -i container=trading-box PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \\
    setpriv --bounding-set {caps} \\
    {SYSTEMD} --system --unit=box.target --log-target=journal --show-status=no
"""


def write(paths: BoxPaths) -> None:
    paths.boot_script.write_text(render(paths))
    os.chmod(paths.boot_script, 0o700)


def _console_tail(paths: BoxPaths, lines: int = 20) -> str:
    try:
        text = paths.console_log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty console log)"


def launch(paths: BoxPaths, log) -> tuple[dict, subprocess.Popen]:
    """Start the box's namespaces with boot.sh as PID 1; returns the box's record (pids, namespaces) and unshare."""
    cgroup = Cgroup.for_box(paths.slug())
    if cgroup.exists() and cgroup.populated():
        raise LabError(f"the box's cgroup {cgroup.path} still has processes {cgroup.procs()}; "
                       "run: python -m lab box down")
    cgroup.remove()
    cgroup.create()
    for sentinel in sentinels(paths):
        sentinel.write_text(f"trading box {paths.root}: the box must not see or remove this file\n")
    for stale in (paths.stage_file, paths.go_file):
        stale.unlink(missing_ok=True)
    # The shell moves itself into the box's cgroup and becomes unshare: the namespaces' cgroup root is the box's.
    argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup.path),
            *UNSHARE, "--", "/bin/sh", str(paths.boot_script)]
    with paths.console_log.open("ab") as console:
        unshare = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True, cwd="/")
    mounted = namespaces.wait_until(lambda: paths.stage_file.exists() or unshare.poll() is not None,
                                    MOUNTED_TIMEOUT)
    if not mounted or not paths.stage_file.exists():
        unshare.poll()
        raise LabError(f"the box's mounts were not made (unshare exit status {unshare.returncode}):\n"
                       f"{_console_tail(paths)}")
    cgroup.move_out(unshare.pid)  # only the box's own processes stay in its cgroup
    pid1 = namespaces.find_pid1(cgroup)
    if pid1 is None:
        raise LabError(f"no PID 1 of a new PID namespace in {cgroup.path}:\n{_console_tail(paths)}")
    _check_from_outside(paths, pid1)
    record = {"pid1": pid1, "start_time": namespaces.start_time(pid1), "pid_ns": namespaces.ns_inode(pid1, "pid"),
              "mnt_ns": namespaces.ns_inode(pid1, "mnt"), "cgroup": str(cgroup.path), "unshare": unshare.pid,
              "booted": time.time()}
    paths.box_state.write_text(json.dumps(record, indent=2) + "\n")
    log(f"mounts checked from outside (pid {pid1}); starting systemd")
    paths.go_file.write_text("go\n")
    if not namespaces.wait_until(lambda: _is_systemd(pid1) or unshare.poll() is not None, SYSTEMD_EXEC_TIMEOUT):
        raise LabError(f"systemd did not start as the box's PID 1:\n{_console_tail(paths)}")
    if unshare.poll() is not None:
        raise LabError(f"the box ended at once (status {unshare.returncode}):\n{_console_tail(paths)}")
    return record, unshare


def _is_systemd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == SYSTEMD.encode()
    except OSError:
        return False


def _check_from_outside(paths: BoxPaths, pid1: int) -> None:
    """The launcher's own look at the box before systemd may start: its mounts, and the machine's sentinels."""
    shared = [kind for kind in ("mnt", "pid", "uts", "ipc", "cgroup")
              if namespaces.ns_inode(pid1, kind) in (None, namespaces.ns_inode("self", kind))]
    if shared:
        raise LabError(f"the box shares the machine's {', '.join(shared)} namespace(s): refusing to start systemd")
    mounts = namespaces.mounts_of(pid1)
    missing = [path for path in MUST_BE_MOUNTED if path not in mounts]
    if missing:
        raise LabError(f"the box lacks its own {', '.join(missing)}: refusing to start systemd")
    root = Path(f"/proc/{pid1}/root")
    for sentinel in sentinels(paths):
        if not sentinel.exists():
            raise LabError(f"the machine's {sentinel} has gone: refusing to start systemd")
        if (root / sentinel.relative_to("/")).exists():
            raise LabError(f"the box sees the machine's {sentinel}: refusing to start systemd")
