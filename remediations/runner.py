"""From a failed check to its remediation and back: act, then look again.

The glue calls `remediate_and_recheck` for a check that failed its assertion and the policy allows
to act on. The action runs through the registry (guarded, dry-run aware, never raising) under a
box-wide lock, and the check is run once more through `recheck`, so the report says whether the
action fixed it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from configuration import Settings
from core.vocabulary import ActionStatus, Mode, Recheck
from fixtures.host import Box
from remediations import Outcome, load_all


@dataclass
class ActionContext:
    settings: Settings
    box: Box  # where every command runs: this machine or the box over SSH
    services: object  # the run's service probe (fixtures/services.py), shared with the checks
    mode: Mode

    def run(self, argv: list[str], privileged: bool = True) -> subprocess.CompletedProcess:
        """Argument lists only, never a shell string; on the box, through sudo where configured when it
        changes the box (the action declares those commands), bounded by the configured timeout
        (exit 124 when it ran out)."""
        return self.box.run(argv, privileged=privileged, timeout=self.settings.remediation.timeout_seconds)


@dataclass
class Remedy:
    outcome: Outcome
    recheck: Recheck
    recheck_problem: str = ""

    def text(self) -> str:
        """The remediation's record as a block of text, for the report's row."""
        lines = [self.outcome.summary(), f"re-check: {self.recheck}"]
        if self.recheck_problem:
            lines.append(f"still: {self.recheck_problem}")
        if self.outcome.output:
            lines += ["output:", self.outcome.output]
        return "\n".join(lines)


def remediate_and_recheck(name: str, params: dict, context: ActionContext, recheck: Callable[[], str | None],
                          lock_dir: Path) -> Remedy:
    """`recheck()` runs the check again: None when it passes, else what is still wrong."""
    action = load_all().get(name)
    if action is None:
        return Remedy(Outcome(name, ActionStatus.FAILED, "no such remediation"), Recheck.NOT_RECHECKED)
    # One action at a time on the box (xdist workers included), and a last look before acting:
    # two checks of one service must not restart it twice.
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / "remediation.lock")):
        if context.mode == Mode.APPLY and recheck() is None:
            return Remedy(Outcome(name, ActionStatus.SKIPPED, "passes now: mended by an earlier action of this run"),
                          Recheck.FIXED)
        outcome = action(context, **params)
        if outcome.status != ActionStatus.DONE:
            return Remedy(outcome, Recheck.NOT_RECHECKED)
        time.sleep(context.settings.remediation.recheck_after_seconds)
        problem = recheck()
    return Remedy(outcome, Recheck.FIXED) if problem is None else Remedy(outcome, Recheck.STILL_FAILING, problem)
