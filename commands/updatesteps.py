"""The pieces of an application update (commands/update.py): its progress file, its numbered steps, the
commands it runs on the box; a failed step and the wait for services to run, which a restore (commands/restore.py)
shares.

Progress: before each step, `update-<box>.json` in [policy] state_dir says what the update is, the commit it
started from, its backup and the step it is at, written atomically. An update killed at any point (SIGKILL,
a power cut) leaves it behind, and the next `make update-*` or `make update-rollback` rolls that update back
before anything else. It is removed once an update succeeded or was rolled back; a rollback that failed
leaves it, so the next run tries the rollback again.

Every command is an argument list run through the box (probes/host.py: over SSH on a remote box), bounded by
its step's timeout; git gets `-C DIR` and `-c safe.directory=DIR` (the checkout is the agent user's, the
suite may be root), npm and the migrations run in the checkout through `env -C DIR`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from commands import cli
from configuration import Settings
from core import clock, ledger
from core.atomic import write_atomically
from core.vocabulary import ActionStatus, LedgerKind
from decision.state import state_directory
from probes.host import Box
from probes.services import ServiceManager

STATE_FILE = "update-{box}.json"


class StepFailed(Exception):
    """A step failed: what failed, and the tail of its output."""

    def __init__(self, what: str, tail: str = ""):
        super().__init__(what)
        self.what, self.tail = what, tail


class Refused(Exception):
    """The update cannot start: nothing was changed."""


class Interrupted(Exception):
    """SIGTERM while updating: the update rolls back at once (what a SIGKILL leaves, the next run does)."""


@dataclass
class Progress:
    """What an update has done so far, enough to undo it."""

    kind: str  # minor | major
    target: str  # the branch (minor) or REF (major) asked for
    from_commit: str
    from_branch: str | None  # the branch checked out before, None when the checkout was detached
    started_at: float
    pid: int
    step: str = ""
    backup: str | None = None  # a tarball (minor: .env and config/) or a full backup set's name (major)
    checked_out: bool = False  # the checkout step began: the old commit must be installed and built again
    migrated_database: bool = False  # a database migration began: the backup's dump must be restored
    to_commit: str | None = None
    services_touched: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Progress | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=1) + "\n")


def progress_path(settings: Settings) -> Path:
    return state_directory(settings) / STATE_FILE.format(box=settings.host.name)


def check_running(services: ServiceManager, names: list[str], within: float) -> str:
    """The services running after a start or restart, asked again until `within` seconds have passed (a unit may
    take a moment to be active); StepFailed naming each that is not."""
    deadline = time.monotonic() + within
    while True:
        services.forget()
        down = [f"{name} is {services.state(name)}" for name in names if not services.is_running(name)]
        if not down:
            return f"{', '.join(names)} running" if names else "nothing to start"
        if time.monotonic() > deadline:
            raise StepFailed("; ".join(down))
        time.sleep(0.5)


def tail(text: str, lines: int) -> str:
    kept = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


class Steps:
    """Numbered steps, said on the output and recorded in the ledger (`trail`); in a plan, only said."""

    def __init__(self, settings: Settings, box: Box, event: str, plan: bool):
        self.settings, self.box, self.event, self.plan = settings, box, event, plan
        self.state_dir = state_directory(settings)
        self.trail = ledger.ledger_path(settings.reports.dir)
        self.number = 0
        self.app = settings.application

    def say(self, text: str, err: bool = False) -> None:
        print(f"{self.settings.host.name}: {text}", file=sys.stderr if err else sys.stdout, flush=True)

    def record(self, step: str, status: str, detail: str, **extra) -> None:
        if not self.plan:
            cli.record_in_ledger(self.settings, LedgerKind.APP_UPDATE, {
                "event": self.event, "box": self.settings.host.name, "who": getpass.getuser(), "step": step,
                "status": status, "detail": detail, **extra})

    def step(self, what: str, act: Callable[[], str | None], how: str = "", changes: bool = True,
             before: Callable[[], None] | None = None) -> str | None:
        """One step: printed with its number, `before` (the progress file) then `act`, recorded. In a plan a
        step that changes the box is only said, with `how` (its commands)."""
        self.number += 1
        if self.plan and changes:
            self.say(f"[{self.number}] would {what}" + (f": {how}" if how else ""))
            return None
        if before is not None:
            before()
        try:
            said = act()
        except StepFailed as error:
            self.say(f"[{self.number}] {what}: FAILED: {error.what}" + (f"\n{error.tail}" if error.tail else ""),
                     err=True)
            self.record(what, ActionStatus.FAILED, error.what, output=error.tail)
            raise
        except (Interrupted, KeyboardInterrupt):
            self.say(f"[{self.number}] {what}: INTERRUPTED", err=True)
            self.record(what, ActionStatus.FAILED, "interrupted")
            raise
        self.say(f"[{self.number}] {what}: done" + (f": {said}" if said else ""))
        self.record(what, ActionStatus.DONE, said or "")
        return said

    # -- commands on the box

    def run(self, argv: list[str], timeout: float, what: str = "", privileged: bool = False) -> str:
        """The command's output; StepFailed with its exit status and output tail when it fails."""
        completed = self.box.run(argv, privileged=privileged, timeout=timeout)
        output = (completed.stdout or "") + (completed.stderr or "")
        if completed.returncode != 0:
            raise StepFailed(f"{what or ' '.join(argv)} exit {completed.returncode}",
                             tail(output, self.app.output_tail_lines))
        return output

    def git_argv(self, *args: str) -> list[str]:
        directory = str(self.app.dir)
        return [*self.app.run_as, *self.app.git, "-c", f"safe.directory={directory}", "-C", directory, *args]

    def git(self, *args: str, what: str = "") -> str:
        return self.run(self.git_argv(*args), self.app.git_timeout_seconds, what or f"git {' '.join(args)}").strip()

    def in_app_argv(self, argv: list[str]) -> list[str]:
        return [*self.app.run_as, "env", "-C", str(self.app.dir), *argv]

    def in_app(self, argv: list[str], timeout: float) -> str:
        output = self.run(self.in_app_argv(argv), timeout, " ".join(argv))
        last = tail(output, 1)
        return last[:200] if last else ""


def now() -> float:
    return clock.now()


def pid() -> int:
    return os.getpid()
