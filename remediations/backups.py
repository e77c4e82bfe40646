"""Taking a backup of a kind, and deleting backups past their kind's retention (Weekly 1, Backup Strategy 1).

`take_backup` writes the set under `.partial` names: the application directory with tar (an
incremental: the files changed since the newest full), the database with pg_dump's custom format. The
services the kind stops (the guide stops the agent and the dashboard for the full backup, nothing
else) are stopped only if running, and started again in a `finally`, whatever failed, then checked
running: the guide starts them only when every step before succeeded. The set is then read back (the
tarball to its end, the files that matter in it, the dump by pg_restore); a good one gets its
checksums and its final names, a bad one is kept aside as `*.failed` and never counts as the newest.
tar and pg_dump run under umask 077, so every file of the set is 0600 from its first byte (it holds the agent's
`.env` and keys), a set kept as `.failed` too; never written first and chmod-ed after.
A newest set that no longer verifies is set aside first. Taking the backups needs root on the box (the
files that matter are the agent's secrets), so no sudo rule is printed for them: their arguments carry
the time.
"""

from __future__ import annotations

from configuration.backups import KINDS
from core.vocabulary import ActionStatus
from fixtures import backupscan, readers
from fixtures.backups import DUMP, TARBALL, BackupProbe, BackupSet, file_names, stamp_of
from remediations import Outcome, remediation

# The box's python sets the umask and becomes the command, its arguments passed as they are: no shell.
UMASK_077 = "import os, sys; os.umask(0o077); os.execvp(sys.argv[1], sys.argv[1:])"


def private(python: str, argv: list[str]) -> list[str]:
    """`argv` run so that what it creates is readable by its owner alone, from the first byte."""
    return [python, "-I", "-S", "-c", UMASK_077, *argv]


def _probe(ctx) -> BackupProbe:
    return BackupProbe(ctx.box, ctx.settings)


def _services(ctx, kind: str) -> list[str]:
    return [getattr(ctx.settings.services, role) for role in ctx.settings.backups.kind(kind).stop_services]


def tar_argv(ctx, partial: str, newer_than: float | None = None) -> list[str]:
    config = ctx.settings.backups
    newer = [f"--newer-mtime=@{int(newer_than)}"] if newer_than is not None else []
    return ["tar", "-C", str(config.app_dir), "-czf", partial, *[f"--exclude={p}" for p in config.excludes],
            *newer, "."]


def dump_argv(ctx, partial: str) -> list[str]:
    return [*ctx.settings.backups.pg_dump, "--format=custom", f"--file={partial}", ctx.settings.database.dbname]


def _recent_failure(probe: BackupProbe, kind: str) -> BackupSet | None:
    failed = [s for s in probe.all_sets() if s.failed and s.kind == kind
              and probe.age_days(s) <= probe.due_after_days(kind)]
    return failed[-1] if failed else None


def _guard(ctx, backup_kind: str) -> str | None:
    """A known, enabled kind; not while another backup of it is being written; and after a failed one,
    no second attempt within its period (the budget bounds every other retry): a human looks first."""
    if backup_kind not in KINDS:
        return f"no backup kind {backup_kind!r}; kinds: {', '.join(KINDS)}"
    if not ctx.settings.backups.kind(backup_kind).enabled:
        return f"[backups.kinds.{backup_kind}] is not enabled"
    probe = _probe(ctx)
    writing = [s for s in probe.all_sets() if s.partial and s.kind == backup_kind and s not in probe.stale_partials()]
    if writing:
        return f"{writing[-1].name} is being written ({', '.join(file_names(writing[-1], '.partial'))})"
    failed = _recent_failure(probe, backup_kind)
    if failed is not None:
        return (f"the {backup_kind} backup {failed.name} failed {probe.age_days(failed):.1f} days ago and is kept as "
                f"{failed.name}.*.failed: one attempt per period; find why (its report), then remove those files")
    return None


def _plan(ctx, backup_kind: str) -> str:
    stamp = "YYYYmmdd-HHMMSS"
    name = f"{ctx.settings.backups.dir}/{backup_kind}-{stamp}"
    stop = _services(ctx, backup_kind)
    steps = [f"stop {', '.join(stop)}"] if stop else []
    base = _probe(ctx).newest("full") if backup_kind == "incremental" else None
    steps += [" ".join(tar_argv(ctx, f"{name}.tar.gz.partial", base.taken_at if base else None)),
              " ".join(dump_argv(ctx, f"{name}.dump.partial")) + " (both under umask 077: 0600 from the first byte)"]
    steps += [f"start {', '.join(stop)} (whatever happened) and check them running"] if stop else []
    steps.append("read both back, write their .sha256 and rename them (or keep them as .failed)")
    return "run " + "; ".join(steps)


class Taking:
    """One take of one kind: what it did, in order, for the outcome."""

    def __init__(self, ctx, kind: str):
        self.ctx, self.kind, self.config = ctx, kind, ctx.settings.backups
        self.probe = _probe(ctx)
        self.box = self.probe.box  # bounded by the verify timeout, not the remediation's
        self.said: list[str] = []
        self.problems: list[str] = []

    def run(self, argv: list[str], what: str, *, creates_backup: bool = False) -> bool:
        command = private(self.ctx.box.python, argv) if creates_backup else argv
        completed = self.ctx.box.run(command, privileged=True, timeout=self.config.take_timeout_seconds)
        if completed.returncode == 0 or (argv[0] == "tar" and completed.returncode == 1):
            self.said.append(f"{what}: done" + (" (tar: some files changed as it read them)"
                                                 if completed.returncode == 1 else ""))
            return True
        lines = [line for line in (completed.stderr or completed.stdout).splitlines() if line.strip()]
        said = lines[-1].strip() if lines else "no output"
        self.problems.append(f"{what} failed (exit {completed.returncode}): {said}")
        return False

    def set_aside_newest_if_bad(self) -> None:
        newest = self.probe.newest(self.kind)
        if newest is None:
            return
        problems = self.probe.problems(newest)
        if problems:
            self.rename(newest, "", ".failed")
            self.said.append(f"set aside {newest.name} as .failed: {'; '.join(problems)}")

    def rename(self, backup: BackupSet, old: str, new: str) -> None:
        pairs = [[name + old, name + new] for name in sorted(backup.files)]
        self.box.call(backupscan.rename_all, str(self.config.dir), pairs)

    def stop(self, stopped: list[str]) -> None:
        """Each service stopped is added to `stopped` at once: if a later one will not stop, the caller still
        starts the earlier ones again."""
        services = self.ctx.services
        services.forget()
        for name in _services(self.ctx, self.kind):
            if not services.is_running(name):
                self.said.append(f"{name} was not running: left as it was")
                continue
            if not self.run(services.argv("stop", name), f"stop {name}"):
                raise RuntimeError(self.problems[-1])
            stopped.append(name)

    def start(self, stopped: list[str]) -> None:
        services = self.ctx.services
        for name in reversed(stopped):
            self.run(services.argv("start", name), f"start {name}")
        services.forget()
        for name in stopped:
            if not services.is_running(name):
                self.problems.append(f"{name} is {services.state(name)} after the backup, expected running")

    def write(self, backup: BackupSet) -> None:
        """The tarball and the dump under their partial names, the kind's services stopped meanwhile."""
        newer = None
        if self.kind == "incremental":
            base = self.probe.base_full(backup)
            newer = base.taken_at if base is not None else None
            self.said.append(f"the files changed since the full backup {base.name}" if base is not None
                             else "no full backup to build on: every file")
        stopped: list[str] = []
        try:
            self.stop(stopped)
            if self.run(tar_argv(self.ctx, str(backup.path(TARBALL)) + ".partial", newer), "tar", creates_backup=True):
                self.run(dump_argv(self.ctx, str(backup.path(DUMP)) + ".partial"), "pg_dump", creates_backup=True)
        except RuntimeError:
            pass
        finally:
            self.start(stopped)

    def verify(self, backup: BackupSet) -> list[str]:
        tarball, dump = str(backup.path(TARBALL)) + ".partial", str(backup.path(DUMP)) + ".partial"
        wanted = [] if self.kind == "incremental" else list(self.config.files_that_matter)
        found = self.box.call(backupscan.read_tarball, tarball, wanted)
        problems = [f"{backup.part(TARBALL)} does not read to its end ({found['error']})"] if found["error"] else []
        if found["missing"]:
            problems.append(f"{backup.part(TARBALL)} lacks {', '.join(found['missing'])}")
        said = self.probe.dump_unreadable(dump)
        if said:
            problems.append(f"{backup.part(DUMP)} does not read to its end ({said})")
        return problems

    def take(self) -> Outcome:
        self.set_aside_newest_if_bad()
        backup = BackupSet(self.kind, stamp_of(self.probe.now), self.config.dir)
        backup.files = {backup.part(TARBALL): 0, backup.part(DUMP): 0}
        self.write(backup)
        if not self.problems:
            self.problems += self.verify(backup)
        if self.problems:
            self.rename(backup, ".partial", ".failed")
            return self.outcome(ActionStatus.FAILED, f"{backup.name} failed and is kept as .failed: "
                                + "; ".join(self.problems))
        for part in (TARBALL, DUMP):
            self.box.call(backupscan.write_checksum, str(backup.path(part)) + ".partial", backup.part(part))
        self.rename(backup, ".partial", "")
        return self.outcome(ActionStatus.DONE, f"took {backup.name} ({backup.part(TARBALL)}, {backup.part(DUMP)}), "
                            f"read back whole, checksums written")

    def outcome(self, status: ActionStatus, detail: str) -> Outcome:
        return Outcome("take_backup", status, detail, output="\n".join(self.said))


@remediation("take_backup", touches="the backups area: one new backup of a kind (the kind's services stopped "
             "meanwhile)", plan=_plan, guard=_guard, target=lambda ctx, backup_kind: f"backups {backup_kind}")
def take_backup(ctx, backup_kind: str) -> Outcome:
    ctx.box.call(backupscan.make_dir, str(ctx.settings.backups.dir))
    return Taking(ctx, backup_kind).take()


def _plan_prune(ctx) -> str:
    probe = _probe(ctx)
    old = probe.past_retention() + probe.stale_partials()
    return f"delete {len(old)} backup(s) from {probe.directory}: " + ", ".join(s.name for s in old[:20])


def _prune_guard(ctx) -> str | None:
    if not ctx.box.call(readers.is_dir, str(ctx.settings.backups.dir)):
        return f"{ctx.settings.backups.dir} is not a directory"
    return None


@remediation("prune_backups", touches="backups past their kind's keep_days (never the newest good one of a kind)",
             plan=_plan_prune, guard=_prune_guard, target=lambda ctx: "backups retention")
def prune_backups(ctx) -> Outcome:
    probe = _probe(ctx)
    old = probe.past_retention()
    names = [name for s in old for name in file_names(s, ".failed" if s.failed else "")]
    names += [name for s in probe.stale_partials() for name in file_names(s, ".partial")]
    removed = probe.box.call(backupscan.remove_all, str(probe.directory), names)
    return Outcome("prune_backups", ActionStatus.DONE,
                   f"deleted {len(old)} backup(s) past their retention ({len(removed)} file(s)) from {probe.directory}",
                   output="\n".join(removed))
