"""Waivers (an accepted failure) and silences (alerts held back), each with a reason and an expiry."""

from __future__ import annotations

import datetime


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
