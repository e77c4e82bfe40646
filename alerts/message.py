"""What an alert says, and the message each channel carries: below every channel and the delivery.

`Alert` is what the suite wants to tell; `Message` is one alert made ready to send (a stable key
to recognise a re-sent copy, a one-line subject, the guide's template per severity).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from dataclasses import asdict, dataclass, field

from core import clock
from core.redact import Redactor
from core.text import CONTROL, printable
from core.vocabulary import AlertKind, Severity, Verdict

TEMPLATES = {"critical": "🚨 CRITICAL: {message}", "warning": "⚠️ WARNING: {message}", "info": "ℹ️ INFO: {message}"}
SUBJECT_MAX = 200
# A digest's sections, in the order the operator should read them.
DIGEST_GROUPS = ((AlertKind.PROBLEM, "Still wrong"), (AlertKind.WAITING, "Waiting for you"),
                 (AlertKind.HUMAN_NEEDED, "Human needed"),
                 (AlertKind.UNKNOWN, "Could not check"), (AlertKind.FLAPPING, "Flapping"),
                 (AlertKind.RESOLVED, "Passes again"), (AlertKind.FIXED, "Fixed"))
DONE_KINDS = (AlertKind.RESOLVED, AlertKind.FIXED)  # nothing left to do: they never raise a digest's severity


@dataclass(frozen=True)
class Standing:
    """How the run ends, as its exit status says it: the severity of each check still failing, and how many it
    could not check. A digest sums the run up, so it is never less urgent than this, whatever it carries itself:
    "1 fixed" at info while the run exits 11 would tell the operator all is well."""

    failed: tuple[str, ...] = ()  # the severity of each check that ends the run failed (exit 11)
    unknown: int = 0  # checks that could not look (exit 12)

    @classmethod
    def of(cls, verdicts: list[tuple[str, str]]) -> Standing:
        """From (verdict, severity) of every check of the run."""
        return cls(tuple(severity for verdict, severity in verdicts if verdict == Verdict.FAILED),
                   sum(1 for verdict, _ in verdicts if verdict == Verdict.UNKNOWN))

    @property
    def count(self) -> int:
        return len(self.failed) + self.unknown

    @property
    def severity(self) -> Severity:
        """Still failing: the highest of their severities; could not check: a warning at least."""
        return Severity.highest([*self.failed, *([Severity.WARNING] if self.unknown else []), Severity.INFO])

    def words(self) -> str:
        """`2 failed, 1 unknown`: the checks that make the exit status, whether or not this digest carries them."""
        return ", ".join(f"{count} {verdict}" for count, verdict in ((len(self.failed), Verdict.FAILED),
                                                                     (self.unknown, Verdict.UNKNOWN)) if count)


@dataclass(frozen=True)
class Alert:
    check_id: str
    severity: str
    kind: AlertKind
    title: str
    message: str
    why: str = ""  # the check's rationale: why an operator cares
    box: str = ""  # the box the check looked at
    remediation: str = ""
    items: tuple = ()  # a digest carries the alerts it sums up, each as a dict
    emergency: bool = False  # from the emergency cadence: to every channel, whatever its severities
    at: str = field(default_factory=lambda: datetime.datetime.fromtimestamp(
        clock.now(), datetime.UTC).isoformat(timespec="seconds"))

    @classmethod
    def digest(cls, alerts: list[Alert], run: str, standing: Standing = Standing()) -> Alert:
        """One message for everything a run owes that need not wake anyone: what is still wrong first,
        what was fixed last, as done. Its severity is that of what still needs someone, and at least what the
        run's exit status says (`standing`: every check still failing or not checked, this digest's or not); when
        that is more than it carries, its title says how the run ends, so a "1 fixed" never reads as all well."""
        groups = [(heading, [a for a in alerts if a.kind == kind]) for kind, heading in DIGEST_GROUPS]
        lines = []
        for heading, members in groups:
            if members:
                lines += [f"{heading}:", *(a.digest_line() for a in members)]
        open_ = [a.severity for a in alerts if a.kind not in DONE_KINDS]
        counts = ", ".join(f"{len(members)} {heading.lower()}" for heading, members in groups if members)
        carried = sum(1 for a in alerts if a.kind in (AlertKind.PROBLEM, AlertKind.UNKNOWN))
        ends = standing.words() if standing.count > carried else ""  # more than this digest says: said too
        if ends:
            lines.append(f"The run ends with {ends}: the report has every one.")
        boxes = {a.box for a in alerts}
        return cls(check_id="DIGEST", severity=Severity.highest([*open_, standing.severity]),
                   kind=AlertKind.DIGEST, title=f"{run}: {counts}" + (f"; the run ends with {ends}" if ends else ""),
                   message="\n".join(lines), box=boxes.pop() if len(boxes) == 1 else "",
                   items=tuple(a.as_dict() for a in alerts))

    def digest_line(self) -> str:
        where = f"{self.box}: " if self.box else ""
        return (f"- [{self.check_id}] {self.severity}: {where}{self.title}: {self.message}"
                + (f" ({self.remediation})" if self.remediation else "")
                + (f" Why it matters: {self.why}." if self.why else ""))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Message:
    """What to send. `key` is stable (a hash of the alert) so a re-sent message can be recognised."""

    key: str
    severity: str
    subject: str  # one line: mail subject, first line everywhere else
    text: str
    alert: Alert  # carried whole: the file channel writes it, the webhook posts it

    @classmethod
    def from_alert(cls, alert: Alert) -> Message:
        alert = printable_alert(alert)
        body = [alert.message, f"why it matters: {alert.why}" if alert.why else "",
                f"remediation: {alert.remediation}" if alert.remediation else ""]
        canonical = json.dumps(alert.as_dict(), sort_keys=True, ensure_ascii=False)
        return cls(key=hashlib.sha256(canonical.encode()).hexdigest()[:32], severity=alert.severity,
                   subject=one_line(f"[{alert.check_id}] " + (f"{alert.box}: " if alert.box else "") + alert.title),
                   text="\n".join(line for line in body if line), alert=alert)

    def rendered(self) -> str:
        """The guide's template for the severity, e.g. "🚨 CRITICAL: {message}"."""
        body = self.subject + (f"\n{self.text}" if self.text else "")
        return TEMPLATES.get(self.severity, "{message}").format(message=body)

    def redacted(self, redactor: Redactor) -> Message:
        alert = dataclasses.replace(self.alert, **{
            name: redactor.text(value) for name, value in self.alert.as_dict().items() if isinstance(value, str)})
        return dataclasses.replace(self, subject=redactor.text(self.subject), text=redactor.text(self.text),
                                   alert=alert)

    def to_dict(self) -> dict:
        return {"key": self.key, "severity": self.severity, "subject": self.subject, "text": self.text,
                "alert": self.alert.as_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Message:
        return cls(**{**data, "alert": Alert(**data["alert"])})


def printable_alert(alert: Alert) -> Alert:
    """The alert with its texts shown as text (core/text.py): a finding quotes the agent's logs, and every
    channel's message ends up on a screen (a mail read in a terminal, the alerts file under `tail`)."""
    return dataclasses.replace(alert, **{field.name: _printable(getattr(alert, field.name))
                                         for field in dataclasses.fields(alert)})


def _printable(value):
    """A text, or every text inside a digest's items, printable."""
    if isinstance(value, str):
        return printable(value) if CONTROL.search(value) else value  # an enum stays itself
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_printable(item) for item in value)
    return value


def one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= SUBJECT_MAX else line[:SUBJECT_MAX - 1] + "…"
