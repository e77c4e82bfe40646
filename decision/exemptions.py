"""Waivers (an accepted failure) and silences (alerts held back), each with a reason and an expiry."""

from __future__ import annotations

import datetime

from core.vocabulary import Verdict
from decision.finding import Finding


def _deadline(value: datetime.date | datetime.datetime) -> float:
    """A date means the end of that day, local time; a naive datetime is local time."""
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.combine(value, datetime.time.max)
    return value.timestamp()


def find(entries, check_id: str, instance: str):
    """The first entry for this check whose `match` is in the instance's parameter id."""
    return next((e for e in entries if e.check == check_id and e.match in instance), None)


def expiry(entry) -> datetime.date | datetime.datetime:
    return getattr(entry, "expires", None) or entry.until


def is_active(entry, now: float) -> bool:
    return entry is not None and now <= _deadline(expiry(entry))


def waive(finding: Finding, waivers, now: float) -> bool:
    """The stage of waivers: a bad verdict the operator accepted is WAIVED, saying until when and why, and nothing
    more is decided about it (True). One whose waiver expired counts as a failure again, and says so."""
    waiver = find(waivers, finding.reading.check, finding.reading.instance) if finding.verdict.is_bad else None
    if waiver is None:
        return False
    if is_active(waiver, now):
        finding.verdict = Verdict.WAIVED
        finding.note(f"waived until {expiry(waiver)}: {waiver.reason}")
        return True
    finding.note(f"waiver expired on {expiry(waiver)}: counts as a failure again")
    return False


def silence(finding: Finding, silences, now: float) -> None:
    """The stage of silences: the alert the finding owes is held back while a silence lasts, saying so."""
    entry = find(silences, finding.reading.check, finding.reading.instance) if finding.alert else None
    if is_active(entry, now):
        finding.note(f"alert silenced until {expiry(entry)}: {entry.reason}")
        finding.alert = None
