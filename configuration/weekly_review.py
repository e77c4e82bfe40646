"""[weekly_review]: the guide's weekly review: Weekly 4 (performance analysis), Manual Weekly 1 (strategy
review), Manual Weekly 3 (system optimisation) and Error Handling Weekly 1-3.

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
    # Weekly 4: trades and profit over the last `window_days` whole days (today, not over yet, left out).
    window_days: int = Field(default=7, ge=1, le=31)
    # Manual Weekly 1: the agent's strategies, {"strategies": [{name, enabled, weight, performance}, ...]}.
    strategies_file: BoxPath = Path("/opt/trading-agent/config/strategies.json")
    # The enabled strategies' weights must add up to 1 within this much.
    weight_tolerance: float = Field(default=0.01, ge=0, le=0.5)
    # Manual Weekly 3: `iostat -x` of the disk that holds this path, sampled over io_sample_seconds
    # (the guide's `iostat -x 1 5`: five seconds).
    io_path: BoxPath = Path("/opt/trading-agent")
    io_sample_seconds: float = Field(default=5, gt=0, le=30)
    # Error Handling Weekly 1: errors per day over the last `error_days` days, today included (the guide's
    # `for i in {0..6}`); more active error patterns than this fails.
    error_days: int = Field(default=7, ge=1, le=31)
    max_active_patterns: int = Field(default=5, ge=0, le=10_000)
    # Error Handling Weekly 2: an auto-recovery success rate under this fails; the message shows the last
    # `failed_recoveries_shown` lines of the week's error logs that match `failed_recovery_pattern`
    # (a Python regular expression; the guide's grep "recovery.*failed").
    min_recovery_rate_percent: float = Field(default=70, ge=0, le=100)
    failed_recovery_pattern: str = Field(default="recovery.*failed", min_length=1)
    failed_recoveries_shown: int = Field(default=10, ge=0, le=100)

    @field_validator("failed_recovery_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        return value
