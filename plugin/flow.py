"""One check's way through a run, after its result is known: verdict, waiver, policy, root cause,
remediation (within its target's budget) and re-check, the alert owed. Each step is a public function
of its stage; this only strings them.

A finding must be shown positively: a check that failed on a box that no longer answers is UNKNOWN with the
box's reason (its reading may be the box dying, never a fault to act on), and every bad verdict on a box marked
unreachable in this run says so (`Prop.UNREACHABLE`): one alert for the box, one line in the summary. A dependent
whose root could not be read waits on it: UNKNOWN, acting on nothing.

Called for each check's call phase (and a setup that failed), on xdist workers too. Everything
decided is recorded with `record(name, value)` as report properties, which is all the controller,
the alerts and both reports need: nothing travels any other way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from configuration import Settings
from core import clock
from core.unread import CouldNotRead
from core.vocabulary import Mode, Prop, Recheck, Verdict
from decision import exemptions
from decision.policy import Budget, budget_for, judge, notification, rules_for
from decision.state import StateStore
from decision.verdict import first_line, instance_key, verdict_of
from plugin.fixtures import database_of, services_of
from plugin.identity import IDENTITY, LEVEL_ARGNAME, ROOTS, CheckIdentity, RemediationSpec
from probes.host import box_of
from remediations.runner import ActionContext, Remedy, remediate_and_recheck, target_of
from reports import html

Record = Callable[[str, str], None]


def settle(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo, identity: CheckIdentity,
           settings: Settings, box: Settings, mode: Mode, state_dir: Path, record: Record, run: str) -> None:
    """`settings`: the run's (policy, waivers); `box`: the settings of the box the check looked at;
    `run`: this run's id, the same in every xdist worker."""
    error = call.excinfo.value if call.excinfo else None
    verdict, problem = verdict_of(report.passed, report.skipped, report.when == "call", error)
    if verdict == Verdict.FAILED:
        verdict, problem = shown_on_a_box_that_answers(box, problem)
    if problem:
        record(Prop.PROBLEM, problem)
    unreachable = note_unreachable(box, verdict, record)
    now = clock.now()
    key = key_of(item, identity)
    store = StateStore(state_dir)
    waiver = exemptions.find(settings.waivers, identity.id, key)
    if verdict.is_bad and waiver is not None:
        if exemptions.is_active(waiver, now):
            record(Prop.VERDICT, Verdict.WAIVED)
            record(Prop.POLICY, f"waived until {exemptions.expiry(waiver)}: {waiver.reason}")
            settled(store, key, run, Verdict.WAIVED)
            return
        record(Prop.POLICY, f"waiver expired on {exemptions.expiry(waiver)}: counts as a failure again")
    cause, root_result = root_cause(item, identity, box, mode, store, run) if verdict.is_bad else (None, None)
    if cause:  # its root check found it, acts on it and alerts: this one only points there
        record(Prop.CAUSED_BY, cause)
        if root_result == Verdict.WAIVED:
            verdict = Verdict.WAIVED
            record(Prop.POLICY, f"waived with its root {cause}")
        elif root_result == Verdict.UNKNOWN:  # what it found may be its root's state: nothing is known, or acted on
            verdict = Verdict.UNKNOWN
            record(Prop.POLICY, f"waits on its root {cause}, which could not be read: nothing acted on here")
    if verdict in (Verdict.SKIPPED, Verdict.WAIVED):
        record(Prop.VERDICT, verdict)
        settled(store, key, run, verdict)
        return
    rules = rules_for(settings, identity.id)
    tell_fixed = not identity.routine or settings.alerts.tell_routine_fixes
    kind = None
    with store.record(key) as state:
        judgement = judge(state, verdict, now, rules)
        acts = judgement.may_remediate and identity.remediation is not None and mode != Mode.OFF and not cause
        if not acts:  # the common case, a pass: one write of the state, not two
            if not cause:
                kind = notification(state, verdict, False, judgement, now, rules, tell_fixed=tell_fixed)
            state.run, state.run_result = run, verdict
    if judgement.note:
        record(Prop.POLICY, judgement.note)
    if cause:
        record(Prop.VERDICT, verdict)
        return

    fixed = False
    if acts:
        remedy = remediate(item, identity, box, mode, state_dir, budget_for(settings, identity.id, identity.cadence),
                           run, judgement.streak)
        record_remedy(report, remedy, record)
        fixed = remedy.recheck == Recheck.FIXED
        if not unreachable and not fixed:  # the box stopped answering while it acted: told with the box, once
            note_unreachable(box, verdict, record)
        with store.record(key) as state:
            kind = notification(state, verdict, fixed, judgement, now, rules, tell_fixed=tell_fixed)
            state.run, state.run_result = run, Verdict.FIXED if fixed else verdict

    record(Prop.VERDICT, Verdict.FIXED if fixed else verdict)  # once: what the operator reads
    if fixed and not kind:
        record(Prop.POLICY, "routine maintenance done: no alert ([alerts] tell_routine_fixes = true to be told)")
    silence = exemptions.find(settings.silences, identity.id, key)
    if kind and exemptions.is_active(silence, now):
        record(Prop.POLICY, f"alert silenced until {exemptions.expiry(silence)}: {silence.reason}")
        return
    if kind:
        record(Prop.ALERT, kind)


def shown_on_a_box_that_answers(box: Settings, problem: str) -> tuple[Verdict, str]:
    """A failed assertion is a fault only when the box still answers: one that stopped (powered off mid-run)
    may have handed the check a dead reading (a database that does not answer through a dead connection). Over
    SSH that costs one command through the run's connection; the first failure marks the box for the run."""
    try:
        box_of(box).answers()
    except CouldNotRead as gone:
        return Verdict.UNKNOWN, str(gone)
    return Verdict.FAILED, problem


def note_unreachable(box: Settings, verdict: Verdict, record: Record) -> bool:
    """A bad verdict on a box marked unreachable in this run: its alert is the box's one alert."""
    if verdict.is_bad and box_of(box).unreachable() is not None:
        record(Prop.UNREACHABLE, box.host.name)
        return True
    return False


def record_remedy(report: pytest.TestReport, remedy: Remedy, record: Record) -> None:
    if remedy.budget_spent:  # nothing ran: the target's budget is spent
        record(Prop.POLICY, remedy.budget_spent)
        if remedy.human_needed:
            record(Prop.HUMAN_NEEDED, remedy.budget_spent)
        return
    record(Prop.REMEDIATION_OUTCOME, remedy.outcome.summary())
    record(Prop.RECHECK, remedy.recheck)
    if remedy.outcome.at_risk:  # told at once, critical, on every channel (alerts/dispatch.py)
        record(Prop.AT_RISK, remedy.outcome.at_risk)
    if remedy.recheck_problem:
        record(Prop.RECHECK_PROBLEM, remedy.recheck_problem)
    report.sections.append(("remediation", remedy.text()))
    html.attach(report, "Remediation", remedy.text())


def key_of(item: pytest.Item, identity: CheckIdentity) -> str:
    callspec = getattr(item, "callspec", None)
    return instance_key(identity.id, callspec.id if callspec else None)


def settled(store: StateStore, key: str, run: str, result: str) -> None:
    """How the check ended in this run, for the checks that depend on it."""
    with store.record(key) as state:
        state.run, state.run_result = run, result


# A root's failure explains its dependent's: the dependent neither acts nor alerts (a waived root's too); a root
# that could not be read leaves its dependent UNKNOWN, waiting on it.
ROOT_EXPLAINS = (Verdict.FAILED, Verdict.WAIVED, Verdict.UNKNOWN)


def root_cause(item: pytest.Item, identity: CheckIdentity, box: Settings, mode: Mode, store: StateStore,
               run: str) -> tuple[str | None, str | None]:
    """The instance of this check's root (same box, and the same target when this check has a
    remediation) that failed, was waived or could not be read in this run, if one was, and how. Roots run first; on
    another xdist worker, a root still at work is waited for, within the time its remediation may take."""
    in_run = set(item.session.items)
    roots = [root for root in item.stash.get(ROOTS, []) if root in in_run]
    if roots and identity.remediation is not None:
        mine = target_on(item, identity, box, mode)
        roots = [root for root in roots if target_on(root, root.stash[IDENTITY], box, mode) == mine]
    keys = [key_of(root, root.stash[IDENTITY]) for root in roots]
    patience = box.remediation.timeout_seconds + box.remediation.recheck_after_seconds + 10
    deadline = time.monotonic() + (patience if hasattr(item.config, "workerinput") else 0)
    while keys:
        records = store.load()
        ended = {key: records[key].run_result for key in keys if key in records and records[key].run == run}
        failed = [key for key in keys if ended.get(key) in ROOT_EXPLAINS]
        if failed or len(ended) == len(keys) or time.monotonic() >= deadline:
            return (failed[0], ended[failed[0]]) if failed else (None, None)
        time.sleep(0.2)
    return None, None


def target_on(item: pytest.Item, identity: CheckIdentity, box: Settings, mode: Mode) -> str | None:
    spec = identity.remediation
    if spec is None:
        return None
    try:
        return target_of(spec.name, action_params(item, spec), context(item, box, mode))
    except Exception:  # said where it matters: the remediation of that check reports it
        return None


def action_params(item: pytest.Item, spec: RemediationSpec) -> dict:
    """The action's marker arguments and the check's own parameters (service, rule...)."""
    params = dict(getattr(getattr(item, "callspec", None), "params", {}))
    params.pop(LEVEL_ARGNAME, None)
    params.pop("settings", None)  # the box: the context carries it
    params.update(spec.params)
    return params


def context(item: pytest.Item, settings: Settings, mode: Mode, state_dir: Path | None = None, streak: int = 1,
            run: str = "") -> ActionContext:
    reports = Path(item.config.option.reports_dir or settings.reports.dir)
    return ActionContext(settings, box_of(settings), services_of(item.config, settings), mode, state_dir, streak,
                         key_of(item, item.stash[IDENTITY]) if IDENTITY in item.stash else "", run_id=run,
                         reports_dir=reports if reports.is_absolute() else item.config.rootpath / reports,
                         database=database_of(item.config, settings))


def remediate(item: pytest.Item, identity: CheckIdentity, settings: Settings, mode: Mode, state_dir: Path,
              budget: Budget, run: str, streak: int = 1) -> Remedy:
    """The check's action on the box the check looked at (`settings` are that box's), within `budget`
    on what it touches."""
    spec = identity.remediation
    return remediate_and_recheck(spec.name, action_params(item, spec),
                                 context(item, settings, mode, state_dir, streak, run),
                                 lambda: recheck(item), state_dir, check=item.nodeid.split("::")[-1],
                                 budget=budget, instance=key_of(item, identity), run=run)


def recheck(item: pytest.Item) -> str | None:
    """Run the check again with the fixtures it already has; None when it passes."""
    for probe in item.funcargs.values():  # probes that keep a reading must read afresh
        if hasattr(probe, "forget"):
            probe.forget()
    try:
        item.runtest()
    except CouldNotRead:  # not a finding: the runner says it could not look
        raise
    except AssertionError as error:
        return first_line(error)
    except Exception as error:  # the probe broke on the second look: say so, do not hide it
        return f"{type(error).__name__}: {first_line(error)}"
    return None
