"""Telling a human: what an alert says and the channels that carry it."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field

from suite import clock


@dataclass(frozen=True)
class Alert:
    check_id: str
    severity: str
    kind: str  # "problem", "unknown" (could not check), "resolved", "human-needed", "digest"
    title: str
    message: str
    remediation: str = ""
    items: tuple = ()  # a digest carries the alerts it sums up, each as a dict
    at: str = field(default_factory=lambda: datetime.datetime.fromtimestamp(
        clock.now(), datetime.timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def digest(cls, alerts: list["Alert"], run: str) -> "Alert":
        """One message for everything a run owes that need not wake anyone."""
        order = ("info", "warning", "critical")
        severity = max((a.severity for a in alerts), key=order.index)
        lines = [f"- [{a.check_id}] {a.kind} {a.severity}: {a.title}: {a.message}"
                 + (f" ({a.remediation})" if a.remediation else "") for a in alerts]
        return cls(check_id="DIGEST", severity=severity, kind="digest",
                   title=f"{run}: {len(alerts)} alert(s)", message="\n".join(lines),
                   items=tuple(a.as_dict() for a in alerts))

    def as_dict(self) -> dict:
        return asdict(self)
