"""The [certificates] and [rotation] sections: the guide's certificate reviews (Monthly 3, Quarterly 3)
and its quarterly "Rotate all API keys and secrets".

Certificates: the exchange's as the agent sees it through the tunnel ([exchange] url, with [exchange]
host_header as the server name), any other TLS endpoint, and certificate files on the box; each has
days left against `warning_days` and `critical_days`. Rotation: each secret's last rotation is the
newest of its files' modification and the date an operator attested (`make attest-rotation`); its
age against `warning_days` and `max_age_days`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from configuration.section import Section
from configuration.security import BoxPath

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]


class TlsEndpoint(Section):
    """A TLS endpoint the box reaches (HOST:PORT as the box sees it), with the name its certificate is for."""

    address: str = Field(pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")
    server_name: str | None = None  # SNI; the address' host when not set

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


class Certificates(Section):
    # The exchange's certificate through the tunnel, from [exchange] (an https:// url); false: not read.
    exchange: bool = True
    endpoints: list[TlsEndpoint] = Field(default_factory=list)
    # PEM files on the box (the first certificate of each is read).
    files: list[BoxPath] = Field(default_factory=list)
    # Days left before expiry: at or under warning_days the check fails as a warning, at or under
    # critical_days as critical.
    warning_days: int = Field(default=30, ge=0, le=3660)
    critical_days: int = Field(default=7, ge=0, le=3660)
    timeout_seconds: float = Field(default=10, gt=0, le=120)

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


class RotatedSecret(Section):
    """A secret the guide rotates every quarter, and the files on the box rewritten when it is."""

    name: Name
    files: list[BoxPath] = Field(default_factory=list)


class Rotation(Section):
    # A secret older than max_age_days fails as critical; older than warning_days as a warning.
    max_age_days: int = Field(default=90, ge=1, le=3660)
    warning_days: int = Field(default=80, ge=1, le=3660)
    secrets: list[RotatedSecret] = Field(default_factory=lambda: [
        RotatedSecret(name="exchange-api-key", files=[Path("/opt/trading-agent/.env")]),
        RotatedSecret(name="tunnel-key", files=[Path("/opt/trading-agent/keys/oracle_key")])])

    @model_validator(mode="after")
    def _levels(self) -> Rotation:
        if self.warning_days > self.max_age_days:
            raise ValueError(f"warning_days ({self.warning_days}) must not exceed max_age_days ({self.max_age_days})")
        names = [secret.name for secret in self.secrets]
        if len(set(names)) != len(names):
            raise ValueError(f"secrets: a name is listed twice ({names})")
        return self

    def secret(self, name: str) -> RotatedSecret | None:
        return next((secret for secret in self.secrets if secret.name == name), None)
