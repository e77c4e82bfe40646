"""The one configuration file, validated before any check runs.

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
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from configuration import machine, secretsfile
from configuration.alerts import AlertSettings
from configuration.application import Application
from configuration.backups import Backups, retention_conflicts
from configuration.emergency import Emergency
from configuration.hardware import Hardware
from configuration.inventory import InventoryError, boxes_from
from configuration.monitoring import Monitoring
from configuration.monthly import Baselines, ErrorHandling, MonthlyReview
from configuration.pentest import Pentest
from configuration.review import Certificates, Rotation
from configuration.section import AccountName, FreeText, PathText, RelativePath, SecretUrl, Section, UnitName
from configuration.security import Security
from configuration.securityaudit import Audit
from configuration.tasks import Tasks
from configuration.updates import Updates
from configuration.weekly_review import WeeklyReview
from core.redact import url_secrets
from core.unread import CouldNotRead
from core.vocabulary import Mode, Unread

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
    # The box's host keys the suite trusts, and only these (ssh's StrictHostKeyChecking=yes, always): written by
    # `make trust-box BOX=name` once the operator has compared the fingerprints. Default: known_hosts in
    # [policy] state_dir.
    known_hosts: Path | None = None
    # The box's interpreter for the suite's readers (standard library only; Python 3.8 or newer).
    python: str = "python3"
    # Commands that change the box (restarts, rotation, clean-up) run through `sudo -n`: for a
    # maintenance user that is not root; its rules come from `make sudoers`.
    sudo: bool = False

    @field_validator("ssh_extra_args")
    @classmethod
    def _host_keys_are_the_suites(cls, words: list[str]) -> list[str]:
        """A box answering with a key nobody compared is not the box: the suite sets how host keys are checked
        (probes/host.py), so no argument may loosen it or point elsewhere."""
        host_key_options = ("stricthostkeychecking", "userknownhostsfile", "globalknownhostsfile", "knownhostscommand")
        for word in words:
            option = re.match(r"(?:-o)?\s*([A-Za-z]*)", word)[1].lower()
            if option in host_key_options:
                raise ValueError(f"{word!r} is the suite's to set: it checks the box's host key against [host] "
                                 f"known_hosts, always (StrictHostKeyChecking=yes); remove it, and trust the box's "
                                 f"keys once with make trust-box BOX=name")
        return words

    def known_hosts_file(self, state_dir: Path) -> Path:
        """Where the box's trusted host keys are: [host] known_hosts, else known_hosts in [policy] state_dir."""
        return self.known_hosts or Path(state_dir).absolute() / "known_hosts"


class Services(Section):
    # The user the agent runs as: what a retention rule may delete is, by default, only its files.
    user: AccountName = "trading"
    # Unit (or supervisor program) names: they reach systemctl, sudoers rules and unit files as one word.
    agent: UnitName = "trading-agent"
    dashboard: UnitName = "trading-dashboard"
    tunnel: UnitName = "ssh-tunnel"
    database: UnitName = "postgresql"

    def critical(self) -> list[str]:
        return [self.tunnel, self.agent, self.dashboard, self.database]


class Resources(Section):
    disk_paths: list[PathText] = Field(default=["/"], min_length=1)
    cpu_sample_seconds: float = Field(default=1.0, gt=0, le=60)
    cpu: Levels = Levels(warning=70, critical=85)
    memory: Levels = Levels(warning=80, critical=90)
    disk: Levels = Levels(warning=75, critical=85)


class Paths(Section):
    log_dir: Path = Path("/var/log/trading-agent")
    known_errors: Path = Path("/opt/trading-agent/config/known-errors.txt")


# Where no retention rule may delete, whatever its pattern and owners: the system's own trees and everything
# below them (programs, libraries, configuration, package and database state, root's home, the kernel's and
# the running services' files) ...
SYSTEM_TREES = tuple(Path(tree) for tree in ("/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                             "/libx32", "/var/lib", "/root", "/proc", "/sys", "/dev", "/run"))
# ... and directories that hold other directories, not clutter: a rule names the one below that it cleans.
WHOLE_TREES = tuple(Path(tree) for tree in ("/", "/home", "/var"))


class RetentionRule(Section):
    """One line of the guide's cleanup: find DIR -name PATTERN -mtime +MAX_AGE_DAYS -delete, and only
    what the rule owns: files directly in DIR (unless `recursive`), owned by `owners` (by default
    [services] user), on DIR's own filesystem, never through a link."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    dir: Path
    pattern: str = Field(min_length=1)
    max_age_days: int = Field(ge=0, le=3660)
    recursive: bool = False
    owners: list[AccountName] = Field(default_factory=list)  # empty: [services] user
    # root's files are the system's: a rule deletes them only when it says so.
    allow_root_owned: bool = False

    @field_validator("dir")
    @classmethod
    def _not_a_system_tree(cls, value: Path) -> Path:
        tree = next((tree for tree in SYSTEM_TREES if value.is_relative_to(tree)), None)
        if tree is not None:
            raise ValueError(f"{str(value)!r} is in {tree}, a system tree: a retention rule never deletes there")
        if value in WHOLE_TREES:
            raise ValueError(f"{str(value)!r} holds whole trees, not clutter: name the directory below it to clean")
        return value

    @model_validator(mode="after")
    def _pattern_is_a_name(self) -> RetentionRule:
        if "/" in self.pattern:
            raise ValueError(f"pattern {self.pattern!r} must be a file name pattern, without '/'")
        return self

    @model_validator(mode="after")
    def _root_only_when_said(self) -> RetentionRule:
        if not self.allow_root_owned and any(owner in ("root", "0") for owner in self.owners):
            raise ValueError(f"owners {self.owners} include root: root's files are the system's; if this rule "
                             f"must delete them, say so with allow_root_owned = true")
        return self


class Logrotate(Section):
    rotate_after_days: int = Field(default=1, ge=0, le=366)
    command: list[str] = Field(default=["logrotate", "-f", "/etc/logrotate.d/trading-agent"], min_length=1)


class Trading(Section):
    min_trades_today: int = Field(default=1, ge=0, le=1_000_000)


class ApiThresholds(Section):
    max_error_rate_per_hour: float = Field(default=10, ge=0, le=1_000_000)
    max_critical_errors: int = Field(default=0, ge=0, le=1_000_000)
    min_overall_health: float = Field(default=80, ge=0, le=100)
    max_open_circuit_breakers: int = Field(default=0, ge=0, le=10_000)


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
    min_changed_rows: int = Field(default=1000, ge=0, le=10**12)
    # Statistics older than this, with rows changed since (min_changed_rows), are stale too.
    stale_statistics_days: float = Field(default=7, gt=0, le=3660)
    # age(datfrozenxid) of any database (check_postgres txn_wraparound: 1.3 and 1.4 billion).
    xid_age_warning: int = Field(default=1_300_000_000, ge=1, le=2_147_483_647)
    xid_age_critical: int = Field(default=1_400_000_000, ge=1, le=2_147_483_647)
    # A B-tree index whose estimated bloat is over this share of its size, when at least min_index_size_mb.
    max_index_bloat_percent: float = Field(default=50, gt=0, le=100)
    min_index_size_mb: float = Field(default=10, ge=0, le=10**8)

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
    max_age_days: int = Field(ge=1, le=36_525)


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
        if self.password_file is not None and self.password_env:
            raise ValueError("give password_env or password_file, not both: the password has one source")
        if self.password_file is not None and not self.password_file.is_file():
            raise ValueError(f"password_file {self.password_file} does not exist or is not a file")
        return self

    def password(self) -> SecretStr | None:
        """Read now, so a rotated password is used by the next connection; None when no source is configured
        (peer, trust or ~/.pgpass). Configured but not there: CouldNotRead(SECRET_MISSING), with the fix, since a
        password the suite lacks says nothing about the database."""
        if self.password_file is not None:
            return _password_from_file(self.password_file)
        if self.password_env:
            value = secretsfile.variable(self.password_env)
            if value is None:
                detail, fix = secretsfile.not_set(self.password_env)
                raise CouldNotRead(Unread.SECRET_MISSING, "the database password", detail, fix)
            return value
        return None

    def password_source(self) -> str:
        """Where the password comes from, in words: a refused login's fix names it."""
        if self.password_file is not None:
            return f"[database] password_file {self.password_file}"
        if self.password_env:
            return f"[database] password_env: {secretsfile.where(self.password_env)}"
        return "no password ([database] password_env or password_file)"


def _password_from_file(path: Path) -> SecretStr:
    """[database] password_file's first line; a file that went away or that this user may not read is missing."""
    try:
        value = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        raise CouldNotRead(Unread.SECRET_MISSING, "the database password", f"[database] password_file {path} does "
                           f"not exist", f"create {path} (mode 600, the password on one line) or correct "
                           f"[database] password_file") from None
    except OSError as error:
        user = secretsfile.user_name(os.geteuid())
        raise CouldNotRead(Unread.SECRET_MISSING, "the database password", f"[database] password_file {path} "
                           f"cannot be read by {user}: {error.strerror}", f"run as the owner of {path} (or root), or "
                           f"make it readable by {user} alone (chown {user} {path}; chmod 600 {path})") from None
    if not value:
        raise CouldNotRead(Unread.SECRET_MISSING, "the database password", f"[database] password_file {path} is "
                           f"empty", f"write the password on the first line of {path}")
    return SecretStr(value)


class Diagnostics(Section):
    error_analysis: list[str] = ["/usr/local/bin/trading-error-analysis"]
    health_check: list[str] = ["/usr/local/bin/trading-health-check"]


class Remediation(Section):
    # Not set: plan. A file must say apply for the suite to change the box.
    mode: Mode = Mode.PLAN
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    # A restarted service needs a moment before the check looks again.
    recheck_after_seconds: float = Field(default=1.0, ge=0, le=300)


class CheckPolicy(Section):
    """Per-check overrides of the policy, keyed by check id."""

    failures_before_action: int | None = Field(default=None, ge=1, le=100)
    max_remediations: int | None = Field(default=None, ge=0, le=1000)


class Budget(Section):
    """At most max_remediations on one target (a service, a directory), by any check, within the last
    window_runs runs of the acting check's cadence (daily: 24 h each, weekly 7 d, monthly 31 d,
    quarterly 92 d, emergency 5 min)."""

    max_remediations: int = Field(default=3, ge=0, le=1000)
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
    failures_before_action: int = Field(default=1, ge=1, le=100)
    repeat_interval_minutes: float = Field(default=240, gt=0, le=525_600)  # at most a year
    flap_window: int = Field(default=6, ge=3, le=20)
    flap_changes: int = Field(default=4, ge=2, le=20)
    budget: Budget = Budget()
    checks: dict[str, CheckPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _flapping_can_be_seen(self) -> Policy:
        if self.flap_changes >= self.flap_window:
            raise ValueError(f"flap_changes ({self.flap_changes}) must be less than flap_window ({self.flap_window}): "
                             f"{self.flap_window} verdicts change at most {self.flap_window - 1} times")
        return self


class Waiver(Section):
    """An accepted failure: reported as waived, neither remediated nor alerted, until it expires."""

    check: str
    match: str = ""  # a fragment of the parameter id (e.g. a service name); empty = every instance
    reason: FreeText = Field(min_length=3)
    expires: datetime.date | datetime.datetime


class Silence(Section):
    """Alerts held back (remediation still runs) for planned work, until it expires."""

    check: str
    match: str = ""
    reason: FreeText = Field(min_length=3)
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

    ansible: RelativePath | None = None  # INI, or the JSON of `ansible-inventory --list`; relative to this file
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
    # What another program reads gets this mode and group, the same for all of it: each run's two reports,
    # the audit trail's pages (for a web server) and the Prometheus textfile (for node_exporter). Everything
    # else the suite writes (state, spool, alerts, ledger, backups, bundles) is 0600 whatever this says.
    # Default 0o600 and no group: nobody else reads findings until you say who, e.g. shared_mode = 0o640 and
    # shared_group = "www-data". Never writable by others; the group must exist where the suite runs.
    shared_mode: int = 0o600
    shared_group: str | None = None

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
    """What a scheduled run reads: cron and systemd give it neither the operator's shell nor its variables."""

    # runs.log (one line per run) and each run's output (<cadence>-<time>.log); created by the run.
    log_dir: Path = Path("/var/log/trading-maintenance")
    # KEY=VALUE lines where every run (make targets, sudo, the schedule) looks up the variables the `*_env` keys
    # name, before the environment; mode 600, owned by the user who runs the suite (configuration/secretsfile.py).
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


MAX_BYTES = 1 << 20  # the example is 40 kB: a configuration past a megabyte is some other file
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
