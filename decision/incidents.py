"""Emergencies the suite has responded to, per box, until an operator resumes.

An incident opens with the first emergency response on a box and remembers what the responses did
(trading paused, positions closed, the agent shut down, the tunnel stopped, the firewall locked) and
which money- or host-touching calls were made, so that none is made twice, nothing the suite stopped
is started again by a later run, and `make resume` knows what to undo. Only `resolve` (an operator,
with who and why, which commands/resume.py writes to the ledger) ends it: nothing resumes by itself.

One JSON file beside the suite's state, changed under a file lock and replaced atomically (mode 0600,
core/rootfiles.py).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from filelock import FileLock

from core import clock, rootfiles
from core.atomic import write_atomically

KEEP_STEPS = 200  # per incident: every step of every response, held back ones too


@dataclass
class Incident:
    box: str
    opened_at: float
    opened_by: str  # the check instance whose emergency opened it
    paused: bool = False  # new entries stopped (the agent's pause-non-critical)
    emergency_mode: bool = False
    services_stopped: list[str] = field(default_factory=list)  # by the responses: started again only by resume
    firewall_locked: bool = False
    close_called_at: float | None = None  # at most one close-all-positions per incident
    shutdown_called_at: float | None = None  # at most one emergency shutdown per incident
    bundle: str = ""  # the diagnostics bundle taken for it
    reminded_at: float | None = None  # the last "waiting for you" alert
    signals: dict[str, list[str]] = field(default_factory=dict)  # run id -> checks that found an emergency
    steps: list[dict] = field(default_factory=list)  # {at, check, step, status, why}

    @property
    def holds(self) -> bool:
        """Something the responses did waits for an operator."""
        return self.paused or self.emergency_mode or bool(self.services_stopped) or self.firewall_locked \
            or self.shutdown_called_at is not None

    def signal(self, run: str, check: str) -> int:
        """This check saw an emergency in this run; how many different checks have, in this run."""
        seen = self.signals.setdefault(run, [])
        if check not in seen:
            seen.append(check)
        self.signals = {key: value for key, value in self.signals.items() if key == run}  # this run's only
        return len(seen)

    def note(self, check: str, step: str, status: str, why: str = "") -> None:
        self.steps = [*self.steps, {"at": clock.now(), "check": check, "step": step, "status": status,
                                    "why": why}][-KEEP_STEPS:]

    def summary(self) -> str:
        done = [what for what, on in (("trading paused", self.paused), ("emergency mode on", self.emergency_mode),
                                      ("firewall locked", self.firewall_locked)) if on]
        done += [f"{name} stopped" for name in self.services_stopped]
        if self.close_called_at is not None:
            done.append("close-all-positions called")
        if self.shutdown_called_at is not None:
            done.append("emergency shutdown called")
        return ", ".join(done) or "nothing held"

    def trail(self) -> dict:
        """What the ledger keeps of an incident an operator ended (its resume line)."""
        return {"opened_at": self.opened_at, "opened_by": self.opened_by, "held": self.summary(),
                "steps": len(self.steps)}


class IncidentStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / "incidents.json"
        self.lock = FileLock(str(self.directory / "incidents.lock"), timeout=30)

    def load(self) -> dict[str, Incident]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        known = {f.name for f in fields(Incident)}
        return {box: Incident(**{k: v for k, v in value.items() if k in known}) for box, value in raw.items()}

    def current(self, box: str) -> Incident | None:
        return self.load().get(box)

    @contextmanager
    def open(self, box: str, check: str):
        """Read-modify-write the box's incident under the lock, opening it if there is none. One that holds
        nothing afterwards (a dead agent restarted) is over: nothing waits for an operator."""
        rootfiles.ensure_directory(self.directory)  # checked before the lock is made in it
        with self.lock:
            incidents = self.load()
            incident = incidents.setdefault(box, Incident(box, clock.now(), check))
            yield incident
            if not incident.holds:
                del incidents[box]
            self._save(incidents)

    def resolve(self, box: str) -> Incident | None:
        """The operator's word: the incident ends; the one that ended (None when there was none), for the
        resume's line in the ledger (who, why, what was undone and `Incident.trail`)."""
        rootfiles.ensure_directory(self.directory)  # checked before the lock is made in it
        with self.lock:
            incidents = self.load()
            incident = incidents.pop(box, None)
            if incident is None:
                return None
            self._save(incidents)
        return incident

    def due_reminders(self, boxes: list[str], now: float, interval: float) -> list[Incident]:
        """The incidents of these boxes that hold something and whose reminder is due, marked reminded."""
        if not self.path.exists():
            return []
        rootfiles.ensure_directory(self.directory)  # checked before the lock is made in it
        due = []
        with self.lock:
            incidents = self.load()
            for box in boxes:
                incident = incidents.get(box)
                if incident and incident.holds and (incident.reminded_at is None
                                                    or now - incident.reminded_at >= interval):
                    incident.reminded_at = now
                    due.append(incident)
            if due:
                self._save(incidents)
        return due

    def waiting(self, boxes: list[str]) -> list[Incident]:
        return [incident for box, incident in self.load().items() if box in boxes and incident.holds]

    def _save(self, incidents: dict[str, Incident]) -> None:
        write_atomically(self.path, json.dumps({box: asdict(incident) for box, incident in sorted(incidents.items())},
                                               indent=1))
