"""The [certificates] section: the guide's certificate reviews (Monthly 3, Quarterly 3), days left of each
certificate in use.

The exchange's as the agent sees it through the tunnel ([exchange] url, with [exchange] host_header as the
server name), any other TLS endpoint, and certificate files on the box; each has its days left against
`warning_days` and `critical_days`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from configuration.section import COMMENTED, Section
from configuration.security import BoxPath


class TlsEndpoint(Section):
    """A TLS endpoint the box reaches, with the name its certificate is for."""

    address: str = Field(pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$", examples=["127.0.0.1:443"],
                         description="HOST:PORT as the box reaches it (an IPv6 address in brackets).")
    server_name: str | None = Field(default=None, examples=["dashboard.example.org"],
                                    description="The name sent as SNI; not set: the address' host.")

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


class Certificates(Section):
    """TLS-001 (monthly; the guide's Monthly 3 and Quarterly 3): days left of each certificate in use, read on the
    box without verifying it (an expired one is the finding; NET-002 verifies trust every day)."""

    per_box = True

    exchange: bool = Field(default=True,
                           description="Read the exchange's certificate through the tunnel ([exchange] url, an "
                                       "https:// one, with host_header as the server name); false: not read.")
    endpoints: list[TlsEndpoint] = Field(
        default_factory=list, examples=[[{"address": "127.0.0.1:443", "server_name": "dashboard.example.org"}]],
        json_schema_extra=COMMENTED, description="Other TLS endpoints whose certificates are read.")
    files: list[BoxPath] = Field(default_factory=list, examples=[["/etc/ssl/certs/dashboard.pem"]],
                                 json_schema_extra=COMMENTED,
                                 description="PEM files on the box; the first certificate of each is read.")
    warning_days: int = Field(default=30, ge=0, le=3660,
                              description="A certificate with this many days left or fewer fails as a warning.")
    critical_days: int = Field(default=7, ge=0, le=3660,
                               description="With this many days left or fewer, as critical; at most warning_days.")
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="How long reading one certificate may take.")

    @model_validator(mode="after")
    def _levels(self) -> Certificates:
        if self.critical_days > self.warning_days:
            raise ValueError(f"critical_days ({self.critical_days}) must not exceed warning_days ({self.warning_days})")
        if len(set(self.files)) != len(self.files):
            raise ValueError("files lists a path twice")
        addresses = [endpoint.address for endpoint in self.endpoints]
        if len(set(addresses)) != len(addresses):
            raise ValueError("endpoints lists an address twice")
        return self
