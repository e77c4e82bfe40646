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
    """The guide's Update Procedures 1-2: `make update-minor CONFIG=...` and `make update-major REF=v2.0.0
    CONFIG=...` (plan by default; APPLY=1 updates). The agent's git checkout: a minor update fast-forwards it to
    remote/branch, a major one checks out a tag or commit. A backup first (minor: .env and config/; major: a full
    backup with every service stopped), then fetch, check out, install, test, build, migrate (major), restart, and
    the daily checks of this file; a failed step or check rolls back to the commit and backup of before."""

    per_box = True

    dir: Path = Field(default=Path("/opt/trading-agent"), description="The agent's git checkout on the box.")
    remote: str = Field(default="origin", pattern=GIT_NAME, description="The git remote updates come from.")
    branch: str = Field(default="main", pattern=GIT_NAME, description="The branch a minor update fast-forwards to.")
    git: list[str] = Field(default_factory=lambda: ["git"], min_length=1, description="How git is run.")
    run_as: list[str] = Field(
        default_factory=list, examples=[["runuser", "-u", "trading", "--"]],
        description="Put before every git and npm command, so that the checkout's owner runs them and node_modules "
                    "and the build are not root's; empty: as the suite's user.")
    install: list[str] = Field(default_factory=lambda: ["npm", "install"], min_length=1,
                               description="Run in dir (argument lists, as every step). `npm ci` installs exactly "
                                           "package-lock.json; the guide says `npm install`.")
    test: list[str] = Field(default_factory=lambda: ["npm", "test"], min_length=1, description="The tests, run in dir.")
    build: list[str] = Field(default_factory=lambda: ["npm", "run", "build"], min_length=1,
                             description="The build, run in dir.")
    migrate_database: list[list[str]] = Field(
        default_factory=list, examples=[[["./scripts/migrate-database.sh"]]],
        description="The guide's database migration scripts, major updates only: each a command, run in dir. A "
                    "migration that ran is undone on rollback by restoring the full backup's dump (the migrated "
                    "database is kept, renamed).")
    migrate_config: list[list[str]] = Field(
        default_factory=list, examples=[[["./scripts/migrate-config.sh"]]],
        description="The guide's configuration migration scripts, major updates only; each a command, run in dir.")
    git_timeout_seconds: float = Field(default=120, gt=0, le=3600,
                                       description="Each step's bound, in seconds: a step that runs out of it fails, "
                                                   "and the update rolls back.")
    install_timeout_seconds: float = Field(default=900, gt=0, le=7200, description="See git_timeout_seconds.")
    test_timeout_seconds: float = Field(default=900, gt=0, le=7200, description="See git_timeout_seconds.")
    build_timeout_seconds: float = Field(default=900, gt=0, le=7200, description="See git_timeout_seconds.")
    migrate_timeout_seconds: float = Field(default=1800, gt=0, le=86400, description="See git_timeout_seconds.")
    verify_args: list[str] = Field(default_factory=list,
                                   description="The verification is the daily checks of this file (pytest -m daily); "
                                               "the update passes only if every one passes. Extra pytest arguments "
                                               "(a `-k` selection) go here.")
    verify_timeout_seconds: float = Field(default=900, gt=0, le=7200, description="See git_timeout_seconds.")
    output_tail_lines: int = Field(default=20, ge=1, le=500,
                                   description="How many lines of a failed step's output are said, and recorded.")

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
