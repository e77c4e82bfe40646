"""The alerts one run owes, worded from the checks' report properties and delivered.

Critical findings and "a human is needed" go out at once; everything else the run owes goes into
one digest at the end. Which alerts are owed (soft states, dedup, flapping, resolved) was decided
with each check (decision/); this only words and delivers them, after first delivering what earlier
runs left in the spool. Nothing is opened or sent before there is something to send.
"""

from __future__ import annotations

import datetime

from alerts.delivery import Delivery, DeliveryResult
from alerts.message import Alert, Standing
from alerts.spool import Spool
from configuration import Settings
from core.vocabulary import AlertKind, Cadence, Prop, Severity, Verdict

IMMEDIATE_KINDS = (AlertKind.PROBLEM, AlertKind.UNKNOWN, AlertKind.HUMAN_NEEDED)


def alert_from(properties: dict, title: str, kind: AlertKind) -> Alert:
    message = {
        AlertKind.RESOLVED: "passes again",
        AlertKind.FLAPPING: properties.get(Prop.POLICY, "alternating between pass and fail"),
        AlertKind.HUMAN_NEEDED: properties.get(Prop.HUMAN_NEEDED, ""),
        AlertKind.FIXED: f"was wrong, now fixed: {properties.get(Prop.PROBLEM, '')}",
    }.get(kind, properties.get(Prop.PROBLEM, ""))
    return Alert(
        check_id=properties[Prop.CHECK_ID],
        severity=properties[Prop.SEVERITY],
        kind=kind,
        title=("could not check " if kind == AlertKind.UNKNOWN else "") + title,
        message=message,
        why=properties.get(Prop.WHY, ""),
        box=properties.get(Prop.BOX, ""),
        emergency=properties.get(Prop.CADENCE) == Cadence.EMERGENCY,
        remediation=" / ".join(properties[key] for key in (Prop.REMEDIATION_OUTCOME, Prop.RECHECK)
                               if key in properties),
    )


def waiting_alert(incident) -> Alert:
    """An emergency response holds the box's trading until an operator resumes: said until then."""
    since = datetime.datetime.fromtimestamp(incident.opened_at).strftime("%Y-%m-%d %H:%M")
    return Alert(check_id="INCIDENT", severity=Severity.CRITICAL, kind=AlertKind.WAITING, box=incident.box,
                 title=f"emergency response since {since} waits for an operator",
                 message=f"{incident.summary()} (opened by {incident.opened_by}); nothing resumes by itself: "
                         f"make resume CONFIG=... WHO=... WHY=... once it is safe",
                 why="trading stays stopped until someone decides it is safe to resume", emergency=True)


def at_risk_alert(properties: dict, title: str) -> Alert:
    """An emergency's close or shutdown call failed or timed out: what the agent still holds, at once, critical, on
    every channel, whatever the check's own alert policy decided. The call is never made again, so nothing but
    a human will close what is open."""
    return Alert(check_id=properties[Prop.CHECK_ID], severity=Severity.CRITICAL, kind=AlertKind.HUMAN_NEEDED,
                 title=f"emergency response failed, act now: {title}",
                 box=properties.get(Prop.BOX, ""),
                 message=f"{properties[Prop.AT_RISK]}. Not called again: close what is open by hand (the exchange, or "
                         f"the agent's API), then make resume CONFIG=... WHO=... WHY=...",
                 why="positions left open in an emergency can lose money by the minute", emergency=True,
                 remediation=properties.get(Prop.REMEDIATION_OUTCOME, ""))


def state_set_aside_alert(said: str) -> Alert:
    """The suite's memory between runs could not be read and was set aside (decision/state.py `recover`)."""
    return Alert(check_id="STATE", severity=Severity.WARNING, kind=AlertKind.PROBLEM,
                 title="the suite's state file could not be read: this run started from empty state", message=said,
                 why="soft failures, remediation budgets and alert deduplication start again; the damaged file is "
                     "kept for a look")


def unreachable_alert(box: str, alerts: list[Alert]) -> Alert:
    """One message for a box that did not answer: why (the first check's words: what could not be read, the
    cause, the fix), and how many checks that left without a look; each check is among its items."""
    return Alert(check_id="BOX", severity=Severity.highest(a.severity for a in alerts), kind=AlertKind.UNKNOWN,
                 title=f"box {box} unreachable", box=box,
                 message=f"{alerts[0].message} ({len(alerts)} check(s) could not look)",
                 why="a box nobody can reach is a box nobody watches", items=tuple(a.as_dict() for a in alerts))


class Alerter:
    def __init__(self, settings: Settings, run_name: str):
        self.settings = settings
        self.run_name = run_name
        self._delivery: Delivery | None = None
        self.result = DeliveryResult()
        self.sent: list[Alert] = []
        self.digest: list[Alert] = []
        self.unreachable: dict[str, list[Alert]] = {}  # box -> its checks' "could not check" alerts
        self.verdicts: list[tuple[str, str]] = []  # (verdict, severity) of each check failed or not checked

    @property
    def delivery(self) -> Delivery:
        """Opened on first use: a run with nothing to tell neither opens channels nor imports them."""
        if self._delivery is None:
            self._delivery = Delivery(self.settings.alerts)
        return self._delivery

    @property
    def undelivered(self) -> bool:
        """Something waits in the spool (or could not even be spooled): the exit status must say so."""
        return not self.result.ok

    def flush_spool(self) -> None:
        """What earlier runs could not deliver goes first."""
        if Spool(self.settings.alerts.spool_dir).entries():
            self.result = self.result.merged(self.delivery.flush_spool())

    def observe(self, properties: dict, title: str) -> None:
        """One check's report properties: send at once what is urgent, keep the rest for the digest."""
        if properties.get(Prop.VERDICT) in (Verdict.FAILED, Verdict.UNKNOWN):  # the run's exit status
            self.verdicts.append((properties[Prop.VERDICT], properties.get(Prop.SEVERITY, Severity.INFO)))
        if Prop.HUMAN_NEEDED in properties:
            self.send(alert_from(properties, title, AlertKind.HUMAN_NEEDED))
        if Prop.AT_RISK in properties:
            self.send(at_risk_alert(properties, title))
        kind = properties.get(Prop.ALERT)
        if kind is None:
            return
        alert = alert_from(properties, title, AlertKind(kind))
        if Prop.UNREACHABLE in properties:  # told once per box, at the end, not once per check
            self.unreachable.setdefault(properties[Prop.UNREACHABLE], []).append(alert)
        elif alert.kind in IMMEDIATE_KINDS and alert.severity == Severity.CRITICAL:
            self.send(alert)
        else:
            self.digest.append(alert)

    def send(self, alert: Alert) -> None:
        self.result = self.result.merged(self.delivery.deliver([alert]))
        self.sent.append(alert)

    def finish(self) -> None:
        for box, alerts in self.unreachable.items():
            self.send(unreachable_alert(box, alerts))
        self.unreachable = {}
        if self.digest:
            self.send(Alert.digest(self.digest, self.run_name, Standing.of(self.verdicts)))
            self.digest = []
