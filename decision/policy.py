"""When to act and when to tell, so that an unattended box is neither neglected nor spammed.

Pure decisions over a check's remembered record (decision/state.py) and the configured rules: soft
and hard states, flapping, and alert deduplication with a repeat interval; and over a target's record,
the remediation budget: one per thing touched (a service, a directory), shared by every check and
cadence that acts on it, its window counted in runs of the acting check's cadence.
Nothing here reads a file or a clock: the caller passes `now`, so every rule is tested in microseconds.
`weigh` and `owe_alert` are the stages a finding (decision/finding.py) goes through, over the check's record.
"""

from __future__ import annotations

from dataclasses import dataclass

from configuration import Settings
from core.vocabulary import AlertKind, Cadence, Verdict
from decision.finding import Finding
from decision.state import CheckRecord, TargetRecord

DAY = 86400.0
# How long one run of each cadence stands for, from the guide's schedule (the 1st of a month, a quarter).
PERIOD_SECONDS = {Cadence.DAILY: DAY, Cadence.WEEKLY: 7 * DAY, Cadence.MONTHLY: 31 * DAY,
                  Cadence.QUARTERLY: 92 * DAY, Cadence.EMERGENCY: 5 * 60.0}


@dataclass(frozen=True)
class Rules:
    failures_before_action: int = 1
    repeat_interval_seconds: float = 4 * 3600
    flap_window: int = 6
    flap_changes: int = 4


@dataclass
class Judgement:
    """What this run does about one check: act, tell, and what to say in the report."""

    hard: bool = False  # failing long enough to act on
    flapping: bool = False
    flap_started: bool = False
    flap_ended: bool = False
    may_remediate: bool = False  # as far as the check goes; the target's budget has the last word
    streak: int = 0  # runs in a row the check has been bad, this one included
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
    )


@dataclass(frozen=True)
class Budget:
    """At most `max_remediations` on one target within the last `window_runs` runs of the acting check's
    cadence: the window of a daily check is 5 days, of an emergency check 25 minutes."""

    max_remediations: int = 3
    window_runs: int = 5
    cadence: Cadence = Cadence.DAILY

    @property
    def window_seconds(self) -> float:
        return self.window_runs * PERIOD_SECONDS[Cadence(self.cadence)]

    def window(self) -> str:
        return f"the last {self.window_runs} {self.cadence} runs ({duration(self.window_seconds)})"


@dataclass(frozen=True)
class BudgetDecision:
    may_act: bool
    note: str = ""  # why not
    human_needed: bool = False  # the budget ran out now: tell a human, once for the target


def budget_for(settings: Settings, check_id: str, cadence: Cadence) -> Budget:
    """[policy.checks.ID] max_remediations over [policy.budget]; the window is the check's cadence's."""
    override = settings.policy.checks.get(check_id)
    limit = override.max_remediations if override and override.max_remediations is not None else None
    budget = settings.policy.budget
    return Budget(budget.max_remediations if limit is None else limit, budget.window_runs, Cadence(cadence))


def clear_command(target: str) -> str:
    return f'make clear-budget TARGET="{target}" CONFIG=...'


def spend_budget(record: TargetRecord, target: str, check: str, now: float, budget: Budget) -> BudgetDecision:
    """Before `check` acts on `target`: whether it may. The first refusal marks the target spent (the one
    "human needed" alert for it); it stays spent, for every check, until an operator clears it."""
    if record.spent_at is not None:
        return BudgetDecision(False, f"budget for {target} spent: waiting for an operator ({clear_command(target)})")
    recent = [(when, by) for when, by in record.remediations if now - when < budget.window_seconds]
    if len(recent) < budget.max_remediations:
        return BudgetDecision(True)
    acted = ", ".join(dict.fromkeys(by for _, by in recent))
    record.spent_at, record.spent_by = now, check
    record.spent_note = (f"budget for {target} spent: {len(recent)} remediation(s) in {budget.window()}"
                         + (f" by {acted}" if acted else "") + f"; a human is needed ({clear_command(target)})")
    return BudgetDecision(False, record.spent_note, human_needed=True)


def count_remediation(record: TargetRecord, now: float, check: str) -> None:
    record.add_remediation(now, check)


def duration(seconds: float) -> str:
    for unit, size in (("days", DAY), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


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
    failures = judgement.streak = consecutive_bad(record)
    judgement.hard = failures >= rules.failures_before_action
    if not judgement.hard:
        judgement.note = f"soft failure {failures} of {rules.failures_before_action}: no action yet"
    elif flapping:
        changes = state_changes(record.recent(rules.flap_window))
        judgement.note = f"flapping ({changes} changes in the last {rules.flap_window} runs)"
    judgement.may_remediate = judgement.hard and not flapping and verdict == Verdict.FAILED
    return judgement


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


ROUTINE_FIX = "routine maintenance done: no alert ([alerts] tell_routine_fixes = true to be told)"


def weigh(finding: Finding, record: CheckRecord, now: float, rules: Rules) -> Judgement:
    """The stage of the policy: this run's verdict goes into the check's record; the judgement says whether it
    may be acted on (the target's budget has the last word), and its note goes with the finding."""
    judgement = judge(record, finding.verdict, now, rules)
    if judgement.note:
        finding.note(judgement.note)
    return judgement


def owe_alert(finding: Finding, record: CheckRecord, judgement: Judgement, now: float, rules: Rules,
              tell_fixed: bool = True) -> None:
    """The stage of alerts: the alert this run owes for the finding, after whatever was done about it (a fixed
    finding is FIXED by then). Routine maintenance that did its job tells nobody, and says so."""
    fixed = finding.verdict == Verdict.FIXED
    finding.alert = notification(record, finding.verdict, fixed, judgement, now, rules, tell_fixed=tell_fixed)
    if fixed and finding.alert is None:
        finding.note(ROUTINE_FIX)
