"""The contract between the delivery engine and a channel, and the registry channels join.

A channel is a class in a module of `alerts/channels/`, registered with `@channel(NAME)`; NAME is
its table in the configuration (`[alerts.NAME]`, see configuration/alerts.py). It is built with
its settings and the run's Redactor, and `send` returns when the channel accepted the message or
raises `Transient` (worth retrying) or `Permanent` (retrying cannot help).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol

from alerts.message import Message


class Transient(Exception):
    """Worth retrying: the channel may take the same message a little later."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class Permanent(Exception):
    """Retrying the same message cannot help: the channel refused it or cannot be used as configured."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Channel(Protocol):
    def send(self, message: Message) -> None:
        """Return when the channel accepted the message; raise Transient or Permanent otherwise."""


REGISTRY: dict[str, type] = {}


def channel(name: str):
    """Register a channel class under its configuration table's name."""
    def register(cls: type) -> type:
        REGISTRY[name] = cls
        return cls
    return register


def load_channels() -> dict[str, type]:
    """Import every module of alerts/channels so that its channel registers."""
    from alerts import channels

    for module in pkgutil.iter_modules(channels.__path__):
        importlib.import_module(f"{channels.__name__}.{module.name}")
    return REGISTRY
