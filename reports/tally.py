"""The run as a whole, as cron sees it: verdicts counted into one exit status (vocabulary.ExitStatus,
documented in the README)."""

from __future__ import annotations

from core.vocabulary import ExitStatus, Prop, Recheck, Verdict


class Tally:
    def __init__(self):
        self.failed = self.fixed = self.unknown = 0
        self.seen = 0  # checks that came to a verdict (on an xdist controller, session.items is empty)
        self.findings: list[tuple[str, dict]] = []  # (nodeid, properties) of every check not passed

    def observe(self, nodeid: str, properties: dict) -> None:
        verdict = properties.get(Prop.VERDICT)
        self.seen += verdict is not None
        if verdict in (Verdict.FAILED, Verdict.UNKNOWN, Verdict.WAIVED):
            self.findings.append((nodeid, properties))
        if verdict == Verdict.FAILED:
            if properties.get(Prop.RECHECK) == Recheck.FIXED:
                self.fixed += 1
            else:
                self.failed += 1
        elif verdict == Verdict.UNKNOWN:
            self.unknown += 1

    def status(self, alerts_undelivered: bool) -> ExitStatus:
        if alerts_undelivered:
            return ExitStatus.ALERTS_SPOOLED
        if self.failed:
            return ExitStatus.FAILURES_REMAIN
        if self.unknown:
            return ExitStatus.COULD_NOT_CHECK
        return ExitStatus.ALL_FIXED if self.fixed else ExitStatus.ALL_PASSED
