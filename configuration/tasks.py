"""The [tasks] section: the guide's manual tasks, which the suite cannot do but can audit.

An operator who did one says so with `make attest TASK=... NOTE=...` (commands/attest.py); a check of
the task's cadence fails when its last attestation is older than the cadence's length plus `grace_days`.
Key rotation is not one of them: it is KEY-001's, attested per secret with `make attest-rotation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from configuration.section import COMMENTED, Section
from core.vocabulary import Cadence

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
TaskCadence = Literal["weekly", "monthly", "quarterly"]
KEY_ROTATION = "key-rotation"  # attested by `make attest-rotation` (KEY-001), never as a task
# The days a cadence allows between two attestations (as the remediation budget counts them).
CADENCE_DAYS = {Cadence.WEEKLY: 7, Cadence.MONTHLY: 31, Cadence.QUARTERLY: 92}


class Task(Section):
    """A manual task of the guide, attested by the operator who did it."""

    name: Name = Field(examples=["strategy-review"], description="The task's name, as make attest TASK=... gives it.")
    cadence: TaskCadence = Field(examples=["weekly"], description="weekly, monthly or quarterly.")
    guide: str = Field(default="", examples=["Manual Weekly 1"], description="Where the guide asks for it.")

    def allowed_days(self, grace_days: float) -> float:
        return CADENCE_DAYS[self.cadence] + grace_days


def _guide_tasks() -> list[Task]:
    return [Task(name=name, cadence=cadence, guide=guide) for name, cadence, guide in (
        ("strategy-review", "weekly", "Manual Weekly 1. Strategy Performance Review"),
        ("system-optimization", "weekly", "Manual Weekly 3. System Optimization"),
        ("strategy-optimization", "monthly", "Manual Monthly 1. Trading Strategy Optimization"),
        ("configuration-review", "monthly", "Manual Monthly 2. System Configuration Review"),
        ("documentation", "monthly", "Manual Monthly 3. Documentation Updates"),
        ("hardware-cleaning", "quarterly", "Quarterly 2. Hardware Maintenance (dust, thermal paste)"),
        ("security-review", "quarterly", "Quarterly 3. Security Review"))]


class Tasks(Section):
    """The guide's manual tasks, audited (TASK-001 weekly, TASK-002 monthly, TASK-003 quarterly). After doing one:
      make attest TASK=strategy-optimization NOTE="what was done" CONFIG=... [WHO=name]
    A task whose last attestation is older than its cadence (7, 31, 92 days) plus grace_days fails, saying when it
    was last done and by whom. Key rotation is KEY-001's: make attest-rotation."""

    per_box = True

    grace_days: float = Field(default=3, ge=0, le=92, description="Days allowed past a task's cadence.")
    file: Path | None = Field(default=None, examples=["/var/lib/trading-maintenance/tasks.json"],
                              json_schema_extra=COMMENTED,
                              description="Where the latest attestation of each task is kept; not set: tasks.json in "
                                          "[policy] state_dir.")
    tasks: list[Task] = Field(default_factory=_guide_tasks, json_schema_extra=COMMENTED,
                              description="The tasks; default: the guide's seven.")

    @model_validator(mode="after")
    def _names(self) -> Tasks:
        names = [task.name for task in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks: a name is listed twice ({names})")
        if KEY_ROTATION in names:
            raise ValueError(f"tasks: {KEY_ROTATION} is KEY-001's ([rotation] secrets, make attest-rotation), "
                             "not a task")
        return self

    def task(self, name: str) -> Task | None:
        return next((task for task in self.tasks if task.name == name), None)

    def of(self, cadence: str) -> list[str]:
        return [task.name for task in self.tasks if task.cadence == cadence]
