"""The [weekly_review] section: the week as the guide reviews it, Weekly 4 (trading performance), Manual Weekly 1
(the strategies), Manual Weekly 3 (the disk's I/O) and Error Handling Weekly 1-3 (errors and recoveries).

The logs are [paths] log_dir's; the agent's API is [api]'s. What is here: the window the weekly figures
cover, the strategies file and how close its weights must come to 1, what the disk I/O sample reads, and
the guide's two thresholds of the error-handling review (more than 5 active error patterns, an
auto-recovery success rate under 70 %).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from configuration.section import Section
from configuration.security import BoxPath


class WeeklyReview(Section):
    """The weekly review (make weekly): Weekly 4, Manual Weekly 1 and 3, Error Handling Weekly 1-3."""

    per_box = True

    window_days: int = Field(default=7, ge=1, le=31,
                             description="PERF-001: trades, profit and profit per trade over this many whole days "
                                         "before today (today is not over), from [paths] log_dir's trading-DATE.log "
                                         "files, rotated .gz ones included; a day without its log fails the check.")
    strategies_file: BoxPath = Field(default=Path("/opt/trading-agent/config/strategies.json"),
                                     description="STRAT-001..003: the agent's strategies, {\"strategies\": [{\"name\", "
                                                 "\"enabled\", \"weight\", \"performance\"}, ...]}.")
    weight_tolerance: float = Field(default=0.01, ge=0, le=0.5,
                                    description="STRAT-002: the enabled strategies' weights must add up to 1 within "
                                                "this much.")
    io_path: BoxPath = Field(default=Path("/opt/trading-agent"),
                             description="OPT-002: `iostat -x` of the disk that holds this path.")
    io_sample_seconds: float = Field(default=5, gt=0, le=30,
                                     description="OPT-002: the sample's length (the guide's `iostat -x 1 5`: five "
                                                 "seconds).")
    error_days: int = Field(default=7, ge=1, le=31,
                            description="EHW-001: errors per day over the last this many days, today included.")
    max_active_patterns: int = Field(default=5, ge=0, le=10_000,
                                     description="EHW-002: more active error patterns than this fails.")
    min_recovery_rate_percent: float = Field(default=70, ge=0, le=100,
                                             description="EHW-003: an auto-recovery success rate under this fails.")
    failed_recovery_pattern: str = Field(default="recovery.*failed", min_length=1,
                                         description="EHW-003: the lines of those days' error logs that tell a failed "
                                                     "recovery, a Python regular expression (the guide's grep "
                                                     "\"recovery.*failed\").")
    failed_recoveries_shown: int = Field(default=10, ge=0, le=100,
                                         description="EHW-003: how many of the newest such lines its message shows.")

    @field_validator("failed_recovery_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        return value
