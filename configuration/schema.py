"""The one configuration file, validated before any check runs.

Every path, port, threshold and service name a check uses comes from here, so that the same checks
serve the real box and the lab. A bad value stops the run with a message naming the file, the key
and what is expected, never with a traceback.
"""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator

from configuration.alerts import AlertSettings
from configuration.application import Application
from configuration.audit import Audit
from configuration.backups import Backups, retention_conflicts
from configuration.emergency import Emergency
from configuration.hardware import Hardware
from configuration.inventory import InventoryError, boxes_from
from configuration.monitoring import Monitoring
from configuration.monthly import Baselines, ErrorHandling, MonthlyReview
from configuration.pentest import Pentest
from configuration.review import Certificates, Rotation
from configuration.section import SecretUrl, Section
from configuration.security import Security
from configuration.tasks import Tasks
from configuration.updates import Updates
from configuration.weekly_review import WeeklyReview
from core.redact import url_secrets
from core.vocabulary import Mode

ENV_VAR = "MAINTENANCE_CONFIG"
SECRETISH = re.compile(r"token|pass|secret|key|_env|_file|url", re.IGNORECASE)
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "maintenance.example.toml"


class ConfigError(Exception):
    """A configuration problem an operator can fix by editing the file."""


class Levels(Section):
    """Warning and critical percentages, as in the guide's monitoring-thresholds.json."""

    warning: float = Field(ge=0, le=100)
    critical: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _warning_below_critical(self) -> Levels:
        if self.warning > self.critical:
            raise ValueError(f"warning ({self.warning}) must not exceed critical ({self.critical})")
        return self


class Host(Section):
    """The box: where it is, how to reach it, and what its service manager is."""

    name: str = Field(default="trading-box", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    backend: str = Field(default="local://", pattern=r"^(local|ssh)://")
    service_manager: Literal["systemd", "supervisor"] = "systemd"
    supervisorctl: list[str] = ["supervisorctl"]
    # Over SSH: the maintenance user's key, an ssh_config, extra `ssh` arguments, the connect timeout.
    ssh_identity_file: Path | None = None
    ssh_config: Path | None = None
    ssh_extra_args: list[str] = Field(default_factory=list)
    connect_timeout_seconds: float = Field(default=10, gt=0, le=120)
    # The box's interpreter for the suite's readers (standard library only; Python 3.8 or newer).
    python: str = "python3"
    # Commands that change the box (restarts, rotation, clean-up) run through `sudo -n`: for a
    # maintenance user that is not root; its rules come from `make sudoers`.
    sudo: bool = False


class Services(Section):
    # The user the agent runs as: what a retention rule may delete is, by default, only its files.
    user: str = Field(default="trading", min_length=1)
    agent: str = "trading-agent"
    dashboard: str = "trading-dashboard"
    tunnel: str = "ssh-tunnel"
    database: str = "postgresql"

    def critical(self) -> list[str]:
        return [self.tunnel, self.agent, self.dashboard, self.database]


class Resources(Section):
    disk_paths: list[str] = Field(default=["/"], min_length=1)
    cpu_sample_seconds: float = Field(default=1.0, gt=0, le=60)
    cpu: Levels = Levels(warning=70, critical=85)
    memory: Levels = Levels(warning=80, critical=90)
    disk: Levels = Levels(warning=75, critical=85)


class Paths(Section):
    log_dir: Path = Path("/var/log/trading-agent")
    known_errors: Path = Path("/opt/trading-agent/config/known-errors.txt")


class RetentionRule(Section):
    """One line of the guide's cleanup: find DIR -name PATTERN -mtime +MAX_AGE_DAYS -delete, and only
    what the rule owns: files directly in DIR (unless `recursive`), owned by `owners` (by default
    [services] user), on DIR's own filesystem, never through a link."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    dir: Path
    pattern: str = Field(min_length=1)
    max_age_days: int = Field(ge=0)
    recursive: bool = False
    owners: list[str] = Field(default_factory=list)  # empty: [services] user

    @model_validator(mode="after")
    def _pattern_is_a_name(self) -> RetentionRule:
        if "/" in self.pattern:
            raise ValueError(f"pattern {self.pattern!r} must be a file name pattern, without '/'")
        if not self.dir.is_absolute():
            raise ValueError(f"dir {str(self.dir)!r} must be an absolute path")
        return self


class Logrotate(Section):
    rotate_after_days: int = Field(default=1, ge=0)
    command: list[str] = Field(default=["logrotate", "-f", "/etc/logrotate.d/trading-agent"], min_length=1)


class Trading(Section):
    min_trades_today: int = Field(default=1, ge=0)


class ApiThresholds(Section):
    max_error_rate_per_hour: float = Field(default=10, ge=0)
    max_critical_errors: int = Field(default=0, ge=0)
    min_overall_health: float = Field(default=80, ge=0, le=100)
    max_open_circuit_breakers: int = Field(default=0, ge=0)


class Api(Section):
    base_url: str = Field(default="http://127.0.0.1:3001", pattern=r"^https?://")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    thresholds: ApiThresholds = ApiThresholds()


class Dashboard(Section):
    url: str = Field(default="http://127.0.0.1:3000", pattern=r"^https?://")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)


class Tunnel(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=1, le=65535)
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)


class Exchange(Section):
    url: str = Field(default="https://127.0.0.1:8443/api/v4/spot/currencies", pattern=r"^https?://")
    host_header: str = "api.gateio.ws"
    verify_tls: bool | str = True
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


# A table or column as PostgreSQL names it unquoted: `trades`, or `schema.table`.
SQL_NAME = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$"


class DatabaseThresholds(Section):
    """When a table needs VACUUM ANALYZE or REINDEX; the defaults are autovacuum's own and check_postgres'."""

    # Dead rows over this share of the table (autovacuum_vacuum_scale_factor: 20 %) ...
    max_dead_tuple_percent: float = Field(default=20, gt=0, le=100)
    # ... or rows changed since the last ANALYZE over this share (autovacuum_analyze_scale_factor: 10 %) ...
    max_changed_percent: float = Field(default=10, gt=0, le=100)
    # ... and at least this many of them: a small table is never flagged for a few rows.
    min_changed_rows: int = Field(default=1000, ge=0)
    # Statistics older than this, with rows changed since (min_changed_rows), are stale too.
    stale_statistics_days: float = Field(default=7, gt=0)
    # age(datfrozenxid) of any database (check_postgres txn_wraparound: 1.3 and 1.4 billion).
    xid_age_warning: int = Field(default=1_300_000_000, ge=1, le=2_147_483_647)
    xid_age_critical: int = Field(default=1_400_000_000, ge=1, le=2_147_483_647)
    # A B-tree index whose estimated bloat is over this share of its size, when at least min_index_size_mb.
    max_index_bloat_percent: float = Field(default=50, gt=0, le=100)
    min_index_size_mb: float = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _warning_below_critical(self) -> DatabaseThresholds:
        if self.xid_age_warning > self.xid_age_critical:
            raise ValueError(f"xid_age_warning ({self.xid_age_warning}) must not exceed xid_age_critical "
                             f"({self.xid_age_critical})")
        return self


class TableRetention(Section):
    """The guide's `DELETE FROM TABLE WHERE COLUMN < NOW() - INTERVAL 'MAX_AGE_DAYS days'`, in batches."""

    table: str = Field(pattern=SQL_NAME)
    column: str = Field(default="created_at", pattern=SQL_NAME)
    max_age_days: int = Field(ge=1)


class Database(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = "trading_agent"
    user: str = "postgres"
    password_env: str | None = None
    password_file: Path | None = None
    connect_timeout_seconds: int = Field(default=5, ge=1, le=120)
    # Every statement the suite sends has these limits (server side; the client gives up a little later).
    statement_timeout_seconds: float = Field(default=10, gt=0, le=600)
    # Never wait longer for a lock, so that nothing the agent needs queues behind the suite.
    lock_timeout_seconds: float = Field(default=2, gt=0, le=60)
    # One VACUUM ANALYZE or REINDEX CONCURRENTLY (neither blocks the agent's reads and writes).
    maintenance_timeout_seconds: float = Field(default=900, gt=0, le=86400)
    # The tables whose dead rows, statistics and indexes the weekly checks read.
    tables: list[str] = Field(default=["trades", "logs"], min_length=1)
    retention: list[TableRetention] = Field(default_factory=lambda: [
        TableRetention(table="trades", max_age_days=90), TableRetention(table="logs", max_age_days=30)])
    # Expired rows are deleted this many per transaction, each batch only when a backup holds them.
    delete_batch_rows: int = Field(default=5000, ge=1, le=1_000_000)
    thresholds: DatabaseThresholds = DatabaseThresholds()

    @model_validator(mode="after")
    def _names(self) -> Database:
        bad = [table for table in self.tables if not re.match(SQL_NAME, table)]
        if bad:
            raise ValueError(f"tables: {bad} are not plain table names (lower case, digits, _, schema.table)")
        tables = [rule.table for rule in self.retention]
        if len(set(tables)) != len(tables):
            raise ValueError(f"retention: a table is listed twice ({tables})")
        return self

    @model_validator(mode="after")
    def _password_file_readable(self) -> Database:
        if self.password_file is not None and not self.password_file.is_file():
            raise ValueError(f"password_file {self.password_file} does not exist or is not a file")
        return self

    def password(self) -> SecretStr | None:
        if self.password_file is not None:
            return SecretStr(self.password_file.read_text().strip())
        if self.password_env:
            value = os.environ.get(self.password_env)
            return SecretStr(value) if value else None
        return None


class Diagnostics(Section):
    error_analysis: list[str] = ["/usr/local/bin/trading-error-analysis"]
    health_check: list[str] = ["/usr/local/bin/trading-health-check"]


class Remediation(Section):
    mode: Mode = Mode.APPLY
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    # A restarted service needs a moment before the check looks again.
    recheck_after_seconds: float = Field(default=1.0, ge=0, le=300)


class CheckPolicy(Section):
    """Per-check overrides of the policy, keyed by check id."""

    failures_before_action: int | None = Field(default=None, ge=1)
    max_remediations: int | None = Field(default=None, ge=0)


class Budget(Section):
    """At most max_remediations on one target (a service, a directory), by any check, within the last
    window_runs runs of the acting check's cadence (daily: 24 h each, weekly 7 d, monthly 31 d,
    quarterly 92 d, emergency 5 min)."""

    max_remediations: int = Field(default=3, ge=0)
    window_runs: int = Field(default=5, ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _window_in_runs(cls, data):
        if isinstance(data, dict) and "window_minutes" in data:
            raise ValueError("window_minutes is no longer read: the window is counted in runs of the acting "
                             "check's cadence, so that a daily crash-loop trips it too; replace it by "
                             "window_runs = 5 (the last 5 runs: 5 days for a daily check, 25 min for an "
                             "emergency one)")
        return data


class Policy(Section):
    state_dir: Path = Path("/var/lib/trading-maintenance")
    failures_before_action: int = Field(default=1, ge=1)
    repeat_interval_minutes: float = Field(default=240, gt=0)
    flap_window: int = Field(default=6, ge=3, le=20)
    flap_changes: int = Field(default=4, ge=2)
    budget: Budget = Budget()
    checks: dict[str, CheckPolicy] = Field(default_factory=dict)


class Waiver(Section):
    """An accepted failure: reported as waived, neither remediated nor alerted, until it expires."""

    check: str
    match: str = ""  # a fragment of the parameter id (e.g. a service name); empty = every instance
    reason: str = Field(min_length=3)
    expires: datetime.date | datetime.datetime


class Silence(Section):
    """Alerts held back (remediation still runs) for planned work, until it expires."""

    check: str
    match: str = ""
    reason: str = Field(min_length=3)
    until: datetime.date | datetime.datetime


class Heartbeat(Section):
    """healthchecks.io convention: URL/start at start, URL on success, URL/fail on failure."""

    url: SecretUrl | None = None
    timeout_seconds: float = Field(default=10, gt=0, le=60)

    def address(self) -> str | None:
        """Unwrapped only by the line that sends the ping."""
        return self.url.get_secret_value() if self.url else None


class Inventory(Section):
    """Boxes from an Ansible inventory (configuration/inventory.py), added to [[boxes]]."""

    ansible: Path | None = None  # INI, or the JSON of `ansible-inventory --list`; relative to this file
    group: str = "all"


class Reports(Section):
    dir: Path = Path("reports")
    # A scheduled run (commands/run.py) keeps, per cadence, the newest `keep_count` runs' records (its two
    # reports, its output, its line in the runs log) that are at most `keep_days` old; it deletes the rest.
    keep_days: int = Field(default=90, ge=1)
    keep_count: int = Field(default=100, ge=1)
    # The audit trail's outputs, rebuilt after every run from the ledger and the reports (reports/index.py):
    # index.html and a history page per check instance showing its last `history_length` results, and the
    # Prometheus node_exporter textfile (default: trading-maintenance.prom in `dir`; point it at the textfile
    # collector's directory, e.g. /var/lib/prometheus/node-exporter/trading-maintenance.prom).
    history_length: int = Field(default=30, ge=1, le=1000)
    prometheus_textfile: Path | None = None


class Schedule(Section):
    """What a scheduled run reads: cron and systemd give it neither the operator's shell nor its variables."""

    # runs.log (one line per run) and each run's output (<cadence>-<time>.log); created by the run.
    log_dir: Path = Path("/var/log/trading-maintenance")
    # KEY=VALUE lines the run puts in its environment, for the `*_env` keys; mode 600, owned by the run's user.
    secrets_file: Path | None = None

    @model_validator(mode="after")
    def _absolute(self) -> Schedule:
        for key in ("log_dir", "secrets_file"):
            value = getattr(self, key)
            if value is not None and not value.is_absolute():
                raise ValueError(f"{key} {str(value)!r} must be an absolute path (cron and systemd start elsewhere)")
        return self


class Settings(Section):
    """The whole file. Unknown keys are errors: a typo must not silently fall back to a default."""

    host: Host = Host()
    services: Services = Services()
    resources: Resources = Resources()
    paths: Paths = Paths()
    retention: list[RetentionRule] = Field(default_factory=list)
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
    waivers: list[Waiver] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    heartbeat: Heartbeat = Heartbeat()
    inventory: Inventory = Inventory()
    source: Path | None = Field(default=None, exclude=True)
    # The boxes this run looks at: from [[boxes]], each the file with that box's tables over it; without
    # [[boxes]], this one box. Set by `load`.
    fleet: tuple[Settings, ...] = Field(default=(), exclude=True)

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
    try:
        raw = tomllib.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(
            f"configuration file {path} does not exist. Copy {EXAMPLE} to {path} and edit it."
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"configuration file {path} cannot be read: {error.strerror}. Run as a user who may "
                          f"read it (its owner or root), or give that user read access (chgrp/chmod).") from None
    boxes = raw.pop("boxes", [])
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe(path, error)) from None
    source = path.resolve()
    if settings.inventory.ansible is not None:
        inventory = source.parent / settings.inventory.ansible.expanduser()
        try:
            boxes = [*boxes, *boxes_from(inventory, settings.inventory.group)]
        except InventoryError as error:
            raise ConfigError(f"{path}: inventory.ansible: {error}") from None
    fleet = tuple(box.model_copy(update={"source": source}) for box in _fleet(path, raw, boxes))
    return settings.model_copy(update={"source": source, "fleet": fleet})


# What a box may set for itself in [[boxes]]; the rest (alerts, reports, policy...) is the run's.
BOX_SECTIONS = {"host", "services", "resources", "paths", "retention", "logrotate", "trading", "api", "dashboard",
                "tunnel", "exchange", "database", "diagnostics", "security", "audit", "backups",
                "monthly_review", "baselines", "error_handling", "hardware", "monitoring", "updates", "pentest",
                "certificates", "rotation", "application", "weekly_review", "tasks"}


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
