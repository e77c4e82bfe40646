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

    enabled: bool = True
    every_days: float = Field(gt=0, le=366)
    keep_days: float = Field(gt=0, le=3660)
    # The service roles of [services] stopped while it is taken and started again afterwards, whatever
    # happened; the guide stops only for the weekly full backup (trading-agent, trading-dashboard).
    stop_services: list[str] = Field(default_factory=list)

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
    full: BackupKind = BackupKind(every_days=7, keep_days=30, stop_services=["agent", "dashboard"])
    incremental: BackupKind = BackupKind(every_days=1, keep_days=7)
    archive: BackupKind = BackupKind(every_days=28, keep_days=365)

    def enabled(self) -> list[str]:
        return [kind for kind in KINDS if getattr(self, kind).enabled]


def _absolute(value: Path) -> Path:
    if not value.is_absolute():
        raise ValueError(f"{str(value)!r} must be an absolute path on the box")
    return value


class Backups(Section):
    dir: Path = Path("/opt/trading-agent/backups")
    app_dir: Path = Path("/opt/trading-agent")
    # tar's --exclude patterns for the application directory (archived as `.`): a name without a slash
    # at any depth, `./name` only at its top.
    excludes: list[str] = Field(default_factory=lambda: ["node_modules", "./logs", "./backups"])
    # Relative to app_dir; a trailing / is a directory that must hold at least one file.
    files_that_matter: list[str] = Field(default_factory=lambda: [".env", "config/", "keys/oracle_key"])
    # A backup is due when the newest of its kind is older than every_days less this slack, so that a
    # weekly run finds last week's backup due even when that one was taken a few minutes later in its run.
    due_slack_hours: float = Field(default=6, ge=0, le=72)
    # Everything in dir together may take at most this share of its filesystem.
    max_share_of_disk_percent: float = Field(default=40, gt=0, le=100)
    # How pg_dump and pg_restore run on the box, before the suite's own arguments (--format=custom
    # --file=... DBNAME; --list, --file=/dev/null or --dbname=... FILE). The guide's: as postgres over the
    # local socket, which must then be able to write dir.
    pg_dump: list[str] = Field(default_factory=lambda: ["sudo", "-u", "postgres", "pg_dump"], min_length=1)
    pg_restore: list[str] = Field(default_factory=lambda: ["sudo", "-u", "postgres", "pg_restore"], min_length=1)
    take_timeout_seconds: float = Field(default=1800, gt=0, le=86400)  # each of tar and pg_dump
    verify_timeout_seconds: float = Field(default=600, gt=0, le=86400)  # reading a dump to its end
    drill_timeout_seconds: float = Field(default=3600, gt=0, le=86400)  # restoring it into a scratch database
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
