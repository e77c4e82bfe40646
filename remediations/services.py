"""Restarting a stopped service, as the guide does after every failed status check."""

from __future__ import annotations

from remediations import DONE, FAILED, Outcome, command_outcome, remediation


def _name(ctx, service: str | None = None, role: str | None = None) -> str:
    return service if service is not None else getattr(ctx.settings.services, role)


def _argv(ctx, name: str) -> list[str]:
    if ctx.settings.host.service_manager == "supervisor":
        return [*ctx.settings.host.supervisorctl, "restart", name]
    return ["systemctl", "restart", name]


def _restartable(ctx, service=None, role=None) -> str | None:
    """Only our configured services, and never a systemd unit that systemd itself has given up on."""
    if role is not None and not hasattr(ctx.settings.services, role):
        return f"no service role {role!r} in [services]"
    name = _name(ctx, service, role)
    if name not in ctx.settings.services.critical():
        return f"{name!r} is not one of the configured services {ctx.settings.services.critical()}"
    if ctx.settings.host.service_manager == "systemd":
        result = ctx.run(["systemctl", "show", "--property=Result", "--value", name]).stdout.strip()
        if result == "start-limit-hit":
            return (f"{name} is stuck at its systemd start limit (start-limit-hit): find why it keeps dying "
                    f"(journalctl -u {name}), then systemctl reset-failed {name}")
    return None


def _plan(ctx, service=None, role=None) -> str:
    return "run " + " ".join(_argv(ctx, _name(ctx, service, role)))


@remediation("restart_service", touches="one configured service", plan=_plan, guard=_restartable)
def restart_service(ctx, service: str | None = None, role: str | None = None) -> Outcome:
    name = _name(ctx, service, role)
    argv = _argv(ctx, name)
    outcome = command_outcome("restart_service", argv, ctx.run(argv), f"restarted {name}")
    if outcome.status == DONE and not ctx.services.is_running(name):
        return Outcome("restart_service", FAILED, f"{name} is {ctx.services.state(name)} after restart",
                       outcome.exit_status, outcome.output)
    if outcome.status == FAILED:
        outcome.detail = f"restart of {name} failed; it is {ctx.services.state(name)}"
    return outcome
