"""[updates]: package updates (the guide's Weekly 3 Security Updates, Quarterly 1 Software Updates and
System Updates 1-2).

What is pending is apt's own answer (`apt-get -s dist-upgrade`, `apt-cache policy`), under `apt_config`
(APT_CONFIG; none: the box's own apt). A candidate is a security update when one of the release files
it comes from matches one of `security_origins`, written as unattended-upgrades' Origins-Pattern: comma-
separated `key=glob` terms that must all match, keys o/origin, a/archive/suite, n/codename, l/label,
c/component. Installing is off unless `install = true`, and then only inside `window` (the box's local
time), after a backup of `backup_kind`. The application's `npm audit` runs in `app_dir` when it has a
package.json.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from configuration.section import COMMENTED, Section

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ORIGIN_KEYS = {"o": "o", "origin": "o", "a": "a", "archive": "a", "suite": "a", "n": "n", "codename": "n",
               "l": "l", "label": "l", "c": "c", "component": "c", "site": "site"}
AUDIT_LEVELS = ("info", "low", "moderate", "high", "critical")  # npm's, least to most severe
BACKUP_KINDS = ("full", "incremental", "archive")


def _origin_pattern(value: str) -> str:
    terms = [term.strip() for term in value.split(",") if term.strip()]
    if not terms:
        raise ValueError("an empty origin pattern would match every update")
    for term in terms:
        key, equals, glob = term.partition("=")
        if not equals or key.strip() not in ORIGIN_KEYS or not glob.strip():
            raise ValueError(f"{value!r}: each term is key=glob with a key among {', '.join(sorted(ORIGIN_KEYS))} "
                             f"(unattended-upgrades' Origins-Pattern), e.g. 'n=*-security'")
    return value


class Window(Section):
    """When installing may happen, in the box's local time: the days, and from `start` to `end` (HH:MM; an `end`
    before `start` runs past midnight, into the next day). The default holds the weekly run (Sunday 03:00)."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default=["sun"], min_length=1, description="The days it opens (mon ... sun).")
    start: str = Field(default="02:00", description="When it opens, HH:MM in the box's local time.")
    end: str = Field(default="05:00", description="When it closes; before start: the next day.")

    @field_validator("start", "end")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} must be HH:MM (24-hour), e.g. 02:00")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("start and end are the same minute: the window would be empty")
        return self

    def minutes(self, hh_mm: str) -> int:
        hours, minutes = hh_mm.split(":")
        return int(hours) * 60 + int(minutes)

    def holds(self, weekday: int, hh_mm: str) -> bool:
        """Whether this moment (weekday 0 = Monday, HH:MM) is inside the window."""
        now, start, end = self.minutes(hh_mm), self.minutes(self.start), self.minutes(self.end)
        if start < end:
            return DAYS[weekday] in self.days and start <= now < end
        # past midnight: the evening part belongs to its day, the morning part to the day before
        yesterday = DAYS[(weekday - 1) % 7]
        return (DAYS[weekday] in self.days and now >= start) or (yesterday in self.days and now < end)

    def __str__(self) -> str:
        return f"{','.join(self.days)} {self.start}-{self.end} (box local time)"

    def calendar(self) -> str:
        """The window's start as a systemd OnCalendar= expression."""
        days = ",".join(day.capitalize() for day in self.days)
        return f"{days} *-*-* {self.start}:00"


class Updates(Section):
    """The guide's Weekly 3 (Security Updates), Quarterly 1 (Software Updates) and System Updates 1-2. What is
    pending is apt's own answer (`apt-get -s dist-upgrade`, `apt-cache policy`); a candidate is a security update
    when a release file it comes from matches one of security_origins."""

    per_box = True

    apt_config: Path | None = Field(default=None, examples=["/etc/trading-maintenance/apt.conf"],
                                    json_schema_extra=COMMENTED,
                                    description="APT_CONFIG for every apt command the suite runs (a path on the box); "
                                                "not set or empty: the box's own configuration.")
    apt_get: str = Field(default="apt-get", description="How apt-get runs.")
    apt_cache: str = Field(default="apt-cache", description="How apt-cache runs.")
    refresh_lists: bool = Field(default=False,
                                description="true: `apt-get update` (as root) before reading what is pending; false: "
                                            "apt-daily.timer keeps the package lists fresh.")
    security_origins: list[str] = Field(default_factory=lambda: ["n=*-security", "a=*-security", "l=Debian-Security"],
                                        min_length=1,
                                        description="Written as unattended-upgrades' Origins-Pattern: comma-separated "
                                                    "key=glob terms that must all match, keys o (origin), a (archive, "
                                                    "suite), n (codename), l (label), c (component).")
    max_pending: int = Field(default=20, ge=0, le=100_000,
                             description="UPD-002: more pending updates than this (security or not) is a box falling "
                                         "behind.")
    hold: list[str] = Field(default_factory=lambda: ["linux-*"],
                            description="Never installed by the suite (the guide's --exclude=linux-*: the kernel waits "
                                        "for a planned reboot).")
    reboot_required_file: Path = Field(default=Path("/var/run/reboot-required"),
                                       description="UPD-003: the file that says a reboot is required; its packages are "
                                                   "in the same path + .pkgs.")
    app_dir: Path = Field(default=Path("/opt/trading-agent"),
                          description="UPD-004: `npm audit --json` runs here when it has a package.json.")
    npm: str = Field(default="npm", description="How npm runs.")
    npm_audit_level: Literal["info", "low", "moderate", "high", "critical"] = Field(
        default="moderate", description="UPD-004 counts this severity and above.")
    npm_timeout_seconds: float = Field(default=120, gt=0, le=1800, description="How long npm audit may take.")
    node: str = Field(default="node", description="How node runs.")
    node_min_major: int = Field(default=20, ge=1, le=1000,
                                description="UPD-006: the installed Node.js (`node --version`) at least this major "
                                            "version (an LTS line).")
    install: bool = Field(default=False,
                          description="Installing (the remediation install_updates: security updates from UPD-001, "
                                      "everything but `hold` from UPD-005; and make update-os): off unless true, and "
                                      "then only inside the window, after a backup of backup_kind.")
    window: Window = Window()
    backup_kind: Literal["full", "incremental", "archive"] = Field(default="full",
                                                                   description="The backup taken before installing.")
    install_timeout_seconds: float = Field(default=1800, gt=0, le=86400, description="How long installing may take.")
    daily_checks_after: bool = Field(default=True,
                                     description="After installing, the daily checks of the same configuration run "
                                                 "(remediation off).")
    daily_checks_timeout_seconds: float = Field(default=900, gt=0, le=7200, description="How long they may take.")
    schedule_reboot: list[str] = Field(
        default_factory=lambda: ["systemd-run", "--unit=trading-maintenance-reboot", "--on-calendar={calendar}",
                                 "systemctl", "reboot"], min_length=1,
        description="make update-os schedules a reboot the updates asked for (never at once) with this command, at "
                    "the window's next start: {calendar} is that start as a systemd OnCalendar= expression "
                    "(\"Sun *-*-* 02:00:00\").")

    @field_validator("security_origins")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return [_origin_pattern(pattern) for pattern in value]

    @field_validator("apt_config", mode="before")
    @classmethod
    def _empty_is_the_boxs_own(cls, value):
        return None if value == "" else value

    @field_validator("apt_config", "reboot_required_file", "app_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"{str(value)!r} must be an absolute path on the box")
        return value

    def at_or_above(self) -> tuple[str, ...]:
        """The npm severities counted by UPD-004."""
        return AUDIT_LEVELS[AUDIT_LEVELS.index(self.npm_audit_level):]

    def reboot_packages_file(self) -> Path:
        return self.reboot_required_file.with_name(self.reboot_required_file.name + ".pkgs")
