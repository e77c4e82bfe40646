"""The weekly security audit's readings: a week of failed logins, Fail2Ban's jails, sshd's effective
settings, the secrets' modes and owners, the world-writable files of the application directory and the
tunnel key's fingerprint.

The failed logins are read by probes/remote/securityscan.py (SEC-004's reader, over the rotations a week
reaches), the files by probes/remote/securityauditscan.py, both on the box; `fail2ban-client`, `sshd -T` and
`ssh-keygen -lf` run on the box through `box.run` and their output is parsed here. A command that is
not there, or that cannot read what it needs, raises an error naming it and the fix: the check is
UNKNOWN, never passed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from configuration import Settings
from probes.host import Box
from probes.remote import securityauditscan, securityscan
from probes.security import FailedLogins, _unreadable

NOT_FOUND = (126, 127)  # coreutils timeout: the command could not be run / was not found
SERVER_DOWN = ("Failed to access socket path", "Is fail2ban running?")
NO_JAIL = re.compile(r"does not exist|NOK: \(")
FINGERPRINT = re.compile(r"^\d+ (SHA256:[A-Za-z0-9+/]{43}) ")


@dataclass(frozen=True)
class Fail2Ban:
    running: bool
    jails: list[str] = field(default_factory=list)
    said: str = ""  # what the client said when its server did not answer


@dataclass(frozen=True)
class Jail:
    name: str
    currently_failed: int
    total_failed: int
    currently_banned: int
    total_banned: int
    banned: list[str]


def parse_fail2ban_status(text: str) -> list[str]:
    """`fail2ban-client status`: the names after `Jail list:` (comma separated, none when empty)."""
    for line in text.splitlines():
        label, _, value = line.partition(":")
        if label.strip(" |`-") == "Jail list":
            return [name.strip() for name in value.split(",") if name.strip()]
    raise ValueError(f"no 'Jail list:' line in fail2ban-client's answer: {text.strip()[:200]!r}")


def parse_jail_status(name: str, text: str) -> Jail:
    """`fail2ban-client status JAIL`: its filter's and its actions' figures."""
    values = {}
    for line in text.splitlines():
        label, _, value = line.partition(":")
        values[label.strip(" |`-").lower()] = value.strip()
    try:
        return Jail(name, int(values["currently failed"]), int(values["total failed"]),
                    int(values["currently banned"]), int(values["total banned"]),
                    values.get("banned ip list", "").split())
    except (KeyError, ValueError):
        raise ValueError(f"fail2ban-client status {name}: not the figures of a jail: {text.strip()[:200]!r}") from None


def parse_sshd_settings(text: str) -> dict[str, list[str]]:
    """`sshd -T`: one `keyword value` per line, keywords in lower case; a repeated keyword (hostkey,
    listenaddress) keeps every value, in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        keyword, _, value = line.strip().partition(" ")
        if keyword:
            settings.setdefault(keyword.lower(), []).append(value.strip())
    return settings


def parse_fingerprint(text: str) -> str:
    """`ssh-keygen -lf FILE`: `256 SHA256:... comment (ED25519)`."""
    match = FINGERPRINT.match(text.strip())
    if not match:
        raise ValueError(f"not a fingerprint line: {text.strip()[:200]!r}")
    return match.group(1)


def sshd_arguments(config) -> list[str]:
    """What follows the sshd program: the effective settings of the configured file, keys and connection."""
    argv = ["-T", "-f", str(config.sshd_config)]
    for key in config.sshd_host_keys:
        argv += ["-h", str(key)]
    if config.sshd_connection:
        argv += ["-C", config.sshd_connection]
    return argv


def _without_sudo(argv: list[str]) -> list[str]:
    return argv[2:] if argv[:2] == ["sudo", "-n"] else argv[1:] if argv[:1] == ["sudo"] else argv


def root_reads(settings: Settings) -> list[list[str]]:
    """The audit's readings that need root on a real box (sshd -T reads the host keys, fail2ban-client its
    server's socket), each with its exact arguments and without a sudo prefix: what `make sudoers` allows."""
    config = settings.audit
    reads = [[*_without_sudo(config.sshd), *sshd_arguments(config)]]
    if config.fail2ban:
        client = _without_sudo(config.fail2ban_client)
        reads += [[*client, "status"], *([*client, "status", jail] for jail in config.fail2ban_jails)]
    return reads


def _said(done) -> str:
    return " ".join((done.stderr.strip() or done.stdout.strip()).split())[:300] or f"exit {done.returncode}"


class AuditProbe:
    """The box as the weekly audit sees it, from [audit] (and [security]'s auth log)."""

    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.config = settings.audit
        self.security = settings.security

    @functools.cached_property
    def failed_logins(self) -> FailedLogins:
        """Failed-login lines of the auth log and its rotations within [audit] failed_logins_window_days."""
        log = self.security.auth_log
        try:
            found = self.box.call(securityscan.failed_logins_rotated, str(log),
                                  self.config.failed_logins_window_days * 86400,
                                  list(self.security.failed_login_patterns))
        except (FileNotFoundError, PermissionError) as error:
            reading = {"error": type(error).__name__, "message": str(error)}
            raise _unreadable(reading, f"auth log {log}", "point [security] auth_log at the file sshd logs to "
                              "(a box with journald alone needs rsyslog for it)") from None
        return FailedLogins(**found)

    # -- Fail2Ban

    def _client(self, *words: str):
        argv = [*self.config.fail2ban_client, *words]
        done = self.box.run(argv)
        if done.returncode in NOT_FOUND:
            client = " ".join(self.config.fail2ban_client)
            raise FileNotFoundError(f"{client} cannot be run on the box ({_said(done)}): install fail2ban, set "
                                    "[audit] fail2ban_client to its path, or [audit] fail2ban = false if the box "
                                    "has none on purpose")
        return done

    @functools.cached_property
    def fail2ban(self) -> Fail2Ban:
        """Whether Fail2Ban's server answers, and its active jails."""
        done = self._client("status")
        if done.returncode != 0:
            said = _said(done)
            if any(words in said for words in SERVER_DOWN):
                return Fail2Ban(running=False, said=said)
            if "ermission denied" in said or "you must be root" in said:
                raise PermissionError(f"fail2ban-client may not talk to its server ({said}): run the weekly "
                                      "checks as root, or set [audit] fail2ban_client = [\"sudo\", \"-n\", "
                                      "\"fail2ban-client\"] with the matching sudoers rule")
            raise OSError(f"fail2ban-client status failed ({said})")
        return Fail2Ban(running=True, jails=parse_fail2ban_status(done.stdout))

    def jail(self, name: str) -> Jail | None:
        """One jail's figures; None when the server has no such jail."""
        done = self._client("status", name)
        if done.returncode != 0:
            if NO_JAIL.search(done.stdout + done.stderr):
                return None
            raise OSError(f"fail2ban-client status {name} failed ({_said(done)})")
        return parse_jail_status(name, done.stdout)

    # -- sshd

    @property
    def sshd_command(self) -> list[str]:
        return [*self.config.sshd, *sshd_arguments(self.config)]

    @functools.cached_property
    def sshd_settings(self) -> dict[str, list[str]]:
        """sshd's effective settings, as `sshd -T` prints them for [audit] sshd_config."""
        done = self.box.run(self.sshd_command)
        said = _said(done)
        if done.returncode in NOT_FOUND:
            raise FileNotFoundError(f"{' '.join(self.config.sshd)} cannot be run on the box ({said}): set "
                                    "[audit] sshd to sshd's path (/usr/sbin/sshd)")
        if done.returncode != 0:
            fix = "set [audit] sshd_config to the file sshd reads"
            if "hostkey" in said.lower() or "privilege separation" in said:
                fix = ("sshd -T needs root (the host keys, /run/sshd): run the weekly checks as root, or set "
                       "[audit] sshd = [\"sudo\", \"-n\", \"sshd\"] with the matching sudoers rule")
            raise OSError(f"{' '.join(self.sshd_command)} failed ({said}): {fix}")
        return parse_sshd_settings(done.stdout)

    def sshd_setting(self, keyword: str) -> str:
        """One effective setting (its values joined by spaces when repeated)."""
        values = self.sshd_settings.get(keyword)
        if values is None:
            raise LookupError(f"sshd -T prints no {keyword!r}: not a keyword of this OpenSSH; remove it from "
                              "[audit] sshd_settings / sshd_at_most / sshd_algorithms")
        return " ".join(values)

    # -- files

    @functools.cached_property
    def _modes(self) -> dict:
        return self.box.call(securityauditscan.file_modes, [str(path) for path in self.config.secret_files])

    def mode(self, path: str) -> dict:
        """{mode, uid, owner, link} of one secret file."""
        reading = self._modes.get(path) or self.box.call(securityauditscan.file_modes, [path])[path]
        if "error" in reading:
            raise _unreadable(reading, f"secret file {path}", "restore it, or remove it from [audit] secret_files")
        return reading

    @functools.cached_property
    def world_writable(self) -> dict:
        """{count, first, unreadable} under [audit] app_dir."""
        top = str(self.config.app_dir)
        try:
            return self.box.call(securityauditscan.world_writable, top)
        except (FileNotFoundError, PermissionError) as error:
            reading = {"error": type(error).__name__, "message": str(error)}
            raise _unreadable(reading, f"application directory {top}", "set [audit] app_dir") from None

    @functools.cached_property
    def tunnel_key_fingerprint(self) -> str:
        """`ssh-keygen -lf` of [audit] tunnel_key."""
        key = str(self.config.tunnel_key)
        done = self.box.run([*self.config.ssh_keygen, "-lf", key])
        if done.returncode != 0:
            raise OSError(f"ssh-keygen -lf {key} failed ({_said(done)}): the tunnel key must exist and be "
                          "readable by this user; set [audit] tunnel_key to the tunnel's IdentityFile")
        return parse_fingerprint(done.stdout)


def parameters(settings: Settings) -> dict[str, list]:
    config = settings.audit
    return {"fail2ban_jail": list(config.fail2ban_jails),
            "sshd_keyword": config.sshd_expectations(),
            "sshd_algorithm_kind": list(config.sshd_algorithms),
            "secret_file": [str(path) for path in config.secret_files]}
