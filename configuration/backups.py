"""[backups]: what a backup is, where it goes, how often one of each kind is due and how long it is kept.

The guide's Weekly 1 (a full backup: the application directory as tar.gz without node_modules, its logs
and its backups, and a dump of the database) and Backup Strategy 1 (daily incremental, weekly full,
monthly archive backups). Each kind is due `every_days` and kept `keep_days`; its files are named
`KIND-YYYYmmdd-HHMMSS.tar.gz` and `KIND-YYYYmmdd-HHMMSS.dump` (pg_dump's custom format), each with a
`.sha256` beside it, so that names sort by time, say their kind and the dump of a tarball is found by
its name (remediations/backups.py takes them, probes/backups.py reads them).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from configuration.section import Section

KINDS = ("full", "incremental", "archive")
SERVICE_ROLES = ("agent", "dashboard", "tunnel", "database")


class BackupKind(Section):
    """One kind of backup: how often it is due, how long it is kept, what is stopped while it is taken."""

    enabled: bool = Field(default=True, description="false: this kind is never taken nor required.")
    every_days: float = Field(gt=0, le=366, examples=[7], description="A backup of this kind is due this often.")
    keep_days: float = Field(gt=0, le=3660, examples=[30],
                             description="Backups of this kind are kept this long (the newest good one always); at "
                                         "least every_days.")
    stop_services: list[str] = Field(default_factory=list,
                                     description="The [services] roles (agent, dashboard, tunnel, database) stopped "
                                                 "while it is taken and started again afterwards, whatever happened; "
                                                 "the guide stops them for the weekly full backup only.")

    @field_validator("stop_services")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        unknown = [role for role in value if role not in SERVICE_ROLES]
        if unknown:
            raise ValueError(f"{unknown} are not service roles; use {', '.join(SERVICE_ROLES)} "
                             f"(their names come from [services])")
        return value

    @model_validator(mode="after")
    def _kept_longer_than_due(self) -> BackupKind:
        if self.keep_days < self.every_days:
            raise ValueError(f"keep_days ({self.keep_days:g}) is shorter than every_days ({self.every_days:g}): "
                             f"a backup would be deleted before the next one is due")
        return self


class Kinds(Section):
    """The guide's Backup Strategy 1: a weekly full backup (Sunday 03:00), daily incrementals and monthly archives.
    The guide keeps backups 30 days; an incremental (the files changed since the newest full, and a whole dump) is
    worth keeping until the next fulls supersede it, an archive a year."""

    full: BackupKind = Field(default=BackupKind(every_days=7, keep_days=30, stop_services=["agent", "dashboard"]),
                             description="The full backup: the whole application directory and a dump.")
    incremental: BackupKind = Field(default=BackupKind(every_days=1, keep_days=7),
                                    description="The incremental backup: the files changed since the newest full "
                                                "one, and a whole dump.")
    archive: BackupKind = Field(default=BackupKind(every_days=28, keep_days=365),
                                description="The archive: a full backup kept long.")

    def enabled(self) -> list[str]:
        return [kind for kind in KINDS if getattr(self, kind).enabled]


def _absolute(value: Path) -> Path:
    if not value.is_absolute():
        raise ValueError(f"{str(value)!r} must be an absolute path on the box")
    return value


class Backups(Section):
    """The guide's Weekly 1 and Backup Strategy 1. Each backup is `KIND-YYYYmmdd-HHMMSS.tar.gz` (app_dir, without
    excludes) and `KIND-YYYYmmdd-HHMMSS.dump` (pg_dump's custom format of [database] dbname), each with a `.sha256`
    beside it, written under a partial name and renamed once verified; one that does not verify is set aside as
    `*.failed` and never counts as the newest. Restore with make restore or make restore-config."""

    per_box = True

    dir: Path = Field(default=Path("/opt/trading-agent/backups"), description="Where the backups are kept.")
    app_dir: Path = Field(default=Path("/opt/trading-agent"), description="The application directory backed up.")
    excludes: list[str] = Field(default_factory=lambda: ["node_modules", "./logs", "./backups"],
                                description="tar's --exclude patterns (app_dir is archived as `.`): a bare name at "
                                            "any depth, ./name at the top only.")
    files_that_matter: list[str] = Field(default_factory=lambda: [".env", "config/", "keys/oracle_key"],
                                         description="Relative to app_dir: the newest tarball of each kind must hold "
                                                     "them (a trailing / is a directory with at least one file).")
    due_slack_hours: float = Field(default=6, ge=0, le=72,
                                   description="A kind is due when its newest backup is older than every_days less "
                                               "this slack, so that a weekly run finds last week's backup due even "
                                               "when it was taken a few minutes into that run.")
    max_share_of_disk_percent: float = Field(default=40, gt=0, le=100,
                                             description="BAK-008: everything in dir together may take at most this "
                                                         "share of its filesystem.")
    pg_dump: list[str] = Field(default_factory=lambda: ["sudo", "-u", "postgres", "pg_dump"], min_length=1,
                               description="How pg_dump runs on the box; the suite adds its own arguments "
                                           "(--format=custom --file=... DBNAME). The guide's: as postgres over the "
                                           "local socket, so postgres must be able to write dir (chgrp postgres, "
                                           "g+w). Over TCP instead, keep the password in a passfile: [\"env\", "
                                           "\"PGPASSFILE=/etc/trading-maintenance/pgpass\", \"pg_dump\", \"-h\", "
                                           "\"127.0.0.1\", \"-U\", \"postgres\"].")
    pg_restore: list[str] = Field(default_factory=lambda: ["sudo", "-u", "postgres", "pg_restore"], min_length=1,
                                  description="How pg_restore runs on the box; the suite adds --list, "
                                              "--file=/dev/null or --dbname=... FILE.")
    take_timeout_seconds: float = Field(default=1800, gt=0, le=86400, description="Each of tar and pg_dump.")
    verify_timeout_seconds: float = Field(default=600, gt=0, le=86400, description="Reading a dump to its end.")
    drill_timeout_seconds: float = Field(default=3600, gt=0, le=86400,
                                         description="The monthly restore drill: restoring a dump into a scratch "
                                                     "database.")
    kinds: Kinds = Kinds()

    @field_validator("dir", "app_dir")
    @classmethod
    def _paths(cls, value: Path) -> Path:
        return _absolute(value)

    @field_validator("files_that_matter")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry.startswith("/") or ".." in Path(entry).parts or not entry.strip("/"):
                raise ValueError(f"{entry!r} must be a path relative to app_dir, without '..'")
        return value

    @model_validator(mode="after")
    def _backups_not_in_their_own_tarball(self) -> Backups:
        try:
            inside = self.dir.relative_to(self.app_dir)
        except ValueError:
            return self
        if inside == Path("."):
            raise ValueError(f"dir {self.dir} is app_dir itself: every full backup would hold the ones before it; "
                             "put the backups in a directory of their own")
        top = inside.parts[0]
        if not any(fnmatch.fnmatchcase(f"./{inside}", pattern) or pattern in (top, f"./{top}")
                   for pattern in self.excludes):
            raise ValueError(f"dir {self.dir} is inside app_dir {self.app_dir}: add './{inside}' to excludes, or "
                             f"every full backup would hold the ones before it")
        return self

    def kind(self, name: str) -> BackupKind:
        return getattr(self.kinds, name)

    def files_of(self, kind: str) -> tuple[str, str]:
        """fnmatch patterns of a kind's tarball and dump."""
        return f"{kind}-*.tar.gz", f"{kind}-*.dump"


def retention_conflicts(rules, backups: Backups) -> list[str]:
    """[[retention]] rules that would delete backups before their kind's keep_days: each kind owns its
    retention (remediations/backups.py keeps the newest of a kind whatever its age)."""
    found = []
    for rule in rules:
        # A rule of the backups' own directory, or one that goes down into it from above.
        if Path(rule.dir) != backups.dir and not (rule.recursive and backups.dir.is_relative_to(rule.dir)):
            continue
        for kind in backups.kinds.enabled():
            keep = backups.kind(kind).keep_days
            for pattern in backups.files_of(kind):
                sample = pattern.replace("*", "20260101-030000")
                if fnmatch.fnmatchcase(sample, rule.pattern) and rule.max_age_days < keep:
                    found.append(f"[[retention]] {rule.name!r} ({rule.pattern}, {rule.max_age_days} days) would delete "
                                 f"{kind} backups ({sample}) kept {keep:g} days by [backups.kinds.{kind}]: narrow "
                                 f"its pattern (the emergency bundles: emergency-*.tar.gz) or remove it")
    return found
