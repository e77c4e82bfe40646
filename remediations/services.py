"""Restarting a stopped service, as the guide does after every failed status check.

The restart goes through the run's service probe (probes/services.py), which knows the service
manager: this module never asks which one it is.
"""

from __future__ import annotations

import time

from configuration import Settings
from core.vocabulary import ActionStatus
from decision.incidents import IncidentStore
from probes.services import MANAGERS
from remediations import Outcome, command_as_run, command_outcome, remediation


def _name(ctx, service: str | None = None, role: str | None = None) -> str:
    return service if service is not None else getattr(ctx.settings.services, role)


def _restartable(ctx, service=None, role=None) -> str | None:
    """Only our configured services, and never one its manager itself has given up on."""
    if role is not None and not hasattr(ctx.settings.services, role):
        return f"no service role {role!r} in [services]"
    name = _name(ctx, service, role)
    if name not in ctx.settings.services.critical():
        return f"{name!r} is not one of the configured services {ctx.settings.services.critical()}"
    return _held_by_an_emergency(ctx, name) or ctx.services.restart_refusal(name)


def _held_by_an_emergency(ctx, name: str) -> str | None:
    """What an emergency response stopped stays stopped until an operator resumes: no run restarts it."""
    state_dir = getattr(ctx, "state_dir", None)
    incident = IncidentStore(state_dir).current(ctx.settings.host.name) if state_dir else None
    if incident is None:
        return None
    stopped = name in incident.services_stopped or (
        name == ctx.settings.services.agent and incident.shutdown_called_at is not None)
    if not stopped:
        return None
    opened = time.strftime("%Y-%m-%d %H:%M", time.localtime(incident.opened_at))
    return (f"held back: the emergency response of {opened} ({incident.opened_by}) stopped {name}; nothing "
            f"resumes by itself: make resume WHO=... WHY=...")


def _plan(ctx, service=None, role=None) -> str:
    return "run " + command_as_run(ctx.box, ctx.services.restart_argv(_name(ctx, service, role)))


def _privileged(settings: Settings) -> list[list[str]]:
    manager = MANAGERS[settings.host.service_manager]
    return [manager.restart_argv_for(settings, name) for name in settings.services.critical()]


@remediation("restart_service", touches="one configured service", plan=_plan, guard=_restartable,
             privileged=_privileged, target=lambda ctx, service=None, role=None: f"service {_name(ctx, service, role)}")
def restart_service(ctx, service: str | None = None, role: str | None = None) -> Outcome:
    name = _name(ctx, service, role)
    argv = ctx.services.restart_argv(name)
    outcome = command_outcome("restart_service", argv, ctx.run(argv), f"restarted {name}")
    ctx.services.forget()
    if outcome.status == ActionStatus.DONE and not ctx.services.is_running(name):
        return Outcome("restart_service", ActionStatus.FAILED, f"{name} is {ctx.services.state(name)} after restart",
                       outcome.exit_status, outcome.output)
    if outcome.status == ActionStatus.FAILED:
        said = outcome.output.splitlines()[-1] if outcome.output else "no output"
        outcome.detail = f"restart of {name} failed ({said}); it is {ctx.services.state(name)}"
    return outcome
