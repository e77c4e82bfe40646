"""One check's way through a run, after its result is known: the pytest side of its finding
(decision/finding.py). It builds the finding from the item and its report, runs it through the stages, each a
public function of its own module (verdict, waiver, root cause, policy, remediation and re-check, alert,
silence), and writes it to the report's properties once, at the end.

A finding must be shown positively: a check that failed on a box that no longer answers is UNKNOWN with the
box's reason (its reading may be the box dying, never a fault to act on), and every bad verdict on a box marked
unreachable in this run says so (`Prop.UNREACHABLE`): one alert for the box, one line in the summary. A dependent
whose root could not be read waits on it: UNKNOWN, acting on nothing.

Called for each check's call phase (and a setup that failed), on xdist workers too. The report's properties
are all the controller, the alerts and both reports need: nothing travels any other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from configuration import Settings
from core import clock
from core.unread import CouldNotRead
from core.vocabulary import Mode, Verdict
from decision import exemptions, policy, verdict
from decision.finding import Finding, Reading, properties_of
from decision.policy import budget_for, rules_for
from decision.rootcause import blame_root, root_outcome
from decision.state import StateStore
from plugin.fixtures import database_of, services_of
from plugin.identity import IDENTITY, LEVEL_ARGNAME, ROOTS, CheckIdentity, RemediationSpec
from probes.host import box_of
from remediations import target_of
from remediations.runner import ActionContext, Remedy, remediate_and_recheck
from reports import html

SETTLED_EARLY = (Verdict.SKIPPED, Verdict.WAIVED)  # nothing for the policy to weigh, act on or tell


@dataclass(frozen=True)
class Scope:
    """What the run puts around one check's finding."""

    settings: Settings  # the run's: policy, waivers, silences
    box: Settings  # the settings of the box the check looked at
    mode: Mode
    state_dir: Path
    run: str  # this run's id, the same in every xdist worker


def settle(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo, scope: Scope) -> Finding:
    """The check's finding, decided and written to `report` (and to the item, for JUnit's teardown report)."""
    error = call.excinfo.value if call.excinfo else None
    finding = verdict.read(reading_of(item, scope.box), report.passed, report.skipped, report.when == "call",
                           error, box_of(scope.box))
    decide(item, report, finding, scope)
    for name, value in properties_of(finding):
        report.user_properties.append((str(name), value))
        item.user_properties.append((str(name), value))
    return finding


def reading_of(item: pytest.Item, box: Settings) -> Reading:
    callspec = getattr(item, "callspec", None)
    params = dict(getattr(callspec, "params", {}))
    params.pop(LEVEL_ARGNAME, None)
    params.pop("settings", None)  # the box: the reading names it
    check = item.stash[IDENTITY].id
    return Reading(check, box.host.name, verdict.instance_key(check, callspec.id if callspec else None), params)


def decide(item: pytest.Item, report: pytest.TestReport, finding: Finding, scope: Scope) -> None:
    """The stages in their order. A waived or skipped check only says how it ended, for its dependents; a
    dependent of a root that explains it is weighed but leaves the action and the alert to its root."""
    identity, store, now = item.stash[IDENTITY], StateStore(scope.state_dir), clock.now()
    key = finding.reading.instance
    if exemptions.waive(finding, scope.settings.waivers, now):
        return store.settle(key, scope.run, finding.verdict)
    if finding.verdict.is_bad:
        blame_root(finding, root_of(item, finding, scope, store))
    if finding.verdict in SETTLED_EARLY:
        return store.settle(key, scope.run, finding.verdict)
    rules = rules_for(scope.settings, identity.id)
    tell_fixed = not identity.routine or scope.settings.alerts.tell_routine_fixes
    with store.record(key) as record:
        judgement = policy.weigh(finding, record, now, rules)
        acts = (judgement.may_remediate and identity.remediation is not None and scope.mode != Mode.OFF
                and not finding.caused_by)
        if not acts:  # the common case, a pass: one write of the state, not two
            if not finding.caused_by:
                policy.owe_alert(finding, record, judgement, now, rules, tell_fixed)
            record.settle(scope.run, finding.verdict)
    if acts:
        act(item, report, finding, scope, judgement.streak)
        with store.record(key) as record:
            policy.owe_alert(finding, record, judgement, now, rules, tell_fixed)
            record.settle(scope.run, finding.verdict)
    exemptions.silence(finding, scope.settings.silences, now)


def act(item: pytest.Item, report: pytest.TestReport, finding: Finding, scope: Scope, streak: int) -> None:
    """The check's action on its box, within its target's budget, and the re-check; its record under the row."""
    identity = item.stash[IDENTITY]
    spec = identity.remediation
    remedy = remediate_and_recheck(spec.name, action_params(spec, finding.reading),
                                   context(item, finding, scope, streak), lambda: recheck(item), scope.state_dir,
                                   check=item.nodeid.split("::")[-1], instance=finding.reading.instance,
                                   budget=budget_for(scope.settings, identity.id, identity.cadence), run=scope.run)
    remedy.fill(finding)
    if not remedy.budget_spent:
        attach(report, remedy)
    if finding.verdict != Verdict.FIXED:  # the box stopped answering while it acted: told with the box, once
        verdict.mark_unreachable(finding, box_of(scope.box))


def attach(report: pytest.TestReport, remedy: Remedy) -> None:
    report.sections.append(("remediation", remedy.text()))
    html.attach(report, "Remediation", remedy.text())


def action_params(spec: RemediationSpec, reading: Reading) -> dict:
    """The action's marker arguments over the check's own parameters (service, rule...)."""
    return {**reading.params, **spec.params}


def target_on(identity: CheckIdentity, reading: Reading, box: Settings) -> str | None:
    """What the check's action would act on; None for a check without one, or whose action cannot name it."""
    if identity.remediation is None:
        return None
    try:
        return target_of(identity.remediation.name, action_params(identity.remediation, reading), box)
    except Exception:  # said where it matters: the remediation of that check reports it
        return None


def root_of(item: pytest.Item, finding: Finding, scope: Scope, store: StateStore) -> tuple[str, Verdict] | None:
    """The instance of this check's root (same box, and the same target when this check has a remediation) that
    explains its finding in this run, and how. On an xdist worker a root still at work is waited for, within the
    time its remediation may take."""
    identity, in_run = item.stash[IDENTITY], set(item.session.items)
    roots = [(root.stash[IDENTITY], reading_of(root, scope.box)) for root in item.stash.get(ROOTS, [])
             if root in in_run]
    if roots and identity.remediation is not None:
        mine = target_on(identity, finding.reading, scope.box)
        roots = [(root, reading) for root, reading in roots if target_on(root, reading, scope.box) == mine]
    limits = scope.box.remediation
    patience = limits.timeout_seconds + limits.recheck_after_seconds + 10 if hasattr(item.config, "workerinput") else 0
    return root_outcome(store, [reading.instance for _, reading in roots], scope.run, patience)


def context(item: pytest.Item, finding: Finding, scope: Scope, streak: int) -> ActionContext:
    """All an action may use: the box's settings, the box, its services and database, and where the run keeps
    its state and reports."""
    box = scope.box
    reports = Path(item.config.option.reports_dir or box.reports.dir)
    return ActionContext(box, box_of(box), services_of(item.config, box), scope.mode, scope.state_dir, streak,
                         finding.reading.instance, run_id=scope.run,
                         reports_dir=reports if reports.is_absolute() else item.config.rootpath / reports,
                         database=database_of(item.config, box))


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
        return verdict.first_line(error)
    except Exception as error:  # the probe broke on the second look: say so, do not hide it
        return f"{type(error).__name__}: {verdict.first_line(error)}"
    return None
