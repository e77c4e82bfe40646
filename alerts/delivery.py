"""Getting alerts to people: routing, bounded retries, fallback, and a spool so nothing is lost.

A message goes to the file channel and to every configured channel whose severities include it (an
emergency's to every configured channel).
- Transient failures (5xx, timeouts, connection errors, Telegram 429) are retried, at most
  max_attempts times within max_retry_seconds, sleeping Telegram's retry_after when it gives one.
- Permanent refusals (other 4xx, missing token, authentication refused) are not retried: retrying
  cannot help. The message takes the fallback chain; the first fallback channel that accepts it,
  or already has it (the file always does), wins. If none does, it is spooled for its own channel
  so that it still arrives once the operator fixes the cause.
- Whatever could not reach its channel is spooled (see spool.py); flush_spool(), called at the
  start of the next run, sends it, at least once.

A channel that used up its retries is taken as down for the rest of the run: later messages for
it are spooled at once. An outage then costs one retry budget per channel per run, not one per
alert, and a cron run with twenty alerts and a hanging Telegram still finishes in seconds.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from filelock import Timeout as LockBusy

from alerts.channel import Channel, Permanent, Transient, load_channels
from alerts.message import Alert, Message
from alerts.spool import Entry, Spool
from configuration.alerts import FILE_CHANNEL, AlertSettings
from core.redact import Redactor
from core.vocabulary import DeliveryStatus

log = logging.getLogger(__name__)

DELIVERED, FALLBACK, SPOOLED, LOST = (DeliveryStatus.DELIVERED, DeliveryStatus.FALLBACK, DeliveryStatus.SPOOLED,
                                      DeliveryStatus.LOST)
BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS = 1.0, 10.0  # between retries when the channel gives no retry_after


def open_channels(settings: AlertSettings, redactor: Redactor) -> dict[str, Channel]:
    """The file channel, and each network channel that has its table in the configuration."""
    registry = load_channels()
    channels: dict[str, Channel] = {FILE_CHANNEL: registry[FILE_CHANNEL](settings.file, redactor)}
    for name in settings.enabled():
        channels[name] = registry[name](settings.channel(name), redactor)
    return channels


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one message on one channel. `reason` is redacted."""

    key: str
    channel: str
    status: DeliveryStatus  # FALLBACK: see via
    via: str | None = None
    attempts: int = 0
    reason: str = ""

    def describe(self) -> str:
        what = {DELIVERED: "delivered", FALLBACK: f"refused, not delivered; only the fallback {self.via} has it",
                SPOOLED: "spooled", LOST: "NOT delivered and NOT spooled"}[self.status]
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.channel} {self.key}: {what}{tries}" + (f" ({self.reason})" if self.reason else "")


@dataclass
class DeliveryResult:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the run, e.g. "spool busy"

    def outcome(self, key: str, channel: str) -> DeliveryOutcome | None:
        return next((o for o in self.outcomes if o.key == key and o.channel == channel), None)

    def with_status(self, *statuses: str) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def all_channels_down(self) -> bool:
        """Something needed a network channel and no network channel accepted anything."""
        network = [o for o in self.outcomes if o.channel != FILE_CHANNEL]
        accepted = [o for o in network if o.status == DELIVERED or (o.status == FALLBACK and o.via != "file")]
        return bool(network) and not accepted

    @property
    def ok(self) -> bool:
        """Every message reached every channel it was for: one that only a fallback took was not."""
        return not self.with_status(SPOOLED, LOST, FALLBACK)

    def sent_keys(self) -> set[str]:
        """Messages every one of whose channels took them: the only ones to call sent."""
        keys = {o.key for o in self.outcomes}
        return keys - {o.key for o in self.with_status(SPOOLED, LOST, FALLBACK)}

    def merged(self, other: DeliveryResult) -> DeliveryResult:
        return DeliveryResult(self.outcomes + other.outcomes, self.notes + other.notes)

    def lines(self) -> list[str]:
        return self.notes + [o.describe() for o in self.outcomes]

    def undelivered_lines(self) -> list[str]:
        """What did not reach its channel (and notes about the run), each said once."""
        return self.notes + [o.describe() for o in self.with_status(SPOOLED, LOST, FALLBACK)]


class Delivery:
    """One run's delivery: its channels, its clock, and which channels turned out to be down.

    Use one instance for flush_spool() then deliver() in a run, so a channel found down while
    flushing is not waited on again for the new alerts.
    """

    def __init__(self, settings: AlertSettings, *, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, channels: dict[str, Channel] | None = None):
        self.settings = settings
        self.redactor = Redactor(settings.secrets())
        self.channels = channels if channels is not None else open_channels(settings, self.redactor)
        self.spool = Spool(settings.spool_dir)
        self.sleep, self.monotonic = sleep, monotonic
        self.down: dict[str, str] = {}  # channel -> why it is skipped for the rest of the run

    # -- new alerts

    def deliver(self, messages: Iterable[Message | Alert]) -> DeliveryResult:
        result = DeliveryResult()
        for message in messages:
            if isinstance(message, Alert):
                message = Message.from_alert(message)
            result.outcomes.extend(self._deliver_one(message.redacted(self.redactor)))
        return result

    def _deliver_one(self, message: Message) -> list[DeliveryOutcome]:
        targets = [FILE_CHANNEL] + [name for name in self.settings.enabled()
                                    if message.alert.emergency or self.settings.channel(name).wants(message.severity)]
        delivered: list[str] = []
        outcomes: dict[str, DeliveryOutcome] = {}
        unsent: dict[str, tuple[str, int]] = {}  # channel -> (reason, attempts): to be spooled
        refused: dict[str, tuple[Permanent, int]] = {}
        for name in targets:
            error, attempts = self._attempt(name, message)
            if error is None:
                delivered.append(name)
                outcomes[name] = self._record(DeliveryOutcome(message.key, name, DELIVERED, attempts=attempts))
            elif isinstance(error, Permanent):
                refused[name] = (error, attempts)
            else:
                unsent[name] = (error.reason, attempts)
        for name, (error, attempts) in refused.items():
            via, tried = self._fall_back(name, message, delivered, failed=targets)
            if via:
                outcomes[name] = self._record(DeliveryOutcome(message.key, name, FALLBACK, via, attempts, error.reason))
            else:
                unsent[name] = (f"{error.reason}; no fallback took it ({'; '.join(tried) or 'none configured'})",
                                attempts)
        for name, (reason, attempts) in unsent.items():
            outcomes[name] = self._spool_new(name, message, reason, attempts, delivered)
        return [outcomes[name] for name in targets]

    def _spool_new(self, name: str, message: Message, reason: str, attempts: int,
                   delivered: list[str]) -> DeliveryOutcome:
        now = _now()
        data = {"format": 1, "message": message.to_dict(), "delivered_to": sorted(set(delivered)),
                "reason": reason, "first_spooled_at": now, "spooled_at": now, "flushes": 0}
        try:
            self.spool.put(name, message.key, data)
        except OSError as error:
            return self._record(DeliveryOutcome(message.key, name, LOST, None, attempts,
                                        f"{reason}; could not spool: {error}"))
        return self._record(DeliveryOutcome(message.key, name, SPOOLED, None, attempts, reason))

    # -- the spool

    def flush_spool(self) -> DeliveryResult:
        result = DeliveryResult()
        try:
            with self.spool.lock():
                entries = self.spool.entries()
                sent: dict[str, list[str]] = {}  # key -> channels that took it during this flush
                for entry in sorted(entries, key=_age):
                    try:
                        result.outcomes.append(self._flush_one(entry, sent.setdefault(entry.key, [])))
                    except OSError as error:  # this entry stays on disk; the others still go
                        result.outcomes.append(self._record(DeliveryOutcome(
                            entry.key, entry.channel, LOST, reason=f"spool entry {entry.path}: {error}")))
        except LockBusy:
            result.notes.append(f"spool {self.spool.directory} not flushed: another run is flushing it")
        except OSError as error:
            result.notes.append(f"spool {self.spool.directory} not flushed: {error}")
            log.error("alert spool %s not flushed: %s", self.spool.directory, error)
        return result

    def _flush_one(self, entry: Entry, sent: list[str]) -> DeliveryOutcome:
        """`sent`: channels that took this message earlier in this flush (as another entry's fallback)."""
        try:
            message = Message.from_dict(entry.data["message"])
        except (KeyError, TypeError, AttributeError, ValueError):  # not JSON, or not what _spool_new wrote
            self.spool.quarantine(entry)
            return self._record(DeliveryOutcome(entry.key, entry.channel, LOST,
                                        reason=f"unreadable spool entry, moved to {entry.path}"))
        self.spool.take(entry)
        if entry.channel in sent:
            self.spool.done(entry)
            return self._record(DeliveryOutcome(message.key, entry.channel, DELIVERED,
                                        reason="sent earlier in this flush as a fallback"))
        delivered = sent  # updated in place: what this entry delivers, later entries of the key know
        delivered.extend(name for name in entry.data.get("delivered_to", []) if name not in delivered)
        if entry.channel in self.channels:
            error, attempts = self._attempt(entry.channel, message)
        else:
            error, attempts = Permanent(f"{entry.channel} is no longer configured"), 0
        if error is None:
            self.spool.done(entry)
            delivered.append(entry.channel)
            return self._record(DeliveryOutcome(message.key, entry.channel, DELIVERED, attempts=attempts))
        reason = error.reason
        if isinstance(error, Permanent):
            via, tried = self._fall_back(entry.channel, message, delivered, failed=())
            if via:
                self.spool.done(entry)
                return self._record(DeliveryOutcome(message.key, entry.channel, FALLBACK, via, attempts, reason))
            reason += f"; no fallback took it ({'; '.join(tried) or 'none configured'})"
        data = {**entry.data, "delivered_to": sorted(set(delivered)), "reason": reason, "spooled_at": _now(),
                "flushes": entry.data.get("flushes", 0) + 1}
        try:
            self.spool.release(entry, data)
        except OSError as error:  # still on disk as .inflight: the next flush takes it
            reason += f"; left in flight: {error}"
        return self._record(DeliveryOutcome(message.key, entry.channel, SPOOLED, None, attempts, reason))

    # -- shared

    def _attempt(self, name: str, message: Message) -> tuple[Transient | Permanent | None, int]:
        """Send with bounded retries. Returns (None, attempts) on success, else the last error."""
        if name in self.down:
            return Transient(self.down[name]), 0
        budget, start, attempts = self.settings.max_retry_seconds, self.monotonic(), 0
        while True:
            attempts += 1
            try:
                self.channels[name].send(message)
                return None, attempts
            except Permanent as refusal:
                return Permanent(self.redactor.text(refusal.reason)), attempts
            except Transient as failure:
                error = Transient(self.redactor.text(failure.reason), failure.retry_after)
            except Exception as bug:  # a bug in a channel must not lose the alert: spool it
                log.debug("%s channel raised", name, exc_info=True)
                error = Transient(self.redactor.text(f"unexpected {type(bug).__name__}: {bug}"))
            if attempts >= self.settings.max_attempts:
                break
            wait = error.retry_after if error.retry_after is not None else min(
                BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)
            remaining = budget - (self.monotonic() - start)
            if wait > remaining:
                error.reason += f"; not retried: waiting {wait:g}s would exceed the {budget:g}s retry budget"
                break
            log.info("%s: %s; retrying %s in %gs", name, error.reason, message.key, wait)
            self.sleep(wait)
        self.down[name] = f"{name} was given up on earlier in this run: {error.reason}"
        return error, attempts

    def _fall_back(self, name: str, message: Message, delivered: list[str],
                   failed: Iterable[str]) -> tuple[str | None, list[str]]:
        """The first fallback that has or takes the message; `failed` channels are not tried again."""
        tried = []
        for candidate in self.settings.fallback:
            if candidate == name or candidate not in self.channels:
                continue
            if candidate in delivered:
                return candidate, tried
            if candidate in failed:
                tried.append(f"{candidate} failed too")
                continue
            error, _ = self._attempt(candidate, message)
            if error is None:
                delivered.append(candidate)
                return candidate, tried
            tried.append(f"{candidate}: {error.reason}")
        return None, tried

    def _record(self, outcome: DeliveryOutcome) -> DeliveryOutcome:
        level = {DELIVERED: logging.INFO, FALLBACK: logging.WARNING, SPOOLED: logging.WARNING}
        log.log(level.get(outcome.status, logging.ERROR), "alert %s", outcome.describe())
        return outcome


def deliver(messages: Iterable[Message | Alert], settings: AlertSettings, *,
            sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic
            ) -> DeliveryResult:
    return Delivery(settings, sleep=sleep, monotonic=monotonic).deliver(messages)


def flush_spool(settings: AlertSettings, *, sleep: Callable[[float], None] = time.sleep,
                monotonic: Callable[[], float] = time.monotonic) -> DeliveryResult:
    """Call at the start of every run, before deliver(): older alerts go out first."""
    return Delivery(settings, sleep=sleep, monotonic=monotonic).flush_spool()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _age(entry: Entry) -> tuple:
    """Oldest alert first; an entry too damaged to say sorts first and is reported."""
    data = entry.data if isinstance(entry.data, dict) else {}
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    alert = message.get("alert") if isinstance(message.get("alert"), dict) else {}
    return (str(alert.get("at", "")), str(data.get("first_spooled_at", "")), entry.key, entry.channel)
