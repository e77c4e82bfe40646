"""`make update-minor CONFIG=...`, `make update-major REF=v2.0.0 CONFIG=...` and `make update-rollback CONFIG=...`:
the guide's Update Procedures 1 and 2, rolled back when they fail.

    python -m commands update minor|major|rollback --config PATH [--ref REF] [--apply] [--box NAME]

Without --apply (APPLY=1) every step is printed with its commands and nothing changes. Minor: the .env and
config/ kept in [backups] dir (the guide's `backup.sh config`), `git fetch`, the configured branch checked out
and fast-forwarded to the remote's (never merged), install, test, build, the agent and the dashboard restarted.
Major: the agent, the dashboard and the tunnel stopped, a full backup (remediations/backups.py take_backup),
`git fetch`, REF (a tag or a commit) checked out, install, test, build, the migrations, then the tunnel, the
agent and the dashboard started in that order. Both end by running the daily checks of the box updated, of it
alone in a fleet (pytest -m daily --maintenance-box NAME, remediation off): the update passes only if every one
passes.

A failed step, a failed verification or a SIGTERM rolls back: the commit checked out before (git checkout and
reset --hard), the .env and config/ from the backup, the database from the full backup's dump if a database
migration ran (restored into a new database and swapped by renaming, commands/restore.py: the migrated one is
kept), the old commit installed and built again, the services restarted, and the daily checks run again. An
update killed outright leaves its progress file (commands/updatesteps.py): the next run rolls it back first.

Status: 0 updated (or planned), 1 failed and rolled back (the box is as before), 3 the rollback failed too
(a critical alert is sent: a human must look), 4 refused (nothing changed: the configuration, a checkout with
local changes, an unknown REF, another update running, an emergency response holding the box).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from alerts.delivery import deliver
from alerts.message import Alert
from commands import cli, restore
from commands.updatesteps import Interrupted, Progress, Refused, StepFailed, Steps, check_running, progress_path, tail
from commands.updatesteps import now as clock_now
from commands.updatesteps import pid as own_pid
from configuration import Settings
from core.vocabulary import ActionStatus, AlertKind, ExitStatus, Mode, Severity
from decision.incidents import IncidentStore
from decision.state import state_directory
from probes import restoredb
from probes.backups import DUMP, TARBALL, BackupProbe
from probes.host import Box
from probes.services import ServiceManager
from remediations import command_as_run, load_all
from remediations.backups import private
from remediations.runner import ActionContext

UPDATED, ROLLED_BACK, ROLLBACK_FAILED, REFUSED = 0, 1, 3, ExitStatus.BAD_CONFIGURATION
ROOT = Path(__file__).resolve().parent.parent
MINOR_RESTARTS = ("agent", "dashboard")  # Minor 1: systemctl restart trading-agent trading-dashboard
MAJOR_STOPS = ("agent", "dashboard", "tunnel")  # Major 2: systemctl stop trading-agent trading-dashboard ssh-tunnel
MAJOR_STARTS = ("tunnel", "agent", "dashboard")  # Major 2: systemctl start ssh-tunnel trading-agent trading-dashboard
CONFIG_MEMBERS = ("./.env", "./config")


def verify_argv(settings: Settings, config_path: Path) -> list[str]:
    """The daily checks of the box updated, and only its own: in a fleet, another box's finding must neither
    fail this update nor roll it back."""
    return [sys.executable, "-m", "pytest", "-m", "daily", "-q", "-p", "no:cacheprovider",
            f"--maintenance-config={config_path.resolve()}", f"--maintenance-box={settings.host.name}",
            f"--remediation={Mode.OFF}", *settings.application.verify_args]


class Update:
    def __init__(self, settings: Settings, config_path: Path, plan: bool, box: Box, services: ServiceManager):
        self.settings, self.config_path, self.plan = settings, config_path.resolve(), plan
        self.box, self.services = box, services
        self.app = settings.application
        self.path = progress_path(settings)
        self.time = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.progress: Progress | None = None
        self.steps: Steps | None = None

    # -- shared

    def names(self, roles) -> list[str]:
        return [getattr(self.settings.services, role) for role in roles]

    def shown(self, argv: list[str]) -> str:
        """A root command of a step as the plan says it: as it will run, `sudo -n` included where it applies."""
        return command_as_run(self.box, argv)

    def service_command(self, verb: str, name: str) -> str:
        return self.shown(self.services.argv(verb, name))

    def save(self, step: str = "") -> None:
        if step:
            self.progress.step = step
        self.progress.save(self.path)

    def step(self, what: str, act, how: str = "", changes: bool = True, **flags) -> str | None:
        """A step of the update: the progress file says it is under way (and `flags`) before it starts."""
        def before():
            for key, value in flags.items():
                setattr(self.progress, key, value)
            self.save(what)
        return self.steps.step(what, act, how, changes, before=None if self.plan else before)

    def bring_up(self, names: list[str]) -> str:
        """Each in order: restarted when running, started when not; then all checked running."""
        self.services.forget()
        for name in names:
            verb = "restart" if self.services.is_running(name) else "start"
            self.steps.run(self.services.argv(verb, name), self.settings.remediation.timeout_seconds, privileged=True)
        return check_running(self.services, names, self.settings.remediation.timeout_seconds)

    def stop(self, names: list[str]) -> str:
        self.services.forget()
        running = [name for name in names if self.services.is_running(name)]
        for name in running:
            self.steps.run(self.services.argv("stop", name), self.settings.remediation.timeout_seconds,
                           privileged=True)
        return f"stopped {', '.join(running)}" if running else "none was running"

    def verify_argv(self) -> list[str]:
        return verify_argv(self.settings, self.config_path)

    def verify(self) -> str:
        """The daily checks of this box, as their own run; anything but every one passing fails."""
        try:
            done = subprocess.run(self.verify_argv(), cwd=ROOT, capture_output=True, text=True,
                                  timeout=self.app.verify_timeout_seconds, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"the daily checks did not finish within {self.app.verify_timeout_seconds:g}s") from None
        output = done.stdout + done.stderr
        if done.returncode != ExitStatus.ALL_PASSED:
            raise StepFailed(f"the daily checks did not all pass (exit {done.returncode})",
                             tail(output, self.app.output_tail_lines))
        return tail(output, 1)

    # -- before anything

    def preflight(self) -> None:
        """Refused before anything changes: an emergency response holding the box, a checkout that is not a
        clean git checkout."""
        incident = IncidentStore(state_directory(self.settings)).current(self.settings.host.name)
        if incident is not None and incident.services_stopped:
            raise Refused(f"an emergency response holds {', '.join(incident.services_stopped)}: "
                          f"make resume first")
        try:
            changed = self.steps.git("status", "--porcelain", "--untracked-files=no")
        except StepFailed as error:
            raise Refused(f"{self.app.dir} is not a git checkout that answers: {error.what}: {error.tail}") from None
        if changed:
            raise Refused(f"{self.app.dir} has local changes; an update would lose them or fail on them:\n{changed}")

    def record_start(self, kind: str, target: str) -> str:
        commit = self.steps.git("rev-parse", "HEAD")
        try:
            branch = self.steps.git("symbolic-ref", "--short", "-q", "HEAD")
        except StepFailed:
            branch = None  # detached (after a major update to a tag)
        self.progress = Progress(kind, target, commit, branch or None, clock_now(), own_pid())
        if not self.plan:
            self.save("start")
        return f"at {commit[:12]}" + (f" on {branch}" if branch else " (detached)")

    # -- the updates

    def backup_config(self) -> str:
        name = f"config-before-update-{self.time}.tar.gz"
        argv = restore.config_tarball_argv(self.settings, name)
        self.steps.run(["mkdir", "-p", str(self.settings.backups.dir)], self.app.git_timeout_seconds, privileged=True)
        # 0600 from its first byte (the tarball holds the .env's secrets): never written, then chmod-ed
        self.steps.run(private(self.settings.host.python, argv), self.settings.backups.take_timeout_seconds,
                       privileged=True)
        self.progress.backup = argv[5]
        self.save()
        return f".env and config/ kept in {argv[5]}"

    def backup_full(self) -> str:
        outcome = load_all()["take_backup"](self.context(), backup_kind="full")
        if outcome.status != ActionStatus.DONE:
            raise StepFailed(f"the full backup: {outcome.summary()}", tail(outcome.output, self.app.output_tail_lines))
        newest = BackupProbe(self.box, self.settings).newest("full")
        self.progress.backup = newest.name
        self.save()
        return outcome.detail

    def context(self) -> ActionContext:
        """What take_backup needs: the update's box and services, acting."""
        return ActionContext(self.settings, self.box, self.services, Mode.APPLY,
                             state_dir=state_directory(self.settings))

    def checkout_minor(self) -> str:
        app = self.app
        self.steps.git("checkout", app.branch)
        self.steps.git("merge", "--ff-only", f"{app.remote}/{app.branch}",
                       what=f"git merge --ff-only {app.remote}/{app.branch} (a fast-forward only)")
        return self.at_commit()

    def checkout_major(self, ref: str) -> str:
        self.steps.git("checkout", "--detach", f"{ref}^{{commit}}", what=f"git checkout --detach {ref}")
        return self.at_commit()

    def at_commit(self) -> str:
        self.progress.to_commit = self.steps.git("rev-parse", "HEAD")
        self.save()
        return f"at {self.progress.to_commit[:12]}"

    def migrate(self, commands: list[list[str]]) -> str:
        return "; ".join(f"{' '.join(argv)}: " + self.steps.in_app(argv, self.app.migrate_timeout_seconds)
                         for argv in commands)

    def run_update(self, kind: str, ref: str | None) -> None:
        app, steps = self.app, self.steps
        target = app.branch if kind == "minor" else ref
        steps.step("read the checkout", lambda: self.record_start(kind, target), changes=False)
        fetch = ["fetch", "--tags", app.remote]
        if kind == "minor":
            self.step("keep .env and config/ (the guide's backup.sh config)", self.backup_config,
                      how=self.shown(private(self.settings.host.python, restore.config_tarball_argv(
                          self.settings, f"config-before-update-{self.time}.tar.gz"))) + " (umask 077: 0600)")
            self.step(f"fetch {app.remote}", lambda: self.steps.git(*fetch) or "fetched",
                      how=" ".join(steps.git_argv(*fetch)))
            self.step(f"check out {app.branch} and fast-forward it to {app.remote}/{app.branch}", self.checkout_minor,
                      how=f"{' '.join(steps.git_argv('checkout', app.branch))}; "
                          f"{' '.join(steps.git_argv('merge', '--ff-only', f'{app.remote}/{app.branch}'))}",
                      checked_out=True)
        else:
            stops = self.names(MAJOR_STOPS)
            self.step(f"stop {', '.join(stops)}", lambda: self.stop(stops),
                      how="; ".join(self.service_command("stop", name) for name in stops) + " (those running)",
                      services_touched=stops)
            self.step("take a full backup (take_backup full: the application directory and the database)",
                      self.backup_full, how=load_all()["take_backup"].plan(self.context(), backup_kind="full"))
            self.step(f"fetch {app.remote}", lambda: self.steps.git(*fetch) or "fetched",
                      how=" ".join(steps.git_argv(*fetch)))
            if not self.plan:  # an unknown REF is refused before anything that matters: the services come back
                self.steps.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what=f"no commit {ref}")
            self.step(f"check out {ref}", lambda: self.checkout_major(ref),
                      how=" ".join(steps.git_argv("checkout", "--detach", f"{ref}^{{commit}}")), checked_out=True)
        for name, argv, seconds in (("install", app.install, app.install_timeout_seconds),
                                    ("test", app.test, app.test_timeout_seconds),
                                    ("build", app.build, app.build_timeout_seconds)):
            self.step(f"{name}: {' '.join(argv)}", lambda argv=argv, seconds=seconds: self.steps.in_app(argv, seconds),
                      how=" ".join(steps.in_app_argv(argv)))
        if kind == "major":
            if app.migrate_database:
                self.step("migrate the database", lambda: self.migrate(app.migrate_database),
                          how="; ".join(" ".join(steps.in_app_argv(a)) for a in app.migrate_database),
                          migrated_database=True)
            if app.migrate_config:
                self.step("migrate the configuration", lambda: self.migrate(app.migrate_config),
                          how="; ".join(" ".join(steps.in_app_argv(a)) for a in app.migrate_config))
            names = self.names(MAJOR_STARTS)
            self.step(f"start {', '.join(names)} in that order and check them running", lambda: self.bring_up(names),
                      how="; ".join(self.service_command("start", name) for name in names))
        else:
            names = self.names(MINOR_RESTARTS)
            self.step(f"restart {', '.join(names)} and check them running", lambda: self.bring_up(names),
                      how="; ".join(self.service_command("restart", name) for name in names),
                      services_touched=names)
        self.step("verify: the daily checks pass", self.verify, how=" ".join(self.verify_argv()))

    # -- the rollback

    def rollback(self, progress: Progress) -> bool:
        """Back to the commit and the backup of before the update; True when every step of it succeeded and
        the daily checks pass again. Each step is tried whatever the one before did."""
        number = self.steps.number if self.steps else 0
        self.steps = Steps(self.settings, self.box, f"update-{progress.kind}-rollback", self.plan)
        self.steps.number = number
        self.progress = progress
        self.steps.say(("the plan of the rollback" if self.plan else "ROLLING BACK")
                       + f" to {progress.from_commit[:12]} (the {progress.kind} update to {progress.target} "
                         f"stopped at: {progress.step})", err=True)
        failed = []

        def attempt(what, act, how=""):
            try:
                self.steps.step(what, act, how)
            except StepFailed as error:
                failed.append(f"{what}: {error.what}")

        app, commit = self.app, progress.from_commit
        full = progress.kind == "major" and progress.backup is not None
        if progress.kind == "major":
            stops = self.names(MAJOR_STOPS)
            attempt(f"stop {', '.join(stops)}", lambda: self.stop(stops))
        back = (["checkout", "-f", progress.from_branch], ["reset", "--hard", commit]) if progress.from_branch \
            else (["checkout", "-f", "--detach", commit],)
        attempt(f"check out {commit[:12]} again" + (f" on {progress.from_branch}" if progress.from_branch else ""),
                lambda: self.check_out_again(back, commit),
                how="; ".join(" ".join(self.steps.git_argv(*args)) for args in back))
        if progress.backup:
            tarball = (str(self.settings.backups.dir / f"{progress.backup}.{TARBALL}") if full
                       else progress.backup)
            extract = ["tar", "-xzf", tarball, "-C", str(self.settings.backups.app_dir), *CONFIG_MEMBERS]
            attempt(f"put .env and config/ back from {Path(tarball).name}",
                    lambda: self.steps.run(extract, self.settings.backups.take_timeout_seconds, privileged=True)
                    or f"extracted from {tarball}", how=" ".join(extract))
        if progress.migrated_database and full:
            attempt(f"restore the database from {progress.backup}.{DUMP} (a database migration ran)",
                    lambda: self.restore_database(progress.backup),
                    how=f"the dump into a new database, compared, then swapped by renaming (commands/restore.py); "
                        f"the migrated one kept as {self.settings.database.dbname}_before_<time>")
        if progress.checked_out:
            for name, argv, seconds in (("install", app.install, app.install_timeout_seconds),
                                        ("build", app.build, app.build_timeout_seconds)):
                attempt(f"{name} {commit[:12]} again: {' '.join(argv)}",
                        lambda argv=argv, seconds=seconds: self.steps.in_app(argv, seconds),
                        how=" ".join(self.steps.in_app_argv(argv)))
        names = self.names(MAJOR_STARTS if progress.kind == "major" else MINOR_RESTARTS)
        attempt(f"restart {', '.join(names)} and check them running", lambda: self.bring_up(names))
        attempt("verify: the daily checks pass again", self.verify, how=" ".join(self.verify_argv()))
        if self.plan:
            return True
        if failed:
            self.progress.step = "rollback failed: " + "; ".join(failed)
            self.progress.save(self.path)  # the next run tries the rollback again
            self.steps.record("rollback", ActionStatus.FAILED, "; ".join(failed))
            return False
        self.path.unlink(missing_ok=True)
        self.steps.record("rollback", ActionStatus.DONE, f"back at {commit[:12]}")
        return True

    def check_out_again(self, commands, commit: str) -> str:
        for args in commands:
            self.steps.git(*args)
        head = self.steps.git("rev-parse", "HEAD")
        if head != commit:
            raise StepFailed(f"HEAD is {head[:12]}, expected {commit[:12]}")
        return f"HEAD is {commit[:12]}"

    def restore_database(self, backup_name: str) -> str:
        """The update's own full backup's dump into a new database, swapped in by renaming (commands/restore.py):
        the migrated database is kept. The backup was taken minutes before with the agent stopped, so unlike
        `make restore` what differs from the migrated database (the tables a migration added) is said, not
        refused: a dump that does not load is."""
        settings, live = self.settings, self.settings.database.dbname
        backup = restore.find_backup(self.box, settings, backup_name)
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        restored, before = f"{live}_restore_{stamp}", f"{live}_before_{stamp}"
        owner = restoredb.owner_of(settings, live) or settings.database.user
        result = restoredb.restore_and_compare(self.box, settings, backup.path(DUMP), restored,
                                               datetime.fromtimestamp(backup.taken_at, UTC), owner)
        if result.error:
            restoredb.drop(settings, restored)
            raise StepFailed(f"{result.error} ({restored} dropped; {live} is still the migrated one)")
        swapped = restore._swap(settings, live, restored, before)
        differences = result.comparison.problems if result.comparison else []
        return (f"{backup.part(DUMP)} restored in {result.seconds:.1f}s; {swapped}"
                + (f"; the migrated one differed: {'; '.join(differences)}" if differences else ""))


def alert(settings: Settings, kind: AlertKind, severity: str, title: str, message: str) -> None:
    deliver([Alert(check_id="UPDATE", severity=severity, kind=kind, title=title, message=message,
                   box=settings.host.name,
                   why="an application update that failed and could not be undone leaves the agent on code "
                       "nobody tested with this box")], settings.alerts)


def rollback_unfinished(job: Update) -> int | None:
    """An update left unfinished (killed, or its rollback failed) is rolled back first; None when there is none."""
    progress = Progress.load(job.path)
    if progress is None:
        return None
    job.steps = Steps(job.settings, job.box, f"update-{progress.kind}", job.plan)
    job.steps.say(f"an unfinished {progress.kind} update to {progress.target} (from {progress.from_commit[:12]}, "
                  f"stopped at: {progress.step}) is rolled back first", err=True)
    return finish_rollback(job, progress, f"the unfinished {progress.kind} update to {progress.target}")


def finish_rollback(job: Update, progress: Progress, what: str) -> int:
    settings = job.settings
    if job.rollback(progress):
        if not job.plan:
            job.steps.say(f"{what} was ROLLED BACK: {progress.from_commit[:12]} is checked out again and the daily "
                          f"checks pass; every step is in {job.steps.trail}", err=True)
            alert(settings, AlertKind.PROBLEM, Severity.WARNING, f"{what} failed and was rolled back",
                  f"back at {progress.from_commit[:12]}; every step is in {job.steps.trail}")
        return ROLLED_BACK
    message = (f"{what} failed and its ROLLBACK FAILED ({progress.step}): the box may run code or configuration "
               f"nobody tested. Look at {job.steps.trail}; make update-rollback "
               f"CONFIG={settings.source} tries again")
    job.steps.say(message, err=True)
    alert(settings, AlertKind.HUMAN_NEEDED, Severity.CRITICAL, f"{what}: rollback FAILED", message)
    return ROLLBACK_FAILED


def update(job: Update, kind: str, ref: str | None) -> int:
    job.steps = Steps(job.settings, job.box, f"update-{kind}", job.plan)
    job.preflight()
    try:
        job.run_update(kind, ref)
    except (StepFailed, Interrupted, KeyboardInterrupt) as error:
        if job.progress is None or not job.path.exists():
            raise Refused(f"nothing was changed: {getattr(error, 'what', 'interrupted')}") from None
        return finish_rollback(job, job.progress, f"the {kind} update to {job.progress.target}")
    if not job.plan:
        job.path.unlink(missing_ok=True)
        job.steps.record("update", ActionStatus.DONE, f"at {job.progress.to_commit}")
        job.steps.say(f"updated from {job.progress.from_commit[:12]} to {job.progress.to_commit[:12]}; the daily "
                      f"checks pass; every step is in {job.steps.trail}")
    return UPDATED


def _interrupted(_number, _frame):
    raise Interrupted()


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("minor", "major", "rollback"),
                        help="minor: the configured branch, fast-forward only (Update 1); major: --ref (Update 2); "
                             "rollback: undo an unfinished update")
    parser.add_argument("--ref", help="major: the tag or commit to update to")
    parser.add_argument("--apply", action="store_true", help="update; without it each step is printed, nothing changes")


def run(call: cli.Call) -> int:
    args = call.args
    if args.what == "major" and not args.ref:
        call.error("major: --ref TAG_OR_COMMIT (make update-major REF=v2.0.0)")
    if args.ref is not None and (args.ref.startswith("-") or not args.ref.strip()
                                 or any(c.isspace() for c in args.ref)):
        call.error(f"--ref {args.ref!r} is not a tag or commit")
    box = call.one_box()
    job = Update(box, call.config_path, not args.apply, call.box(box), call.services(box))
    lock_path = state_directory(box) / f"update-{box.host.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        with FileLock(str(lock_path), timeout=0):
            return locked(job, args.what, args.ref)
    except Timeout:
        print(f"{box.host.name}: NOT updated: another update of this box is running ({lock_path})", file=sys.stderr)
        return REFUSED
    except Refused as error:
        print(f"{box.host.name}: NOT updated: {error}", file=sys.stderr)
        return REFUSED


def locked(job: Update, what: str, ref: str | None) -> int:
    """Under the box's update lock: an unfinished update rolled back first, then this one."""
    name = job.settings.host.name
    left = rollback_unfinished(job)
    if what == "rollback":
        if left is None:
            print(f"{name}: no unfinished update to roll back")
        return UPDATED if left in (None, ROLLED_BACK) else left
    if left == ROLLBACK_FAILED:
        return left
    if left is not None and not job.plan:
        print(f"{name}: the unfinished update is rolled back; now the {what} update", flush=True)
    if job.plan:
        print(f"{name}: the plan of the {what} update (APPLY=1 updates):")
    return update(Update(job.settings, job.config_path, job.plan, job.box, job.services), what, ref)


VERB = cli.Verb(
    "update", "an application update, rolled back when it fails (make update-minor, update-major, update-rollback)",
    __doc__, arguments, run, boxes=cli.Boxes.ONE)
