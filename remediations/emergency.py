"""The emergency responses: for each kind of emergency, a ladder of steps, ordered so that each step
can still succeed when its turn comes.

The guide's own order cannot work: its critical-failure response stops trading-agent, then asks that
agent's API to close all positions; its breach response runs `ufw deny all`, cutting the operator's
own SSH session. Here:

1. The first response to any trading emergency stops new entries (the agent's pause-non-critical).
   It, the error storm's emergency mode and verbosity, and the diagnostics bundle are always allowed.
2. Closing positions, the agent's emergency shutdown, stopping services and locking the firewall are
   later steps: each is off unless `[emergency.responses]` turns it on, and then runs only on an
   emergency confirmed, seen `confirm_runs` runs in a row or by two different checks in one run.
3. Positions are closed through the agent while it still runs; the agent is shut down after that,
   and not at all when the close failed (it stays up, so they can still be closed through it).
4. A close or shutdown call is made at most once per incident. One that fails or times out is
   followed by reading the agent's state again and saying what it holds, never by calling again; what
   it holds is the outcome's `at_risk`, which a critical alert tells at once, on every channel: the
   positions may be open, and the next reminder would come hours later.
5. The firewall lock keeps the management addresses and the SSH port open (remediations/firewall.py).

Every step, taken or held back, is a line of the outcome with why; the incident
(decision/incidents.py) remembers what waits for `make resume`. Nothing here resumes anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from configuration import Settings
from core import clock
from core.vocabulary import ActionStatus
from decision.incidents import Incident, IncidentStore
from probes.endpoints import HttpReading, http_get, http_post
from probes.remote import readers
from probes.services import MANAGERS
from remediations import Outcome, bundle, command_as_run, firewall, remediation

# Step names, as the outcome and the incident's record say them.
PAUSE, EMERGENCY_MODE, VERBOSITY = "pause new entries", "emergency mode", "raise log verbosity"
BUNDLE, RECOVERY, NETWORK_LOG = "diagnostics bundle", "system recovery", "network failure log"
BACKUP = "emergency backup"
CLOSE, SHUTDOWN, STOP_TUNNEL = "close all positions", "emergency shutdown", "stop the tunnel"
STOP_DASHBOARD, FIREWALL, RESTART = "stop the dashboard", "firewall lock", "restart the agent"
DONE, FAILED, HELD, ALREADY, PLANNED = "done", "failed", "held back", "already done", "would run"


@dataclass
class Ladder:
    """One response on one box: the steps of one kind, in order, each recorded."""

    ctx: object
    kind: str
    incident: Incident
    dry: bool  # plan mode: decide every gate, call nothing
    lines: list[str] = field(default_factory=list)
    failed: bool = False
    at_risk: list[str] = field(default_factory=list)  # a close or shutdown that failed, and what the agent holds

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def confirmed(self) -> tuple[bool, str]:
        """An emergency confirmed: this many runs in a row, or two different checks in this run."""
        runs = self.settings.emergency.confirm_runs
        signals = len(self.incident.signals.get(self.ctx.run_id, []))
        if self.ctx.streak >= runs:
            return True, f"confirmed: found {self.ctx.streak} runs in a row"
        if signals >= 2:
            return True, f"confirmed: {signals} checks found an emergency in this run"
        return False, (f"not confirmed: found in {self.ctx.streak} run(s) of the {runs} in a row needed, by "
                       f"{signals} check(s) of this run; one reading never closes positions or stops anything")

    def say(self, step: str, status: str, why: str = "") -> None:
        self.lines.append(f"{step}: {status}" + (f": {why}" if why else ""))
        if status == FAILED:
            self.failed = True
        if not self.dry:
            self.incident.note(self.ctx.check, step, status, why)

    def shown(self, argv: list[str]) -> str:
        """A command of a step as it will run on the box, `sudo -n` included where it applies."""
        return command_as_run(self.ctx.box, argv)

    def done_before(self, step: str) -> bool:
        return any(entry["step"] == step and entry["status"] == DONE for entry in self.incident.steps)

    # -- the agent's API

    def post(self, path: str) -> HttpReading:
        api = self.settings.api
        return http_post(self.ctx.box, api.base_url.rstrip("/") + path, api.timeout_seconds)

    def get(self, path: str) -> HttpReading:
        api = self.settings.api
        return http_get(self.ctx.box, api.base_url.rstrip("/") + path, api.timeout_seconds, want_json=True)

    def agent_state(self) -> str:
        """What the agent says it holds now, for a call that failed: read, never called again."""
        reading = self.get(self.settings.emergency.endpoints.status)
        if reading.problem:
            return f"its state could not be read ({reading.problem}): look at the exchange by hand"
        body = reading.body or {}
        return (f"the agent now reports {body.get('openPositions', '?')} open position(s), trading paused: "
                f"{body.get('tradingPaused', '?')}, shut down: {body.get('shutdown', '?')}")

    # -- steps always allowed

    def api_step(self, step: str, path: str, flag: str | None = None) -> None:
        """A call the guide makes to slow the agent down; once per incident."""
        if (flag and getattr(self.incident, flag)) or self.done_before(step):
            return self.say(step, ALREADY, "earlier in this incident")
        if self.dry:
            return self.say(step, PLANNED, f"POST {path}")
        reading = self.post(path)
        if reading.problem:
            return self.say(step, FAILED, f"POST {path}: {reading.problem}")
        if flag:
            setattr(self.incident, flag, True)
        self.say(step, DONE, f"POST {path}")

    def pause(self) -> None:
        self.api_step(PAUSE, self.settings.emergency.endpoints.pause_trading, "paused")

    def take_bundle(self) -> None:
        if self.incident.bundle:
            return self.say(BUNDLE, ALREADY, self.incident.bundle)
        if self.dry:
            return self.say(BUNDLE, PLANNED, f"an archive in {self.settings.emergency.bundle_dir}")
        try:
            self.incident.bundle = bundle.write_bundle(self.ctx, f"{self.kind} found by {self.ctx.check}")
        except Exception as error:  # the bundle must never stop the steps after it
            return self.say(BUNDLE, FAILED, f"{type(error).__name__}: {error} ([emergency] bundle_dir must be a "
                                            f"directory the suite's user on the box may write)")
        self.say(BUNDLE, DONE, self.incident.bundle)

    def emergency_backup(self) -> None:
        """The guide's emergency-backup.sh, once per incident, before anything is stopped."""
        argv = self.settings.emergency.backup_command
        if self.done_before(BACKUP):
            return self.say(BACKUP, ALREADY, "earlier in this incident")
        if self.dry:
            return self.say(BACKUP, PLANNED, self.shown(argv))
        if not self.ctx.box.host.exists(argv[0]):
            return self.say(BACKUP, HELD, f"{argv[0]} is not installed ([emergency] backup_command)")
        completed = self.ctx.run(argv)
        said = (completed.stderr or completed.stdout).strip().splitlines()
        self.say(BACKUP, DONE if completed.returncode == 0 else FAILED,
                 f"{' '.join(argv)} exit {completed.returncode}" + (f": {said[-1]}" if said else ""))

    def log_network_failure(self) -> None:
        log = self.settings.paths.log_dir / "network-failures.log"
        if self.done_before(NETWORK_LOG):
            return self.say(NETWORK_LOG, ALREADY, str(log))
        if self.dry:
            return self.say(NETWORK_LOG, PLANNED, f"a line in {log}")
        stamp = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(clock.now()))
        try:  # written as the log directory's owner, never through a link (readers.append_line)
            self.ctx.box.call(readers.append_line, str(log), f"{stamp}: Network failure detected ({self.ctx.check})")
        except OSError as error:  # a link or a directory swapped there: said, and the steps after it go on
            return self.say(NETWORK_LOG, FAILED, str(error))
        self.say(NETWORK_LOG, DONE, str(log))

    def recovery(self) -> bool:
        """The guide's trading-system-recovery; True when the health is still critical after it."""
        argv = self.settings.emergency.recovery_command
        if self.dry:
            self.say(RECOVERY, PLANNED, self.shown(argv))
            return False
        if not self.ctx.box.host.exists(argv[0]):
            self.say(RECOVERY, HELD, f"{argv[0]} is not installed ([emergency] recovery_command)")
        else:
            completed = self.ctx.run(argv)
            self.say(RECOVERY, DONE if completed.returncode == 0 else FAILED,
                     f"{' '.join(argv)} exit {completed.returncode}")
        time.sleep(self.settings.remediation.recheck_after_seconds)
        reading = self.get("/api/health")
        health = (reading.body or {}).get("overallHealth") if reading.ok else None
        floor = self.settings.emergency.health_critical_below
        critical = health is None or not isinstance(health, (int, float)) or health < floor
        self.lines.append(f"health after recovery: {health if health is not None else reading.problem} "
                          f"({'below' if critical else 'at or above'} {floor:g})")
        return critical

    # -- the later steps: off unless enabled, and only on a confirmed emergency

    def gate(self, step: str, enabled: str) -> bool:
        if not getattr(self.settings.emergency.responses, enabled):
            self.say(step, HELD, f"off ([emergency.responses] {enabled} = false)")
            return False
        confirmed, why = self.confirmed
        if not confirmed:
            self.say(step, HELD, why)
            return False
        return True

    def close_positions(self) -> None:
        if self.incident.close_called_at is not None:
            return self.say(CLOSE, ALREADY if self.done_before(CLOSE) else HELD,
                            "called once in this incident already; never called twice")
        if not self.gate(CLOSE, "close_positions"):
            return None
        path = self.settings.emergency.endpoints.close_positions
        if self.dry:
            return self.say(CLOSE, PLANNED, f"POST {path} (once)")
        self.incident.close_called_at = clock.now()  # before the call: a call that hangs was made all the same
        reading = self.post(path)
        if reading.problem:
            holds = self.agent_state()
            self.at_risk.append(f"{CLOSE} failed (POST {path}: {reading.problem}); {holds}")
            return self.say(CLOSE, FAILED, f"POST {path}: {reading.problem}; not called again; {holds}")
        self.say(CLOSE, DONE, f"POST {path}: {reading.body}")

    def close_failed(self) -> bool:
        return any(entry["step"] == CLOSE and entry["status"] == FAILED for entry in self.incident.steps) or \
            any(line.startswith(f"{CLOSE}: {FAILED}") for line in self.lines)

    def shutdown(self) -> None:
        agent = self.settings.services.agent
        if self.incident.shutdown_called_at is not None:
            return self.say(SHUTDOWN, ALREADY, "called once in this incident already; never called twice")
        if not self.gate(SHUTDOWN, "shutdown"):
            return None
        if self.close_failed():
            return self.say(SHUTDOWN, HELD, "closing the positions failed: the agent stays up so that they can "
                                            "still be closed through it")
        path = self.settings.emergency.endpoints.shutdown
        stop = self.ctx.services.argv("stop", agent)
        if self.dry:
            return self.say(SHUTDOWN, PLANNED, f"POST {path} (once), then {self.shown(stop)}")
        self.incident.shutdown_called_at = clock.now()
        reading = self.post(path)
        if reading.problem:
            holds = self.agent_state()
            self.at_risk.append(f"{SHUTDOWN} failed (POST {path}: {reading.problem}); {agent} still runs; {holds}")
            return self.say(SHUTDOWN, FAILED, f"POST {path}: {reading.problem}; not called again, and {agent} "
                                              f"not stopped under it; {holds}")
        self.stop_service(SHUTDOWN, agent, f"POST {path} answered; ")

    def stop_service(self, step: str, name: str, before: str = "") -> None:
        argv = self.ctx.services.argv("stop", name)
        if self.dry:
            return self.say(step, PLANNED, self.shown(argv))
        completed = self.ctx.run(argv)
        if completed.returncode != 0:
            said = (completed.stderr or completed.stdout).strip().splitlines()
            return self.say(step, FAILED, f"{before}{' '.join(argv)} exit {completed.returncode}: "
                                          f"{said[-1] if said else 'no output'}")
        if name not in self.incident.services_stopped:
            self.incident.services_stopped = [*self.incident.services_stopped, name]
        self.say(step, DONE, f"{before}{name} stopped; only make resume starts it again")

    def stop_tunnel(self) -> None:
        tunnel = self.settings.services.tunnel
        if tunnel in self.incident.services_stopped:
            return self.say(STOP_TUNNEL, ALREADY, f"{tunnel} stopped earlier in this incident")
        if self.gate(STOP_TUNNEL, "stop_tunnel"):
            self.stop_service(STOP_TUNNEL, tunnel)

    def stop_dashboard(self) -> None:
        dashboard = self.settings.services.dashboard
        if dashboard in self.incident.services_stopped:
            return self.say(STOP_DASHBOARD, ALREADY, f"{dashboard} stopped earlier in this incident")
        if self.gate(STOP_DASHBOARD, "shutdown"):
            self.stop_service(STOP_DASHBOARD, dashboard)

    def lock_firewall(self) -> None:
        if self.incident.firewall_locked:
            return self.say(FIREWALL, ALREADY, "locked earlier in this incident")
        if not self.gate(FIREWALL, "firewall_lock"):
            return None
        responses = self.settings.emergency.responses
        keeps = f"keeps {', '.join(responses.management_addresses)} and TCP port {responses.ssh_port} open"
        if self.dry:
            return self.say(FIREWALL, PLANNED, f"{self.shown(firewall.lock_argv())} (the ruleset on its standard "
                                               f"input): {keeps}")
        completed = self.ctx.box.run(firewall.lock_argv(), privileged=True,  # the ruleset on its stdin, no file
                                     timeout=self.settings.remediation.timeout_seconds,
                                     input=firewall.ruleset(responses.management_addresses, responses.ssh_port))
        if completed.returncode != 0:
            said = (completed.stderr or completed.stdout).strip().splitlines()
            return self.say(FIREWALL, FAILED, f"exit {completed.returncode}: {said[-1] if said else 'no output'}")
        self.incident.firewall_locked = True
        self.say(FIREWALL, DONE, keeps)

    def restart_agent(self) -> None:
        """A dead agent that no response stopped: the guide's automatic recovery."""
        agent = self.settings.services.agent
        if agent in self.incident.services_stopped or self.incident.shutdown_called_at is not None:
            return self.say(RESTART, HELD, f"{agent} was stopped by this incident's shutdown: only make resume "
                                           f"starts it again")
        argv = self.ctx.services.argv("restart", agent)
        if self.dry:
            return self.say(RESTART, PLANNED, self.shown(argv))
        refusal = self.ctx.services.restart_refusal(agent)
        if refusal:
            return self.say(RESTART, HELD, refusal)
        completed = self.ctx.run(argv)
        self.say(RESTART, DONE if completed.returncode == 0 else FAILED,
                 f"{' '.join(argv)} exit {completed.returncode}")


# The ladders, in their order. A trading emergency starts by stopping new entries.
def _error_storm(ladder: Ladder) -> None:
    endpoints = ladder.settings.emergency.endpoints
    ladder.api_step(EMERGENCY_MODE, endpoints.emergency_mode, "emergency_mode")
    ladder.pause()
    ladder.api_step(VERBOSITY, endpoints.increase_verbosity)
    ladder.take_bundle()


def _breaker_cascade(ladder: Ladder) -> None:
    ladder.pause()
    still_critical = ladder.recovery()
    ladder.take_bundle()
    if still_critical or ladder.dry:
        ladder.close_positions()
        ladder.shutdown()


def _critical_health(ladder: Ladder) -> None:
    ladder.pause()
    ladder.emergency_backup()
    ladder.take_bundle()
    ladder.close_positions()
    ladder.shutdown()


def _agent_down(ladder: Ladder) -> None:
    """The API does not answer: nothing can be paused or closed through it; keep the evidence, recover."""
    ladder.lines.append("the agent's API does not answer: positions cannot be paused or closed through it")
    ladder.take_bundle()
    ladder.restart_agent()


def _network(ladder: Ladder) -> None:
    ladder.pause()
    ladder.log_network_failure()
    ladder.stop_tunnel()


def _breach(ladder: Ladder) -> None:
    ladder.pause()
    ladder.emergency_backup()
    ladder.take_bundle()  # the forensic copy, before anything is stopped
    ladder.close_positions()
    ladder.shutdown()
    ladder.stop_dashboard()
    ladder.lock_firewall()


LADDERS = {"error-storm": _error_storm, "breaker-cascade": _breaker_cascade, "critical-health": _critical_health,
           "agent-down": _agent_down, "network": _network, "breach": _breach}


def _known(ctx, kind: str, **_check_params) -> str | None:
    if kind not in LADDERS:
        return f"no emergency response {kind!r}; known: {', '.join(LADDERS)}"
    if getattr(ctx, "state_dir", None) is None:
        return "no state directory to keep the incident in"
    return None


def climb(ctx, kind: str, dry: bool) -> Ladder:
    store = IncidentStore(ctx.state_dir)
    if dry:  # decide on what is remembered, remember nothing
        incident = store.current(ctx.settings.host.name) or Incident(ctx.settings.host.name, clock.now(), ctx.check)
        incident.signal(ctx.run_id, ctx.check)
        ladder = Ladder(ctx, kind, incident, dry=True)
        LADDERS[kind](ladder)
        return ladder
    with store.open(ctx.settings.host.name, ctx.check) as incident:
        incident.signal(ctx.run_id, ctx.check)
        ladder = Ladder(ctx, kind, incident, dry=False)
        LADDERS[kind](ladder)
    return ladder


def _plan(ctx, kind: str, **_check_params) -> str:
    return f"respond to the {kind}: " + "; ".join(climb(ctx, kind, dry=True).lines)


def _target(ctx, kind: str, **_check_params) -> str:
    """A dead agent's response restarts it: the same target as every other restart of the agent (the daily
    service check's too), so the two never act on it twice. Every other response acts on the trading."""
    return f"service {ctx.settings.services.agent}" if kind == "agent-down" else "trading"


def _privileged(settings: Settings) -> list[list[str]]:
    """What the ladders may run as root, for this configuration: the services they may stop or restart,
    the recovery command, the firewall lock; and what `make resume` runs to undo them."""
    manager, services = MANAGERS[settings.host.service_manager], settings.services
    responses = settings.emergency.responses
    commands = [manager.command_for(settings, "restart", services.agent), settings.emergency.recovery_command,
                settings.emergency.backup_command]
    if responses.shutdown:
        commands += [manager.command_for(settings, verb, name) for verb in ("stop", "start")
                     for name in (services.agent, services.dashboard)]
    if responses.stop_tunnel:
        commands += [manager.command_for(settings, verb, services.tunnel) for verb in ("stop", "start")]
    if responses.firewall_lock:
        commands += [firewall.lock_argv(), firewall.unlock_argv()]
    return commands


@remediation("emergency_response", touches="the agent's trading (through its API), and, where enabled, its services "
             "and the firewall", plan=_plan, guard=_known, privileged=_privileged,
             target=_target)
def emergency_response(ctx, kind: str, **_check_params) -> Outcome:
    """`_check_params`: the asking check's own parameters (the probe target, the key file): one ladder
    answers every instance of its kind."""
    ladder = climb(ctx, kind, dry=False)
    taken = [line for line in ladder.lines if f": {DONE}" in line]
    held = [line for line in ladder.lines if f": {HELD}" in line]
    detail = f"{kind}: {len(taken)} step(s) taken, {len(held)} held back"
    if ladder.failed:
        detail += "; " + next(line for line in ladder.lines if f": {FAILED}" in line)
        status = ActionStatus.FAILED
    elif taken:
        status = ActionStatus.DONE
    else:  # every step was done before or is held back: nothing acted, nothing spent
        status, detail = ActionStatus.SKIPPED, f"{kind}: nothing new to do, {len(held)} step(s) held back"
    return Outcome("emergency_response", status, detail, output="\n".join(ladder.lines),
                   at_risk="; ".join(ladder.at_risk))
