"""Security-breach indicators in the host's own formats, healthy or broken by a fault.

- sshd's log in syslog format at LabPaths.auth_log (the guide's /var/log/auth.log), for example
  `Nov 26 10:01:02 trading-box sshd[1234]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2`.
  Healthy: three accepted logins of the service user with its known key over the last day, a few
  cron and sudo sessions, and two failed passwords about 20 hours ago (the background noise of any
  host on the internet). `failed-logins` adds 25 failures from 203.0.113.7 within the last hour.
- The service user's authorized_keys (LabPaths.authorized_keys) holds KNOWN_KEY; `unknown-ssh-key`
  appends UNKNOWN_KEY.
- The critical files (LabPaths.critical_files); the healthy ones are byte-identical after every
  regenerate (only their mtimes change), and their digests are in LabPaths.critical_manifest, in
  `sha256sum` format, named relative to the root. `critical-file-changed` rewrites the sshd_config
  copy to allow root and password logins. The .env is written by the lab or the box itself (it
  holds their database password), before this module's manifest.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path

from lab.paths import LabPaths

HOSTNAME = "trading-box"
SERVICE_USER = "trading"
OPERATOR_IP = "192.0.2.10"
ATTACKER_IP = "203.0.113.7"
SCANNER_IP = "198.51.100.23"  # the healthy log's old noise
FAILED_LOGINS = 25  # what the failed-logins fault adds, all within the last hour
KNOWN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPcovFgw9vhzqqw6A+i1dCmIy9Gw4BqvL/yD/vXe0uvl "
             "trading@operator-laptop")
UNKNOWN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMUyN1QeuEBKIBH6kxyBayUcLZjxfMxFnCAoDwUV1zVM "
               "deploy@203.0.113.7")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

SSHD_CONFIG = """\
# /etc/ssh/sshd_config of the trading box (a copy the maintenance suite watches)
Include /etc/ssh/sshd_config.d/*.conf
Port 22
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers trading trading-maint
X11Forwarding no
AllowTcpForwarding yes
# dev-sec ssh-baseline's hardening, what the weekly audit ([audit] sshd_*) expects
PermitEmptyPasswords no
HostbasedAuthentication no
IgnoreRhosts yes
PermitUserEnvironment no
StrictModes yes
PermitTunnel no
GatewayPorts no
MaxAuthTries 2
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512,hmac-sha2-256
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,diffie-hellman-group-exchange-sha256
ClientAliveInterval 300
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
"""
WEAKENED = {"PermitRootLogin no": "PermitRootLogin yes", "PasswordAuthentication no": "PasswordAuthentication yes"}


def syslog_stamp(at: datetime) -> str:
    """rsyslog's traditional format: `Nov 26 10:01:02`, the day padded with a space (`Nov  6`)."""
    return f"{MONTHS[at.month - 1]} {at.day:2d} {at:%H:%M:%S}"


def fingerprint(public_key: str) -> str:
    """`ssh-keygen -l`'s SHA256 fingerprint of a public key line."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        os.chmod(path, mode)


# ---- /var/log/auth.log ------------------------------------------------------------------------

def healthy_auth_events(now: datetime) -> list[tuple[datetime, str]]:
    events = []
    for n, hours in enumerate((22, 13, 3)):
        at, pid, port = now - timedelta(hours=hours, minutes=17), 2100 + 37 * n, 50122 + 911 * n
        events += [
            (at, f"sshd[{pid}]: Accepted publickey for {SERVICE_USER} from {OPERATOR_IP} port {port} ssh2: "
                 f"ED25519 {fingerprint(KNOWN_KEY)}"),
            (at, f"sshd[{pid}]: pam_unix(sshd:session): session opened for user {SERVICE_USER}(uid=1001) by (uid=0)"),
            (at + timedelta(minutes=9), f"sshd[{pid}]: pam_unix(sshd:session): session closed for user {SERVICE_USER}"),
        ]
    for n, hours in enumerate((20, 8, 2)):
        at, pid = now - timedelta(hours=hours, minutes=59), 3300 + 11 * n
        events += [(at, f"CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
                   (at + timedelta(seconds=1), f"CRON[{pid}]: pam_unix(cron:session): session closed for user root")]
    at = now - timedelta(hours=3, minutes=11)
    events.append((at, f"sudo: {SERVICE_USER} : TTY=pts/0 ; PWD=/home/{SERVICE_USER} ; USER=root ; "
                       "COMMAND=/usr/bin/systemctl status trading-agent"))
    for n in range(2):  # noise: a scanner tried two common names long ago
        at, sshd, port = now - timedelta(hours=20, minutes=4 - 2 * n), f"sshd[{4400 + n}]", 40611 + 7 * n
        events += [(at, f"{sshd}: Invalid user ubuntu from {SCANNER_IP} port {port}"),
                   (at, f"{sshd}: Failed password for invalid user ubuntu from {SCANNER_IP} port {port} ssh2")]
    return events


def attack_events(now: datetime) -> list[tuple[datetime, str]]:
    """FAILED_LOGINS failed passwords from one address, between 55 and 1 minutes ago."""
    users = ("admin", "root", "trading", "ubuntu", "postgres")
    events = []
    for n in range(FAILED_LOGINS):
        at = now - timedelta(minutes=55) + timedelta(seconds=n * 54 * 60 // (FAILED_LOGINS - 1))
        user, pid, port = users[n % len(users)], 5100 + n, 51234 + 3 * n
        who = user if user in (SERVICE_USER, "root") else f"invalid user {user}"
        if who.startswith("invalid"):
            events.append((at, f"sshd[{pid}]: Invalid user {user} from {ATTACKER_IP} port {port}"))
        events.append((at, f"sshd[{pid}]: Failed password for {who} from {ATTACKER_IP} port {port} ssh2"))
    return events


def write_auth_log(paths: LabPaths, now: datetime, attacked: bool = False) -> None:
    events = healthy_auth_events(now) + (attack_events(now) if attacked else [])
    events.sort(key=lambda event: event[0])
    _write(paths.auth_log, "".join(f"{syslog_stamp(at)} {HOSTNAME} {text}\n" for at, text in events), 0o640)


# ---- keys and critical files ------------------------------------------------------------------

def write_authorized_keys(paths: LabPaths, keys: tuple[str, ...] = (KNOWN_KEY,)) -> None:
    paths.authorized_keys.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.authorized_keys.parent, 0o700)
    _write(paths.authorized_keys, "".join(f"{key}\n" for key in keys), 0o600)


def write_manifest(paths: LabPaths) -> None:
    """`sha256sum` lines of the critical files as they are now (healthy: called before any fault), each
    named relative to the lab's root, so `cd ROOT && sha256sum -c run/critical-files.sha256` checks
    them on the machine and inside a box alike."""
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(paths.root)}\n"
             for path in paths.critical_files if path.exists()]
    _write(paths.critical_manifest, "".join(lines))
    write_baseline(paths, paths.seen_by_suite())


def write_baseline(paths: LabPaths, seen_as: LabPaths) -> None:
    """The suite's baseline: the healthy digests by the paths its configuration names (`seen_as`: the
    same layout where the suite reads it, e.g. inside a box)."""
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {shown}\n"
             for path, shown in zip(paths.critical_files, seen_as.critical_files, strict=True) if path.exists()]
    _write(paths.critical_baseline, "".join(lines), 0o600)


def regenerate(paths: LabPaths, now: datetime) -> None:
    """The healthy indicators; the trading config and the .env are written elsewhere, before this."""
    write_auth_log(paths, now)
    write_authorized_keys(paths)
    _write(paths.sshd_config_copy, SSHD_CONFIG, 0o644)
    write_manifest(paths)


# ---- faults -----------------------------------------------------------------------------------

def failed_logins(paths: LabPaths, now: datetime | None = None) -> None:
    write_auth_log(paths, now or datetime.now().astimezone(), attacked=True)


def unknown_ssh_key(paths: LabPaths, now: datetime | None = None) -> None:
    with paths.authorized_keys.open("a") as keys:
        keys.write(UNKNOWN_KEY + "\n")


def unknown_key_present(paths: LabPaths) -> bool:
    try:
        return UNKNOWN_KEY.split()[1] in paths.authorized_keys.read_text()
    except FileNotFoundError:
        return False


def critical_file_changed(paths: LabPaths, now: datetime | None = None) -> None:
    text = SSHD_CONFIG
    for healthy, weakened in WEAKENED.items():
        text = text.replace(healthy, weakened)
    _write(paths.sshd_config_copy, text, 0o644)


def critical_file_still_changed(paths: LabPaths) -> bool:
    try:
        return paths.sshd_config_copy.read_text() != SSHD_CONFIG
    except FileNotFoundError:
        return True
