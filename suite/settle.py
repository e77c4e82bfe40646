"""Settling one check's result: its verdict, what the policy allows, the remediation, the alert owed.

Called by the plugin for each check's call phase (and for a setup that failed). Everything it decides
is recorded as properties on the report, which is all the controller, the alerts and both reports
need: nothing travels any other way, so xdist workers behave like a single process.
"""

from __future__ import annotations

import pytest

from remediations import DONE, FAILED as ACTION_FAILED
from suite import clock, exemptions, reporting
from suite.policy import BAD, Rules, count_remediation, judge, notification
from suite.remedy import FIXED, first_line, remediate_and_recheck
from suite.state import StateStore

PASSED, FAILED, UNKNOWN, SKIPPED, WAIVED = "passed", "failed", "unknown", "skipped", "waived"


def verdict_of(report: pytest.TestReport, call: pytest.CallInfo) -> tuple[str, str]:
    """An assertion that fails is a finding; anything else that breaks means we could not look."""
    if report.skipped:
        return SKIPPED, ""
    if report.passed:
        return PASSED, ""
    error = call.excinfo.value if call.excinfo else None
    if report.when == "call" and isinstance(error, AssertionError):
        return FAILED, first_line(error)
    reason = f"{type(error).__name__}: {first_line(error)}" if error else "the check could not run"
    return UNKNOWN, f"could not check: {reason}"


def instance_key(item: pytest.Item, check_id: str) -> str:
    """Stable across runs and renames of the test function: the id plus the parameters."""
    callspec = getattr(item, "callspec", None)
    return f"{check_id}[{callspec.id}]" if callspec else check_id


def rules_for(settings, check_id: str) -> Rules:
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


def settle(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo, identity, settings, mode: str,
           record) -> None:
    """`record(name, value)` writes a property on the report and the item."""
    verdict, problem = verdict_of(report, call)
    if problem:
        record("problem", problem)
    now = clock.now()
    key = instance_key(item, identity.id)
    waiver = exemptions.find(settings.waivers, identity.id, key)
    if verdict in BAD and waiver is not None:
        if exemptions.is_active(waiver, now):
            record("verdict", WAIVED)
            record("policy", f"waived until {exemptions.expiry(waiver)}: {waiver.reason}")
            return
        record("policy", f"waiver expired on {exemptions.expiry(waiver)}: counts as a failure again")
    record("verdict", verdict)
    if verdict == SKIPPED:
        return
    directory = state_dir(item.config, settings)
    store = StateStore(directory)
    rules = rules_for(settings, identity.id)
    with store.record(key) as state:
        judgement = judge(state, verdict, now, rules)
    if judgement.note:
        record("policy", judgement.note)
    if judgement.human_needed:
        record("human_needed", judgement.note)

    fixed = False
    if judgement.may_remediate and identity.remediation and mode != "off":
        remedy = remediate_and_recheck(item, identity.remediation, settings, mode, directory)
        record("remediation_outcome", remedy.outcome.summary())
        record("recheck", remedy.recheck)
        if remedy.recheck_problem:
            record("recheck_problem", remedy.recheck_problem)
        report.sections.append(("remediation", reporting.remedy_text(remedy)))
        reporting.attach(report, "Remediation", reporting.remedy_text(remedy))
        fixed = remedy.recheck == FIXED
        if mode == "apply" and remedy.outcome.status in (DONE, ACTION_FAILED):
            with store.record(key) as state:
                count_remediation(state, now)

    with store.record(key) as state:
        kind = notification(state, verdict, fixed, judgement, now, rules)
    silence = exemptions.find(settings.silences, identity.id, key)
    if kind and exemptions.is_active(silence, now):
        record("policy", f"alert silenced until {exemptions.expiry(silence)}: {silence.reason}")
        return
    if kind:
        record("alert", kind)


def state_dir(config: pytest.Config, settings):
    directory = settings.policy.state_dir
    return directory if directory.is_absolute() else config.rootpath / directory
