"""The suite's words, defined once: a string compared in three files drifts in the fourth.

Every cadence, severity, verdict, alert kind, remediation mode and status, report property name
and exit status the suite writes or reads is a member here. They are `StrEnum`/`IntEnum`, so they
compare equal to their plain value in JSON, TOML, JUnit XML and the state file.
"""

from __future__ import annotations

import signal
from enum import IntEnum, StrEnum


class Cadence(StrEnum):
    """The guide's schedules; each is a pytest marker (checked against pytest.ini by a test)."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    EMERGENCY = "emergency"


class Severity(StrEnum):
    """Least to most urgent: `highest` relies on this order."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @classmethod
    def highest(cls, severities) -> Severity:
        order = list(cls)
        return max((cls(s) for s in severities), key=order.index)


class Verdict(StrEnum):
    """What a check found, in the operator's words. FAILED is the check's own assertion, still wrong
    after whatever was done; FIXED failed, was remediated and passed its re-check; UNKNOWN means it
    could not look."""

    PASSED = "passed"
    FIXED = "fixed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    WAIVED = "waived"

    @property
    def is_bad(self) -> bool:
        return self in (Verdict.FAILED, Verdict.UNKNOWN)


class Unread(StrEnum):
    """Why a reading could not be made: never a fault of what was to be read, so never a failed check and never
    a remediation (Icinga's UNKNOWN, Prometheus' `up`). Said in the operator's words."""

    AUTHENTICATION = "authentication refused"  # an SSH key or a database password the other side refused
    PERMISSION = "permission denied"  # the reading user may not read it
    SUDO_REFUSED = "sudo refused"  # no sudo rule for exactly this command
    HOST_KEY = "host key not trusted"  # the box's SSH host key is unknown or changed
    SECRET_MISSING = "secret not available"  # a password's variable or file is not there
    TRANSPORT = "connection failed"  # refused, reset, no route: the box or its sshd is down
    TIMEOUT = "timed out"  # no answer within the configured time

    @property
    def whole_box(self) -> bool:
        """Whether every later reading of the box would fail the same way: the box is unreachable for the run."""
        return self in (Unread.HOST_KEY, Unread.TRANSPORT, Unread.TIMEOUT)


class Mode(StrEnum):
    """What a failing check may do to the box: nothing, say what it would do, or do it."""

    OFF = "off"
    PLAN = "plan"
    APPLY = "apply"


class ActionStatus(StrEnum):
    """What became of one remediation (an action's failure, not a check's)."""

    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"  # it ran and did not do its work: its exit status and output say why
    SKIPPED = "skipped"
    # Nothing it needed ran: sudo refused the exact command, or the box stopped answering. Not a failed action
    # (nothing was tried on the box), not counted against the target's budget, never re-checked.
    COULD_NOT_ACT = "could not act"


class Recheck(StrEnum):
    """The check run again after its remediation."""

    FIXED = "fixed"
    STILL_FAILING = "still failing"
    NOT_RECHECKED = "not rechecked"


class AlertKind(StrEnum):
    PROBLEM = "problem"  # still wrong
    FIXED = "fixed"  # was wrong, its remediation fixed it: told as done, never as a problem
    UNKNOWN = "unknown"  # the check could not look
    FLAPPING = "flapping"
    RESOLVED = "resolved"
    HUMAN_NEEDED = "human-needed"  # the remediation budget ran out
    WAITING = "waiting"  # an emergency response holds trading (paused, stopped) until an operator resumes
    DIGEST = "digest"  # one message summing up a run's other alerts


class DeliveryStatus(StrEnum):
    """What became of one message on one channel (a delivery's failure, not a check's)."""

    DELIVERED = "delivered"
    FALLBACK = "fallback"  # refused by its channel, taken by a fallback channel
    SPOOLED = "spooled"  # kept on disk for the next run
    LOST = "lost"  # neither delivered nor spooled


class Prop(StrEnum):
    """Report property names: on every JUnit test case and HTML row, and read back by the summary."""

    CHECK_ID = "check_id"
    BOX = "box"
    CADENCE = "cadence"
    SEVERITY = "severity"
    WHY = "why"
    REMEDIATION = "remediation"
    VERDICT = "verdict"
    PROBLEM = "problem"
    POLICY = "policy"
    HUMAN_NEEDED = "human_needed"
    REMEDIATION_OUTCOME = "remediation_outcome"
    RECHECK = "recheck"
    RECHECK_PROBLEM = "recheck_problem"
    ALERT = "alert"
    UNREACHABLE = "box_unreachable"  # set when the check could not look because its box did not answer
    CAUSED_BY = "caused_by"  # the root check instance whose failure in this run explains this one's
    AT_RISK = "at_risk"  # what a failed emergency call leaves at risk (open positions): a critical alert at once


class RunFact(StrEnum):
    """The run's own facts: HTML environment table keys; JUnit global properties in snake case."""

    MODE = "Remediation mode"
    CADENCE = "Cadence"
    CONFIGURATION = "Configuration"

    @property
    def junit_name(self) -> str:
        return self.value.lower().replace(" ", "_")


class ExitStatus(IntEnum):
    """A run's exit status, as cron and `make` see it (documented in the README)."""

    ALL_PASSED = 0
    BAD_CONFIGURATION = 4
    ALL_FIXED = 10
    FAILURES_REMAIN = 11
    COULD_NOT_CHECK = 12
    LOCKED_OUT = 13
    ALERTS_SPOOLED = 14


# pytest's own statuses that the suite does not redefine (README: exit statuses).
PYTEST_STATUS = {2: "interrupted, or a check file not collected", 3: "internal error", 5: "no checks"}


def exit_words(code: int) -> str:
    """A run's status in words, as the runs log and the ledger say it: 'failures remain' for 11,
    'killed by SIGTERM' for -15."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code in PYTEST_STATUS:
        return PYTEST_STATUS[code]
    try:
        return ExitStatus(code).name.lower().replace("_", " ")
    except ValueError:
        return "unknown status"


class LedgerKind(StrEnum):
    """What a line of the ledger (core/ledger.py), the one operator trail, records."""

    RUN = "run"  # a run that wrote its reports
    PRUNE = "prune"  # report files removed by retention (their run lines stay)
    ATTEST = "attest"  # make attest, make attest-rotation
    RESUME = "resume"  # make resume ended an emergency's incident
    BASELINE = "baseline"  # make baseline recorded a benchmark's baseline
    RESTORE = "restore"  # a step of make restore or make restore-config, done, failed or refused
    APP_UPDATE = "app-update"  # a step of make update-minor, update-major or update-rollback
    OS_UPDATE = "os-update"  # package updates installed (install_updates) and make update-os's steps
    REPAIR = "repair"  # an incomplete last line (a write cut short) was set aside before this append


class TrailFinding(StrEnum):
    """What `make verify-trail` says of the ledger and the reports it names. The first are damage or
    tampering (the trail is not intact); the last are what the ledger itself records (notes)."""

    EDITED = "edited"  # a report or a ledger line changed after it was written
    REMOVED = "removed"  # a report gone with no prune line naming it, or ledger lines gone (a seq gap)
    INSERTED = "inserted"  # a ledger line that the chain does not lead through
    SWAPPED = "swapped"  # two ledger lines exchanged
    MOVED = "moved"  # ledger lines out of order otherwise
    TORN = "torn"  # the ledger ends with an incomplete line (a write cut short)
    UNRECORDED = "unrecorded"  # a report on disk that no run line names
    PRUNED = "pruned"  # note: a report removed by retention, as a prune line says
    REPAIRED = "repaired"  # note: a torn line set aside, as a repair line says
    SET_ASIDE = "set aside"  # note: torn bytes kept aside by an append killed before it recorded the repair
    BEFORE_LEDGER = "before the ledger"  # note: reports older than the ledger's first line

    @property
    def is_damage(self) -> bool:
        return self not in (TrailFinding.PRUNED, TrailFinding.REPAIRED, TrailFinding.SET_ASIDE,
                            TrailFinding.BEFORE_LEDGER)
