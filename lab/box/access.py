"""How an operator gets into the box: its sshd, the maintenance user, the key pair, the sudo rules.

The machine's /etc is never written: the box gets its own copies of passwd, group, shadow,
gshadow, hosts and hostname (the machine's, plus the maintenance user) and its own /etc/sudoers.d,
bind-mounted over the machine's inside the box's mount namespace only.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from lab.box.layout import EMERGENCY_BUNDLES, HOSTNAME, MAINT_USER, SERVICE_USER, BoxPaths, BoxPorts, Guide
from lab.errors import LabError
from lab.paths import REPO

FIRST_UID = 2900


def _run(args: list[str], what: str) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LabError(f"{what} failed: {error}") from None
    if result.returncode != 0:
        raise LabError(f"{what} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def maint_ids() -> tuple[int, int]:
    """The maintenance user's uid and gid: the first pair from FIRST_UID up that the machine does not use."""
    return free_ids(FIRST_UID)


def service_ids() -> tuple[int, int]:
    """The service user's: the next free pair after the maintenance user's."""
    return free_ids(maint_ids()[0] + 1)


def free_ids(uid: int) -> tuple[int, int]:
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            try:
                grp.getgrgid(uid)
            except KeyError:
                return uid, uid
        uid += 1


def _secret_file(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)


def write_etc(paths: BoxPaths) -> tuple[int, int]:
    """The box's passwd, group, shadow, gshadow, hosts and hostname; returns the user's uid, gid."""
    uid, gid = maint_ids()
    service_uid, service_gid = service_ids()
    etc = paths.overlay_dir
    etc.mkdir(parents=True, exist_ok=True)
    lines = {name: [line for line in Path(f"/etc/{name}").read_text().splitlines()
                    if not line.startswith((f"{MAINT_USER}:", f"{SERVICE_USER}:"))]
             for name in ("passwd", "group", "shadow", "gshadow")}
    lines["passwd"].append(f"{MAINT_USER}:x:{uid}:{gid}:Trading box maintenance:/home/{MAINT_USER}:/bin/bash")
    lines["group"].append(f"{MAINT_USER}:x:{gid}:")
    lines["shadow"].append(f"{MAINT_USER}:*:20000:0:99999:7:::")  # '*': no password, not locked (keys only)
    lines["gshadow"].append(f"{MAINT_USER}:!::")
    # The guide's service user, so that the shipped example's `[services] user` names someone here.
    lines["passwd"].append(f"{SERVICE_USER}:x:{service_uid}:{service_gid}:Trading agent:/nonexistent:/usr/sbin/nologin")
    lines["group"].append(f"{SERVICE_USER}:x:{service_gid}:")
    lines["shadow"].append(f"{SERVICE_USER}:!:20000:0:99999:7:::")
    lines["gshadow"].append(f"{SERVICE_USER}:!::")
    for name, content in lines.items():
        path = etc / name
        _secret_file(path, "\n".join(content) + "\n", 0o640 if "shadow" in name else 0o644)
        if "shadow" in name:
            os.chown(path, 0, grp.getgrnam("shadow").gr_gid)
    (etc / "hostname").write_text(HOSTNAME + "\n")
    hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else "127.0.0.1 localhost\n"
    (etc / "hosts").write_text(hosts.rstrip("\n") + f"\n127.0.1.1 {HOSTNAME}\n")
    return uid, gid


def write_sudoers(paths: BoxPaths, run_inside=None) -> Path:
    """The rules an operator installs on a real box: what `make sudoers` prints for the box's
    configuration as seen over SSH (run as a command: the lab imports nothing of the suite).
    `run_inside` (Box.run): printed in the running box, where the programs the rules name are installed
    (`make sudoers` leaves out a program it cannot find); otherwise on the machine, before the box boots."""
    paths.sudoers_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.sudoers_dir, 0o755)
    rule = paths.sudoers_dir / MAINT_USER
    if run_inside is None:
        printed = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config",
                                  str(paths.ssh_maintenance_config), "--user", MAINT_USER], cwd=REPO,
                                 capture_output=True, text=True, timeout=60)
    else:  # the same configuration, its BOX_DIR paths as the box sees them (a BOX_DIR under /tmp is hidden there)
        seen_inside = paths.box / "maintenance-ssh-inside.toml"
        seen_inside.write_text(paths.ssh_maintenance_config.read_text().replace(str(paths.root),
                                                                                 str(Guide.stable_box_dir)))
        printed = run_inside(["env", "-C", str(REPO), sys.executable, "-m", "commands", "sudoers", "--config",
                              str(paths.inside().box / seen_inside.name), "--user", MAINT_USER])
    if printed.returncode != 0:
        raise LabError(f"make sudoers for the box failed (exit {printed.returncode}): {printed.stderr.strip()}")
    if rule.exists():  # bind-mounted into a running box: change the file in place, not its inode
        os.chmod(rule, 0o640)
        rule.write_text(printed.stdout)
        os.chmod(rule, 0o440)
    else:
        _secret_file(rule, printed.stdout, 0o440)
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if Path(visudo).exists():
        _run([visudo, "-c", "-q", "-f", str(rule)], f"visudo -c {rule}")
    return rule


def install_helpers(paths: BoxPaths, run_inside) -> None:
    """The programs the sudo rules name (the suite's retention walker and backup program), installed as an operator
    installs them, `make install-box-helpers` as root in the box (into its own /usr/local, an overlay: the
    machine's stays); then the rules printed again there, now that the programs they name are in place.
    `run_inside(argv)`: a command run as root in the running box (Box.run)."""
    done = run_inside(["env", "-C", str(REPO), sys.executable, "-m", "commands", "boxhelpers", "install"])
    if done.returncode != 0:
        raise LabError(f"installing the box helpers failed (exit {done.returncode}): "
                       f"{(done.stderr or done.stdout).strip()}")
    write_sudoers(paths, run_inside)


def ensure_keys(paths: BoxPaths) -> None:
    """The box's host key and the maintenance user's key pair (ed25519, mode 600), made once."""
    paths.ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.ssh_dir, 0o700)
    for key, comment in ((paths.host_key, f"root@{HOSTNAME}"), (paths.maint_key, f"{MAINT_USER}@{HOSTNAME}")):
        if not key.exists() or not key.with_suffix(".pub").exists():
            key.unlink(missing_ok=True)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], "ssh-keygen")
        os.chmod(key, 0o600)


def write_home(paths: BoxPaths, uid: int, gid: int) -> None:
    """~trading-maint with the box's public key as its only authorized key."""
    ssh = paths.home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(paths.maint_key.with_suffix(".pub").read_text())
    os.chmod(paths.home, 0o750)
    os.chmod(ssh, 0o700)
    os.chmod(ssh / "authorized_keys", 0o600)
    for path in (paths.home, ssh, ssh / "authorized_keys"):
        os.chown(path, uid, gid)


def write_sshd_config(paths: BoxPaths, ports: BoxPorts) -> None:
    paths.sshd_config.write_text("\n".join([
        "# The trading box's sshd: written by `python -m lab box up`.",
        f"Port {ports.ssh}",
        "ListenAddress 127.0.0.1",
        f"HostKey {paths.inside().host_key}",
        f"PidFile /run/sshd-{ports.ssh}.pid",
        "AuthorizedKeysFile .ssh/authorized_keys",
        f"AllowUsers {MAINT_USER}",
        "PermitRootLogin no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",  # no logind in the box; pam_systemd would only wait for it
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        # The suite reaches the box's database through its SSH connection (ssh -O forward -L): only that.
        "AllowTcpForwarding local",
        f"PermitOpen 127.0.0.1:{ports.postgres}",
        "AllowStreamLocalForwarding no",
        "LogLevel INFO",
        "",
    ]))
    os.chmod(paths.sshd_config, 0o644)


def write_client_files(paths: BoxPaths, ports: BoxPorts) -> None:
    """known_hosts with the box's host key, and an ssh_config: `ssh -F BOX_DIR/ssh/ssh_config trading-box`."""
    host_key = paths.host_key.with_suffix(".pub").read_text().split()
    paths.known_hosts.write_text(f"[127.0.0.1]:{ports.ssh} {host_key[0]} {host_key[1]}\n")
    paths.ssh_config.write_text("\n".join([
        f"Host {HOSTNAME}",
        "    HostName 127.0.0.1",
        f"    Port {ports.ssh}",
        f"    User {MAINT_USER}",
        f"    IdentityFile {paths.maint_key}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {paths.known_hosts}",
        "    StrictHostKeyChecking yes",
        "    BatchMode yes",
        "    ConnectTimeout 5",
        "",
    ]))


def ssh_argv(paths: BoxPaths, ports: BoxPorts, *command: str) -> list[str]:
    """The ssh command that runs `command` in the box as the maintenance user."""
    return ["ssh", "-F", "/dev/null", "-i", str(paths.maint_key), "-p", str(ports.ssh),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", f"UserKnownHostsFile={paths.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            f"{MAINT_USER}@127.0.0.1", *command]


def write_bundle_dir(paths: BoxPaths, uid: int, gid: int) -> None:
    """Where the suite, acting over SSH as the maintenance user, leaves an emergency's diagnostics bundle:
    in the backups area, writable by that user only (as an operator sets it up: README, emergency)."""
    directory = paths.backup_dir / EMERGENCY_BUNDLES
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o750)
    os.chown(directory, uid, gid)


def prepare(paths: BoxPaths, ports: BoxPorts) -> None:
    uid, gid = write_etc(paths)
    ensure_keys(paths)
    write_home(paths, uid, gid)
    write_bundle_dir(paths, uid, gid)
    write_sshd_config(paths, ports)
    write_client_files(paths, ports)
    write_sudoers(paths)
