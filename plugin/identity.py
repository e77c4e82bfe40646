"""What a check is, read from the markers written next to it.

A check carries a cadence marker, `check(ID, severity=..., why=..., depends_on=ROOT_ID, routine=False)`
and optionally `remediate(NAME, **params)`. A check that lacks any of them is refused at collection,
naming the check and what to add, so nothing runs without an identity the reports and alerts can use.

`depends_on` names the root check of what this one looks at through it (WEB-001, the dashboard's
page, on SVC-001, the dashboard's service): root checks run first, and a dependent whose root failed
on the same target in the same run leaves the finding, the action and the alert to its root.
`routine=True` marks routine maintenance (rotation, clean-up): its fixes alert nobody unless configured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from core.vocabulary import Cadence, Prop, Severity

CADENCES = tuple(Cadence)
SEVERITIES = tuple(Severity)
LEVEL_ARGNAME = "level"
IDENTITY = pytest.StashKey["CheckIdentity"]()
ROOTS = pytest.StashKey[list]()  # a dependent's root check instances on its box


@dataclass(frozen=True)
class RemediationSpec:
    name: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckIdentity:
    id: str
    cadence: Cadence
    severity: Severity
    why: str
    remediation: RemediationSpec | None
    routine: bool = False  # maintenance that is expected to act (rotation, clean-up): its fixes alert nobody
    depends_on: str | None = None

    def properties(self) -> list[tuple[Prop, str]]:
        """What JUnit and HTML record for every check, pass or fail."""
        return [
            (Prop.CHECK_ID, self.id),
            (Prop.CADENCE, self.cadence),
            (Prop.SEVERITY, self.severity),
            (Prop.WHY, self.why),
            (Prop.REMEDIATION, self.remediation.name if self.remediation else "none"),
        ]


class IdentityError(Exception):
    pass


def read_identity(item: pytest.Item) -> CheckIdentity:
    cadences = [name for name in CADENCES if item.get_closest_marker(name)]
    if len(cadences) != 1:
        found = ", ".join(cadences) or "none"
        raise IdentityError(
            f"{item.nodeid}: needs exactly one cadence marker out of {', '.join(CADENCES)} (found {found})"
        )
    check = item.get_closest_marker("check")
    if check is None or not check.args:
        raise IdentityError(
            f'{item.nodeid}: has no id: add @pytest.mark.check("AREA-NNN", severity=..., why="...")'
        )
    why = check.kwargs.get("why", "")
    if not why:
        raise IdentityError(f"{item.nodeid}: check {check.args[0]} needs why=\"...\": why an operator cares")
    depends_on = check.kwargs.get("depends_on")
    if depends_on is not None and (not isinstance(depends_on, str) or depends_on == check.args[0]):
        raise IdentityError(f"{item.nodeid}: depends_on must name another check's id, not {depends_on!r}")
    return CheckIdentity(
        id=check.args[0],
        cadence=Cadence(cadences[0]),
        severity=Severity(_severity(item, check)),
        why=why,
        remediation=_remediation(item),
        routine=bool(check.kwargs.get("routine", False)),
        depends_on=depends_on,
    )


def _severity(item: pytest.Item, check: pytest.Mark) -> str:
    """Threshold checks parametrized by `level` take that level as their severity."""
    severity = check.kwargs.get("severity")
    params = getattr(getattr(item, "callspec", None), "params", {})
    if severity is None and LEVEL_ARGNAME in params:
        severity = params[LEVEL_ARGNAME]
    if severity not in SEVERITIES:
        raise IdentityError(
            f"{item.nodeid}: severity must be one of {', '.join(SEVERITIES)} "
            f"(or left out on a check parametrized by '{LEVEL_ARGNAME}'), not {severity!r}"
        )
    return severity


def _remediation(item: pytest.Item) -> RemediationSpec | None:
    mark = item.get_closest_marker("remediate")
    if mark is None:
        return None
    if len(mark.args) != 1:
        raise IdentityError(f'{item.nodeid}: use @pytest.mark.remediate("name", **params)')
    return RemediationSpec(mark.args[0], dict(mark.kwargs))


def check_unique_ids(items: list[pytest.Item]) -> None:
    """An id names one check function; parametrized instances of it share the id."""
    owners: dict[str, str] = {}
    for item in items:
        identity = item.stash.get(IDENTITY, None)
        if identity is None:
            continue
        function = item.nodeid.split("[", 1)[0]
        owner = owners.setdefault(identity.id, function)
        if owner != function:
            raise IdentityError(f"check id {identity.id} is used by both {owner} and {function}")


def in_dependency_order(items: list[pytest.Item], box_of: Callable[[pytest.Item], str]) -> list[pytest.Item]:
    """Root checks first, each dependent as soon as every instance of its root on its box is placed, the
    rest in collection order; each dependent's root instances go into its stash (ROOTS)."""
    identity = {item: item.stash[IDENTITY] for item in items}
    roots = {found.depends_on for found in identity.values() if found.depends_on}
    pending = sorted(items, key=lambda item: identity[item].id not in roots)  # stable
    unplaced = Counter((box_of(item), identity[item].id) for item in items)
    for item in items:
        if identity[item].depends_on:
            item.stash[ROOTS] = [root for root in items if identity[root].id == identity[item].depends_on
                                 and box_of(root) == box_of(item)]
    ordered = []
    while pending:
        ready = next((item for item in pending if not identity[item].depends_on
                      or not unplaced[(box_of(item), identity[item].depends_on)]), None)
        if ready is None:
            cycle = sorted({f"{identity[item].id} -> {identity[item].depends_on}" for item in pending})
            raise IdentityError(f"checks depend on each other in a circle: {', '.join(cycle)}")
        pending.remove(ready)
        ordered.append(ready)
        unplaced[(box_of(ready), identity[ready].id)] -= 1
    return ordered
