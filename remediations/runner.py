"""From a failed check to its remediation and back: act, then look again.

The glue calls `remediate_and_recheck` for a check that failed its assertion and the policy allows
to act on. Under one lock for every remediation the state directory serves (xdist workers included):
a last look, then the budget of the target the action touches (one per thing touched, shared by every
check and cadence that acts on it), then the action through the registry (guarded, dry-run aware,
never raising), then the check once more through `recheck`, so the report says whether the action
fixed it. A look that could not be made (`recheck` raises CouldNotRead) is never taken for a fault: before the
action nothing acts (could not act), after it the re-check says it could not look.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from configuration import Settings
from core import clock
from core.atomic import write_atomically
from core.unread import CouldNotRead
from core.vocabulary import ActionStatus, Mode, Recheck, Verdict
from decision.finding import Action, Finding
from decision.policy import Budget, count_remediation, spend_budget
from decision.state import StateStore
from probes.host import Box
from remediations import Outcome, could_not_act, load_all, target_of


@dataclass
class ActionContext:
    settings: Settings
    box: Box  # where every command runs: this machine or the box over SSH
    services: object  # the run's service probe (probes/services.py), shared with the checks
    mode: Mode
    state_dir: Path | None = None  # the suite's memory: where an emergency's incident is kept
    streak: int = 1  # runs in a row the asking check has found what it asks about, this one included
    check: str = ""  # the asking check's instance
    run_id: str = ""  # this run's id
    reports_dir: Path | None = None  # where this run's reports go (--reports-dir or [reports] dir)
    database: object = None  # the run's database connection (probes/database.py), shared with the checks

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
    budget_spent: str = ""  # the target's budget stopped the action: why, and what the operator does
    human_needed: bool = False  # the budget ran out with this check: the one "human needed" for the target

    def fill(self, finding: Finding) -> None:
        """The stage of the action on the finding: what ran (or was planned) and the re-check, FIXED when the
        re-check passed; or, where the target's budget stopped it, the policy's note (and the one "human
        needed")."""
        if self.budget_spent:  # nothing ran
            finding.note(self.budget_spent)
            if self.human_needed:
                finding.human_needed = self.budget_spent
            return
        finding.action = Action(self.outcome.summary(), self.recheck, self.recheck_problem, self.outcome.at_risk)
        if self.recheck == Recheck.FIXED:
            finding.verdict = Verdict.FIXED

    def text(self) -> str:
        """The remediation's record as a block of text, for the report's row."""
        lines = [self.outcome.summary(), f"re-check: {self.recheck}"]
        if self.recheck_problem:
            lines.append(f"still: {self.recheck_problem}")
        if self.outcome.output:
            lines += ["output:", self.outcome.output]
        return "\n".join(lines)


def remediate_and_recheck(name: str, params: dict, context: ActionContext, recheck: Callable[[], str | None],
                          lock_dir: Path, check: str = "", budget: Budget | None = None,
                          instance: str = "", run: str = "") -> Remedy:
    """`recheck()` runs the check again: None when it passes, else what is still wrong (CouldNotRead: it could
    not look). `check`: the
    check instance that asks, recorded with what its action did; `instance`: its key in the state, charged
    against `budget` on the target (no budget: unlimited); `run`: this run's id, to credit a fix to an
    action of this run."""
    action = load_all().get(name)
    if action is None:
        return Remedy(Outcome(name, ActionStatus.FAILED, "no such remediation"), Recheck.NOT_RECHECKED)
    try:
        target = target_of(name, params, context.settings)
    except Exception as error:  # an action that cannot name what it touches does not act
        return Remedy(Outcome(name, ActionStatus.FAILED, f"what it would act on could not be named: "
                                                         f"{type(error).__name__}: {error}"), Recheck.NOT_RECHECKED)
    # One action at a time on the box (xdist workers included), and a last look before acting:
    # two checks of one service must not restart it twice.
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / "remediation.lock")):
        looked = last_look(name, recheck, ActionLog(lock_dir), target, run) if context.mode == Mode.APPLY else None
        if looked is not None:
            return looked
        store, now = StateStore(lock_dir), clock.now()
        if budget is not None:
            with store.target(target) as record:
                # A plan only reports a spent budget: it spends nothing, so it never runs one out.
                decision = (spend_budget(record, target, instance or check, now, budget)
                            if context.mode == Mode.APPLY or record.spent_at is not None else None)
            if decision is not None and not decision.may_act:
                return Remedy(Outcome(name, ActionStatus.SKIPPED, f"not run: the budget for {target} is spent"),
                              Recheck.NOT_RECHECKED, budget_spent=decision.note, human_needed=decision.human_needed)
        outcome = action(context, **params)
        if context.mode == Mode.APPLY and outcome.status in (ActionStatus.DONE, ActionStatus.FAILED):
            ActionLog(lock_dir).record(target, name, check, run)
            with store.target(target) as record:
                count_remediation(record, now, instance or check)
        if outcome.status != ActionStatus.DONE:
            return Remedy(outcome, Recheck.NOT_RECHECKED)
        time.sleep(context.settings.remediation.recheck_after_seconds)
        try:
            problem = recheck()
        except CouldNotRead as error:
            return Remedy(outcome, Recheck.NOT_RECHECKED, f"could not look again: {error}")
    return Remedy(outcome, Recheck.FIXED) if problem is None else Remedy(outcome, Recheck.STILL_FAILING, problem)


def last_look(name: str, recheck: Callable[[], str | None], log: ActionLog, target: str, run: str) -> Remedy | None:
    """Before acting: a check that passes now is credited to the action of this run that mended its target, or to
    the target itself; one that could not be looked at is not acted on. None: act."""
    try:
        passes_now = recheck() is None
    except CouldNotRead as error:
        return Remedy(could_not_act(name, error, "the last look before acting could not be made: "),
                      Recheck.NOT_RECHECKED)
    if not passes_now:
        return None
    earlier = log.earlier_in_this_run(target, run)
    credit = (f"passes now: mended by {earlier['action']} for {earlier['check']} earlier in this run"
              if earlier else "passes now: it recovered by itself, nothing acted on it")
    return Remedy(Outcome(name, ActionStatus.SKIPPED, credit), Recheck.FIXED)


KEEP_ACTIONS = 500


class ActionLog:
    """What actions touched which target in which run, one JSON line each, in the remediation lock's
    directory. Written and read under that lock only."""

    def __init__(self, directory: Path):
        self.path = directory / "actions.jsonl"

    def record(self, target: str, action: str, check: str, run: str) -> None:
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        lines = [*lines[-(KEEP_ACTIONS - 1):], json.dumps({"at": time.time(), "run": run, "target": target,
                                                           "action": action, "check": check})]
        write_atomically(self.path, "\n".join(lines) + "\n")

    def earlier_in_this_run(self, target: str, run: str) -> dict | None:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return None
        entries = [json.loads(line) for line in lines if line.strip()]
        mine = [e for e in entries if run and e.get("run") == run and e.get("target") == target]
        return mine[-1] if mine else None
