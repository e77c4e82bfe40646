"""Taking a backup of a kind, and deleting backups past their kind's retention (Weekly 1, Backup Strategy 1).

Every step on a set's files is an operation of the backup program (probes/remote/backupscan.py: over SSH the program
root installed on the box, through one exact sudo rule per operation; on the box itself, in this process), so
the maintenance user's sudo rules allow exactly what a backup does, and the program decides what must never be
left to a caller. `take_backup`: the newest set of the kind is read back first and set aside as `.failed` only
if it reads back wrong (never one that verifies, never one that could not be read); then the program writes the
new set under `.partial` names (tar of the application directory, an incremental: the files changed since the
newest full; pg_dump's custom format; both under umask 077, so every file is 0600 from its first byte: it holds
the agent's `.env` and keys), with the services the kind stops (the guide stops the agent and the dashboard for
the full backup, nothing else) stopped only if running and started again in a `finally`, whatever failed, then
checked running. The set is read back (the tarball to its end, the files that matter in it, the dump by
pg_restore); a good one gets its checksums and its final names, a bad one is kept as `.failed` with the record of
the failed attempt, which the guard counts: one attempt per period, a human looks first.
"""

from __future__ import annotations

import shlex

from configuration import Settings
from configuration.backups import KINDS
from core.vocabulary import ActionStatus
from probes.backups import (
    DUMP,
    PROGRAM,
    TARBALL,
    BackupProbe,
    BackupProgram,
    file_names,
    program_commands,
    program_options,
)
from probes.remote import readers
from probes.services import MANAGERS
from remediations import Outcome, command_as_run, remediation

# The box's python sets the umask and becomes the command, its arguments passed as they are: no shell
# (the update's copy of the .env and config/, commands/update.py).
UMASK_077 = "import os, sys; os.umask(0o077); os.execvp(sys.argv[1], sys.argv[1:])"


def private(python: str, argv: list[str]) -> list[str]:
    """`argv` run so that what it creates is readable by its owner alone, from the first byte."""
    return [python, "-I", "-S", "-c", UMASK_077, *argv]


def _probe(ctx) -> BackupProbe:
    return BackupProbe(ctx.box, ctx.settings)


def _services(settings: Settings, kind: str) -> list[str]:
    return [getattr(settings.services, role) for role in settings.backups.kind(kind).stop_services]


def _privileged(settings: Settings) -> list[list[str]]:
    """The program's take, read-back and set-aside, and the stop and start of the services a kind stops."""
    manager = MANAGERS[settings.host.service_manager]
    services = dict.fromkeys(name for kind in settings.backups.kinds.enabled() for name in _services(settings, kind))
    return [*program_commands(settings, ("set-aside", "write", "finish")),
            *[manager.command_for(settings, verb, name) for name in services for verb in ("stop", "start")]]


def _guard(ctx, backup_kind: str) -> str | None:
    """A known, enabled kind; not while another backup of it is being written; and after a take of the suite's
    that failed, no second attempt within its period (the budget bounds every other retry): a human looks first.
    A set set aside because it no longer read back is no failed attempt: the take that replaces it goes on."""
    if backup_kind not in KINDS:
        return f"no backup kind {backup_kind!r}; kinds: {', '.join(KINDS)}"
    if not ctx.settings.backups.kind(backup_kind).enabled:
        return f"[backups.kinds.{backup_kind}] is not enabled"
    probe = _probe(ctx)
    writing = [s for s in probe.all_sets() if s.partial and s.kind == backup_kind and s not in probe.stale_partials()]
    if writing:
        return f"{writing[-1].name} is being written ({', '.join(file_names(writing[-1], '.partial'))})"
    recent = [s for s in probe.failed_attempts(backup_kind) if probe.age_days(s) <= probe.due_after_days(backup_kind)]
    if recent:
        failed = recent[-1]
        return (f"the {backup_kind} backup attempt {failed.name} failed {probe.age_days(failed):.1f} days ago and is "
                f"kept as {', '.join(file_names(failed, '.failed'))}: one attempt per period; find why (its report, "
                f"and {failed.name}.attempt.failed), then remove those files")
    return None


def _program(ctx, operation: str, kind: str | None = None) -> str:
    """The backup program's operation as it will run: here in this process, on a box through sudo."""
    options = program_options(ctx.settings, operation, kind)
    if ctx.box.local:
        return f"the backup program in this process ({shlex.join(options)})"
    return command_as_run(ctx.box, [PROGRAM, *options])


def _plan(ctx, backup_kind: str) -> str:
    """Each command as Taking runs it (`sudo -n` included over SSH); what the program does in words."""
    stop = _services(ctx.settings, backup_kind)
    config = ctx.settings.backups
    newest = _probe(ctx).newest(backup_kind)
    steps = [f"{_program(ctx, 'set-aside')} for {newest.name} (its name on standard input; set aside only if it "
             f"reads back wrong)"] if newest else []
    steps += [command_as_run(ctx.box, ctx.services.argv("stop", service)) + " (if running)" for service in stop]
    steps.append(f"{_program(ctx, 'write', backup_kind)}: tar of {config.app_dir}"
                 + (" (the files changed since the newest full)" if backup_kind == "incremental" else "")
                 + f" and pg_dump --format=custom of {ctx.settings.database.dbname} into {config.dir}/"
                 f"{backup_kind}-YYYYmmdd-HHMMSS.{{{TARBALL},{DUMP}}}.partial, under umask 077 (0600 from the first "
                 f"byte)")
    steps += [command_as_run(ctx.box, ctx.services.argv("start", service)) for service in reversed(stop)]
    steps += [f"check {', '.join(stop)} running (started whatever happened)"] if stop else []
    steps.append(f"{_program(ctx, 'finish')}: read both back, write their .sha256 and rename them (or keep them as "
                 f".failed)")
    return "run " + "; ".join(steps)


class ServiceWouldNotStop(Exception):
    """A service the kind stops did not stop: nothing was written."""


class Taking:
    """One take of one kind: what it did, in order, for the outcome."""

    def __init__(self, ctx, kind: str):
        self.ctx, self.kind, self.config = ctx, kind, ctx.settings.backups
        self.probe = _probe(ctx)
        self.program = BackupProgram(ctx.box, ctx.settings)
        self.said: list[str] = []
        self.set_aside: list[str] = []  # in words, for the outcome's detail
        self.problems: list[str] = []  # of the services, beside the set's own

    def run(self, argv: list[str], what: str) -> bool:
        completed = self.ctx.box.run(argv, privileged=True, timeout=self.config.take_timeout_seconds)
        if completed.returncode == 0:
            self.said.append(f"{what}: done")
            return True
        lines = [line for line in (completed.stderr or completed.stdout).splitlines() if line.strip()]
        said = lines[-1].strip() if lines else "no output"
        self.problems.append(f"{what} failed (exit {completed.returncode}): {said}")
        return False

    def set_aside_newest_if_bad(self) -> None:
        """The newest set of the kind, read back by the program: set aside only when it reads back wrong; one that
        could not be read raises CouldNotRead and nothing is renamed."""
        newest = self.probe.newest(self.kind)
        if newest is None:
            return
        done = self.program("set-aside", {"name": newest.name})
        if done["kept_as"]:
            self.set_aside.append(f"set aside {newest.name} as {', '.join(done['kept_as'])}: "
                                  + "; ".join(done["problems"]))

    def stop(self, stopped: list[str]) -> None:
        """Each service stopped is added to `stopped` at once: if a later one will not stop, the caller still
        starts the earlier ones again."""
        services = self.ctx.services
        services.forget()
        for name in _services(self.ctx.settings, self.kind):
            if not services.is_running(name):
                self.said.append(f"{name} was not running: left as it was")
                continue
            if not self.run(services.argv("stop", name), f"stop {name}"):
                raise ServiceWouldNotStop(self.problems[-1])
            stopped.append(name)

    def start(self, stopped: list[str]) -> None:
        services = self.ctx.services
        for name in reversed(stopped):
            self.run(services.argv("start", name), f"start {name}")
        services.forget()
        for name in stopped:
            if not services.is_running(name):
                self.problems.append(f"{name} is {services.state(name)} after the backup, expected running")

    def write(self) -> dict | None:
        """The program's write, the kind's services stopped meanwhile; None when one would not stop."""
        stopped: list[str] = []
        try:
            self.stop(stopped)
            return self.program("write", kind=self.kind)
        except ServiceWouldNotStop:
            return None
        finally:
            self.start(stopped)

    def take(self) -> Outcome:
        self.set_aside_newest_if_bad()
        written = self.write()
        if written is None:
            return self.outcome(ActionStatus.FAILED, "no backup taken: " + "; ".join(self.problems))
        self.said += written["said"]
        if written["problems"]:
            return self.outcome(ActionStatus.FAILED, f"{written['name']} failed and is kept as "
                                f"{', '.join(written['kept_as']) or 'nothing (no file was written)'}: "
                                + "; ".join(written["problems"] + self.problems))
        finished = self.program("finish", {"name": written["name"]})
        if finished["problems"]:
            return self.outcome(ActionStatus.FAILED, f"{written['name']} did not read back and is kept as "
                                f"{', '.join(finished['kept_as'])}: " + "; ".join(finished["problems"] + self.problems))
        took = (f"took {written['name']} ({written['name']}.{TARBALL}, {written['name']}.{DUMP}), read back whole, "
                f"checksums written")
        if self.problems:
            return self.outcome(ActionStatus.FAILED, f"{took}; but " + "; ".join(self.problems))
        return self.outcome(ActionStatus.DONE, took)

    def outcome(self, status: ActionStatus, detail: str) -> Outcome:
        return Outcome("take_backup", status, "; ".join([*self.set_aside, detail]), output="\n".join(self.said))


@remediation("take_backup", touches="the backups area: one new backup of a kind (the kind's services stopped "
             "meanwhile), and the newest one of the kind set aside if it reads back wrong", plan=_plan, guard=_guard,
             privileged=_privileged, target=lambda ctx, backup_kind: f"backups {backup_kind}")
def take_backup(ctx, backup_kind: str) -> Outcome:
    return Taking(ctx, backup_kind).take()


def _plan_prune(ctx) -> str:
    probe = _probe(ctx)
    old = probe.past_retention() + probe.stale_partials()
    return (f"run {_program(ctx, 'prune')}: delete {len(old)} backup(s) from {probe.directory}: "
            + ", ".join(s.name + s.state for s in old[:20]))


def _prune_guard(ctx) -> str | None:
    if not ctx.box.call(readers.is_dir, str(ctx.settings.backups.dir)):
        return f"{ctx.settings.backups.dir} is not a directory"
    return None


@remediation("prune_backups", touches="backups past their kind's keep_days (never the newest good one of a kind)",
             plan=_plan_prune, guard=_prune_guard, target=lambda ctx: "backups retention",
             privileged=lambda settings: program_commands(settings, ("prune",)))
def prune_backups(ctx) -> Outcome:
    done = BackupProgram(ctx.box, ctx.settings)("prune")
    return Outcome("prune_backups", ActionStatus.DONE,
                   f"deleted {len(done['sets'])} backup(s) past their retention ({len(done['removed'])} file(s)) from "
                   f"{ctx.settings.backups.dir}", output="\n".join(done["removed"]))
