"""One check's way through a run, after its result is known: verdict, waiver, policy, remediation
and re-check, the alert owed. Each step is a public function of its stage; this only strings them.

Called for each check's call phase (and a setup that failed), on xdist workers too. Everything
decided is recorded with `record(name, value)` as report properties, which is all the controller,
the alerts and both reports need: nothing travels any other way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from configuration import Settings
from core import clock
from core.vocabulary import ActionStatus, Mode, Prop, Recheck, Verdict
from decision import exemptions
from decision.policy import count_remediation, judge, notification, rules_for
from decision.state import StateStore
from decision.verdict import first_line, instance_key, verdict_of
from fixtures.host import BoxUnreachable, box_of
from fixtures.services import services_of
from plugin.identity import LEVEL_ARGNAME, CheckIdentity
from remediations.runner import ActionContext, Remedy, remediate_and_recheck
from reports import html

Record = Callable[[str, str], None]


def settle(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo, identity: CheckIdentity,
           settings: Settings, box: Settings, mode: Mode, state_dir: Path, record: Record) -> None:
    """`settings`: the run's (policy, waivers); `box`: the settings of the box the check looked at."""
    error = call.excinfo.value if call.excinfo else None
    verdict, problem = verdict_of(report.passed, report.skipped, report.when == "call", error)
    if problem:
        record(Prop.PROBLEM, problem)
    if isinstance(error, BoxUnreachable):
        record(Prop.UNREACHABLE, box.host.name)
    now = clock.now()
    callspec = getattr(item, "callspec", None)
    key = instance_key(identity.id, callspec.id if callspec else None)
    waiver = exemptions.find(settings.waivers, identity.id, key)
    if verdict.is_bad and waiver is not None:
        if exemptions.is_active(waiver, now):
            record(Prop.VERDICT, Verdict.WAIVED)
            record(Prop.POLICY, f"waived until {exemptions.expiry(waiver)}: {waiver.reason}")
            return
        record(Prop.POLICY, f"waiver expired on {exemptions.expiry(waiver)}: counts as a failure again")
    if verdict == Verdict.SKIPPED:
        record(Prop.VERDICT, verdict)
        return
    store = StateStore(state_dir)
    rules = rules_for(settings, identity.id)
    with store.record(key) as state:
        judgement = judge(state, verdict, now, rules)
    if judgement.note:
        record(Prop.POLICY, judgement.note)
    if judgement.human_needed:
        record(Prop.HUMAN_NEEDED, judgement.note)

    fixed = False
    if judgement.may_remediate and identity.remediation and mode != Mode.OFF:
        remedy = remediate(item, identity, box, mode, state_dir)
        record(Prop.REMEDIATION_OUTCOME, remedy.outcome.summary())
        record(Prop.RECHECK, remedy.recheck)
        if remedy.recheck_problem:
            record(Prop.RECHECK_PROBLEM, remedy.recheck_problem)
        report.sections.append(("remediation", remedy.text()))
        html.attach(report, "Remediation", remedy.text())
        fixed = remedy.recheck == Recheck.FIXED
        if mode == Mode.APPLY and remedy.outcome.status in (ActionStatus.DONE, ActionStatus.FAILED):
            with store.record(key) as state:
                count_remediation(state, now)

    record(Prop.VERDICT, Verdict.FIXED if fixed else verdict)  # once: what the operator reads
    with store.record(key) as state:
        kind = notification(state, verdict, fixed, judgement, now, rules,
                            tell_fixed=not identity.routine or settings.alerts.tell_routine_fixes)
    if fixed and not kind:
        record(Prop.POLICY, "routine maintenance done: no alert ([alerts] tell_routine_fixes = true to be told)")
    silence = exemptions.find(settings.silences, identity.id, key)
    if kind and exemptions.is_active(silence, now):
        record(Prop.POLICY, f"alert silenced until {exemptions.expiry(silence)}: {silence.reason}")
        return
    if kind:
        record(Prop.ALERT, kind)


def remediate(item: pytest.Item, identity: CheckIdentity, settings: Settings, mode: Mode, state_dir: Path) -> Remedy:
    """The check's action with its marker arguments and the check's own parameters (service, rule...),
    on the box the check looked at (`settings` are that box's)."""
    spec = identity.remediation
    params = dict(getattr(getattr(item, "callspec", None), "params", {}))
    params.pop(LEVEL_ARGNAME, None)
    params.pop("settings", None)  # the box: the context carries it
    params.update(spec.params)
    context = ActionContext(settings, box_of(settings), services_of(item.config, settings), mode)
    return remediate_and_recheck(spec.name, params, context, lambda: recheck(item), state_dir,
                                 check=item.nodeid.split("::")[-1])


def recheck(item: pytest.Item) -> str | None:
    """Run the check again with the fixtures it already has; None when it passes."""
    for probe in item.funcargs.values():  # probes that keep a reading must read afresh
        if hasattr(probe, "forget"):
            probe.forget()
    try:
        item.runtest()
    except AssertionError as error:
        return first_line(error)
    except Exception as error:  # the probe broke on the second look: say so, do not hide it
        return f"{type(error).__name__}: {first_line(error)}"
    return None
