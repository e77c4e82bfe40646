"""The backups on the box: which there are, how old, and whether each reads back whole.

A backup set is `KIND-YYYYmmdd-HHMMSS.tar.gz` and `KIND-YYYYmmdd-HHMMSS.dump` (the time in UTC, when it
was started), each with a `.sha256` beside it. A set being written has `.partial` names, one that did
not verify `.failed` ones: neither ever counts as the newest. A take of the suite's that failed also leaves
`KIND-YYYYmmdd-HHMMSS.attempt.failed` (probes/remote/backupscan.py): the backup guard counts those, by when the
attempt was made, never a set set aside later because it no longer read back.

The listing is read by the maintenance user (probes/remote/backupscan.py's readers). Everything that opens a set's
files (0600, root's) is an operation of the backup program (`BackupProgram`): over SSH the program root
installed on the box, run through the one sudo rule per operation that `make sudoers` prints from
`program_commands`; on the box itself, the same code in this process. A tarball is read to the end of its gzip
stream, a dump by `pg_restore --file=/dev/null`, which reads every block (`pg_restore --list` reads only the
table of contents at its start, and lists a dump cut in half without a word). What could not be read (sudo
refused, a permission) raises CouldNotRead: the check is UNKNOWN, and nothing is set aside for it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from configuration import Settings
from configuration.backups import KINDS
from core.unread import CouldNotRead
from core.vocabulary import Unread
from probes.host import Box
from probes.remote import backupscan
from probes.remote.backupscan import ATTEMPT, DUMP, NAME, PROGRAM, TARBALL, stamp_of  # noqa: F401 (the suite's names)

DAY = 86400
INSTALL_FIX = (f"install the suite's box programs on the box ({PROGRAM}: sudo make install-box-helpers), then the "
               f"sudo rules `make sudoers` prints for it there")
SUDO_FIX = f"add the sudo rules `make sudoers` prints for {PROGRAM} (run it on the box, once the program is installed)"
HEADER = ("#!/usr/bin/python3 -IS\n"
          "# The trading box maintenance suite's backup program, run by root through the maintenance user's sudo\n"
          "# rules (one per operation). Written by `make install-box-helpers` from probes/remote/backupscan.py:\n"
          "# install it again after updating the suite, never edit it here.\n")


def epoch_of(stamp: str) -> float:
    return backupscan.taken_at(stamp)


@dataclass
class BackupSet:
    """One backup: its tarball and its dump, and their checksum files, by name in the backup directory."""

    kind: str
    stamp: str
    directory: Path
    files: dict[str, int] = field(default_factory=dict)  # name -> size
    failed: bool = False
    partial: bool = False

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.stamp}"

    @property
    def taken_at(self) -> float:
        return epoch_of(self.stamp)

    def part(self, part: str) -> str:
        """The file name of the tarball or the dump (as it is named when the set is good)."""
        return f"{self.name}.{part}"

    def path(self, part: str) -> Path:
        return self.directory / self.part(part)

    def has(self, part: str) -> bool:
        return self.part(part) in self.files

    def size(self, part: str) -> int | None:
        return self.files.get(self.part(part))

    def has_checksum(self, part: str) -> bool:
        return self.part(part) + backupscan.CHECKSUM in self.files

    @property
    def state(self) -> str:
        return backupscan.FAILED if self.failed else backupscan.PARTIAL if self.partial else ""

    @property
    def failed_attempt(self) -> bool:
        """A take of the suite's that failed (not a set set aside later because it no longer read back)."""
        return self.failed and self.has(ATTEMPT)


def parse(directory: Path, listing: dict) -> list[BackupSet]:
    """Every set in a listing ({name: [size, mtime]}), oldest first; files of other names are not sets."""
    sets = [BackupSet(kind, stamp, directory, dict(files), failed=state == backupscan.FAILED,
                      partial=state == backupscan.PARTIAL)
            for (kind, stamp, state), files in backupscan.sets_of(listing).items()]
    return sorted(sets, key=lambda s: (s.stamp, s.kind, s.failed, s.partial))


# ---- the backup program: its fixed commands, and running one


@functools.cache
def program_text() -> str:
    """probes/remote/backupscan.py as the program root installs on the box (commands/boxhelpers.py)."""
    return HEADER + Path(backupscan.__file__).read_text()


@functools.cache
def program_sha256() -> str:
    return hashlib.sha256(program_text().encode()).hexdigest()


def program_options(settings: Settings, operation: str, kind: str | None = None) -> list[str]:
    """The program's fixed arguments for one operation, from the configuration: what its sudo rule names."""
    config, where = settings.backups, [f"--dir={settings.backups.dir}"]
    verify, restore = [f"--timeout={config.verify_timeout_seconds:g}"], ["--", *config.pg_restore]
    if operation == "write":
        return ["write", kind, *where, f"--app-dir={config.app_dir}", *[f"--exclude={p}" for p in config.excludes],
                f"--dbname={settings.database.dbname}", f"--timeout={config.take_timeout_seconds:g}", "--",
                *config.pg_dump]
    if operation in ("finish", "set-aside"):
        return [operation, *where, *[f"--want={entry}" for entry in config.files_that_matter], *verify, *restore]
    if operation == "read":
        return ["read", *where, *verify, *restore]
    if operation == "restore-into":
        return ["restore-into", *where, f"--dbname={settings.database.dbname}",
                f"--timeout={config.drill_timeout_seconds:g}", *restore]
    if operation == "prune":
        return ["prune", *where, *[f"--keep={k}:{config.kind(k).keep_days:g}" for k in KINDS],
                f"--stale-after={stale_after_seconds(settings):g}"]
    raise ValueError(f"no backup operation {operation!r}")


def stale_after_seconds(settings: Settings) -> float:
    """A partial set older than this was left by a take that was killed (two steps, each bounded, and an hour)."""
    return 2 * settings.backups.take_timeout_seconds + 3600


def program_commands(settings: Settings, operations: tuple[str, ...]) -> list[list[str]]:
    """The program's commands for these operations (`write`: one per enabled kind), as root runs them."""
    found = []
    for operation in operations:
        kinds = settings.backups.kinds.enabled() if operation == "write" else [None]
        found += [[PROGRAM, *program_options(settings, operation, kind)] for kind in kinds]
    return found


def root_reads(settings: Settings) -> list[list[str]]:
    """What the backup checks and the restore drill run as root (`make sudoers` prints them)."""
    return program_commands(settings, ("read", "restore-into"))


class BackupProgram:
    """The backup program's operations on one box, each with the caller's request (the set, the scratch database);
    its answer as JSON values. What could not be read raises CouldNotRead; a reading cut by its timeout
    TimeoutError (the box still answers); the program's own refusal or failure RuntimeError."""

    def __init__(self, box: Box, settings: Settings):
        self.box, self.settings = box, settings

    def __call__(self, operation: str, request: dict | None = None, kind: str | None = None) -> dict:
        options, request = program_options(self.settings, operation, kind), dict(request or {})
        what = self._what(operation, request, kind)
        if self.box.local:
            try:
                answer = backupscan.operate(options, request)
            except PermissionError as error:
                raise CouldNotRead(Unread.PERMISSION, what, str(error), self._permission_fix(), self.box.name
                                   ) from None
        else:
            answer = self._on_the_box(operation, options, request, what)
        return self._checked(operation, answer, what)

    def _what(self, operation: str, request: dict, kind: str | None) -> str:
        subject = request.get("name") or (f"a {kind} backup" if kind else f"the backups in {self.settings.backups.dir}")
        return f"{subject} ({PROGRAM} {operation}, as root)"

    def _bound(self, operation: str) -> float:
        config = self.settings.backups
        return {"write": 2 * config.take_timeout_seconds, "restore-into": config.drill_timeout_seconds
                }.get(operation, 3 * config.verify_timeout_seconds) + 60

    def _on_the_box(self, operation: str, options: list[str], request: dict, what: str) -> dict:
        argv = [PROGRAM, *options]
        try:
            done = self.box.run(argv, privileged=True, input=json.dumps({**request, "sha256": program_sha256()}),
                                timeout=self._bound(operation))
        except CouldNotRead as error:
            if error.cause != Unread.SUDO_REFUSED:
                raise
            raise CouldNotRead(Unread.SUDO_REFUSED, what, error.detail, SUDO_FIX, self.box.name) from None
        try:
            return json.loads(done.stdout)
        except ValueError:
            pass
        said = _last_line(done.stderr or done.stdout) or f"exit {done.returncode}"
        if done.returncode == 127 or "command not found" in said or "No such file" in said:
            raise CouldNotRead(Unread.SUDO_REFUSED, what, said, INSTALL_FIX, self.box.name)
        if backupscan.refusal(done.stderr or "") == backupscan.SUDO_REFUSED:
            raise CouldNotRead(Unread.SUDO_REFUSED, what, said, SUDO_FIX, self.box.name)
        if done.returncode == 124:
            raise TimeoutError(f"{what} did not finish within {self._bound(operation):g}s on box {self.box.name}")
        raise RuntimeError(f"{what} failed on box {self.box.name} (exit {done.returncode}): {said}")

    def _checked(self, operation: str, answer: dict, what: str) -> dict:
        if "error" in answer:
            if answer["error"] == "FileNotFoundError":
                raise FileNotFoundError(answer["message"])
            if answer["error"] == "PermissionError":
                raise CouldNotRead(Unread.PERMISSION, what, answer["message"], self._permission_fix(), self.box.name)
            raise RuntimeError(f"{what} on box {self.box.name}: {answer['message']}")
        unread = answer.get("unread")
        if not unread:
            return answer
        if unread["cause"] in (backupscan.PERMISSION, backupscan.SUDO_REFUSED):
            fix = self._permission_fix() if unread["cause"] == backupscan.PERMISSION else (
                "[backups] pg_restore goes through sudo: let root run it without a password (or run pg_restore "
                "directly)")
            raise CouldNotRead(Unread(unread["cause"]), what, unread["detail"], fix, self.box.name)
        if unread["cause"] == backupscan.TIMED_OUT:
            raise TimeoutError(f"{what} on box {self.box.name}: {unread['detail']} ([backups] verify_timeout_seconds "
                               f"or drill_timeout_seconds)")
        raise RuntimeError(f"{what} on box {self.box.name}: {unread['detail']}")

    def _permission_fix(self) -> str:
        command = " ".join(self.settings.backups.pg_restore)
        return (f"[backups] pg_restore ({command}) reads the set's files as the user it runs as: let that user read "
                f"{self.settings.backups.dir}'s sets (the dump is written by [backups] pg_dump's user), or run it as "
                f"root")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class BackupProbe:
    """The backups of [backups] dir, read once per probe (`forget()` reads them again)."""

    def __init__(self, box: Box, settings: Settings):
        self.settings = settings
        self.config = settings.backups
        self.directory = self.config.dir
        self.box = box
        self.program = BackupProgram(box, settings)
        self._listing: dict | None = None

    def forget(self) -> None:
        self._listing = None

    def _read(self) -> dict:
        if self._listing is None:
            self._listing = self.box.call(backupscan.backup_files, str(self.directory))
        return self._listing

    @property
    def now(self) -> float:
        """The box's clock when the directory was read."""
        return self._read()["now"]

    def all_sets(self) -> list[BackupSet]:
        return parse(self.directory, self._read()["files"])

    def good(self, kind: str | None = None) -> list[BackupSet]:
        """The sets that count: neither being written nor set aside, oldest first."""
        return [s for s in self.all_sets() if not s.failed and not s.partial and (kind is None or s.kind == kind)]

    def newest(self, kind: str) -> BackupSet | None:
        sets = self.good(kind)
        return sets[-1] if sets else None

    def newest_with_dump(self) -> BackupSet | None:
        """The newest dump of any kind: what the restore drill restores."""
        sets = [s for s in self.good() if s.has(DUMP)]
        return max(sets, key=lambda s: s.stamp) if sets else None

    def age_days(self, backup: BackupSet) -> float:
        return (self.now - backup.taken_at) / DAY

    def due_after_days(self, kind: str) -> float:
        """A kind is due when its newest backup is older than this."""
        return self.config.kind(kind).every_days - self.config.due_slack_hours / 24

    def is_due(self, kind: str) -> bool:
        newest = self.newest(kind)
        return newest is None or self.age_days(newest) > self.due_after_days(kind)

    def base_full(self, backup: BackupSet) -> BackupSet | None:
        """The full backup an incremental holds the changes since (the newest full taken before it)."""
        fulls = [s for s in self.good("full") if s.stamp <= backup.stamp and s.has(TARBALL)]
        return fulls[-1] if fulls else None

    def failed_attempts(self, kind: str) -> list[BackupSet]:
        """The suite's own takes of a kind that failed, oldest first (their stamp is when the attempt started)."""
        return [s for s in self.all_sets() if s.failed_attempt and s.kind == kind]

    # -- reading a set back (the backup program, as root)

    def read_back(self, backup: BackupSet, parts: tuple[str, ...] = (TARBALL, DUMP), wanted=()) -> dict:
        """{part: what reading it found}: its size, its checksum recorded and actual, why it does not read to its
        end, and (the tarball) which of `wanted` it lacks."""
        return self.program("read", {"name": backup.name, "parts": list(parts), "want": list(wanted)})

    def tarball(self, backup: BackupSet) -> dict:
        """The set's tarball read for the files that matter: {"error", "members", "missing"}."""
        wanted = list(self.config.files_that_matter)
        found = self.read_back(backup, (TARBALL,), wanted)[TARBALL]
        error = found.get("error") if found.get("size") else "; ".join(backupscan.problems_of(backup.name, TARBALL,
                                                                                               found))
        return {"error": error, "members": found.get("members", 0), "missing": found.get("missing", wanted)}

    def tarball_findings(self, backup: BackupSet, wanted: list[str]) -> tuple[list[str], list[str]]:
        """(why the set's tarball is not whole: missing, empty, its checksum, or it does not read to its end;
        which of `wanted` it does not hold), reading it once."""
        found = self.read_back(backup, (TARBALL,), wanted)[TARBALL]
        return backupscan.problems_of(backup.name, TARBALL, found), found.get("missing", list(wanted))

    def tarball_problems(self, backup: BackupSet) -> list[str]:
        return self.tarball_findings(backup, [])[0]

    def dump_problems(self, backup: BackupSet) -> list[str]:
        """Why the set's dump is not whole: missing, empty, its checksum, or pg_restore cannot read it to its end."""
        return backupscan.problems_of(backup.name, DUMP, self.read_back(backup, (DUMP,))[DUMP])

    def newest_verified_dump(self) -> tuple[BackupSet | None, list[str]]:
        """The newest set whose dump reads back whole and matches its checksum (what a clean-up of old rows may
        count on), and why each newer one did not."""
        skipped = []
        for backup in sorted((s for s in self.good() if s.has(DUMP)), key=lambda s: s.stamp, reverse=True):
            problems = self.dump_problems(backup)
            if not problems:
                return backup, skipped
            skipped.append("; ".join(problems))
        return None, skipped

    # -- retention and space

    def _keys(self) -> dict:
        return backupscan.sets_of(self._read()["files"])

    def _sets_of(self, keys: list) -> list[BackupSet]:
        return [s for s in self.all_sets() if (s.kind, s.stamp, s.state) in set(keys)]

    def past_retention(self) -> list[BackupSet]:
        """Sets older than their kind's keep_days, set-aside ones included; never the newest good one of a kind,
        whatever its age: when backups stop, the last good one is all there is."""
        keep = {kind: self.config.kind(kind).keep_days for kind in KINDS}
        return self._sets_of(backupscan.past_retention(self._keys(), self.now, keep))

    def stale_partials(self) -> list[BackupSet]:
        """Partial sets older than a take may run: what a killed backup left."""
        return self._sets_of(backupscan.stale_partials(self._keys(), self.now, stale_after_seconds(self.settings)))

    def usage(self) -> dict:
        """{"bytes": the backup directory's files, "fs_bytes": its filesystem's size, "percent"}."""
        found = self.box.call(backupscan.usage, str(self.directory))
        found["percent"] = 100.0 * found["bytes"] / found["fs_bytes"] if found["fs_bytes"] else 0.0
        return found


def file_names(backup: BackupSet, state: str = "") -> list[str]:
    """The set's files as named with `state` (.partial, .failed, or "" when good)."""
    return [name + state for name in sorted(backup.files)]


def parameters(settings: Settings) -> dict[str, list]:
    return {"backup_kind": settings.backups.kinds.enabled()}
