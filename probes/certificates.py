"""The TLS certificates in use, read on the box (probes/remote/pentestscan.py): the exchange's as the agent
sees it through the tunnel, the other configured endpoints', and certificate files.

Each is named by a target, the check's parameter: `exchange` ([exchange] url and host_header),
`endpoint HOST:PORT`, `file PATH`. A certificate that cannot be read (the endpoint refuses, the file
is missing or holds no certificate) raises, naming it: the check is UNKNOWN, never a pass.
"""

from __future__ import annotations

import datetime
import functools
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from configuration import Settings
from core.unread import CouldNotRead
from probes.host import Box, ReaderFailed
from probes.remote import pentestscan

EXCHANGE = "exchange"
ENDPOINT = "endpoint "
FILE = "file "


@dataclass(frozen=True)
class Certificate:
    target: str
    where: str  # how it was read: "api.gateio.ws at 127.0.0.1:8443", "/etc/ssl/..."
    subject: str
    issuer: str
    not_after: float

    def days_left(self, now: float | None = None) -> float:
        return (self.not_after - (time.time() if now is None else now)) / 86400

    @property
    def expires(self) -> str:
        return datetime.datetime.fromtimestamp(self.not_after, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def __str__(self) -> str:
        named = f" (CN {self.subject})" if self.subject else ""
        return f"certificate of {self.where}{named}"


def targets(settings: Settings) -> list[str]:
    """What the certificate check reads, one parameter each."""
    config = settings.certificates
    found = [EXCHANGE] if config.exchange and settings.exchange.url.startswith("https://") else []
    found += [ENDPOINT + endpoint.address for endpoint in config.endpoints]
    found += [FILE + str(path) for path in config.files]
    return found


class CertificateProbe:
    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.settings = settings
        self.config = settings.certificates

    def read(self, target: str) -> Certificate:
        if target == EXCHANGE:
            exchange = self.settings.exchange
            url = urlsplit(exchange.url)
            port = url.port or 443
            return self._endpoint(target, url.hostname, port, exchange.host_header or url.hostname)
        if target.startswith(ENDPOINT):
            endpoint = next(e for e in self.config.endpoints if e.address == target[len(ENDPOINT):])
            host, port = endpoint.host_port()
            return self._endpoint(target, host, port, endpoint.server_name or host)
        if target.startswith(FILE):
            return self._file(target, target[len(FILE):])
        raise LookupError(f"no certificate target {target!r} in the configuration")

    def _endpoint(self, target: str, host: str, port: int, server_name: str) -> Certificate:
        where = f"{server_name} at {host}:{port}"
        try:
            facts = self.box.call(pentestscan.endpoint_certificate, host, port, server_name,
                                  self.config.timeout_seconds)
        except CouldNotRead:  # the box did not run the reader: its own words, its cause
            raise
        except (OSError, ValueError, ReaderFailed) as error:  # refused, timed out, TLS failed
            raise ConnectionError(f"cannot read the certificate of {where}: {error or type(error).__name__}") from None
        return Certificate(target, where, facts["subject"], facts["issuer"], facts["not_after"])

    @functools.cached_property
    def _files(self) -> dict:
        return self.box.call(pentestscan.file_certificates, [str(path) for path in self.config.files])

    def _file(self, target: str, path: str) -> Certificate:
        reading = self._files.get(path) or self.box.call(pentestscan.file_certificates, [path])[path]
        if "error" in reading:
            fix = "fix the path in [certificates] files, or remove it"
            if reading["error"] == "PermissionError":
                fix = "run the checks as a user who may read it"
            raise OSError(f"certificate file {path} cannot be read ({reading['error']}: {reading['message']}): {fix}")
        return Certificate(target, path, reading["subject"], reading["issuer"], reading["not_after"])


def parameters(settings: Settings) -> dict[str, list]:
    return {"certificate": targets(settings)}
