"""When to act and when to tell, so that an unattended box is neither neglected nor spammed.

Pure decisions over a check's remembered record (suite/state.py) and the configured rules: soft
and hard states, flapping, the remediation budget, and alert deduplication with a repeat interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from suite.state import CheckRecord

BAD = ("failed", "unknown")


@dataclass(frozen=True)
class Rules:
    failures_before_action: int = 1
    repeat_interval_seconds: float = 4 * 3600
    flap_window: int = 6
    flap_changes: int = 4
    max_remediations: int = 3
    budget_window_seconds: float = 3600


@dataclass
class Judgement:
    """What this run does about one check: act, tell, and what to say in the report."""

    hard: bool = False  # failing long enough to act on
    flapping: bool = False
    flap_started: bool = False
    flap_ended: bool = False
    may_remediate: bool = False
    human_needed: bool = False  # the budget ran out in this run: tell a human, once
    note: str = ""


def consecutive_bad(record: CheckRecord) -> int:
    count = 0
    for verdict in reversed(record.recent(len(record.verdicts))):
        if verdict not in BAD:
            break
        count += 1
    return count


def state_changes(verdicts: list[str]) -> int:
    states = [verdict in BAD for verdict in verdicts]
    return sum(1 for before, after in zip(states, states[1:]) if before != after)


def judge(record: CheckRecord, verdict: str, now: float, rules: Rules) -> Judgement:
    """Record this run's verdict and decide; the record is changed in place."""
    record.add_verdict(now, verdict)
    judgement = Judgement()
    flapping = state_changes(record.recent(rules.flap_window)) >= rules.flap_changes
    judgement.flap_started = flapping and not record.flapping
    judgement.flap_ended = record.flapping and not flapping
    record.flapping = judgement.flapping = flapping
    if verdict not in BAD:
        return judgement
    failures = consecutive_bad(record)
    judgement.hard = failures >= rules.failures_before_action
    if not judgement.hard:
        judgement.note = f"soft failure {failures} of {rules.failures_before_action}: no action yet"
    elif flapping:
        judgement.note = f"flapping ({state_changes(record.recent(rules.flap_window))} changes in the last {rules.flap_window} runs)"
    if judgement.hard and not flapping and verdict == "failed":
        _apply_budget(record, now, rules, judgement)
    return judgement


def _apply_budget(record: CheckRecord, now: float, rules: Rules, judgement: Judgement) -> None:
    if record.budget_spent_at is not None:
        judgement.note = "remediation budget spent: waiting for an operator (make clear-budget)"
        return
    recent = [when for when in record.remediations if now - when < rules.budget_window_seconds]
    if len(recent) >= rules.max_remediations:
        record.budget_spent_at = now
        judgement.human_needed = True
        judgement.note = (f"remediation budget spent: {len(recent)} in the last "
                          f"{rules.budget_window_seconds / 60:g} min; a human is needed (make clear-budget)")
        return
    judgement.may_remediate = True


def count_remediation(record: CheckRecord, now: float) -> None:
    record.remediations = [*record.remediations, now][-50:]


def notification(record: CheckRecord, verdict: str, fixed: bool, judgement: Judgement, now: float,
                 rules: Rules) -> str | None:
    """The alert this run owes for the check, if any: problem, unknown, flapping or resolved."""
    if judgement.flap_started:
        return "flapping"
    if fixed:  # tell what broke and that it was mended; nothing stays open
        record.notified_kind = record.notified_at = None
        return "problem"
    if verdict not in BAD:
        if record.notified_kind is None:
            return None
        record.notified_kind = record.notified_at = None
        return "resolved"
    if not judgement.hard or judgement.flapping:
        return None
    kind = "unknown" if verdict == "unknown" else "problem"
    due = record.notified_at is None or now - record.notified_at >= rules.repeat_interval_seconds
    if record.notified_kind != kind or due or judgement.flap_ended:
        record.notified_kind, record.notified_at = kind, now
        return kind
    return None
