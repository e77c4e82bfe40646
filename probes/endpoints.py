"""HTTP and TCP readings of the agent API, the dashboard, the tunnel and the exchange.

A reading says what happened (status, time, the problem in words); whether that is healthy is the
check's business. Every call has the configured timeout. Requests are made from the box's side
(probes/remote/readers.py through the box): the agent API listens on the box's own loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from configuration import Settings
from probes.host import Box
from probes.remote import readers


class ProbeError(Exception):
    """The probe could not read what the check needs: the check is UNKNOWN, not failed."""


@dataclass(frozen=True)
class HttpReading:
    url: str
    status: int | None
    seconds: float
    problem: str | None
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def http_get(box: Box, url: str, timeout: float, *, headers=None, verify=True, want_json=False) -> HttpReading:
    return HttpReading(**box.call(readers.http_get, url, timeout, headers, verify, want_json))


def http_post(box: Box, url: str, timeout: float) -> HttpReading:
    """An empty POST to the agent's API (its emergency calls), answered in JSON."""
    return HttpReading(**box.call(readers.http_post, url, timeout))


class AgentApi:
    """The trading agent's own API: health and the error-handling dashboard.

    Each path is read once per run and kept until `forget()` (a remediation's re-check): the
    error-handling checks read four figures of one dashboard answer, and over SSH every read costs
    a round trip and a process on the box."""

    def __init__(self, box: Box, base_url: str, timeout: float):
        self.box = box
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._readings: dict[str, HttpReading] = {}

    def get(self, path: str) -> HttpReading:
        if path not in self._readings:
            self._readings[path] = http_get(self.box, self.base_url + path, self.timeout, want_json=True)
        return self._readings[path]

    def forget(self) -> None:
        self._readings = {}

    def field(self, path: str, dotted: str) -> Any:
        reading = self.get(path)
        if not reading.ok:
            raise ProbeError(f"GET {reading.url}: {reading.problem}")
        value = reading.body
        for key in dotted.split("."):
            if not isinstance(value, dict) or key not in value:
                raise ProbeError(f"GET {reading.url}: no field {dotted} in the answer")
            value = value[key]
        return value

    def number(self, path: str, dotted: str) -> float:
        value = self.field(path, dotted)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProbeError(f"GET {self.base_url}{path}: {dotted} is {value!r}, not a number")
        return value

    def error_rate(self) -> float:
        return self.number("/api/errors/dashboard", "errorMetrics.errorRate")

    def critical_errors(self) -> float:
        return self.number("/api/errors/dashboard", "errorMetrics.criticalErrors")

    def open_circuit_breakers(self) -> float:
        return self.number("/api/errors/dashboard", "recoveryMetrics.circuitBreakersOpen")

    def circuit_breaker_details(self) -> Any:
        return self.field("/api/errors/dashboard", "recoveryMetrics.circuitBreakerDetails")

    def overall_health(self) -> float:
        return self.number("/api/health", "overallHealth")


def parameters(settings: Settings) -> dict[str, list]:
    return {"probe_target": list(settings.emergency.probe_targets)}


def read_dashboard(box: Box, settings: Settings) -> HttpReading:
    return http_get(box, settings.dashboard.url, settings.dashboard.timeout_seconds)


def connect_tunnel(box: Box, settings: Settings) -> str | None:
    return box.call(readers.tcp_connect, settings.tunnel.host, settings.tunnel.port, settings.tunnel.timeout_seconds)


def connect_target(box: Box, settings: Settings, target: str) -> str | None:
    """TCP reachability of one `[emergency] probe_targets` entry (HOST:PORT): None, or what went wrong."""
    host, _, port = target.rpartition(":")
    return box.call(readers.tcp_connect, host.strip("[]"), int(port), settings.emergency.probe_timeout_seconds)


def read_exchange(box: Box, settings: Settings) -> HttpReading:
    ex = settings.exchange
    return http_get(box, ex.url, ex.timeout_seconds, headers={"Host": ex.host_header}, verify=ex.verify_tls,
                    want_json=True)
