"""Named, guarded actions that change the host, and the record each one leaves.

Each family of actions lives in its own module of this package and registers itself with
`@remediation`; `load_all` imports every module, so a new family is a new module. An action
declares what it touches and a guard saying where it applies; in `plan` mode it only says what it
would do. It returns an `Outcome` instead of raising, so a broken action never breaks the run; one
whose command never ran (sudo refused it, the box stopped answering) is `could not act`, never `failed`.
`runner.py` takes a failed check through its action and the re-check.
"""

from __future__ import annotations

import importlib
import pkgutil
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from configuration import Settings
from core.unread import CouldNotRead
from core.vocabulary import ActionStatus, Mode


@dataclass
class Outcome:
    action: str
    status: ActionStatus
    detail: str
    exit_status: int | None = None
    output: str = ""
    # What a failed action leaves at risk that a human must hear of in this run, whatever the alert policy
    # decided (an emergency's close or shutdown call that failed: what the agent still holds).
    at_risk: str = ""

    def summary(self) -> str:
        code = f" (exit {self.exit_status})" if self.exit_status is not None else ""
        return f"{self.action}: {self.status}{code}: {self.detail}"


class Context(Protocol):
    """What an action may use: the settings, the box (probes/host.py) and its services, the mode,
    and a command runner on the box."""

    settings: Settings
    box: object
    services: object
    mode: Mode

    def run(self, argv: list[str], privileged: bool = True) -> subprocess.CompletedProcess: ...


@dataclass(frozen=True)
class Remediation:
    name: str
    touches: str
    act: Callable[..., Outcome]
    plan: Callable[..., str]
    guard: Callable[..., str | None] = field(default=lambda ctx, **params: None)
    # Every command it may run as root on the box, for this configuration: `make sudoers` prints them.
    privileged: Callable[[Settings], list[list[str]]] = field(default=lambda settings: [])
    # What it acts on, the same for every check that asks for the same thing (a service by name): called as
    # `target(ctx, **params)` with a `Named` context, the box's settings only (see `target_of` below).
    target: Callable[..., str] = field(default=lambda ctx, **params: "")

    def __call__(self, ctx: Context, **params) -> Outcome:
        try:
            refusal = self.guard(ctx, **params)
            if refusal:
                return Outcome(self.name, ActionStatus.SKIPPED, f"guard refused: {refusal}")
            if ctx.mode != Mode.APPLY:
                return Outcome(self.name, ActionStatus.PLANNED, f"would {self.plan(ctx, **params)}")
            return self.act(ctx, **params)
        except CouldNotRead as error:  # its command never ran (sudo refused it, the box stopped answering)
            return could_not_act(self.name, error)
        except Exception as error:  # an action that raises is recorded, never propagated
            return Outcome(self.name, ActionStatus.FAILED, f"{type(error).__name__}: {error}")


REGISTRY: dict[str, Remediation] = {}


def remediation(name: str, *, touches: str, plan: Callable[..., str], guard=None, privileged=None, target=None):
    """Register an action under the name that checks use in @pytest.mark.remediate(name).
    `privileged(settings)`: the commands it runs through `ctx.run(argv, privileged=True)`.
    `target(ctx, **params)`: what it acts on, from `ctx.settings` and the parameters only; by default the action
    and its parameters."""

    def register(act: Callable[..., Outcome]) -> Callable[..., Outcome]:
        REGISTRY[name] = Remediation(name, touches, act, plan, guard or (lambda ctx, **params: None),
                                     privileged or (lambda settings: []), target or _default_target(name))
        return act

    return register


def _default_target(name: str) -> Callable[..., str]:
    return lambda ctx, **params: name + "".join(f" {key}={value}" for key, value in sorted(params.items()))


@dataclass(frozen=True)
class Named:
    """What naming a target may use: the box's settings, nothing built. A target is asked before anything acts
    (a dependent's root cause, the budget's key), so it never reaches the box, its services or its database."""

    settings: Settings


def target_of(name: str, params: dict, settings: Settings) -> str:
    """What the action `name` acts on with these parameters, on which box: the key of its budget, the same for
    the root cause, the budget and the runner ("nuc-1 service trading-dashboard"). `params`: the action's
    (its marker's and the check's own). Raises what the action's `target` raises for parameters it does not take."""
    return f"{settings.host.name} {load_all()[name].target(Named(settings), **params)}".strip()


def command_as_run(box, argv: list[str], *, privileged: bool = True) -> str:
    """The command as it will run on the box, as the operator would type it there: with `sudo -n` in front where
    the box's [host] sudo is set and the command changes the box (as probes/host.py Box.run adds it; its
    `timeout` bound left out), each word quoted for a shell. Every plan names its commands through this, so "would
    run" is what will run: `sudo -n systemctl restart trading-dashboard`, not `systemctl restart ...`."""
    sudo = ["sudo", "-n"] if privileged and box.sudo else []
    return shlex.join([*sudo, *argv])


def could_not_act(action: str, error: CouldNotRead, before: str = "") -> Outcome:
    """Nothing the action needed ran on the box: what did not run, why, and the fix (`before`: what it was
    doing then, when that was a look rather than the action's own command)."""
    where = f" on box {error.box}" if error.box else ""
    said = f" ({error.detail})" if error.detail else ""
    fix = f": {error.fix}" if error.fix else ""
    detail = f"{before}{error.what} did not run{where}: {error.cause}{said}{fix}"
    return Outcome(action, ActionStatus.COULD_NOT_ACT, detail)


def command_outcome(action: str, argv: list[str], completed: subprocess.CompletedProcess, detail: str) -> Outcome:
    output = (completed.stdout or "") + (completed.stderr or "")
    status = ActionStatus.DONE if completed.returncode == 0 else ActionStatus.FAILED
    return Outcome(action, status, detail, completed.returncode, output.strip()[-2000:])


def load_all() -> dict[str, Remediation]:
    """Import every module of this package so that its actions register."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY
