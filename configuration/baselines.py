"""The [baselines] section: the guide's Monthly 2 (performance benchmarking) and Quarterly 2's disk read speed,
each compared with its baseline.

A baseline is stored beside the suite's state: the first run records it, later runs report the change in
percent and fail past `max_regression_percent`; `make baseline` records it again on purpose.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from configuration.section import COMMENTED, FreeText, Section


class Baselines(Section):
    """Monthly 2 (BENCH-001..003) and Error Handling Monthly 3 (EHM-004): each figure is compared with its
    baseline in baselines.json beside the state; the first run records it, `make baseline` records it again on
    purpose."""

    per_box = True

    max_regression_percent: float = Field(default=50, gt=0, le=10_000,
                                          description="A figure worse than its baseline by more than this share "
                                                      "fails (a time longer, a speed lower).")
    noise_floor_ms: float = Field(default=50, ge=0, le=3_600_000,
                                  description="A time fails only when also worse by more than this many "
                                              "milliseconds: a 2 ms answer that takes 4 ms is noise.")
    api_path: str = Field(default="/api/health", pattern=r"^/",
                          description="BENCH-001: the agent API's answer time, GETs of this path of [api] base_url.")
    api_requests: int = Field(default=5, ge=1, le=100, description="BENCH-001: the median of this many GETs.")
    db_query: FreeText = Field(default="SELECT count(*) FROM trades WHERE created_at > now() - interval '7 days'",
                               description="BENCH-002: a fixed query's answer time, run in a read-only transaction.")
    db_runs: int = Field(default=5, ge=1, le=100, description="BENCH-002: the median of this many runs.")
    disk_read_file: Path | None = Field(
        default=None, examples=["/opt/trading-agent/backups/full-20261122-030000.tar.gz"],
        json_schema_extra=COMMENTED,
        description="BENCH-003, the guide's `hdparm -tT` without root: one sequential read of this file (a large "
                    "one on the disk to measure, e.g. a backup). Neither this nor disk_scratch_dir set: the "
                    "check is skipped, saying so.")
    disk_scratch_dir: Path | None = Field(
        default=None, examples=["/var/lib/trading-maintenance"], json_schema_extra=COMMENTED,
        description="BENCH-003 without disk_read_file: a file of disk_read_mb is written here once (on the disk to "
                    "measure) and kept for the next runs.")
    disk_read_mb: int = Field(default=256, ge=1, le=4096,
                              description="BENCH-003: the size of the file written in disk_scratch_dir.")

    @model_validator(mode="after")
    def _absolute(self) -> Baselines:
        for key in ("disk_read_file", "disk_scratch_dir"):
            value = getattr(self, key)
            if value is not None and not value.is_absolute():
                raise ValueError(f"{key} {str(value)!r} must be an absolute path on the box")
        return self
