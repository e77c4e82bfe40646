"""The [audit] section: what the weekly security audit (the guide's Manual Weekly 2) expects of the box.

Its checks (checks/test_weekly_security_audit.py) are findings for the operator, never acted on: the
failed SSH logins of the week (the auth log and its patterns are [security]'s), Fail2Ban and its jails,
sshd's effective settings against dev-sec's ssh-baseline, and the permissions of the secrets and of
the application directory. The listening ports are SEC-001's (every 5 minutes), not repeated here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from configuration.section import COMMENTED, Section
from configuration.security import BoxPath, _fingerprint

# sshd -T prints each keyword in lower case; a value is compared in lower case too.
Keyword = Annotated[str, Field(pattern=r"^[a-z0-9]+$")]

# dev-sec ssh-baseline (controls/sshd_spec.rb, libraries/ssh_crypto.rb), for OpenSSH 8.5 and later: the
# settings it holds at impact 1.0 that concern who may log in and how. Protocol is not here: OpenSSH 7.4
# removed protocol 1 and `sshd -T` no longer prints it.
BASELINE_SETTINGS = {
    "passwordauthentication": "no",  # sshd-27
    "permitrootlogin": "no",  # sshd-06 (the guide's box: nobody logs in as root)
    "permitemptypasswords": "no",  # sshd-28
    "kbdinteractiveauthentication": "no",  # sshd-29 (ChallengeResponseAuthentication is its old name)
    "pubkeyauthentication": "yes",  # sshd-22
    "hostbasedauthentication": "no",  # sshd-25
    "ignorerhosts": "yes",  # sshd-23
    "permituserenvironment": "no",  # sshd-17
    "strictmodes": "yes",  # sshd-11
    "x11forwarding": "no",  # sshd-39
    "permittunnel": "no",  # sshd-36
    "gatewayports": "no",  # sshd-38
}
BASELINE_AT_MOST = {"maxauthtries": 2}  # sshd-19
# Each algorithm sshd offers must be one of these (the baseline's lists; the key exchanges also under
# the names OpenSSH 9 gives them, and its post-quantum hybrids).
BASELINE_ALGORITHMS = {
    "ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                "aes256-ctr", "aes192-ctr", "aes128-ctr"],
    "macs": ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com",
             "hmac-sha2-512", "hmac-sha2-256"],
    "kexalgorithms": ["sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512", "mlkem768x25519-sha256",
                      "curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group-exchange-sha256"],
}
JAIL = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _connection(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[a-z]+=[^,\s]+(,[a-z]+=[^,\s]+)*", value):
        raise ValueError("must be sshd's -C spec: key=value pairs joined by commas (user=trading,addr=192.0.2.10)")
    return value


def _optional_fingerprint(value: str | None) -> str | None:
    return value if value is None else _fingerprint(value)


class Audit(Section):
    """The weekly security audit (the guide's Manual Weekly 2, Security Audit): findings for the operator, alerted,
    never acted on; the defaults are the guide's box. The listening ports are SEC-001's ([security] allowed_ports,
    every 5 minutes)."""

    per_box = True

    failed_logins_window_days: float = Field(
        default=7, gt=0, le=92,
        description="AUD-001: the failed-login lines of [security] auth_log and of its rotations (auth.log.1, "
                    "auth.log.2.gz, ...) within the last this many days, by [security] failed_login_patterns.")
    failed_logins_max: int = Field(default=100, ge=0, le=1_000_000, description="AUD-001: more than this fails.")
    fail2ban: bool = Field(default=True,
                           description="AUD-002, AUD-003: Fail2Ban's server answers, and fail2ban_jails are active "
                                       "(their banned counts are recorded). false on a box without Fail2Ban on "
                                       "purpose: the checks skip.")
    fail2ban_client: list[Annotated[str, Field(min_length=1)]] = Field(
        default=["fail2ban-client"], min_length=1,
        description="How the client runs; it needs root: over SSH as a maintenance user, [\"sudo\", \"-n\", "
                    "\"fail2ban-client\"] and a sudoers rule for it.")
    fail2ban_jails: list[Annotated[str, Field(pattern=JAIL)]] = Field(default=["sshd", "ssh-tunnel"],
                                                                       description="The jails that must be active.")
    sshd: list[Annotated[str, Field(min_length=1)]] = Field(
        default=["sshd"], min_length=1,
        description="AUD-004, AUD-005: sshd's EFFECTIVE settings, as `sshd -T -f sshd_config` prints them (Include "
                    "files and defaults applied). sshd -T reads the host keys: root, or [\"sudo\", \"-n\", \"sshd\"] "
                    "for a maintenance user.")
    sshd_config: BoxPath = Field(default=Path("/etc/ssh/sshd_config"), description="The file sshd -T reads (-f).")
    sshd_host_keys: list[BoxPath] = Field(default_factory=list,
                                          description="Host keys given with -h, each; empty: sshd_config's own "
                                                      "HostKey.")
    sshd_connection: Annotated[str | None, AfterValidator(_connection)] = Field(
        default=None, examples=["user=trading,host=trading-box,addr=192.0.2.10"], json_schema_extra=COMMENTED,
        description="-C: the connection whose Match blocks apply, key=value pairs joined by commas; not set: the "
                    "global settings.")
    sshd_settings: dict[Keyword, str] = Field(
        default_factory=lambda: dict(BASELINE_SETTINGS), json_schema_extra=COMMENTED,
        description="AUD-004: the expected settings, dev-sec ssh-baseline's by default (keywords in lower case, as "
                    "sshd -T prints them); each is one check instance.")
    sshd_at_most: dict[Keyword, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=lambda: dict(BASELINE_AT_MOST), json_schema_extra=COMMENTED,
        description="AUD-004: settings that must be a number at most this.")
    sshd_algorithms: dict[Keyword, list[str]] = Field(
        default_factory=lambda: {kind: list(names) for kind, names in BASELINE_ALGORITHMS.items()},
        json_schema_extra=COMMENTED,
        description="AUD-005: every algorithm sshd offers must be listed here (default: the baseline's).")
    secret_files: list[BoxPath] = Field(
        default=[Path("/opt/trading-agent/.env"), Path("/opt/trading-agent/keys/oracle_key")],
        description="AUD-006, AUD-007: files holding secrets, mode 600 or closer and owned by [services] user: the "
                    "agent's .env and the key of the tunnel to the cloud VM (the guide's Recovery 2 chmods both).")
    app_dir: BoxPath = Field(default=Path("/opt/trading-agent"),
                             description="AUD-008: no world-writable file or directory under it (links are not "
                                         "followed; the check lists the first few).")
    tunnel_key: BoxPath = Field(default=Path("/opt/trading-agent/keys/oracle_key"),
                                description="AUD-009: the tunnel's key, still the known one.")
    tunnel_key_fingerprint: Annotated[str | None, AfterValidator(_optional_fingerprint)] = Field(
        default=None, examples=["SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"], json_schema_extra=COMMENTED,
        description="AUD-009: what `ssh-keygen -lf` prints for tunnel_key (SHA256:...). Not set: the check is "
                    "UNKNOWN.")
    ssh_keygen: list[Annotated[str, Field(min_length=1)]] = Field(default=["ssh-keygen"], min_length=1,
                                                                  description="How ssh-keygen runs on the box.")

    @model_validator(mode="after")
    def _no_overlap(self) -> Audit:
        both = set(self.sshd_settings) & set(self.sshd_at_most)
        if both:
            raise ValueError(f"{', '.join(sorted(both))}: in both sshd_settings and sshd_at_most")
        if len(set(self.secret_files)) != len(self.secret_files):
            raise ValueError("secret_files lists a path twice")
        return self

    def sshd_expectations(self) -> list[str]:
        """The keywords AUD-004 checks, one instance each."""
        return [*self.sshd_settings, *self.sshd_at_most]
