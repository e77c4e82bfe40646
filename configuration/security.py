"""The [security] section: what the emergency cadence's breach indicators compare the box with.

Each indicator (checks/test_emergency_security.py) reads its own keys: the listening ports against
`allowed_ports` (within `port_range`), the keys of the `authorized_keys` files against `allowed_keys`,
the `critical_files` against the baseline `checksums_file` recorded by `make record-checksums`, and
the failed logins of `auth_log` against `failed_logins_max` per `failed_logins_window_minutes`.
Every path is the box's own, absolute.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from configuration.section import COMMENTED, Section

FINGERPRINT = r"^SHA256:[A-Za-z0-9+/]{43}$"  # as `ssh-keygen -lf FILE` prints it: base64, no padding
Port = Annotated[int, Field(ge=1, le=65535)]


def _fingerprint(value: str) -> str:
    if not re.fullmatch(FINGERPRINT, value):
        raise ValueError("must be a key fingerprint as `ssh-keygen -lf FILE` prints it (SHA256: and 43 characters), "
                         "not the key itself")
    return value


def _box_path(value: Path) -> Path:
    if not value.is_absolute():
        raise ValueError(f"{str(value)!r} must be an absolute path on the box")
    if "\n" in str(value):
        raise ValueError("a path with a newline cannot be recorded in a checksum file")
    return value


BoxPath = Annotated[Path, AfterValidator(_box_path)]


class Security(Section):
    """The emergency cadence's breach indicators (every 5 minutes; the guide's Security Breach Response). They
    detect and alert; nothing is changed on the box. Every path is the box's own."""

    per_box = True

    allowed_ports: list[Port] = Field(default=[22, 3000, 3001, 5432, 8443],
                                      description="SEC-001: every TCP port listening on the box (IPv4 and IPv6, read "
                                                  "from /proc/net/tcp*) within port_range must be one of these: sshd, "
                                                  "the dashboard, the agent's API, PostgreSQL, the tunnel's local end.")
    port_range: tuple[Port, Port] = Field(default=(1, 65535),
                                          description="The ports watched, [low, high]: narrow it when the box shares "
                                                      "its network with other services.")
    authorized_keys: list[BoxPath] = Field(
        default=[Path("/root/.ssh/authorized_keys"), Path("/home/trading/.ssh/authorized_keys")],
        description="SEC-002: every key in these files must be one of allowed_keys. A file that does not exist makes "
                    "the check UNKNOWN: list only the files that exist.")
    allowed_keys: list[Annotated[str, AfterValidator(_fingerprint)]] = Field(
        default_factory=list, examples=[["SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"]],
        json_schema_extra=COMMENTED,
        description="SEC-002: the keys allowed, by the fingerprint `ssh-keygen -lf FILE` prints (SHA256:...); the "
                    "check's message lists the fingerprints it found.")
    critical_files: list[BoxPath] = Field(
        default=[Path("/opt/trading-agent/.env"), Path("/etc/ssh/sshd_config"), Path("/etc/sudoers")],
        description="SEC-003: these files must match their sha256 in checksums_file. Record the baseline once the "
                    "files are known good, and again after every intended change:\n"
                    "  make record-checksums CONFIG=/etc/trading-maintenance/maintenance.toml\n"
                    "Until it is recorded the check is UNKNOWN. Reading /etc/sudoers needs root.")
    checksums_file: BoxPath = Field(default=Path("/var/lib/trading-maintenance/critical-files.sha256"),
                                    description="SEC-003: the baseline, on the box.")
    auth_log: BoxPath = Field(default=Path("/var/log/auth.log"),
                              description="SEC-004: the log whose failed logins are counted.")
    failed_logins_max: int = Field(default=10, ge=0, le=1_000_000,
                                   description="SEC-004: more lines of auth_log holding one of failed_login_patterns "
                                               "within the window than this is a finding.")
    failed_logins_window_minutes: float = Field(default=60, gt=0, le=7 * 24 * 60,
                                                description="SEC-004: the window, the last this many minutes.")
    failed_login_patterns: list[Annotated[str, Field(min_length=1)]] = Field(
        default=["Failed password", "Invalid user", "authentication failure"], min_length=1,
        description="What a failed login line holds: sshd's and PAM's words.")

    @model_validator(mode="after")
    def _range_in_order(self) -> Security:
        low, high = self.port_range
        if low > high:
            raise ValueError(f"port_range [{low}, {high}]: the first port must not exceed the second")
        for key in ("critical_files", "authorized_keys"):
            paths = getattr(self, key)
            if len(set(paths)) != len(paths):
                raise ValueError(f"{key} lists a path twice")
        return self

    def watched(self, port: int) -> bool:
        low, high = self.port_range
        return low <= port <= high
