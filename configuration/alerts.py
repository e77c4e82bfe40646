"""The [alerts] section: which channels carry alerts, how hard delivery tries, where secrets live.

Secrets are never written in the file: each is named by an environment variable (`*_env`) or a
file (`*_file`). The two are checked differently on purpose:
- a secret *file* that does not exist is a load error naming the key: it is a path the operator
  typed, so it is a typo, and every later run would fail the same way;
- a missing *environment variable* is not: cron's environment is not the operator's shell, and
  refusing to load would also silence the file channel. It becomes a per-alert permanent failure
  at delivery ("could not send: TELEGRAM_BOT_TOKEN is not set"), which goes to the fallback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from configuration import secretsfile
from configuration.section import COMMENTED, SecretUrl, Section
from core.redact import url_secrets
from core.vocabulary import Severity

FILE_CHANNEL = "file"  # always on: the record of last resort
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ADDRESS = r"^[^@\s]+@[^@\s]+$"  # loose on purpose; it mainly keeps newlines out of mail headers


class MissingSecret(Exception):
    """A secret named by the configuration could not be read at the moment it was needed."""


def _readable_file(path: Path | None) -> Path | None:
    if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
        raise ValueError("does not exist or is not a readable file")  # describe() shows the path
    return path


ExistingFile = Annotated[Path | None, AfterValidator(_readable_file)]


def read_secret(env: str | None, file: Path | None, key: str) -> str:
    """The secret's value, read now (not at load) so a rotated token is picked up by the next run."""
    if file is not None:
        try:
            value = file.read_text().strip()
        except OSError as error:
            raise MissingSecret(f"cannot read {key}_file {file}: {error.strerror}") from None
        if not value:
            raise MissingSecret(f"{key}_file {file} is empty")
        return value
    if env:
        if not ENV_NAME.fullmatch(env):
            # Checked here, not at load: the loader echoes a rejected value, and this one may be a
            # token pasted where its variable's name belongs. Not repeated here for the same reason.
            raise MissingSecret(f"{key}_env is not an environment variable name (a secret pasted in its place?)")
        found = secretsfile.variable(env)  # [schedule] secrets_file, then the environment
        value = found.get_secret_value().strip() if found else ""
        if not value:
            raise MissingSecret(secretsfile.not_set(env)[0])
        return value
    raise MissingSecret(f"neither {key}_env nor {key}_file is configured")


def _one_source(env: str | None, file: Path | None, key: str, required: bool) -> None:
    if env and file is not None:
        raise ValueError(f"give {key}_env or {key}_file, not both")
    if required and not env and file is None:
        raise ValueError(f"{key}_env or {key}_file is required")


class ChannelSettings(Section):
    """What every network channel has: the severities it carries and a timeout for each call."""

    severities: list[Severity] = Field(description="The severities this channel carries (critical, warning, info); "
                                                   "emergencies go to every configured channel whatever these say.")
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="How long one delivery may take.")

    def wants(self, severity: str) -> bool:
        return severity in self.severities

    def secrets(self) -> list[str]:
        return []


class TelegramSettings(ChannelSettings):
    """The guide's Telegram alerts (its templates \"🚨 CRITICAL: {message}\", \"⚠️ WARNING: ...\", \"ℹ️ INFO: ...\").
    The bot's token comes from @BotFather; the chat's id from https://api.telegram.org/bot<token>/getUpdates once
    the bot is in the chat (a group's id is negative)."""

    api_base: str = Field(default="https://api.telegram.org", pattern=r"^https?://",
                          description="Telegram's Bot API (another address only for a test server).")
    bot_token_env: str | None = Field(default=None, examples=["TELEGRAM_BOT_TOKEN"],
                                      description="The name of the variable that holds the bot's token, looked up in "
                                                  "[schedule] secrets_file, then the environment; or bot_token_file.")
    bot_token_file: ExistingFile = Field(default=None, examples=["/etc/trading-maintenance/telegram-token"],
                                         description="Instead of bot_token_env: a file holding only the token.")
    chat_id: str = Field(min_length=1, examples=["-1001234567890"], description="The chat the alerts go to.")
    severities: list[Severity] = Field(default=["critical", "warning", "info"],
                                       description="The severities this channel carries.")

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id_as_text(cls, value):
        # Group ids are negative numbers; TOML users write them with or without quotes.
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _token_source(self) -> TelegramSettings:
        _one_source(self.bot_token_env, self.bot_token_file, "bot_token", required=True)
        return self

    def token(self) -> str:
        return read_secret(self.bot_token_env, self.bot_token_file, "bot_token")

    def secrets(self) -> list[str]:
        return _resolvable(self.token)


class EmailSettings(ChannelSettings):
    """The guide's email alerts: SMTP with STARTTLS and a login. With [alerts] fallback = [\"email\", \"file\"], an
    alert another channel refuses for good is mailed."""

    host: str = Field(min_length=1, examples=["smtp.yourdomain.com"], description="The SMTP server.")
    port: int = Field(default=587, ge=1, le=65535, description="Its submission port.")
    starttls: bool = Field(default=True, description="Upgrade the connection to TLS before anything is sent; a login "
                                                     "requires it.")
    ca_file: ExistingFile = Field(default=None, examples=["/etc/trading-maintenance/smtp-ca.pem"],
                                  description="Trust this CA instead of the system's (a private relay).")
    user: str | None = Field(default=None, examples=["alerts@yourdomain.com"],
                             description="The login; not set: no login.")
    password_env: str | None = Field(default=None, examples=["EMAIL_PASS"],
                                     description="The name of the variable that holds the login's password; or "
                                                 "password_file.")
    password_file: ExistingFile = Field(default=None, examples=["/etc/trading-maintenance/smtp-password"],
                                        description="Instead of password_env: a file holding only the password.")
    sender: str = Field(pattern=ADDRESS, examples=["trading-box@yourdomain.com"], description="The From address.")
    recipients: list[Annotated[str, Field(pattern=ADDRESS)]] = Field(min_length=1, examples=[["admin@yourdomain.com"]],
                                                                      description="Who receives the alerts.")
    severities: list[Severity] = Field(default=["critical", "warning"],
                                       description="The severities this channel carries.")

    @model_validator(mode="after")
    def _login_is_safe(self) -> EmailSettings:
        _one_source(self.password_env, self.password_file, "password", required=self.user is not None)
        if self.user is None and (self.password_env or self.password_file):
            raise ValueError("a password is configured but no user")
        if self.user is not None and not self.starttls:
            raise ValueError("user is set but starttls is false: the password would cross the network in clear")
        return self

    def password(self) -> str:
        return read_secret(self.password_env, self.password_file, "password")

    def secrets(self) -> list[str]:
        return _resolvable(self.password) if self.user else []


class WebhookSettings(ChannelSettings):
    """A generic webhook receiving each alert as JSON."""

    url: SecretUrl = Field(examples=["https://hooks.yourdomain.com/trading"],
                           description="Where the alert is posted; a secret as a whole but its scheme and host (a "
                                       "hook's URL carries its token: in its path for Slack and Discord, its query "
                                       "or its user-info).")
    severities: list[Severity] = Field(default=["critical", "warning", "info"],
                                       description="The severities this channel carries.")
    header_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$", examples=["Authorization"],
                                    description="A header sent with each alert, whose value is a secret.")
    header_value_env: str | None = Field(default=None, examples=["WEBHOOK_TOKEN"],
                                         description="The name of the variable that holds the header's value; or "
                                                     "header_value_file.")
    header_value_file: ExistingFile = Field(default=None, examples=["/etc/trading-maintenance/webhook-token"],
                                            description="Instead of header_value_env: a file holding only the value.")

    @model_validator(mode="after")
    def _header_complete(self) -> WebhookSettings:
        _one_source(self.header_value_env, self.header_value_file, "header_value",
                    required=self.header_name is not None)
        if self.header_name is None and (self.header_value_env or self.header_value_file):
            raise ValueError("a header value is configured but no header_name")
        return self

    def header_value(self) -> str:
        return read_secret(self.header_value_env, self.header_value_file, "header_value")

    def secrets(self) -> list[str]:
        found = url_secrets(self.url.get_secret_value(), path_is_secret=True)
        return found + (_resolvable(self.header_value) if self.header_name else [])


class AlertSettings(Section):
    """Telling a human. The file channel is always on; a network channel is on when its table is present.

    A channel that reaches a person: Telegram or email (or both). To enable one:
      1. uncomment its table below and fill in the chat or the addresses;
      2. put its secret in [schedule] secrets_file (mode 600), one KEY=VALUE line under the name its `*_env`
         key gives, e.g. TELEGRAM_BOT_TOKEN=123456:ABC... (never in this file; or point `*_file` at a file
         that holds only the secret);
      3. the next run that alerts says at the end of its summary what each message reached (\"NOT DELIVERED:
         telegram ...: why\" when a channel did not take it; the message then waits in spool_dir).
    Emergencies go to every configured channel whatever its severities."""

    file: Path = Field(default=Path("/var/log/trading-maintenance/alerts.jsonl"),
                       description="Every alert is appended to this file (one JSON object per line), whatever else "
                                   "happens. Its directory must be one only root can write (never the agent's log "
                                   "directory, which its user could fill with links). The file is on the machine "
                                   "that runs the suite: a record that tells nobody. Watching the box from another "
                                   "machine, a box that dies is only ever in this file unless a channel below "
                                   "reaches a person: set one up (each run's summary says so while none is).")
    spool_dir: Path = Field(default=Path("/var/lib/trading-maintenance/spool"),
                            description="Alerts that could not be delivered wait here and are delivered by the next "
                                        "run, once.")
    fallback: list[Annotated[str, AfterValidator(_known_channel)]] = Field(
        default=["email", FILE_CHANNEL], examples=[[FILE_CHANNEL]],
        description="Where an alert goes when its channel refuses it for good (403, a bad address): configured "
                    "channels only, e.g. [\"email\", \"file\"] once [alerts.email] is set up.")
    max_attempts: int = Field(default=3, ge=1, le=10,
                              description="Tries of one alert on one channel (5xx answers, timeouts) ...")
    max_retry_seconds: float = Field(default=30, ge=0, le=600, description="... within this time.")
    tell_routine_fixes: bool = Field(default=False,
                                     description="A finding its remediation fixed is in the digest as done, never as "
                                                 "a problem. Routine maintenance that did its job (logs rotated, "
                                                 "expired files removed) is in the report only; true also sends "
                                                 "those.")
    telegram: TelegramSettings | None = Field(
        default=None, json_schema_extra=COMMENTED,
        examples=[{"bot_token_env": "TELEGRAM_BOT_TOKEN", "chat_id": "-1001234567890",
                   "severities": ["critical", "warning", "info"], "timeout_seconds": 10}])
    email: EmailSettings | None = Field(
        default=None, json_schema_extra=COMMENTED,
        examples=[{"host": "smtp.yourdomain.com", "port": 587, "user": "alerts@yourdomain.com",
                   "password_env": "EMAIL_PASS", "sender": "trading-box@yourdomain.com",
                   "recipients": ["admin@yourdomain.com"], "severities": ["critical", "warning"]}])
    webhook: WebhookSettings | None = Field(
        default=None, json_schema_extra=COMMENTED,
        examples=[{"url": "https://hooks.yourdomain.com/trading", "header_name": "Authorization",
                   "header_value_env": "WEBHOOK_TOKEN", "severities": ["critical"]}])

    @classmethod
    def network_channels(cls) -> tuple[str, ...]:
        """Every network channel is a field holding its settings: its name is the field's name."""
        return tuple(name for name, field in cls.model_fields.items()
                     if any(isinstance(arg, type) and issubclass(arg, ChannelSettings)
                            for arg in getattr(field.annotation, "__args__", ())))

    @model_validator(mode="after")
    def _fallback_usable(self) -> AlertSettings:
        if len(set(self.fallback)) != len(self.fallback):
            raise ValueError(f"fallback lists a channel twice: {self.fallback}")
        # The default names email; only a fallback the operator wrote must name configured channels.
        if "fallback" in self.model_fields_set:
            missing = [name for name in self.fallback if name != FILE_CHANNEL and self.channel(name) is None]
            if missing:
                raise ValueError(f"fallback names {', '.join(missing)} but [alerts.{missing[0]}] is not configured")
        return self

    def channel(self, name: str) -> ChannelSettings | None:
        """A network channel's settings, or None when it is not configured."""
        return getattr(self, name) if name in self.network_channels() else None

    def enabled(self) -> list[str]:
        return [name for name in self.network_channels() if self.channel(name) is not None]

    def secrets(self) -> list[str]:
        """Every secret that can be read now, so a Redactor can keep them out of logs and reports."""
        return [value for name in self.enabled() for value in self.channel(name).secrets()]


def _known_channel(name: str) -> str:
    known = [*AlertSettings.network_channels(), FILE_CHANNEL]
    if name not in known:
        raise ValueError("Input should be " + ", ".join(repr(k) for k in known[:-1]) + f" or {known[-1]!r}")
    return name


def _resolvable(read) -> list[str]:
    try:
        return [read()]
    except MissingSecret:
        return []
