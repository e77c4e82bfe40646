"""The [resources] section: the box's CPU, memory and disks against the guide's warning and critical levels
(its config/monitoring-thresholds.json, Monitoring Configuration 1).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from configuration.section import PathText, Section


class Levels(Section):
    """Warning and critical levels of a usage, in percent, as in the guide's monitoring-thresholds.json."""

    warning: float = Field(ge=0, le=100, examples=[70], description="Above this, the check fails as a warning.")
    critical: float = Field(ge=0, le=100, examples=[85],
                            description="Above this, the check fails as critical; at least `warning`.")

    @model_validator(mode="after")
    def _warning_below_critical(self) -> Levels:
        if self.warning > self.critical:
            raise ValueError(f"warning ({self.warning}) must not exceed critical ({self.critical})")
        return self


class Resources(Section):
    """The daily resource checks: CPU, memory and disk usage against their levels, in percent."""

    per_box = True

    disk_paths: list[PathText] = Field(default=["/"], min_length=1,
                                       description="The filesystems whose usage is checked, by a path on each "
                                                   "(the guide checks \"/\").")
    cpu_sample_seconds: float = Field(default=1.0, gt=0, le=60,
                                      description="CPU usage is sampled over this many seconds; the suite's own "
                                                  "processes are left out.")
    cpu: Levels = Field(default=Levels(warning=70, critical=85), description="CPU usage levels, in percent.")
    memory: Levels = Field(default=Levels(warning=80, critical=90), description="Memory usage levels, in percent.")
    disk: Levels = Field(default=Levels(warning=75, critical=85),
                         description="Disk usage levels of each of disk_paths, in percent.")
