"""The run as a whole, as cron sees it: verdicts counted into one exit status (vocabulary.ExitStatus,
documented in the README), and the findings in the order the operator should read them."""

from __future__ import annotations

from collections import Counter

from core.vocabulary import ExitStatus, Prop, Verdict
from decision.finding import finding_from

# What is still wrong first, what was done about last.
FINDING_ORDER = (Verdict.FAILED, Verdict.UNKNOWN, Verdict.FIXED, Verdict.WAIVED)
SUITE_PROPERTIES = frozenset(Prop)  # what the suite records of every check; a check's own are its figures


def figures_of(properties: dict) -> dict:
    """What the check itself recorded (record_property): its readings."""
    return {name: value for name, value in properties.items() if name not in SUITE_PROPERTIES}


class Tally:
    def __init__(self):
        self.counts: Counter[Verdict] = Counter()
        self._findings: list[tuple[str, Verdict, dict]] = []  # (nodeid, verdict, properties) of every check not passed
        self.figures: list[tuple[str, str, dict]] = []  # (nodeid, check id, figures) of the other checks that have some

    @property
    def seen(self) -> int:
        """Checks that came to a verdict (on an xdist controller, session.items is empty)."""
        return sum(self.counts.values())

    def observe(self, nodeid: str, properties: dict) -> None:
        """One check's report properties: its finding, read back once (decision/finding.py), counted by verdict."""
        finding = finding_from(properties)
        if finding is None:  # no verdict: nothing to count
            return
        self.counts[finding.verdict] += 1
        if finding.verdict in FINDING_ORDER:
            self._findings.append((nodeid, finding.verdict, properties))  # a finding's figures are said with it, once
        elif figures_of(properties):
            self.figures.append((nodeid, finding.reading.check, figures_of(properties)))

    def findings(self, verdict: Verdict) -> list[tuple[str, dict]]:
        return [(nodeid, found) for nodeid, was, found in self._findings if was == verdict]

    def overview(self) -> str:
        """`25 checks: 18 passed, 3 fixed, 2 failed, 1 unknown, 1 waived`."""
        parts = ", ".join(f"{self.counts[verdict]} {verdict}" for verdict in Verdict if self.counts[verdict])
        return f"{self.seen} check{'s' if self.seen != 1 else ''}: {parts}" if self.seen else "no checks ran"

    def status(self, alerts_undelivered: bool) -> ExitStatus:
        if alerts_undelivered:
            return ExitStatus.ALERTS_SPOOLED
        if self.counts[Verdict.FAILED]:
            return ExitStatus.FAILURES_REMAIN
        if self.counts[Verdict.UNKNOWN]:
            return ExitStatus.COULD_NOT_CHECK
        return ExitStatus.ALL_FIXED if self.counts[Verdict.FIXED] else ExitStatus.ALL_PASSED
