"""The [remediation], [policy], [[waivers]] and [[silences]] sections: whether the suite may change the box, what
it remembers between runs, when a failure is acted on and told, and the failures an operator has accepted.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from pydantic import Field, model_validator

from configuration.section import COMMENTED, FreeText, Section
from core.vocabulary import Mode


class Remediation(Section):
    """Whether remediations act. Start with plan: read the first reports (each remediation says what it would
    do), then set apply."""

    mode: Mode = Field(default=Mode.PLAN,
                       description="off: never act; plan: report what would run (a dry run); apply: act. "
                                   "--remediation=MODE overrides it. Not set: plan, so that a file must say apply "
                                   "for the suite to change the box.")
    timeout_seconds: float = Field(default=60, gt=0, le=3600,
                                   description="A command run by a remediation is stopped after this many seconds.")
    recheck_after_seconds: float = Field(default=1.0, ge=0, le=300,
                                         description="A restarted service needs a moment before the failed check "
                                                     "looks again.")


class CheckPolicy(Section):
    """One check's own policy, by its id, over [policy]'s."""

    failures_before_action: int | None = Field(default=None, ge=1, le=100, examples=[2],
                                               description="Consecutive failing runs of this check before it is "
                                                           "remediated or alerted.")
    max_remediations: int | None = Field(default=None, ge=0, le=1000, examples=[5],
                                         description="What this check allows on what it touches, over [policy.budget] "
                                                     "max_remediations.")


class Budget(Section):
    """The remediation budget: at most max_remediations of one target (a service, a directory), by every check
    that acts on it, within the last window_runs runs of the acting check's cadence (daily 24 h each, weekly 7
    days, monthly 31 days, quarterly 92 days, emergency 5 min): 3 in 5 runs stops a daily crash-loop on day 4.
    Then one \"human needed\" alert for the target, and no more remediation of it until
    `make clear-budget TARGET="trading-box service trading-dashboard" CONFIG=...` (or CHECK=ID: the targets that
    check acted on)."""

    max_remediations: int = Field(default=3, ge=0, le=1000,
                                  description="Remediations of one target allowed within the window.")
    window_runs: int = Field(default=5, ge=1, le=100,
                             description="The window, in runs of the acting check's cadence.")

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
    """What the suite remembers between runs, and when a failure is acted on and told again."""

    state_dir: Path = Field(default=Path("/var/lib/trading-maintenance"),
                            description="What the suite remembers between runs (verdicts, remediation budgets, "
                                        "alerts sent) and the cadence locks.")
    failures_before_action: int = Field(default=1, ge=1, le=100,
                                        description="Consecutive failing runs before a check is remediated or "
                                                    "alerted (the guide acts at once: 1).")
    repeat_interval_minutes: float = Field(default=240, gt=0, le=525_600,  # at most a year
                                           description="A failure that lasts is told again after this long; a new "
                                                       "failure at once.")
    flap_window: int = Field(default=6, ge=3, le=20,
                             description="A check whose verdict changed flap_changes times in its last flap_window "
                                         "runs is flapping.")
    flap_changes: int = Field(default=4, ge=2, le=20, description="See flap_window; less than flap_window.")
    budget: Budget = Budget()
    checks: dict[str, CheckPolicy] = Field(
        default_factory=dict, examples=[{"SVC-001": {"failures_before_action": 2, "max_remediations": 5}}],
        json_schema_extra=COMMENTED, description="Per-check overrides, by check id.")

    @model_validator(mode="after")
    def _flapping_can_be_seen(self) -> Policy:
        if self.flap_changes >= self.flap_window:
            raise ValueError(f"flap_changes ({self.flap_changes}) must be less than flap_window ({self.flap_window}): "
                             f"{self.flap_window} verdicts change at most {self.flap_window - 1} times")
        return self


class Waiver(Section):
    """An accepted failure: reported as waived, neither remediated nor alerted, until it expires. An expired
    waiver counts as a failure again."""

    check: str = Field(examples=["ERR-002"], description="The check's id.")
    match: str = Field(default="", description="A fragment of the check's instance (a service name, a level); "
                                               "empty: every instance.")
    reason: FreeText = Field(min_length=3, examples=["exchange incident #42, fix deployed Friday"],
                             description="Why it is accepted, said in the report.")
    expires: datetime.date | datetime.datetime = Field(examples=[datetime.date(2026, 12, 31)],
                                                      description="Until when.")


class Silence(Section):
    """Alerts held back during planned work (remediation still runs), until it ends."""

    check: str = Field(examples=["WEB-001"], description="The check's id.")
    match: str = Field(default="", description="A fragment of the check's instance; empty: every instance.")
    reason: FreeText = Field(min_length=3, examples=["dashboard upgrade"], description="Why, said in the report.")
    until: datetime.date | datetime.datetime = Field(examples=[datetime.datetime(2026, 12, 1, 18, 0)],
                                                    description="Until when.")
