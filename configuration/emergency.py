"""[emergency]: what the emergency cadence calls an emergency, and how far its responses may go.

The guide's thresholds are the defaults. Every response that touches money or the whole host
(closing positions, shutting the agent down, stopping the tunnel, locking the firewall) is off until
the operator turns it on here, and even then needs the emergency confirmed (remediations/emergency.py).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator

from configuration.section import Section


class Endpoints(Section):
    """The agent's emergency API (the guide's paths), relative to [api] base_url."""

    pause_trading: str = "/api/trading/pause-non-critical"
    emergency_mode: str = "/api/errors/emergency-mode/enable"
    increase_verbosity: str = "/api/logging/increase-verbosity"
    close_positions: str = "/api/v1/emergency/close-all-positions"
    shutdown: str = "/api/emergency/shutdown"
    # Not in the guide: where the agent says whether it trades and what it holds, and how an operator
    # lets it trade again (`make resume`).
    status: str = "/api/trading/status"
    resume: str = "/api/trading/resume"

    @field_validator("*")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be a path starting with /")
        return value


class Responses(Section):
    """The later steps of the ladder, each off unless turned on."""

    close_positions: bool = False
    shutdown: bool = False  # the agent's emergency shutdown, then its service stopped
    stop_tunnel: bool = False  # on a network failure: the guide's offline mode
    firewall_lock: bool = False  # on a breach: everything closed but the ways below
    # Kept open by a firewall lock: the operator's way in.
    management_addresses: list[str] = Field(default_factory=lambda: ["192.168.1.0/24"])
    ssh_port: int = Field(default=22, ge=1, le=65535)

    @field_validator("management_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address or network") from None
        return value


class Emergency(Section):
    error_storm_per_hour: float = Field(default=50, gt=0, le=1_000_000)  # the guide's error storm: more than this
    cascade_breakers: int = Field(default=3, ge=0, le=10_000)  # the guide's cascade: more than this many open
    health_critical_below: float = Field(default=50, ge=0, le=100)
    # Money or the whole host is touched only on an emergency seen this many runs in a row (or by two
    # independent signals in one run).
    confirm_runs: int = Field(default=2, ge=2, le=100)
    # TCP endpoints whose loss means the network is down (the guide pings 8.8.8.8: name your own).
    probe_targets: list[str] = Field(default_factory=list)
    probe_timeout_seconds: float = Field(default=3, gt=0, le=60)
    # The guide's /usr/local/bin/trading-system-recovery, run on a circuit breaker cascade.
    recovery_command: list[str] = Field(default_factory=lambda: ["/usr/local/bin/trading-system-recovery"])
    # The guide's emergency-backup.sh (the database and the agent's state, as your backups take them), run
    # once per incident before anything is stopped; not installed: said, and the other steps go on.
    backup_command: list[str] = Field(default_factory=lambda: ["/opt/trading-agent/scripts/emergency-backup.sh"])
    # The diagnostics bundle (logs, readings, service states, recent errors, the last reports; secrets
    # masked, never the .env) is one archive here: the guide's backups area.
    bundle_dir: Path = Path("/opt/trading-agent/backups")
    bundle_log_dirs: list[Path] = Field(default_factory=lambda: [Path("/var/log/trading-agent"),
                                                                 Path("/opt/trading-agent/logs")])
    bundle_log_lines: int = Field(default=500, ge=10, le=100_000)  # the tail of each log it takes
    endpoints: Endpoints = Endpoints()
    responses: Responses = Responses()

    @field_validator("probe_targets")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for target in value:
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{target!r} is not HOST:PORT")
        return value
