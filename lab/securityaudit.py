"""What the weekly security audit reads, healthy or broken by a fault.

- Fail2Ban: a stand-in `fail2ban-client` at `$LAB_DIR/bin/fail2ban-client` (real Fail2Ban would start
  reading this machine's logs and banning addresses, and cannot run without its server). It answers
  `status` and `status JAIL` in fail2ban-client's own words from `run/fail2ban.json`: healthy, the jails
  `sshd` and `ssh-tunnel` active, one address banned by sshd. `fail2ban-down`: the client cannot reach
  its server (what it says when fail2ban is stopped); `jail-missing`: ssh-tunnel is not a jail.
- The tunnel's key: a real ed25519 key, made once by ssh-keygen (`run/tunnel_ed25519`, kept across
  regenerates) and copied to `keys/tunnel_ed25519` mode 600; `tunnel-key-replaced` puts a new key there.
- sshd: a host key of its own (`run/ssh_host_ed25519_key`) for `sshd -T` on the lab's sshd_config copy
  (lab/security.py); `sshd-weak` rewrites that copy to allow password and root logins.
- `env-world-readable`: the .env mode 644; `world-writable-file`: config/notes.txt mode 666.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from lab import security
from lab.paths import LabPaths

JAILS = ("sshd", "ssh-tunnel")
BANNED = "203.0.113.99"
SOCKET_DOWN = "ERROR   Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?"
KEYGEN_TIMEOUT = 30

CLIENT = '''#!{python}
"""A stand-in of fail2ban-client (the lab's; see lab/securityaudit.py): status and status JAIL from {state}."""
import json, sys
with open({state!r}) as handle:
    state = json.load(handle)
words = sys.argv[1:]
if not state["running"]:
    print({down!r}, file=sys.stderr)
    sys.exit(255)
if words == ["status"]:
    names = list(state["jails"])
    print("Status")
    print("|- Number of jail:\\t%d" % len(names))
    print("`- Jail list:\\t%s" % ", ".join(names))
elif len(words) == 2 and words[0] == "status":
    jail = state["jails"].get(words[1])
    if jail is None:
        print("ERROR   NOK: ('%s',)" % words[1], file=sys.stderr)
        print("Sorry but the jail '%s' does not exist" % words[1], file=sys.stderr)
        sys.exit(255)
    print("Status for the jail: %s" % words[1])
    print("|- Filter")
    print("|  |- Currently failed:\\t%d" % jail["failed"])
    print("|  |- Total failed:\\t%d" % jail["failed_total"])
    print("|  `- File list:\\t%s" % jail["log"])
    print("`- Actions")
    print("   |- Currently banned:\\t%d" % len(jail["banned"]))
    print("   |- Total banned:\\t%d" % jail["banned_total"])
    print("   `- Banned IP list:\\t%s" % " ".join(jail["banned"]))
else:
    print("ERROR   Invalid command %s" % words, file=sys.stderr)
    sys.exit(255)
'''


class AuditPaths:
    """Where the audit's things are, under a lab's (or a box's) root."""

    def __init__(self, paths: LabPaths):
        self.client = paths.root / "bin" / "fail2ban-client"
        self.state = paths.run_dir / "fail2ban.json"
        self.tunnel_key = paths.keys_dir / "tunnel_ed25519"
        self.tunnel_key_original = paths.run_dir / "tunnel_ed25519"
        self.host_key = paths.run_dir / "ssh_host_ed25519_key"
        self.notes = paths.config_dir / "notes.txt"


def fail2ban_state(paths: LabPaths, running: bool = True, jails: tuple[str, ...] = JAILS) -> None:
    state = {"running": running, "jails": {
        name: {"failed": 0, "failed_total": 4, "log": str(paths.auth_log),
               "banned": [BANNED] if name == "sshd" else [], "banned_total": 1 if name == "sshd" else 0}
        for name in jails}}
    target = AuditPaths(paths).state
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_suffix(".tmp").write_text(json.dumps(state))
    os.replace(target.with_suffix(".tmp"), target)


def write_client(paths: LabPaths, python: str = sys.executable) -> None:
    where = AuditPaths(paths)
    where.client.parent.mkdir(parents=True, exist_ok=True)
    where.client.write_text(CLIENT.format(python=python, state=str(where.state), down=SOCKET_DOWN))
    os.chmod(where.client, 0o755)


def _keygen(path: Path, comment: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=KEYGEN_TIMEOUT)


def tunnel_fingerprint(paths: LabPaths) -> str:
    """The healthy tunnel key's fingerprint, as `ssh-keygen -lf` prints it."""
    original = AuditPaths(paths).tunnel_key_original
    return security.fingerprint(original.with_name(original.name + ".pub").read_text())


def ensure_keys(paths: LabPaths) -> None:
    """The tunnel key and sshd's host key, made once."""
    where = AuditPaths(paths)
    if not where.tunnel_key_original.exists():
        _keygen(where.tunnel_key_original, "ssh-tunnel@trading-box")
    if not where.host_key.exists():
        _keygen(where.host_key, "lab-host-key")


def regenerate(paths: LabPaths, now: datetime | None = None) -> None:
    """The healthy audit state; the .env itself is written by the lab (before this)."""
    where = AuditPaths(paths)
    ensure_keys(paths)
    write_client(paths)
    fail2ban_state(paths)
    where.tunnel_key.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(where.tunnel_key_original, where.tunnel_key)
    os.chmod(where.tunnel_key, 0o600)
    if paths.env_file.exists():
        os.chmod(paths.env_file, 0o600)
    where.notes.unlink(missing_ok=True)


def sshd_command() -> list[str]:
    """sshd, for `sshd -T`. As root, sshd insists on its privilege separation directory /run/sshd, which
    exists only while a real sshd runs: then it is given one in a private mount namespace of its own
    (`unshare --mount`, a tmpfs over /run that nobody else sees)."""
    sshd = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/sbin:" + os.environ.get("PATH", "")) or "sshd"
    if os.geteuid() != 0 or Path("/run/sshd").is_dir():
        return [sshd]
    script = 'mount -t tmpfs -o size=64k,mode=755 lab-run /run && mkdir /run/sshd && exec "$0" "$@"'
    return ["unshare", "--mount", "--", "sh", "-c", script, sshd]


def audit_values(paths: LabPaths) -> dict:
    """[audit] on the lab's things. The fingerprint only once the key is made (a box writes its
    configuration before its files, and by the paths seen inside it): until then AUD-009 is UNKNOWN."""
    where = AuditPaths(paths)
    try:
        known = {"tunnel_key_fingerprint": tunnel_fingerprint(paths)}
    except OSError:
        known = {}
    return {"failed_logins_max": 20,  # the healthy log's 4 lines pass; failed-logins' 40 do not
            "fail2ban_client": [str(where.client)], "sshd": sshd_command(),
            "sshd_config": paths.sshd_config_copy, "sshd_host_keys": [where.host_key],
            "secret_files": [paths.env_file, where.tunnel_key], "app_dir": paths.opt_dir,
            "tunnel_key": where.tunnel_key, **known}


# ---- faults -----------------------------------------------------------------------------------

def fail2ban_down(paths: LabPaths, now: datetime | None = None) -> None:
    fail2ban_state(paths, running=False)


def jail_missing(paths: LabPaths, now: datetime | None = None) -> None:
    fail2ban_state(paths, jails=tuple(name for name in JAILS if name != "ssh-tunnel"))


def env_world_readable(paths: LabPaths, now: datetime | None = None) -> None:
    os.chmod(paths.env_file, 0o644)


def world_writable_file(paths: LabPaths, now: datetime | None = None) -> None:
    notes = AuditPaths(paths).notes
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text("shared notes anyone may edit\n")
    os.chmod(notes, 0o666)


def tunnel_key_replaced(paths: LabPaths, now: datetime | None = None) -> None:
    key = AuditPaths(paths).tunnel_key
    _keygen(key, "someone-else@203.0.113.7")
    key.with_name(key.name + ".pub").unlink(missing_ok=True)
