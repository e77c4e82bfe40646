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
from configuration.section import SecretUrl, Section
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

    severities: list[Severity]
    timeout_seconds: float = Field(default=10, gt=0, le=120)

    def wants(self, severity: str) -> bool:
        return severity in self.severities

    def secrets(self) -> list[str]:
        return []


class TelegramSettings(ChannelSettings):
    api_base: str = Field(default="https://api.telegram.org", pattern=r"^https?://")
    bot_token_env: str | None = None
    bot_token_file: ExistingFile = None
    chat_id: str = Field(min_length=1)
    severities: list[Severity] = ["critical", "warning", "info"]

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
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ca_file: ExistingFile = None  # trust this CA instead of the system's (a private relay, the tests)
    user: str | None = None
    password_env: str | None = None
    password_file: ExistingFile = None
    sender: str = Field(pattern=ADDRESS)
    recipients: list[Annotated[str, Field(pattern=ADDRESS)]] = Field(min_length=1)
    severities: list[Severity] = ["critical", "warning"]

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
    url: SecretUrl  # a hook's URL carries its token: in its path (Slack, Discord), query or user-info
    severities: list[Severity] = ["critical", "warning", "info"]
    header_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")
    header_value_env: str | None = None
    header_value_file: ExistingFile = None

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
    """The file channel is always on; the network channels are on when their table is present."""

    file: Path = Path("/var/log/trading-maintenance/alerts.jsonl")  # root's: never the agent's log directory
    spool_dir: Path = Path("/var/lib/trading-maintenance/spool")
    fallback: list[Annotated[str, AfterValidator(_known_channel)]] = ["email", FILE_CHANNEL]
    max_attempts: int = Field(default=3, ge=1, le=10)
    max_retry_seconds: float = Field(default=30, ge=0, le=600)
    # Routine maintenance that did its job (a log rotated, yesterday's temp files removed) is in the
    # report; it is sent to nobody unless this is true.
    tell_routine_fixes: bool = False
    telegram: TelegramSettings | None = None
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None

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
