"""A dependent's root cause: the root check (depends_on) that failed, was waived or could not be read on the same
box and target in this run explains what the dependent found, so the dependent neither acts nor alerts.

Roots run first; on another xdist worker a root may still be at work, so its outcome is read from the state (any
worker's) and waited for, within the time its remediation may take.
"""

from __future__ import annotations

import time

from core.vocabulary import Verdict
from decision.finding import Finding
from decision.state import StateStore

# A root's failure explains its dependent's: the dependent neither acts nor alerts (a waived root's too); a root
# that could not be read leaves its dependent UNKNOWN, waiting on it.
ROOT_EXPLAINS = (Verdict.FAILED, Verdict.WAIVED, Verdict.UNKNOWN)
POLL_SECONDS = 0.2


def root_outcome(store: StateStore, roots: list[str], run: str, patience: float) -> tuple[str, Verdict] | None:
    """The first of the root instances `roots` (state keys) that ended in this run in a way that explains a
    dependent's finding, and how; None when none did, or none has ended within `patience` seconds."""
    deadline = time.monotonic() + patience
    while roots:
        records = store.load()
        ended = {key: records[key].run_result for key in roots if key in records and records[key].run == run}
        explains = [key for key in roots if ended.get(key) in ROOT_EXPLAINS]
        if explains:
            return explains[0], Verdict(ended[explains[0]])
        if len(ended) == len(roots) or time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)
    return None


def blame_root(finding: Finding, root: tuple[str, Verdict] | None) -> None:
    """The stage of root causes: the finding points at its root, which acts and alerts; a waived root waives it,
    and a root that could not be read leaves it UNKNOWN (what it found may be the root's state)."""
    if root is None:
        return
    finding.caused_by, outcome = root
    if outcome == Verdict.WAIVED:
        finding.verdict = Verdict.WAIVED
        finding.note(f"waived with its root {finding.caused_by}")
    elif outcome == Verdict.UNKNOWN:
        finding.verdict = Verdict.UNKNOWN
        finding.note(f"waits on its root {finding.caused_by}, which could not be read: nothing acted on here")
