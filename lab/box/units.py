"""The box's /etc/systemd: its services as real units, its own target, and the masks that keep it off the machine.

The box shares the kernel, the network and (read-only) the root filesystem with the machine, so
every unit and generator that would act on the machine as a whole (empty /tmp, apply sysctls and
binfmt handlers, load modules, remount, set the clock, run apt or fstrim, take the console) is
masked here, and the box boots into box.target, which wants only its own services and journald.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lab.box.layout import MAINT_USER, ON_DEMAND_UNITS, PYTHON_UNITS, UNITS, BoxPaths, BoxPorts, Guide
from lab.errors import LabError
from lab.paths import REPO
from lab.postgres import PG_BIN, SUPERUSER, Cluster

TARGET = "box.target"
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL = "10s"
RESTART_SEC = "200ms"  # a crash-looping unit reaches its start limit in about a second
GENERATOR_DIRS = ("/usr/lib/systemd/system-generators", "/lib/systemd/system-generators",
                  "/usr/local/lib/systemd/system-generators", "/etc/systemd/system-generators")
UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system", "/etc/systemd/system")
KEEP = {  # units of the machine the box does use
    "systemd-journald.service", "systemd-journald.socket", "systemd-journald-dev-log.socket",
    "dbus.socket", "dbus.service",
}
# Masked whatever the machine has installed; anything else in a .wants directory of the machine is
# masked as well (see masks()). Grouped by what they would do to the machine.
MASKED = [
    # empty or age-clean /tmp and /var/tmp, create device nodes
    "systemd-tmpfiles-setup.service", "systemd-tmpfiles-setup-dev.service", "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-clean.timer", "kmod-static-nodes.service",
    # devices and consoles: udev, gettys, password agents, emergency shells on the console
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "getty@.service", "serial-getty@.service",
    "console-getty.service", "container-getty@.service", "getty-static.service", "autovt@.service",
    "systemd-ask-password-console.path", "systemd-ask-password-wall.path", "emergency.service", "rescue.service",
    "debug-shell.service", "systemd-initctl.socket", "systemd-initctl.service",
    # the kernel's settings: sysctl, binfmt, modules, kernel filesystems, remounts, fsck, quotas, rfkill
    "systemd-sysctl.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount", "systemd-modules-load.service", "systemd-remount-fs.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-kernel-security.mount",
    "sys-fs-fuse-connections.mount", "dev-hugepages.mount", "dev-mqueue.mount", "tmp.mount",
    "systemd-fsck-root.service", "systemd-fsck@.service", "systemd-quotacheck.service", "quotaon.service",
    "systemd-rfkill.service", "systemd-rfkill.socket", "systemd-backlight@.service", "systemd-pstore.service",
    "systemd-journald-audit.socket", "systemd-hibernate.service", "systemd-suspend.service",
    "systemd-hybrid-sleep.service",
    # writes to the machine's /etc, /var and boot state, the clock, the network
    "systemd-journal-flush.service", "systemd-random-seed.service", "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service", "systemd-firstboot.service", "systemd-machine-id-commit.service",
    "systemd-sysusers.service", "systemd-hwdb-update.service", "ldconfig.service", "systemd-update-done.service",
    "systemd-journal-catalog-update.service", "systemd-repart.service", "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service", "systemd-pcrphase-initrd.service", "systemd-boot-update.service",
    "systemd-timesyncd.service", "systemd-timedated.service", "systemd-localed.service", "systemd-networkd.service",
    "systemd-networkd.socket", "systemd-networkd-wait-online.service", "systemd-resolved.service",
    "remote-fs.target", "rc-local.service",
    # sessions: the box has no logind; its sshd is ssh.service of its own
    "systemd-logind.service", "systemd-user-sessions.service", "user@.service", "user-runtime-dir@.service",
    "ssh.socket", "ssh@.service", "sshd.service", "rescue-ssh.target",
    # the machine's jobs and its own PostgreSQL cluster
    "cron.service", "anacron.service", "anacron.timer", "apt-daily.timer", "apt-daily.service",
    "apt-daily-upgrade.timer", "apt-daily-upgrade.service", "dpkg-db-backup.timer", "dpkg-db-backup.service",
    "e2scrub_all.timer", "e2scrub_all.service", "e2scrub_reap.service", "fstrim.timer", "fstrim.service",
    "man-db.timer", "man-db.service", "logrotate.timer", "logrotate.service", "packagekit.service",
    "packagekit-offline-update.service", "postgresql@.service",
]


def quote(word: str | Path | int) -> str:
    """One word of a unit file's line: '%' doubled, double-quoted when it has a space or ';'."""
    text = str(word)
    if any(c in text for c in '"\'\\$\n'):
        raise LabError(f"{text!r} has a quote, backslash, '$' or newline, which the box's unit files do not take")
    text = text.replace("%", "%%")
    return f'"{text}"' if not text or any(c in text for c in " \t;") else text


def command(words) -> str:
    return " ".join(quote(w) for w in words)


def _unit(description: str, unit: list[str], service: list[str]) -> str:
    return "\n".join([
        "# Written by `python -m lab box up`; edits are lost on the next up.",
        "[Unit]", f"Description={description}", *unit, "",
        "[Service]", *service, "",
        "[Install]", f"WantedBy={TARGET}", "",
    ])


def _limits() -> list[str]:
    return [f"StartLimitIntervalSec={START_LIMIT_INTERVAL}", f"StartLimitBurst={START_LIMIT_BURST}"]


def python_unit(paths: BoxPaths, ports: BoxPorts, name: str) -> str:
    """One of the lab's servers, run by systemd the way the real box runs its services."""
    module = {**PYTHON_UNITS, **ON_DEMAND_UNITS}[name]
    lab_dir = paths.inside().root
    argv = [sys.executable, "-m", module, "--lab-dir", lab_dir, "--port-base", ports.base]
    env = {"PYTHONPATH": REPO, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "LAB_DIR": lab_dir, "LAB_PORT_BASE": ports.base}
    port = {**ports.by_unit(), **ports.on_demand()}[name]
    after = "After=network.target postgresql.service" if name == "trading-agent" else "After=network.target"
    return _unit(f"{name} of the trading box (lab stand-in on 127.0.0.1:{port})", [after, *_limits()], [
        "Type=simple",
        f"ExecStart={command(argv)}",
        f"WorkingDirectory={quote(REPO)}",
        *(f"Environment={quote(f'{key}={value}')}" for key, value in env.items()),
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        "TimeoutStopSec=10s",
        f"SyslogIdentifier={name}",
    ])


def postgres_command(paths: BoxPaths, ports: BoxPorts) -> list[str]:
    """The lab's postgres command line (lab.postgres.Cluster), with the guide's data and socket dirs."""
    argv = Cluster(paths, ports, paths.pg_dir).command()
    argv[argv.index("-D") + 1] = str(Guide.pg_data)
    argv[argv.index("-k") + 1] = str(Guide.pg_socket_dir)
    return argv


def postgres_units(paths: BoxPaths, ports: BoxPorts) -> dict[str, str]:
    initdb = command([PG_BIN / "initdb", "-D", Guide.pg_data, "-U", SUPERUSER, "--auth-host=scram-sha-256",
                      "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
    pwfile = "/run/postgresql-initdb/pwfile"
    return {
        "postgresql-initdb.service": _unit("PostgreSQL cluster of the trading box, made at its first boot", [
            f"ConditionPathExists=!{Guide.pg_data}/PG_VERSION", "Before=postgresql.service",
        ], [
            "Type=oneshot", "RemainAfterExit=yes", f"User={SUPERUSER}", f"Group={SUPERUSER}",
            "RuntimeDirectory=postgresql-initdb", "RuntimeDirectoryMode=0700",
            # '+': as root, who may read BOX_DIR/secrets; initdb (as postgres) reads the copy, then it goes
            f"ExecStartPre=+/usr/bin/install -o {SUPERUSER} -g {SUPERUSER} -m 600 "
            f"{quote(paths.inside().db_password_file)} {pwfile}",
            f"ExecStart={initdb} --pwfile={pwfile}",
            f"ExecStartPost=/bin/rm -f {pwfile}",
        ]),
        "postgresql.service": _unit(
            f"PostgreSQL {Guide.pg_version} of the trading box (trading_agent on 127.0.0.1:{ports.postgres})",
            ["Requires=postgresql-initdb.service", "After=network.target postgresql-initdb.service", *_limits()], [
                "Type=notify", f"User={SUPERUSER}", f"Group={SUPERUSER}",  # postgres refuses to run as root
                "RuntimeDirectory=postgresql", "RuntimeDirectoryPreserve=no",
                f"ExecStart={command(postgres_command(paths, ports))}",
                "ExecReload=/bin/kill -HUP $MAINPID",
                "KillMode=mixed", "KillSignal=SIGINT", "TimeoutStartSec=60s", "TimeoutStopSec=20s",
                "Restart=on-failure", "RestartSec=1s", "SyslogIdentifier=postgresql",
            ]),
    }


def ssh_unit(paths: BoxPaths, ports: BoxPorts) -> str:
    config = quote(paths.inside().sshd_config)
    return _unit(f"OpenBSD Secure Shell server of the trading box (127.0.0.1:{ports.ssh}, user {MAINT_USER})",
                 ["After=network.target", *_limits()], [
                     "Type=notify", f"ExecStartPre=/usr/sbin/sshd -t -f {config}",
                     f"ExecStart=/usr/sbin/sshd -D -e -f {config}",
                     f"ExecReload=/usr/sbin/sshd -t -f {config}", "ExecReload=/bin/kill -HUP $MAINPID",
                     "KillMode=process", "Restart=on-failure", "RestartPreventExitStatus=255",
                     "RuntimeDirectory=sshd", "RuntimeDirectoryMode=0755", "SyslogIdentifier=sshd",
                 ])


def target() -> str:
    wants = " ".join(["systemd-journald.service", "dbus.socket", *(f"{u}.service" for u in UNITS)])
    return "\n".join([
        "# The box boots into this target: its own services and journald, nothing of the machine's.",
        "[Unit]", "Description=The trading box (lab box: real systemd, the lab's servers)",
        "Requires=basic.target", f"Wants={wants}", "After=basic.target", "AllowIsolate=yes", "",
    ])


SYSTEM_CONF = """\
# The box's systemd manager: quiet, quick to stop, nothing it cannot have in a namespace.
[Manager]
ShowStatus=no
DefaultTimeoutStartSec=60s
DefaultTimeoutStopSec=15s
DefaultTasksAccounting=no
DefaultStartLimitIntervalSec=10s
DefaultStartLimitBurst=5
"""

JOURNALD_CONF = """\
# The box's journal lives in its own /run; it never reads or writes the machine's kernel log.
[Journal]
Storage=volatile
RuntimeMaxUse=32M
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""


def masks() -> list[str]:
    """MASKED, and every unit the machine's .wants directories would pull in, but the KEEP ones."""
    names = set(MASKED)
    for directory in UNIT_DIRS:
        for wants in Path(directory).glob("*.wants"):
            names |= {entry.name for entry in wants.iterdir()}
    return sorted(names - KEEP)


def generators() -> list[str]:
    """Every generator of the machine (fstab, getty, sysv, gpt-auto, postgresql, ...)."""
    names = set()
    for directory in GENERATOR_DIRS:
        path = Path(directory)
        if path.is_dir():
            names |= {entry.name for entry in path.iterdir()}
    return sorted(names)


def write_tree(paths: BoxPaths, ports: BoxPorts) -> None:
    """Rewrite BOX_DIR/box/systemd, which boot.sh copies into the box's tmpfs /etc/systemd."""
    import shutil

    root = paths.systemd_dir
    shutil.rmtree(root, ignore_errors=True)
    system = root / "system"
    wants = system / f"{TARGET}.wants"
    for directory in (wants, root / "system-generators"):
        directory.mkdir(parents=True)
    (root / "system.conf").write_text(SYSTEM_CONF)
    (root / "journald.conf").write_text(JOURNALD_CONF)
    for name in generators():
        os.symlink("/dev/null", root / "system-generators" / name)
    for name in masks():
        if name not in {f"{u}.service" for u in UNITS}:
            os.symlink("/dev/null", system / name)
    units = {f"{name}.service": python_unit(paths, ports, name) for name in [*PYTHON_UNITS, *ON_DEMAND_UNITS]}
    units.update(postgres_units(paths, ports))
    units["ssh.service"] = ssh_unit(paths, ports)
    units[TARGET] = target()
    for name, text in units.items():
        (system / name).write_text(text)
        if name not in (TARGET, "postgresql-initdb.service", *(f"{u}.service" for u in ON_DEMAND_UNITS)):
            os.symlink(f"../{name}", wants / name)  # what `systemctl enable` leaves
    os.symlink(TARGET, system / "default.target")
