"""The run's probes, one per box and kind: readings shared by every check, remediation and command that asks.

A probe reads once and keeps what it read until told to forget (the services' states, the database
connection, the CPU sample running since the start), so each box has one of each kind in a process.
Plain Python: the pytest plugin holds one cache for a run (plugin/fixtures.py), an operator command its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ProbeCache:
    def __init__(self) -> None:
        self._probes: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, box: str, make: Callable[[], Any]) -> Any:
        """The `kind` probe of `box`, made by `make()` the first time it is asked for."""
        if (kind, box) not in self._probes:
            self._probes[(kind, box)] = make()
        return self._probes[(kind, box)]

    def put(self, kind: str, box: str, probe: Any) -> None:
        self._probes[(kind, box)] = probe

    def close(self) -> None:
        """Close what holds a connection (the database), once, at the end of the run."""
        for probe in self._probes.values():
            close = getattr(probe, "close", None)
            if callable(close):
                close()
        self._probes.clear()
