"""The [database] section: how the suite reaches the agent's PostgreSQL database, what the weekly database
maintenance reads and when it acts, and which rows the guide's cleanup deletes.

The password is never in the file: `password_env` names a variable ([schedule] secrets_file first, then the
environment) or `password_file` a file; it is read when a connection is made, so a rotated one is picked up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from configuration import secretsfile
from configuration.section import COMMENTED, TABLES, Section
from core.unread import CouldNotRead
from core.vocabulary import Unread

# A table or column as PostgreSQL names it unquoted: `trades`, or `schema.table`.
SQL_NAME = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$"


class DatabaseThresholds(Section):
    """When a table needs VACUUM ANALYZE or REINDEX, and when transaction IDs run short (the weekly database
    maintenance); the defaults are autovacuum's own and check_postgres'."""

    max_dead_tuple_percent: float = Field(default=20, gt=0, le=100,
                                          description="DB-002: dead rows over this share of a table need VACUUM "
                                                      "(autovacuum's own trigger is 20 %).")
    max_changed_percent: float = Field(default=10, gt=0, le=100,
                                       description="DB-003: statistics are stale when the rows changed since the last "
                                                   "ANALYZE are over this share (autovacuum's trigger: 10 %), or when "
                                                   "the last ANALYZE is older than stale_statistics_days.")
    min_changed_rows: int = Field(default=1000, ge=0, le=10**12,
                                  description="DB-002, DB-003: and at least this many rows: a small table is never "
                                              "flagged for a handful.")
    stale_statistics_days: float = Field(default=7, gt=0, le=3660,
                                         description="DB-003: statistics older than this, with min_changed_rows "
                                                     "changed since, are stale too.")
    xid_age_warning: int = Field(default=1_300_000_000, ge=1, le=2_147_483_647,
                                 description="DB-004: the transaction ID age, age(datfrozenxid), of any database "
                                             "over this is a warning (check_postgres txn_wraparound's default); "
                                             "PostgreSQL stops accepting writes near 2.1 billion.")
    xid_age_critical: int = Field(default=1_400_000_000, ge=1, le=2_147_483_647,
                                  description="DB-004: over this it is critical; at least xid_age_warning.")
    max_index_bloat_percent: float = Field(default=50, gt=0, le=100,
                                           description="DB-005: a B-tree index whose estimated bloat (from the "
                                                       "statistics) is over this share of its size is rebuilt with "
                                                       "REINDEX INDEX CONCURRENTLY.")
    min_index_size_mb: float = Field(default=10, ge=0, le=10**8,
                                     description="DB-005: indexes smaller than this are left alone (the estimate is "
                                                 "noise there, and a small index costs nothing).")

    @model_validator(mode="after")
    def _warning_below_critical(self) -> DatabaseThresholds:
        if self.xid_age_warning > self.xid_age_critical:
            raise ValueError(f"xid_age_warning ({self.xid_age_warning}) must not exceed xid_age_critical "
                             f"({self.xid_age_critical})")
        return self


class TableRetention(Section):
    """The guide's cleanup of old rows (DB-006): `DELETE FROM <table> WHERE <column> < NOW() - INTERVAL
    '<max_age_days> days'`, in batches, and only rows a backup already holds."""

    table: str = Field(pattern=SQL_NAME, examples=["trades"], description="The table (or schema.table).")
    column: str = Field(default="created_at", pattern=SQL_NAME, description="The row's timestamp column.")
    max_age_days: int = Field(ge=1, le=36_525, examples=[90], description="Rows older than this many days expire.")


class Database(Section):
    """The agent's database. The daily DB-001 (it answers) and the weekly database maintenance connect with this,
    once per run, as application_name \"trading-maintenance\"; the password is kept out of every report, log and
    alert. host and port are the box's own: over SSH the suite reaches them through its SSH connection (a
    forward, README \"From another machine, over SSH\"), never over the network."""

    per_box = True

    host: str = Field(default="127.0.0.1", description="The server's address on the box.")
    port: int = Field(default=5432, ge=1, le=65535, description="The server's port on the box.")
    dbname: str = Field(default="trading_agent", description="The agent's database.")
    user: str = Field(default="postgres", description="The user the suite logs in as.")
    password_env: str | None = Field(
        default=None, examples=["TRADING_DB_PASSWORD"],
        description="The name of the variable that holds the password (never the password itself). Set it in "
                    "[schedule] secrets_file, where every run looks first: `sudo make daily` and the schedule keep "
                    "none of your shell's variables. Set nowhere: DB-001 is UNKNOWN, naming the variable and the "
                    "file, and nothing is restarted.")
    password_file: Path | None = Field(
        default=None, examples=["/etc/trading-maintenance/db-password"], json_schema_extra=COMMENTED,
        description="Instead of password_env: a file (mode 600) holding only the password. Neither set: no "
                    "password (peer or trust authentication, or ~/.pgpass).")
    connect_timeout_seconds: int = Field(default=5, ge=1, le=120, description="How long a connection may take.")
    statement_timeout_seconds: float = Field(
        default=10, gt=0, le=600,
        description="Every statement the suite sends is cancelled after this (SET statement_timeout); a server "
                    "that does not answer at all (a frozen postmaster) is given up on a few seconds later.")
    lock_timeout_seconds: float = Field(
        default=2, gt=0, le=60,
        description="A statement never waits longer than this for a lock (SET lock_timeout): the agent's own "
                    "statements must not queue behind the suite's.")
    maintenance_timeout_seconds: float = Field(
        default=900, gt=0, le=86400,
        description="How long one VACUUM ANALYZE or REINDEX INDEX CONCURRENTLY may take (neither blocks the "
                    "agent's reads or writes).")
    tables: list[str] = Field(default=["trades", "logs"], min_length=1,
                              description="The tables whose dead rows, statistics and indexes the weekly checks read "
                                          "(DB-002, DB-003, DB-005).")
    retention: list[TableRetention] = Field(
        default_factory=lambda: [TableRetention(table="trades", max_age_days=90),
                                 TableRetention(table="logs", max_age_days=30)],
        json_schema_extra=TABLES, description="The guide's cleanup of old rows, one table each (DB-006).")
    delete_batch_rows: int = Field(
        default=5000, ge=1, le=1_000_000,
        description="Rows past retention are deleted this many per transaction, and only rows a backup holds: "
                    "rows older than the newest dump of the backups ([backups] dir: full-*, incremental-* or "
                    "archive-*.dump).")
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
