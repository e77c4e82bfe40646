"""The [monitoring] section: the guide's Monitoring Configuration 1, its monitoring-thresholds.json.

The file's cpu, memory and disk levels should be the suite's own [resources] levels (MON-001 names any
difference); its network latency_warning and latency_critical (ms) are the levels of the exchange's answer
time through the tunnel (MON-002).
"""

from __future__ import annotations

from pathlib import Path

from configuration.section import Section


class Monitoring(Section):
    # On the box; read by its own python3.
    thresholds_file: Path = Path("/opt/trading-agent/config/monitoring-thresholds.json")
