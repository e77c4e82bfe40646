"""Fault switch files: $LAB_DIR/faults/<name>, read by the servers on every request.

A file per fault keeps the servers stateless: an injected fault acts on the next request, and
removing the file is all a clear needs. ':' in a fault name becomes '-' in its file name, so the
crashloop switch of the agent is `faults/crashloop-trading-agent`.
"""

from __future__ import annotations

import time
from pathlib import Path


def file_name(fault: str) -> str:
    return fault.replace(":", "-")


class Switches:
    def __init__(self, faults_dir: Path):
        self.dir = Path(faults_dir)

    def path(self, fault: str) -> Path:
        return self.dir / file_name(fault)

    def on(self, fault: str) -> bool:
        return self.path(fault).exists()

    def set(self, fault: str, bound_to: str | None = None) -> None:
        """Turn the switch on; `bound_to`: the one run of a server it applies to (see `applies_to`)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        text = time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n" + (f"instance={bound_to}\n" if bound_to else "")
        self.path(fault).write_text(text)

    def bound_to(self, fault: str) -> str | None:
        """The run of a server this switch was set for, or None (it applies to every run)."""
        try:
            lines = self.path(fault).read_text().splitlines()
        except FileNotFoundError:
            return None
        return next((line.partition("=")[2] for line in lines if line.startswith("instance=")), None)

    def applies_to(self, fault: str, instance: str | None) -> bool:
        """On, and set for this run of the server or for any: a restart of the server ends a bound switch."""
        if not self.on(fault):
            return False
        bound = self.bound_to(fault)
        return bound is None or bound == instance

    def unset(self, fault: str) -> None:
        self.path(fault).unlink(missing_ok=True)

    def names_on(self) -> list[str]:
        """File names of the switches that are on (not yet mapped back to fault names)."""
        try:
            return sorted(p.name for p in self.dir.iterdir() if p.is_file())
        except FileNotFoundError:
            return []
