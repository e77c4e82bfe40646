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
    """The agent's emergency API, paths of [api] base_url: the guide's, and where the agent says what it holds
    (status) and how `make resume` lets it trade again (resume)."""

    pause_trading: str = Field(default="/api/trading/pause-non-critical",
                               description="Stops new entries: the first response to every emergency.")
    emergency_mode: str = Field(default="/api/errors/emergency-mode/enable",
                                description="The agent's own emergency mode, on an error storm.")
    increase_verbosity: str = Field(default="/api/logging/increase-verbosity",
                                    description="The agent logs more, on an error storm.")
    close_positions: str = Field(default="/api/v1/emergency/close-all-positions",
                                 description="Closes all positions ([emergency.responses] close_positions).")
    shutdown: str = Field(default="/api/emergency/shutdown",
                          description="The agent's emergency shutdown ([emergency.responses] shutdown).")
    status: str = Field(default="/api/trading/status",
                        description="Not in the guide: where the agent says whether it trades and what it holds.")
    resume: str = Field(default="/api/trading/resume",
                        description="Not in the guide: how an operator lets it trade again (`make resume`).")

    @field_validator("*")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be a path starting with /")
        return value


class Responses(Section):
    """Every emergency first stops new entries (always). These later steps are off until you turn them on; each
    then needs a confirmed emergency (confirm_runs), is made at most once per incident, and a call that fails is
    followed by reading the agent's state, never by calling again. Nothing resumes by itself: make resume."""

    close_positions: bool = Field(default=False, description="Close all positions through the agent, while it "
                                                             "still runs.")
    shutdown: bool = Field(default=False, description="The agent's emergency shutdown, then its service (and, on a "
                                                      "breach, the dashboard) stopped.")
    stop_tunnel: bool = Field(default=False, description="On a network failure: the tunnel stopped, the guide's "
                                                         "offline mode.")
    firewall_lock: bool = Field(default=False, description="On a breach: every new inbound connection dropped, "
                                                           "except from management_addresses to ssh_port.")
    management_addresses: list[str] = Field(default_factory=lambda: ["192.168.1.0/24"],
                                            description="Kept open by a firewall lock, your way in: addresses or "
                                                        "networks.")
    ssh_port: int = Field(default=22, ge=1, le=65535, description="The SSH port kept open to them.")

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
    """The emergency cadence (every 5 minutes; the guide's Emergency Procedures and Error Handling Emergency
    Procedures): what it calls an emergency, and how far its responses may go."""

    error_storm_per_hour: float = Field(default=50, gt=0, le=1_000_000,
                                        description="EMG-001, an error storm: more errors an hour than this.")
    cascade_breakers: int = Field(default=3, ge=0, le=10_000,
                                  description="EMG-002, a circuit breaker cascade: more breakers open than this.")
    health_critical_below: float = Field(default=50, ge=0, le=100,
                                         description="EMG-007, critical health: the agent's overall health below "
                                                     "this (read again after the recovery of a cascade too).")
    confirm_runs: int = Field(default=2, ge=2, le=100,
                              description="The later, money- or host-touching steps ([emergency.responses]) run only "
                                          "on an emergency seen this many runs in a row, or by two different checks "
                                          "in one run: one noisy reading never closes positions.")
    probe_targets: list[str] = Field(default_factory=list,
                                     description="EMG-003, network failure: HOST:PORT endpoints reached over TCP. The "
                                                 "guide pings 8.8.8.8; name the ones your box needs, e.g. your router "
                                                 "and the cloud VM's SSH port. None listed: EMG-003 is skipped, "
                                                 "saying so.")
    probe_timeout_seconds: float = Field(default=3, gt=0, le=60, description="How long one connection may take.")
    recovery_command: list[str] = Field(default_factory=lambda: ["/usr/local/bin/trading-system-recovery"],
                                        description="The guide's recovery, run on a circuit breaker cascade; then "
                                                    "the health is read again.")
    backup_command: list[str] = Field(default_factory=lambda: ["/opt/trading-agent/scripts/emergency-backup.sh"],
                                      description="The guide's emergency backup, run once per incident (critical "
                                                  "health, a breach) before anything is stopped. Not installed: the "
                                                  "response says so and goes on.")
    bundle_dir: Path = Field(default=Path("/opt/trading-agent/backups"),
                             description="The diagnostics bundle of an incident, one archive here (the guide's "
                                         "backups area): the tail of each log in bundle_log_dirs, the agent's "
                                         "readings, the service states and the suite's last reports; secrets "
                                         "masked, never the .env.")
    bundle_log_dirs: list[Path] = Field(default_factory=lambda: [Path("/var/log/trading-agent"),
                                                                 Path("/opt/trading-agent/logs")],
                                        description="The log directories whose logs the bundle takes.")
    bundle_log_lines: int = Field(default=500, ge=10, le=100_000, description="The tail of each log it takes.")
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
