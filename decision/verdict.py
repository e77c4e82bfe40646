"""What one check's result means: a finding, a pass, or "could not look"; and a failure shown only on a box that
still answers."""

from __future__ import annotations

from typing import Protocol

from core.unread import CouldNotRead
from core.vocabulary import Verdict
from decision.finding import Finding, Reading


class Answering(Protocol):
    """The box as the verdict needs it (probes/host.py's Box)."""

    def answers(self) -> None: ...

    def unreachable(self) -> CouldNotRead | None: ...


def verdict_of(passed: bool, skipped: bool, in_check: bool, error: BaseException | None) -> tuple[Verdict, str]:
    """An assertion that fails in the check itself is a finding; anything else that breaks
    (a fixture, a probe, a timeout) means we could not look. `in_check`: pytest's call phase."""
    if skipped:
        return Verdict.SKIPPED, ""
    if passed:
        return Verdict.PASSED, ""
    if in_check and isinstance(error, AssertionError):
        return Verdict.FAILED, first_line(error)
    if isinstance(error, CouldNotRead):  # its own words say what could not be read, why, and the fix
        return Verdict.UNKNOWN, first_line(error)
    reason = f"{type(error).__name__}: {first_line(error)}" if error else "the check could not run"
    return Verdict.UNKNOWN, f"could not check: {reason}"


def read(reading: Reading, passed: bool, skipped: bool, in_check: bool, error: BaseException | None,
         box: Answering) -> Finding:
    """The stage that starts a finding: the check's result as a verdict, a failure shown on a box that answers,
    and a bad verdict on a box marked unreachable said to be so."""
    finding = Finding(reading, *verdict_of(passed, skipped, in_check, error))
    shown_on_a_box_that_answers(finding, box)
    mark_unreachable(finding, box)
    return finding


def shown_on_a_box_that_answers(finding: Finding, box: Answering) -> None:
    """A failed assertion is a fault only when the box still answers: one that stopped (powered off mid-run)
    may have handed the check a dead reading (a database that does not answer through a dead connection). Over
    SSH that costs one command through the run's connection; the first failure marks the box for the run."""
    if finding.verdict != Verdict.FAILED:
        return
    try:
        box.answers()
    except CouldNotRead as gone:
        finding.verdict, finding.problem = Verdict.UNKNOWN, str(gone)


def mark_unreachable(finding: Finding, box: Answering) -> bool:
    """A bad verdict on a box marked unreachable in this run: its alert is the box's one alert. Asked again
    after an action that did not fix it (the box may have stopped answering while it acted)."""
    if not finding.unreachable and finding.verdict.is_bad and box.unreachable() is not None:
        finding.unreachable = True
    return finding.unreachable


def instance_key(check_id: str, parameter_id: str | None) -> str:
    """Stable across runs and renames of the test function: the id plus the parameters."""
    return f"{check_id}[{parameter_id}]" if parameter_id else check_id


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
