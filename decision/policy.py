"""When to act and when to tell, so that an unattended box is neither neglected nor spammed.

Pure decisions over a check's remembered record (decision/state.py) and the configured rules: soft
and hard states, flapping, the remediation budget, and alert deduplication with a repeat interval.
Nothing here reads a file or a clock: the caller passes `now`, so every rule is tested in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from configuration import Settings
from core.vocabulary import AlertKind, Verdict
from decision.state import CheckRecord


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
        if not Verdict(verdict).is_bad:
            break
        count += 1
    return count


def state_changes(verdicts: list[str]) -> int:
    states = [Verdict(verdict).is_bad for verdict in verdicts]
    return sum(1 for before, after in zip(states, states[1:], strict=False) if before != after)


def rules_for(settings: Settings, check_id: str) -> Rules:
    """[policy.checks.ID] over [policy] over the defaults."""
    policy = settings.policy
    override = policy.checks.get(check_id)

    def chosen(name: str, default):
        value = getattr(override, name) if override else None
        return default if value is None else value

    return Rules(
        failures_before_action=chosen("failures_before_action", policy.failures_before_action),
        repeat_interval_seconds=policy.repeat_interval_minutes * 60,
        flap_window=policy.flap_window,
        flap_changes=policy.flap_changes,
        max_remediations=chosen("max_remediations", policy.budget.max_remediations),
        budget_window_seconds=policy.budget.window_minutes * 60,
    )


def judge(record: CheckRecord, verdict: Verdict, now: float, rules: Rules) -> Judgement:
    """Record this run's verdict and decide; the record is changed in place."""
    record.add_verdict(now, verdict)
    judgement = Judgement()
    flapping = state_changes(record.recent(rules.flap_window)) >= rules.flap_changes
    judgement.flap_started = flapping and not record.flapping
    judgement.flap_ended = record.flapping and not flapping
    record.flapping = judgement.flapping = flapping
    if not verdict.is_bad:
        return judgement
    failures = consecutive_bad(record)
    judgement.hard = failures >= rules.failures_before_action
    if not judgement.hard:
        judgement.note = f"soft failure {failures} of {rules.failures_before_action}: no action yet"
    elif flapping:
        changes = state_changes(record.recent(rules.flap_window))
        judgement.note = f"flapping ({changes} changes in the last {rules.flap_window} runs)"
    if judgement.hard and not flapping and verdict == Verdict.FAILED:
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


def notification(record: CheckRecord, verdict: Verdict, fixed: bool, judgement: Judgement, now: float,
                 rules: Rules, tell_fixed: bool = True) -> AlertKind | None:
    """The alert this run owes for the check, if any: problem, fixed, unknown, flapping or resolved.
    `tell_fixed` false: routine maintenance (rotation, clean-up) that did its job tells nobody."""
    if judgement.flap_started:
        return AlertKind.FLAPPING
    if fixed:  # told as done, never as a problem; nothing stays open
        record.notified_kind = record.notified_at = None
        return AlertKind.FIXED if tell_fixed else None
    if not verdict.is_bad:
        if record.notified_kind is None:
            return None
        record.notified_kind = record.notified_at = None
        return AlertKind.RESOLVED
    if not judgement.hard or judgement.flapping:
        return None
    kind = AlertKind.UNKNOWN if verdict == Verdict.UNKNOWN else AlertKind.PROBLEM
    due = record.notified_at is None or now - record.notified_at >= rules.repeat_interval_seconds
    if record.notified_kind != kind or due or judgement.flap_ended:
        record.notified_kind, record.notified_at = kind, now
        return kind
    return None
