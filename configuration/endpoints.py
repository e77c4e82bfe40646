"""The [api], [dashboard], [tunnel] and [exchange] sections: what the daily checks reach over the network, as
the box sees it (over SSH the requests are made on the box).
"""

from __future__ import annotations

from pydantic import Field

from configuration.section import Section


class ApiThresholds(Section):
    """The daily error-handling checks' limits on what the agent's API reports of itself."""

    max_error_rate_per_hour: float = Field(default=10, ge=0, le=1_000_000,
                                           description="ERR-001: more errors an hour than this fails.")
    max_critical_errors: int = Field(default=0, ge=0, le=1_000_000,
                                     description="ERR-002: more critical errors than this fails.")
    min_overall_health: float = Field(default=80, ge=0, le=100,
                                      description="ERR-003: the agent's overall health (percent) below this fails.")
    max_open_circuit_breakers: int = Field(default=0, ge=0, le=10_000,
                                           description="ERR-004: more open circuit breakers than this fails.")


class Api(Section):
    """The trading agent's own HTTP API (its error dashboard, health and emergency endpoints)."""

    per_box = True

    base_url: str = Field(default="http://127.0.0.1:3001", pattern=r"^https?://",
                          description="Where the agent's API answers, as the box reaches it.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="How long one request may take.")
    thresholds: ApiThresholds = ApiThresholds()


class Dashboard(Section):
    """The trading dashboard (WEB-001: it answers)."""

    per_box = True

    url: str = Field(default="http://127.0.0.1:3000", pattern=r"^https?://",
                     description="The dashboard's address, as the box reaches it.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="How long one request may take.")


class Tunnel(Section):
    """The local end of the SSH tunnel to the cloud VM (NET-001: it accepts connections)."""

    per_box = True

    host: str = Field(default="127.0.0.1", description="The tunnel's local address on the box.")
    port: int = Field(default=8443, ge=1, le=65535, description="The tunnel's local port.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="How long a connection may take to open.")


class Exchange(Section):
    """The exchange's API reached through the tunnel (NET-002), the guide's
    `curl -H "Host: api.gateio.ws" https://localhost:8443/api/v4/spot/currencies`."""

    per_box = True

    url: str = Field(default="https://127.0.0.1:8443/api/v4/spot/currencies", pattern=r"^https?://",
                     description="A public endpoint of the exchange, through the tunnel's local end.")
    host_header: str = Field(default="api.gateio.ws",
                             description="The exchange's own host name: the requests' Host header, and the "
                                         "server name its certificate is read for ([certificates] exchange).")
    verify_tls: bool | str = Field(default=True,
                                   description="Whether the exchange's certificate is verified: true, false, or the "
                                               "path of a CA bundle to verify it with.")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="How long one request may take.")
