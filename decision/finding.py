"""One check's finding in one run, as each stage fills it in: what it read, the verdict, the waiver, the root
cause, the policy's notes, the action and its re-check, the alert owed.

The stages pass this object, never strings, and the verdict stays a `Verdict` from the check to the exit
status. It crosses processes once: written to the check's report properties at the end (`properties_of`), which
is what xdist carries and JUnit keeps, and read back on the controller in one place (`finding_from`). The
check's identity (id, cadence, severity, why, box) is written at collection, beside it; the reading's instance
key and parameters stay on the worker, where the stages need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.vocabulary import AlertKind, Prop, Recheck, Verdict


@dataclass(frozen=True)
class Reading:
    """Who looked, and where: the check's id and its box; on the worker, what the state and the action need."""

    check: str  # the check's id (SVC-001)
    box: str  # the box it looked at
    instance: str = ""  # the check's key in the state: its id and its parameters' id (not carried)
    params: dict = field(default_factory=dict)  # its own parameters (service, rule...), not the box (not carried)


@dataclass(frozen=True)
class Action:
    """The remediation that ran or was planned, and the check's second look after it."""

    outcome: str  # the action's own summary: "restart_service: done: ..."
    recheck: Recheck
    recheck_problem: str = ""  # what the re-check still found, or why it could not look
    at_risk: str = ""  # what a failed emergency call leaves at risk: told at once, critical


@dataclass
class Finding:
    reading: Reading
    verdict: Verdict
    problem: str = ""  # the assertion's first line, or why the check could not look
    unreachable: bool = False  # a bad verdict on a box marked unreachable in this run: the box's one alert
    caused_by: str = ""  # the root check instance whose state in this run explains this one
    policy: list[str] = field(default_factory=list)  # the notes of waivers, policy, budget and silences, in order
    human_needed: str = ""  # the target's budget ran out with this check: the one "human needed", and why
    action: Action | None = None
    alert: AlertKind | None = None  # the alert this run owes, after deduplication and silences

    def note(self, text: str) -> None:
        self.policy.append(text)


# The order a finding's properties are written in: what happened first, the verdict and the alert last.
def properties_of(finding: Finding) -> list[tuple[Prop, str]]:
    """The finding as report properties, beside the identity's written at collection. Plain strings: xdist
    serializes properties and knows no enum. Several notes are several POLICY properties; a reader of one
    (a dict) sees the last."""
    written: list[tuple[Prop, str]] = []
    if finding.problem:
        written.append((Prop.PROBLEM, finding.problem))
    if finding.unreachable:
        written.append((Prop.UNREACHABLE, finding.reading.box))
    if finding.caused_by:
        written.append((Prop.CAUSED_BY, finding.caused_by))
    written += [(Prop.POLICY, note) for note in finding.policy]
    if finding.human_needed:
        written.append((Prop.HUMAN_NEEDED, finding.human_needed))
    if finding.action is not None:
        written += _action_properties(finding.action)
    written.append((Prop.VERDICT, finding.verdict.value))
    if finding.alert is not None:
        written.append((Prop.ALERT, finding.alert.value))
    return written


def _action_properties(action: Action) -> list[tuple[Prop, str]]:
    written = [(Prop.REMEDIATION_OUTCOME, action.outcome), (Prop.RECHECK, action.recheck.value)]
    if action.at_risk:
        written.append((Prop.AT_RISK, action.at_risk))
    if action.recheck_problem:
        written.append((Prop.RECHECK_PROBLEM, action.recheck_problem))
    return written


def finding_from(properties: Iterable[tuple[str, str]] | Mapping[str, str]) -> Finding | None:
    """A check's finding from its report's properties (a list of pairs keeps every policy note, a dict the
    last); None for a report that carries none (a setup that passed, a collection error)."""
    pairs = list(properties.items() if isinstance(properties, Mapping) else properties)
    last = dict(pairs)
    if Prop.VERDICT not in last:
        return None
    action = None
    if Prop.REMEDIATION_OUTCOME in last:
        action = Action(last[Prop.REMEDIATION_OUTCOME], Recheck(last.get(Prop.RECHECK, Recheck.NOT_RECHECKED)),
                        last.get(Prop.RECHECK_PROBLEM, ""), last.get(Prop.AT_RISK, ""))
    return Finding(
        reading=Reading(last.get(Prop.CHECK_ID, ""), last.get(Prop.BOX, "")),
        verdict=Verdict(last[Prop.VERDICT]),
        problem=last.get(Prop.PROBLEM, ""),
        unreachable=Prop.UNREACHABLE in last,
        caused_by=last.get(Prop.CAUSED_BY, ""),
        policy=[value for name, value in pairs if name == Prop.POLICY],
        human_needed=last.get(Prop.HUMAN_NEEDED, ""),
        action=action,
        alert=AlertKind(last[Prop.ALERT]) if Prop.ALERT in last else None,
    )
