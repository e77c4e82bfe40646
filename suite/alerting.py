"""Sends the alerts a run owes, on the controller only, as reports arrive.

Critical findings and "a human is needed" go out at once; everything else the run owes goes into
one digest at the end. Which alerts are owed (soft states, dedup, flapping, resolved) was settled
with each check (suite/settle.py); this only words and delivers them, after first delivering
what earlier runs left in the spool.
"""

from __future__ import annotations

import pytest

from alerts import Alert
from alerts.delivery import Delivery, DeliveryResult

IMMEDIATE_KINDS = ("problem", "unknown", "human-needed")


def alert_from(properties: dict, nodeid: str, kind: str) -> Alert:
    title = nodeid.split("::")[-1]
    message = {
        "resolved": "passes again",
        "flapping": properties.get("policy", "alternating between pass and fail"),
        "human-needed": properties.get("human_needed", ""),
    }.get(kind, properties.get("problem", ""))
    return Alert(
        check_id=properties["check_id"],
        severity=properties["severity"],
        kind=kind,
        title=("could not check " if kind == "unknown" else "") + title,
        message=message,
        remediation=" / ".join(v for k, v in properties.items() if k in ("remediation_outcome", "recheck")),
    )


class Alerter:
    def __init__(self, settings, run_name: str):
        self.settings = settings
        self.run_name = run_name
        self.delivery = Delivery(settings.alerts)
        self.result: DeliveryResult = self.delivery.flush_spool()
        self.sent: list[Alert] = []
        self.digest: list[Alert] = []

    @property
    def undelivered(self) -> bool:
        """Something waits in the spool (or could not even be spooled): the exit status must say so."""
        return not self.result.ok

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            return
        properties = dict(report.user_properties)
        if "human_needed" in properties:
            self.send(alert_from(properties, report.nodeid, "human-needed"))
        kind = properties.get("alert")
        if kind is None:
            return
        alert = alert_from(properties, report.nodeid, kind)
        if kind in IMMEDIATE_KINDS and alert.severity == "critical":
            self.send(alert)
        else:
            self.digest.append(alert)

    def send(self, alert: Alert) -> None:
        self.result = self.result.merged(self.delivery.deliver([alert]))
        self.sent.append(alert)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.digest:
            self.send(Alert.digest(self.digest, self.run_name))
            self.digest = []
