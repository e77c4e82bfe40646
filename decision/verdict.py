"""What one check's result means: a finding, a pass, or "could not look"."""

from __future__ import annotations

from core.unread import CouldNotRead
from core.vocabulary import Verdict


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


def instance_key(check_id: str, parameter_id: str | None) -> str:
    """Stable across runs and renames of the test function: the id plus the parameters."""
    return f"{check_id}[{parameter_id}]" if parameter_id else check_id


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
