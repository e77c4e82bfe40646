"""`make restore-config BACKUP=... CONFIG=...` and `make restore BACKUP=... CONFIG=... [PLAN=1]`: the guide's
Recovery Procedures 1 and 2, made safe.

    python -m commands restore config|full --config PATH --backup NAME_OR_PATH [--plan] [--box NAME]

BACKUP is a set of [backups] dir by name (`full-20261122-030000`) or any of its files. Nothing is
touched before the set has read back whole: its tarball to the end of its gzip stream, its dump by
pg_restore, their checksums, the files that matter; one that does not is refused in one line, status
4. `config` puts the backup's `.env` and `config/` back (the current ones kept in a
`config-before-restore-KIND-TIME.tar.gz` first), gives them to [services] user, restarts the agent and the
dashboard and checks them running. `full` first restores the dump into a new database
`DBNAME_restore_TIME` and compares it with the live one (every live row created before the backup
must be in it); only then it stops the agent, the dashboard and the tunnel, puts the application
files back, and swaps the databases by renaming: the live one is kept as `DBNAME_before_TIME` until
the daily checks pass (the last line says how to drop it). The services it stopped are started again
whatever failed. The guide instead runs `dropdb trading_agent` before anything has shown the dump
can be restored. `--plan` prints each step and changes nothing (the backup is still read back).
Every step, done or failed, is a line of the ledger (core/ledger.py). The backup is read and
loaded by the backup program as root on the box (probes/remote/backupscan.py, its sudo rules over SSH), and the
suite's own statements reach the database as a run's do: over SSH through the SSH connection's forward to a
socket in the state directory (probes/restoredb.py `reach`), never [database] host:port from here.

Status: 0 restored, 1 a step failed (what was done is said, and in the ledger), 4 refused (the
backup does not verify or restore, could not be read or its database reached, or the configuration does not
load).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from commands import cli
from commands.updatesteps import StepFailed, check_running
from configuration import Settings
from core import ledger
from core.unread import CouldNotRead
from core.vocabulary import ExitStatus, LedgerKind
from decision.incidents import IncidentStore
from decision.state import state_directory
from probes import restoredb
from probes.backups import DUMP, TARBALL, BackupProbe, BackupSet, parse
from probes.database import DatabaseUnavailable, SocketPathTooLong
from probes.host import Box
from probes.remote import backupscan, readers
from probes.services import ServiceManager

RESTORED, STEP_FAILED, REFUSED = 0, 1, ExitStatus.BAD_CONFIGURATION
GUIDE_STOPS = ("agent", "dashboard", "tunnel")  # Recovery 2: systemctl stop trading-agent trading-dashboard ssh-tunnel
CONFIG_RESTARTS = ("agent", "dashboard")  # Recovery 1: systemctl restart trading-agent trading-dashboard
CONFIG_FILES = (".env", "config/")


def config_tarball_argv(settings: Settings, name: str) -> list[str]:
    """tar of the .env and config/ of [backups] app_dir into [backups] dir/NAME: what is kept before a
    restore, and the guide's `backup.sh config` before a minor update (commands/update.py)."""
    config = settings.backups
    return ["tar", "-C", str(config.app_dir), "--ignore-failed-read", "-czf", str(config.dir / name),
            "./.env", "./config"]


class Refused(Exception):
    """The backup cannot be restored: nothing was changed."""


class Restore:
    def __init__(self, settings: Settings, kind: str, backup: BackupSet, plan: bool, box: Box,
                 services: ServiceManager):
        self.settings, self.kind, self.backup, self.plan = settings, kind, backup, plan
        self.box, self.services = box, services
        self.probe = BackupProbe(self.box, settings)
        self.time = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        self.state_dir = state_directory(settings)
        self.number = 0
        self.held: dict[str, set[str]] = {}  # by layer: what verify found it holds
        self.server: restoredb.Server | None = None  # where the database is reached (restore_full opens it)

    # -- the trail

    def say(self, text: str, err: bool = False) -> None:
        print(f"{self.settings.host.name}: {text}", file=sys.stderr if err else sys.stdout, flush=True)

    def record(self, step: str, status: str, detail: str) -> None:
        if not self.plan:
            cli.record_in_ledger(self.settings, LedgerKind.RESTORE, {
                "event": f"restore-{self.kind}", "box": self.settings.host.name, "backup": self.backup.name,
                "who": getpass.getuser(), "step": step, "status": status, "detail": detail})

    def step(self, what: str, act: Callable[[], str | None], changes: bool = True, how: str = "") -> str | None:
        """One numbered step: printed, done (unless planned and it changes the box), and recorded. `how`:
        the commands a plan shows."""
        self.number += 1
        if self.plan and changes:
            self.say(f"[{self.number}] would {what}" + (f": {how}" if how else ""))
            return None
        try:
            said = act()
        except Refused as error:  # said once, in one line, by main
            self.record(what, "refused", str(error))
            raise
        except StepFailed as error:
            self.say(f"[{self.number}] {what}: FAILED: {error}", err=True)
            self.record(what, "failed", str(error))
            raise
        self.say(f"[{self.number}] {what}: done" + (f": {said}" if said else ""))
        self.record(what, "done", said or "")
        return said

    def run(self, argv: list[str]) -> str:
        """One command of a step as root on the box; one sudo refused (no rule for it) or that never ran is a
        failed step like one that failed, said and recorded."""
        try:
            completed = self.box.run(argv, privileged=True, timeout=self.settings.backups.take_timeout_seconds)
        except CouldNotRead as error:
            raise StepFailed(f"{' '.join(argv)} did not run: {error.cause} ({error.detail})") from None
        if completed.returncode != 0:
            lines = [line for line in (completed.stderr or completed.stdout).splitlines() if line.strip()]
            raise StepFailed(f"{' '.join(argv)} exit {completed.returncode}: {lines[-1] if lines else 'no output'}")
        return " ".join(argv)

    # -- what is restored from

    def layers(self) -> list[BackupSet]:
        """The tarballs to put back, in order: an incremental holds only what changed since its full."""
        if self.backup.kind != "incremental":
            return [self.backup]
        base = self.probe.base_full(self.backup)
        if base is None:
            raise Refused(f"{self.backup.name} is incremental and no full backup before it is left to build on")
        return [base, self.backup]

    def verify(self) -> str:
        """Every layer's tarball and (full) the dump read back whole, and what must be restored held by them."""
        wanted = list(self.settings.backups.files_that_matter) if self.kind == "full" else list(CONFIG_FILES)
        problems, held = [], set()
        for layer in self.layers():
            found, missing = self.probe.tarball_findings(layer, wanted)
            problems += found
            self.held[layer.name] = set(wanted) - set(missing)
            held |= self.held[layer.name]
        if self.kind == "full":
            problems += self.probe.dump_problems(self.backup)
        if not problems and set(wanted) - held:
            problems.append(f"{self.backup.name} lacks {', '.join(sorted(set(wanted) - held))}")
        if problems:
            raise Refused("; ".join(problems))
        layers = " then ".join(layer.part(TARBALL) for layer in self.layers())
        dump = f" and {self.backup.part(DUMP)}" if self.kind == "full" else ""
        return f"{layers}{dump} read to their end, checksums match, {', '.join(wanted)} held"

    # -- the steps

    def keep_argv(self) -> list[str]:
        return config_tarball_argv(self.settings, f"config-before-restore-{self.kind}-{self.time}.tar.gz")

    def keep_current_config(self) -> str:
        argv = self.keep_argv()
        self.run(argv)
        return f"the current .env and config/ kept in {argv[5]}"

    def extract_plan(self, members: list[str] | None) -> str:
        names = [] if members is None else [f"./{m.rstrip('/')}" for m in members]
        return "; ".join(" ".join(["tar", "-xzf", str(layer.path(TARBALL)), "-C", str(self.settings.backups.app_dir),
                                   *names]) for layer in self.layers())

    def extract(self, members: list[str] | None) -> str:
        """Every layer's tarball over app_dir, or only `members` of it (those each layer holds)."""
        app_dir = str(self.settings.backups.app_dir)
        done = []
        for layer in self.layers():
            names = [] if members is None else [f"./{m.rstrip('/')}" for m in members if m in self.held[layer.name]]
            if members is not None and not names:
                continue  # an incremental that changed none of them
            self.run(["tar", "-xzf", str(layer.path(TARBALL)), "-C", app_dir, *names])
            done.append(layer.part(TARBALL))
        return f"{' then '.join(done)} extracted into {app_dir}"

    def fix_owners(self, paths: list[str]) -> str:
        """The guide's chown to the service user and chmod 600 of the .env and the key."""
        config, user = self.settings.backups, self.settings.services.user
        for path in paths:
            target = config.app_dir / path.rstrip("/")
            if self.box.call(readers.is_file_or_dir, str(target)):
                self.run(["chown", "-R", f"{user}:", str(target)])
        for secret in (".env", "keys/oracle_key"):
            target = config.app_dir / secret
            if self.box.call(readers.is_file_or_dir, str(target)):
                self.run(["chmod", "600", str(target)])
        return f"owned by {user}; .env and keys/oracle_key mode 600"

    def held_by_emergency(self) -> set[str]:
        incident = IncidentStore(self.state_dir).current(self.settings.host.name)
        return set(incident.services_stopped) if incident else set()

    def names(self, roles) -> list[str]:
        return [getattr(self.settings.services, role) for role in roles]

    def restart(self, roles) -> str:
        held = self.held_by_emergency()
        names = [name for name in self.names(roles) if name not in held]
        for name in names:
            self.run(self.services.argv("restart", name))
        return self.running(names) + (f"; held by the emergency response, not started: {', '.join(held)}"
                                      if held & set(self.names(roles)) else "")

    def running(self, names: list[str]) -> str:
        return check_running(self.services, names, self.settings.remediation.timeout_seconds)

    def stop(self, names: list[str], stopped: list[str]) -> str:
        """Stop the running ones; each goes into `stopped` as soon as it is, for the `finally` that starts it."""
        self.services.forget()
        running = [name for name in names if self.services.is_running(name)]
        for name in running:
            self.run(self.services.argv("stop", name))
            stopped.append(name)
        return f"stopped {', '.join(running)}" if running else "none was running"


def restore_config(job: Restore) -> None:
    job.step(f"verify {job.backup.name} (tarball read to its end, checksum, .env and config/ held)", job.verify,
             changes=False)
    user = job.settings.services.user
    job.step("keep the current .env and config/", job.keep_current_config, how=" ".join(job.keep_argv()))
    job.step("put the backup's .env and config/ back", lambda: job.extract(list(CONFIG_FILES)),
             how=job.extract_plan(list(CONFIG_FILES)))
    job.step(f"give them to {user}", lambda: job.fix_owners(list(CONFIG_FILES)),
             how=f"chown -R {user}: .env config; chmod 600 .env keys/oracle_key")
    job.step(f"restart {', '.join(job.names(CONFIG_RESTARTS))} and check them running",
             lambda: job.restart(CONFIG_RESTARTS),
             how="; ".join(" ".join(job.services.argv("restart", name)) for name in job.names(CONFIG_RESTARTS)))


def restore_full(job: Restore) -> None:
    settings = job.settings
    live = settings.database.dbname
    restored, before = f"{live}_restore_{job.time}", f"{live}_before_{job.time}"
    job.step(f"verify {job.backup.name} (tarball and dump read to their end, checksums, the files that matter)",
             job.verify, changes=False)
    with restoredb.reach(job.box, settings) as job.server:
        _restore_full(job, live, restored, before)


def _restore_full(job: Restore, live: str, restored: str, before: str) -> None:
    settings = job.settings
    job.step(f"restore {job.backup.part(DUMP)} into a new database {restored} and compare it with {live}",
             lambda: _restore_and_check(job, restored),
             how=f"CREATE DATABASE {restored}; " + " ".join([*settings.backups.pg_restore, "--exit-on-error",
                                                           f"--dbname={restored}", str(job.backup.path(DUMP))])
             + f"; every row {live} created before the backup must be in it, or {restored} is dropped and "
               "nothing else happens")
    stopped: list[str] = []
    stops = job.names(GUIDE_STOPS)
    try:
        job.step(f"stop {', '.join(stops)}", lambda: job.stop(stops, stopped),
                 how="; ".join(" ".join(job.services.argv("stop", name)) for name in stops) + " (those running)")
        job.step("keep the current .env and config/", job.keep_current_config, how=" ".join(job.keep_argv()))
        job.step(f"put the application files back into {settings.backups.app_dir}", lambda: job.extract(None),
                 how=job.extract_plan(None))
        job.step(f"swap the databases: {live} kept as {before}, {restored} renamed {live}",
                 lambda: _swap(settings, live, restored, before, job.server),
                 how=f"ALTER DATABASE {live} RENAME TO {before}; ALTER DATABASE {restored} RENAME TO {live}")
        job.step(f"give {settings.backups.app_dir} to {settings.services.user}", lambda: job.fix_owners(["."]),
                 how=f"chown -R {settings.services.user}: {settings.backups.app_dir}; chmod 600 .env keys/oracle_key")
    finally:
        if stopped or job.plan:
            names = stopped or stops
            job.step(f"start {', '.join(names)} again (whatever happened before) and check them running",
                     lambda: _start(job, stopped),
                     how="; ".join(" ".join(job.services.argv("start", name)) for name in reversed(names)))
    if not job.plan:
        job.say(f"the database as it was is kept as {before}. Once the daily checks pass "
                f"(make daily CONFIG={settings.source}), drop it: psql -h {settings.database.host} -p "
                f"{settings.database.port} -U {settings.database.user} -d postgres -c 'DROP DATABASE \"{before}\"'")


def _start(job: Restore, stopped: list[str]) -> str:
    for name in reversed(stopped):
        job.run(job.services.argv("start", name))
    return job.running(stopped)


def _restore_and_check(job: Restore, dbname: str) -> str:
    settings = job.settings
    taken = datetime.fromtimestamp(job.backup.taken_at, UTC)
    owner = restoredb.owner_of(settings, settings.database.dbname, job.server) or settings.database.user
    try:
        result = restoredb.restore_and_compare(job.box, settings, job.backup.path(DUMP), dbname, taken, owner,
                                               job.server)
    except Exception:  # could not load it (sudo refused, the database went away): no scratch database is left
        with contextlib.suppress(Exception):
            restoredb.drop(settings, dbname, job.server)
        raise
    if result.problems:
        restoredb.drop(settings, dbname, job.server)
        raise Refused("; ".join(result.problems) + f" ({dbname} dropped; {settings.database.dbname} untouched)")
    lines = result.comparison.lines()
    newer = {name: table.rows - (table.rows_until or 0) for name, table in result.comparison.live.items()
             if table.rows_until is not None and table.rows > table.rows_until}
    if newer:
        lines.append("created since the backup, kept only in the database as it was: "
                     + ", ".join(f"{n} {name}" for name, n in sorted(newer.items())))
    return f"in {result.seconds:.1f}s; " + "; ".join(lines)


def _swap(settings: Settings, live: str, restored: str, before: str, server: restoredb.Server | None = None) -> str:
    """Rename, never drop: the live database is kept whole under `before`. Its connections are ended first
    (the agent is stopped; anything else connected would keep the rename from happening)."""
    quoted = restoredb.quoted
    with restoredb.connect(settings, "postgres", server) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (live,)).fetchone()
        if exists:
            conn.execute(f"ALTER DATABASE {quoted(live)} WITH ALLOW_CONNECTIONS false")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (live,))
            conn.execute(f"ALTER DATABASE {quoted(live)} RENAME TO {quoted(before)}")
            conn.execute(f"ALTER DATABASE {quoted(before)} WITH ALLOW_CONNECTIONS true")
        try:
            conn.execute(f"ALTER DATABASE {quoted(restored)} RENAME TO {quoted(live)}")
        except Exception as error:
            if exists:
                conn.execute(f"ALTER DATABASE {quoted(before)} RENAME TO {quoted(live)}")
            raise StepFailed(f"renaming {restored} to {live} failed ({error}); {live} is as it was") from None
    return f"{live} is the restored database" + (f"; the one before is {before}" if exists else
                                                  f" (there was no {live})")


def find_backup(box: Box, settings: Settings, given: str) -> BackupSet:
    """A set by name, or by any of its files, in [backups] dir (where the backup program reads sets, and only there)."""
    path = Path(given)
    directory = settings.backups.dir
    if path.is_absolute() and path.parent != directory:
        raise Refused(f"{given} is not in [backups] dir {directory}: backups are read and restored from there only; "
                      f"move the set there (all its files), or name it by its name")
    name = path.name
    for suffix in (".sha256", ".tar.gz", ".dump"):
        name = name.removesuffix(suffix)
    if name.endswith((".failed", ".partial")):
        raise Refused(f"{given} is not a good backup (named {name.rsplit('.', 1)[1]}): it never verified")
    listing = box.call(backupscan.backup_files, str(directory))["files"]
    found = [s for s in parse(directory, listing) if s.name == name and not s.failed and not s.partial]
    if not found:
        raise Refused(f"no backup {name} in {directory} (its files are KIND-YYYYmmdd-HHMMSS.tar.gz and .dump)")
    return found[0]


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("config", "full"), help="config: .env and config/ (Recovery 1); "
                        "full: the application files and the database (Recovery 2)")
    parser.add_argument("--backup", required=True,
                        help="a backup set's name (full-YYYYmmdd-HHMMSS) or one of its files")
    parser.add_argument("--plan", action="store_true", help="print each step; change nothing")


def run(call: cli.Call) -> int:
    args, box = call.args, call.one_box()
    try:
        found = find_backup(call.box(box), box, args.backup)
        job = Restore(box, args.what, found, args.plan, call.box(box), call.services(box))
        (restore_config if args.what == "config" else restore_full)(job)
    except Refused as error:
        print(f"{box.host.name}: NOT restored, the backup was refused: {error}", file=sys.stderr)
        return REFUSED
    except StepFailed as error:
        print(f"{box.host.name}: the restore stopped at a failed step: {error}. What was done is above and in "
              f"{ledger.ledger_path(box.reports.dir)}.", file=sys.stderr)
        return STEP_FAILED
    except (CouldNotRead, DatabaseUnavailable, SocketPathTooLong) as error:
        print(f"{box.host.name}: NOT restored, {error}", file=sys.stderr)
        return REFUSED
    if not args.plan:
        print(f"{box.host.name}: restored from {job.backup.name}; every step is in "
              f"{ledger.ledger_path(box.reports.dir)}")
    return RESTORED


VERB = cli.Verb(
    "restore", "the configuration, or everything, restored from a backup that verifies (make restore-config, restore)",
    __doc__, arguments, run, boxes=cli.Boxes.ONE)
