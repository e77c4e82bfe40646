"""[application]: the trading agent's own code, and how the guide's Update Procedures 1-2 update it.

The application is a git checkout (`dir`, the guide's /opt/trading-agent) of `remote`; a minor update
fast-forwards it to `remote`/`branch`, a major one checks out a tag or commit. Each npm step is an argument
list, never a shell string: `install` (the guide's `npm install`; `npm ci` installs exactly the lock file),
`test`, `build`. The guide's migration scripts are `migrate_database` and `migrate_config` (each a list of
commands, run in `dir`; empty: none). What is stopped and restarted comes from [services] (commands/update.py).
Every step has a timeout; a step that runs out of it fails, and the update rolls back.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from configuration.section import Section

GIT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"  # a remote or a branch: no option, no space, no `..` (checked below)


class Application(Section):
    dir: Path = Path("/opt/trading-agent")
    remote: str = Field(default="origin", pattern=GIT_NAME)
    branch: str = Field(default="main", pattern=GIT_NAME)
    git: list[str] = Field(default_factory=lambda: ["git"], min_length=1)
    # Put before every git and npm command (empty: as the suite's user): the checkout's owner should run
    # them, so that node_modules and the build are not root's, e.g. ["runuser", "-u", "trading", "--"].
    run_as: list[str] = Field(default_factory=list)
    install: list[str] = Field(default_factory=lambda: ["npm", "install"], min_length=1)
    test: list[str] = Field(default_factory=lambda: ["npm", "test"], min_length=1)
    build: list[str] = Field(default_factory=lambda: ["npm", "run", "build"], min_length=1)
    # The guide's ./scripts/migrate-database.sh and ./scripts/migrate-config.sh, for a major update only.
    # A database migration that ran is undone by a rollback by restoring the full backup's dump.
    migrate_database: list[list[str]] = Field(default_factory=list)
    migrate_config: list[list[str]] = Field(default_factory=list)
    # Each step's bound, in seconds.
    git_timeout_seconds: float = Field(default=120, gt=0, le=3600)
    install_timeout_seconds: float = Field(default=900, gt=0, le=7200)
    test_timeout_seconds: float = Field(default=900, gt=0, le=7200)
    build_timeout_seconds: float = Field(default=900, gt=0, le=7200)
    migrate_timeout_seconds: float = Field(default=1800, gt=0, le=86400)
    # The verification: the daily checks of this configuration, as a pytest run; the update passes only if
    # every one passes. Extra pytest arguments (a `-k` selection) go in verify_args.
    verify_args: list[str] = Field(default_factory=list)
    verify_timeout_seconds: float = Field(default=900, gt=0, le=7200)
    # How many lines of a failed step's output are said (and kept in the audit file).
    output_tail_lines: int = Field(default=20, ge=1, le=500)

    @field_validator("dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{str(value)!r} must be an absolute path on the box")
        return value

    @field_validator("remote", "branch")
    @classmethod
    def _no_dots(cls, value: str) -> str:
        if ".." in value:
            raise ValueError(f"{value!r} must not contain '..'")
        return value
