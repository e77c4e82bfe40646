"""Named, guarded actions that change the host, and the record each one leaves.

Each family of actions lives in its own module and registers itself with `@remediation`. An action
declares what it touches and a guard saying where it applies; in `plan` mode it only says what it
would do. It returns an `Outcome` instead of raising, so a broken action never breaks the run.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Callable, Protocol

PLANNED, DONE, FAILED, SKIPPED = "planned", "done", "failed", "skipped"


@dataclass
class Outcome:
    action: str
    status: str
    detail: str
    exit_status: int | None = None
    output: str = ""

    def summary(self) -> str:
        code = f" (exit {self.exit_status})" if self.exit_status is not None else ""
        return f"{self.action}: {self.status}{code}: {self.detail}"


class Context(Protocol):
    """What an action may use: the settings, the host and its services, the mode, a command runner."""

    settings: object
    host: object
    services: object
    mode: str

    def run(self, argv: list[str]) -> subprocess.CompletedProcess: ...


@dataclass(frozen=True)
class Remediation:
    name: str
    touches: str
    act: Callable[..., Outcome]
    plan: Callable[..., str]
    guard: Callable[..., str | None] = field(default=lambda ctx, **params: None)

    def __call__(self, ctx: Context, **params) -> Outcome:
        try:
            refusal = self.guard(ctx, **params)
            if refusal:
                return Outcome(self.name, SKIPPED, f"guard refused: {refusal}")
            if ctx.mode != "apply":
                return Outcome(self.name, PLANNED, f"would {self.plan(ctx, **params)}")
            return self.act(ctx, **params)
        except Exception as error:  # an action that raises is recorded, never propagated
            return Outcome(self.name, FAILED, f"{type(error).__name__}: {error}")


REGISTRY: dict[str, Remediation] = {}


def remediation(name: str, *, touches: str, plan: Callable[..., str], guard=None):
    """Register an action under the name that checks use in @pytest.mark.remediate(name)."""

    def register(act: Callable[..., Outcome]) -> Callable[..., Outcome]:
        REGISTRY[name] = Remediation(name, touches, act, plan, guard or (lambda ctx, **params: None))
        return act

    return register


def command_outcome(action: str, argv: list[str], completed: subprocess.CompletedProcess, detail: str) -> Outcome:
    output = (completed.stdout or "") + (completed.stderr or "")
    status = DONE if completed.returncode == 0 else FAILED
    return Outcome(action, status, detail, completed.returncode, output.strip()[-2000:])


def load_all() -> dict[str, Remediation]:
    """Import every family so that its actions register."""
    from remediations import diagnostics, files, services  # noqa: F401

    return REGISTRY
