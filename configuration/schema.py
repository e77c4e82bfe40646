"""The one configuration file, validated before any check runs: the whole file (`Settings`, its tables from the
sections' own modules) and its loading.

Every path, port, threshold and service name a check uses comes from here, so that the same checks
serve the real box and the lab. A bad value stops the run with a message naming the file, the key
and what is expected, never with a traceback.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime
import os
import re
import stat
import tomllib
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from configuration import machine
from configuration.alerts import AlertSettings
from configuration.application import Application
from configuration.backups import Backups, retention_conflicts
from configuration.baselines import Baselines
from configuration.certificates import Certificates
from configuration.database import Database
from configuration.emergency import Emergency
from configuration.endpoints import Api, Dashboard, Exchange, Tunnel
from configuration.error_handling import Diagnostics, ErrorHandling
from configuration.hardware import Hardware
from configuration.host import Host, Services
from configuration.inventory import Inventory, InventoryError, boxes_from
from configuration.logs import Logrotate, Paths, Trading
from configuration.monitoring import Monitoring
from configuration.pentest import Pentest
from configuration.performance import WeeklyReview
from configuration.policy import Policy, Remediation, Silence, Waiver
from configuration.resources import Resources
from configuration.retention import RetentionRule
from configuration.rotation import Rotation
from configuration.section import COMMENTED, TABLES, FileMode, SecretUrl, Section, section_of
from configuration.security import Security
from configuration.securityaudit import Audit
from configuration.system import MonthlyReview
from configuration.tasks import Tasks
from configuration.updates import Updates
from core.redact import url_secrets
from core.unread import CouldNotRead

ENV_VAR = "MAINTENANCE_CONFIG"
SECRETISH = re.compile(r"token|pass|secret|key|_env|_file|url", re.IGNORECASE)
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "maintenance.example.toml"


class ConfigError(Exception):
    """A configuration problem an operator can fix by editing the file."""


class Heartbeat(Section):
    """A dead man's switch, the healthchecks.io way: a ping to URL/start when a run starts, to URL when it ends
    well, to URL/fail otherwise; the service tells you when the pings stop."""

    url: SecretUrl | None = Field(default=None, examples=["https://hc-ping.com/your-uuid"],
                                  json_schema_extra=COMMENTED,
                                  description="The check's ping URL; a secret as a whole but its scheme and host.")
    timeout_seconds: float = Field(default=10, gt=0, le=60, description="How long one ping may take.")

    def address(self) -> str | None:
        """Unwrapped only by the line that sends the ping."""
        return self.url.get_secret_value() if self.url else None


class Reports(Section):
    """Each run's reports (<cadence>-<time>.html and .xml) and the audit trail built from them."""

    dir: Path = Field(default=Path("/var/lib/trading-maintenance/reports"),
                      description="Each run's reports and the ledger (the operator trail): beside the suite's "
                                  "state, never in its checkout.")
    keep_days: int = Field(default=90, ge=1,
                           description="Pruned after every scheduled run: per cadence, the newest keep_count runs at "
                                       "most keep_days old are kept (their reports, their output and their line in "
                                       "the runs log); nothing else in dir is touched.")
    keep_count: int = Field(default=100, ge=1, description="See keep_days.")
    history_length: int = Field(default=30, ge=1, le=1000,
                                description="After every run (and `make reindex`), from the ledger and the reports "
                                            "alone: index.html (every run, with filters), a history page per check "
                                            "instance showing its last history_length results, trends.html, and the "
                                            "Prometheus textfile.")
    prometheus_textfile: Path | None = Field(
        default=None, examples=["/var/lib/prometheus/node-exporter/trading-maintenance.prom"],
        json_schema_extra=COMMENTED,
        description="The textfile for node_exporter's textfile collector. Not set: trading-maintenance.prom in dir.")
    shared_mode: FileMode = Field(
        default=0o600,
        description="What another program reads (each run's reports, the pages, the textfile) gets this mode and "
                    "shared_group; everything else the suite writes (state, spool, alerts, ledger, backups, "
                    "bundles) is 0600 whatever this says. The default keeps findings for root's eyes only; for a "
                    "web server or node_exporter: 0o640 and a shared_group. Never writable by others. Root writes "
                    "these files only in directories only root can change (a textfile directory owned by "
                    "prometheus is refused: give it to root, or keep the textfile in dir).")
    shared_group: str | None = Field(default=None, examples=["www-data"], json_schema_extra=COMMENTED,
                                     description="The group of what another program reads; it must exist where the "
                                                 "suite runs.")

    @field_validator("shared_mode")
    @classmethod
    def _read_only_for_others(cls, mode: int) -> int:
        if mode & 0o600 != 0o600 or mode & ~0o644:
            raise ValueError(f"{mode:#o} must let the owner read and write and others at most read (0o600, 0o640 "
                             f"or 0o644, written so in TOML)")
        return mode

    @field_validator("shared_group")
    @classmethod
    def _existing_group(cls, group: str | None) -> str | None:
        import grp

        if group is not None:
            try:
                grp.getgrnam(group)
            except KeyError:
                raise ValueError(f"no group {group!r} on this machine (getent group {group})") from None
        return group


class Schedule(Section):
    """What a scheduled run reads (`make install-schedule` runs python -m commands.run CADENCE): cron, systemd and
    sudo give it neither the operator's shell nor its variables."""

    log_dir: Path = Field(default=Path("/var/log/trading-maintenance"),
                          description="Where a scheduled run writes runs.log, one line per run (time, cadence, exit "
                                      "status and its meaning, report), and each run's output <cadence>-<time>.log.")
    secrets_file: Path | None = Field(
        default=None, examples=["/etc/trading-maintenance/secrets.env"], json_schema_extra=COMMENTED,
        description="KEY=VALUE lines where every run (make daily, the schedule, make restore, update-*, baseline...) "
                    "looks up the variables the `*_env` keys name (TRADING_DB_PASSWORD, TELEGRAM_BOT_TOKEN, ...), "
                    "before the environment. It must be mode 600 and owned by the user who runs the suite (root "
                    "unless make install-schedule RUN_USER=...); a run refuses it otherwise.")

    @model_validator(mode="after")
    def _absolute(self) -> Schedule:
        for key in ("log_dir", "secrets_file"):
            value = getattr(self, key)
            if value is not None and not value.is_absolute():
                raise ValueError(f"{key} {str(value)!r} must be an absolute path (cron and systemd start elsewhere)")
        return self


# The rules the guide's box needs on the first day (the example's [[retention]]).
GUIDE_RETENTION = [
    {"name": "temp-files", "dir": "/tmp", "pattern": "trading-*", "max_age_days": 1},
    {"name": "app-logs", "dir": "/opt/trading-agent/logs", "pattern": "*.log", "max_age_days": 7},
    {"name": "backups", "dir": "/opt/trading-agent/backups", "pattern": "emergency-*.tar.gz", "max_age_days": 30},
]


class Settings(Section):
    """The one configuration file of the suite, validated as a whole before any check runs: a bad value stops the
    run naming the file, the key and what is expected, and an unknown key is an error (a typo must not fall back
    to a default silently). Each table below is a section; a table that is not written keeps its defaults."""

    host: Host = Host()
    services: Services = Services()
    resources: Resources = Resources()
    paths: Paths = Paths()
    retention: list[RetentionRule] = Field(default_factory=list, examples=[GUIDE_RETENTION], json_schema_extra=TABLES)
    logrotate: Logrotate = Logrotate()
    trading: Trading = Trading()
    api: Api = Api()
    dashboard: Dashboard = Dashboard()
    tunnel: Tunnel = Tunnel()
    exchange: Exchange = Exchange()
    database: Database = Database()
    diagnostics: Diagnostics = Diagnostics()
    emergency: Emergency = Emergency()
    security: Security = Security()
    audit: Audit = Audit()
    pentest: Pentest = Pentest()
    certificates: Certificates = Certificates()
    rotation: Rotation = Rotation()
    backups: Backups = Backups()
    application: Application = Application()
    updates: Updates = Updates()
    monthly_review: MonthlyReview = MonthlyReview()
    baselines: Baselines = Baselines()
    error_handling: ErrorHandling = ErrorHandling()
    hardware: Hardware = Hardware()
    tasks: Tasks = Tasks()
    monitoring: Monitoring = Monitoring()
    weekly_review: WeeklyReview = WeeklyReview()
    remediation: Remediation = Remediation()
    alerts: AlertSettings = AlertSettings()
    reports: Reports = Reports()
    schedule: Schedule = Schedule()
    policy: Policy = Policy()
    waivers: list[Waiver] = Field(
        default_factory=list, json_schema_extra={**TABLES, **COMMENTED},
        examples=[[{"check": "ERR-002", "match": "", "reason": "exchange incident #42, fix deployed Friday",
                    "expires": datetime.date(2026, 12, 31)}]])
    silences: list[Silence] = Field(
        default_factory=list, json_schema_extra={**TABLES, **COMMENTED},
        examples=[[{"check": "WEB-001", "reason": "dashboard upgrade", "until": datetime.datetime(2026, 12, 1, 18)}]])
    heartbeat: Heartbeat = Heartbeat()
    inventory: Inventory = Inventory()
    source: Path | None = Field(default=None, exclude=True, description="The file this was loaded from (set by load).")
    fleet: tuple[Settings, ...] = Field(default=(), exclude=True,
                                        description="The boxes this run looks at: from [[boxes]], each the file with "
                                                    "that box's tables over it; without [[boxes]], this one box (set "
                                                    "by load).")

    @model_validator(mode="before")
    @classmethod
    def _set_by_the_loader_only(cls, data):
        """`source` and `fleet` are what `load` found, never keys of the file."""
        if isinstance(data, dict):
            given = sorted({"source", "fleet"} & set(data))
            if given:
                raise ValueError(f"{', '.join(given)}: not a key of the file (set by the loader)")
        return data

    @field_validator("retention")
    @classmethod
    def _rule_names_unique(cls, rules: list[RetentionRule]) -> list[RetentionRule]:
        """The check reads a rule by its name and the deletion acts on one: two rules of one name would differ."""
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if rule.name in seen:
                raise ValueError(f"the name {rule.name!r} is used by retention.{seen[rule.name]} and "
                                 f"retention.{index}: give each rule a name of its own")
            seen[rule.name] = index
        return rules

    @field_validator("waivers", "silences")
    @classmethod
    def _one_per_instance(cls, entries: list, info) -> list:
        """Two waivers (or silences) of the same instance, with two expiries: which one holds is a surprise."""
        seen: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(entries):
            key = (entry.check, entry.match)
            if key in seen:
                raise ValueError(f"{info.field_name}.{seen[key]} and {info.field_name}.{index} both cover check "
                                 f"{entry.check!r} match {entry.match!r}: keep one")
            seen[key] = index
        return entries

    @model_validator(mode="before")
    @classmethod
    def _rules_own_the_service_users_files(cls, data):
        """A [[retention]] rule without `owners` deletes only the files of [services] user."""
        if not isinstance(data, dict) or not isinstance(data.get("retention"), list):
            return data
        services = data.get("services") if isinstance(data.get("services"), dict) else {}
        user = services.get("user", Services.model_fields["user"].default)
        rules = [{**rule, "owners": rule.get("owners") or [user]} if isinstance(rule, dict) else rule
                 for rule in data["retention"]]
        return {**data, "retention": rules}

    @model_validator(mode="after")
    def _backups_own_their_retention(self) -> Settings:
        conflicts = retention_conflicts(self.retention, self.backups)
        if conflicts:
            raise ValueError("; ".join(conflicts))
        return self

    def boxes(self) -> tuple[Settings, ...]:
        return self.fleet or (self,)

    def box(self, name: str) -> Settings:
        return next(box for box in self.boxes() if box.host.name == name)

    def secrets(self) -> list[str]:
        """Every secret this configuration can reach, so that none of them is ever printed."""
        found = list(self.alerts.secrets())
        with contextlib.suppress(CouldNotRead):  # a password not there cannot be printed either
            password = self.database.password()
            if password is not None:
                found.append(password.get_secret_value())
        if self.heartbeat.url:
            found += url_secrets(self.heartbeat.address(), path_is_secret=True)
        return found


def resolve_path(option: str | None) -> Path:
    """Command-line option first, then the environment variable: the operator's choice wins."""
    chosen = option or os.environ.get(ENV_VAR)
    if not chosen:
        raise ConfigError(
            f"no configuration file given. Copy {EXAMPLE} to a place of your own, edit it, and pass "
            f"it with --maintenance-config=PATH or {ENV_VAR}=PATH (for the lab: make demo)."
        )
    return Path(chosen).expanduser()


def load(path: Path) -> Settings:
    """The file, validated as a whole and against this machine; ConfigError says what to change, key by key."""
    raw = _parse(path, _read(path))
    if not raw:
        raise ConfigError(f"{path} is empty (nothing but blanks and comments): copy {EXAMPLE} to {path} and edit it. "
                          f"An empty file would run every check with the built-in defaults, which are no box's own.")
    _not_too_deep(path, raw)
    boxes = raw.pop("boxes", [])
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe(path, error)) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to validate: no key of this file holds arrays or tables "
                          f"within each other more than {MAX_DEPTH} levels deep") from None
    source = path.resolve()
    if settings.inventory.ansible is not None:
        inventory = source.parent / settings.inventory.ansible.expanduser()
        try:
            boxes = [*boxes, *boxes_from(inventory, settings.inventory.group)]
        except InventoryError as error:
            raise ConfigError(f"{path}: inventory.ansible: {error}") from None
    fleet = tuple(box.model_copy(update={"source": source}) for box in _fleet(path, raw, boxes))
    settings = settings.model_copy(update={"source": source, "fleet": fleet})
    problems = machine.problems(settings)
    if problems:
        raise ConfigError("\n".join([f"{path}: {len(problems)} bad value(s):",
                                     *(f"  {key}: {why}" for key, why in problems)]))
    return settings


MAX_BYTES = 1 << 20  # the example is 50 kB: a configuration past a megabyte is some other file
MAX_DEPTH = 16  # the example's deepest value is 5 levels down (backups.kinds.full.stop_services.0)


def _read(path: Path) -> str:
    """The file's text: a regular file (never waiting on a FIFO), at most MAX_BYTES, UTF-8 without a BOM."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(
            f"configuration file {path} does not exist. Copy {EXAMPLE} to {path} and edit it."
        ) from None
    except OSError as error:
        raise ConfigError(f"configuration file {path} cannot be read: {error.strerror}. Run as a user who may "
                          f"read it (its owner or root), or give that user read access (chgrp/chmod).") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError(f"configuration file {path} is {what}: name the TOML file itself (maintenance.toml)")
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} kB: not a configuration file (the example is "
                          f"{EXAMPLE.stat().st_size // 1024} kB)")
    if data.startswith(codecs.BOM_UTF8):
        raise ConfigError(f"{path}: starts with a byte order mark (bytes ef bb bf): save it as UTF-8 without BOM")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start} "
                          f"(line {line}): save the file as UTF-8") from None


def _parse(path: Path, text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML here: arrays or inline tables nested too deeply for the reader "
                          f"(no key of a configuration nests more than {MAX_DEPTH} levels)") from None


def _not_too_deep(path: Path, raw: dict) -> None:
    """Refused before validation, naming the key: pydantic and describe() recurse into what they are given."""
    stack = [((), raw)]
    while stack:
        keys, value = stack.pop()
        if len(keys) > MAX_DEPTH:
            key = ".".join(str(part) for part in keys[:3])
            raise ConfigError(f"{path}: 1 bad value(s):\n  {key}: nested more than {MAX_DEPTH} levels deep "
                              f"(arrays or tables within each other): no key of a configuration nests so deep")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend(((*keys, key), item) for key, item in items)


# What a box may set for itself in [[boxes]]: the tables whose section says `per_box`; the rest (alerts, reports,
# policy...) is the run's.
BOX_SECTIONS = frozenset(name for name, field in Settings.model_fields.items()
                         if (section := section_of(field.annotation)) is not None and section.per_box)
# [[boxes]] is read by the loader (each entry becomes a Settings of its own), so it is documented here.
BOXES_DESCRIPTION = ("Several boxes (README \"Several boxes\"): each [[boxes]] entry is a name and the tables in which "
                     "that box differs from this file; a box may set the tables marked per box in "
                     "docs/configuration.md, the rest is the run's. [inventory] adds the hosts of an Ansible "
                     "inventory the same way.")
BOX_EXAMPLE = {"name": "trading-box-2", "host": {"backend": "ssh://maintenance@192.0.2.11:22", "sudo": True}}


def _fleet(path: Path, raw: dict, boxes) -> list[Settings]:
    """[[boxes]]: each a `name` and the tables in which that box differs from the file."""
    if not isinstance(boxes, list) or not all(isinstance(box, dict) for box in boxes):
        raise ConfigError(f"{path}: boxes must be an array of tables ([[boxes]]), each with a name")
    fleet, names = [], set()
    for index, box in enumerate(boxes):
        box = dict(box)
        name = box.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: boxes.{index}: every [[boxes]] entry needs a name")
        if name in names:
            raise ConfigError(f"{path}: boxes.{index}: the box name {name!r} is used twice")
        names.add(name)
        foreign = sorted(set(box) - BOX_SECTIONS)
        if foreign:
            raise ConfigError(f"{path}: boxes.{index} ({name}): {', '.join(foreign)} cannot differ per box; "
                              f"a box may set: {', '.join(sorted(BOX_SECTIONS))}")
        merged = _merged(raw, {**box, "host": {**box.get("host", {}), "name": name}})
        try:
            fleet.append(Settings.model_validate(merged))
        except ValidationError as error:
            raise ConfigError(describe(path, error, prefix=f"boxes.{index}")) from None
    return fleet


def _merged(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merged(base[key], value) if both else value
    return merged


def describe(path: Path, error: ValidationError, prefix: str = "") -> str:
    lines = [f"{path}: {error.error_count()} bad value(s):"]
    for problem in error.errors():
        key = ".".join(str(part) for part in ([prefix] if prefix else []) + list(problem["loc"])) or "(top level)"
        # The given value is echoed only where it cannot be a secret pasted under a wrong key.
        shown = (problem["type"] not in ("missing", "extra_forbidden") and not SECRETISH.search(key)
                 and not isinstance(problem.get("input"), (dict, list)))
        given = f" (got {problem.get('input')!r})" if shown else ""
        lines.append(f"  {key}: {problem['msg']}{given}")
    return "\n".join(lines)
