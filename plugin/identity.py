"""What a check is, read from the markers written next to it.

A check carries a cadence marker, `check(ID, severity=..., why=..., routine=False)` and optionally
`remediate(NAME, **params)`. A check that lacks any of them is refused at collection, naming the
check and what to add, so nothing runs without an identity the reports and alerts can use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from core.vocabulary import Cadence, Prop, Severity

CADENCES = tuple(Cadence)
SEVERITIES = tuple(Severity)
LEVEL_ARGNAME = "level"
IDENTITY = pytest.StashKey["CheckIdentity"]()


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
    return CheckIdentity(
        id=check.args[0],
        cadence=Cadence(cadences[0]),
        severity=Severity(_severity(item, check)),
        why=why,
        remediation=_remediation(item),
        routine=bool(check.kwargs.get("routine", False)),
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
