"""The [monthly_review], [baselines] and [error_handling] sections: the guide's Monthly 1 (comprehensive
system review), Monthly 2 (performance benchmarking, with Quarterly 2's disk read speed) and Error Handling
Monthly 1-3.

Benchmarks are compared with a baseline stored beside the suite's state: the first run records it,
later runs report the change in percent and fail past `max_regression_percent`; `make baseline`
records it again on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from configuration.section import FreeText, Section

# A process name as the kernel and ps show it: what the handler's executable is called.
ProcessName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]


class MonthlyReview(Section):
    # journalctl --since "<journal_days> days ago" -p err (on a systemd box; the guide's 30 days).
    journal_days: int = Field(default=30, ge=1, le=366)
    # How many of the newest journal errors the report shows.
    journal_last: int = Field(default=5, ge=0, le=100)
    timeout_seconds: float = Field(default=60, gt=0, le=600)


class Baselines(Section):
    # A figure worse than its baseline by more than this share fails (a time longer, a speed lower) ...
    max_regression_percent: float = Field(default=50, gt=0, le=10_000)
    # ... and, for a time, by more than this many milliseconds: a 2 ms answer that takes 4 ms is noise.
    noise_floor_ms: float = Field(default=50, ge=0, le=3_600_000)
    # BENCH-001: the agent API's answer time, the median of `api_requests` GETs of `api_path`.
    api_path: str = Field(default="/api/health", pattern=r"^/")
    api_requests: int = Field(default=5, ge=1, le=100)
    # BENCH-002: a fixed read query's answer time, the median of `db_runs` runs, in a read-only transaction.
    db_query: FreeText = "SELECT count(*) FROM trades WHERE created_at > now() - interval '7 days'"
    db_runs: int = Field(default=5, ge=1, le=100)
    # BENCH-003 (the guide's `hdparm -tT`, without root): sequential read speed of `disk_read_file` (a large
    # file on the disk to measure, e.g. a backup), or of a file of `disk_read_mb` written once in
    # `disk_scratch_dir` and kept for the next runs. Neither set: the check is skipped, saying so.
    disk_read_file: Path | None = None
    disk_scratch_dir: Path | None = None
    disk_read_mb: int = Field(default=256, ge=1, le=4096)
    @model_validator(mode="after")
    def _absolute(self) -> Baselines:
        for key in ("disk_read_file", "disk_scratch_dir"):
            value = getattr(self, key)
            if value is not None and not value.is_absolute():
                raise ValueError(f"{key} {str(value)!r} must be an absolute path on the box")
        return self


class ErrorHandling(Section):
    # The error handler processes (Error Handling Monthly 2), matched exactly: the process' own name
    # (argv[0]'s base name, or its kernel name when it has no command line), never a search of command lines.
    handlers: list[ProcessName] = Field(default_factory=lambda: [
        "trading-error-handler", "ai-error-handler", "network-error-handler", "system-error-manager"])
    dashboard_path: str = Field(default="/api/errors/dashboard", pattern=r"^/")
    # Error Handling Monthly 3: the agent's own response time figures, compared with their baseline.
    performance_path: str = Field(default="/api/errors/performance-metrics", pattern=r"^/")
    performance_field: str = Field(default="responseTime.avgMs", pattern=r"^[A-Za-z0-9_.]+$")

    @model_validator(mode="after")
    def _unique(self) -> ErrorHandling:
        if len(set(self.handlers)) != len(self.handlers):
            raise ValueError(f"handlers lists a name twice ({self.handlers})")
        return self
