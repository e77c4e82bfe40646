"""The [monitoring] section: the guide's Monitoring Configuration 1, its monitoring-thresholds.json.

The file's cpu, memory and disk levels should be the suite's own [resources] levels (MON-001 names any
difference); its network latency_warning and latency_critical (ms) are the levels of the exchange's answer
time through the tunnel (MON-002).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from configuration.section import Section


class Monitoring(Section):
    """The guide's Monitoring Configuration 1: its monitoring-thresholds.json on the box. MON-001 (weekly) names every
    level that differs from [resources]; MON-002 (daily) holds the exchange's answer time through the tunnel to its
    network latency_warning and latency_critical (ms)."""

    per_box = True

    thresholds_file: Path = Field(default=Path("/opt/trading-agent/config/monitoring-thresholds.json"),
                                  description="The file on the box, read by its own python3.")
