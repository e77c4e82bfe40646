"""The guide's monitoring-thresholds.json on the box ([monitoring] thresholds_file), read by its own python3.

The file's cpu, memory and disk levels are compared with the suite's [resources] levels; its network
latency levels (ms) are those of the exchange's answer time through the tunnel. A file that is missing,
unreadable or lacks a level raises, naming the path and the key: the checks that need it are UNKNOWN.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from configuration import Settings
from probes.host import Box
from probes.remote import hardwarescan

RESOURCES = ("cpu", "memory", "disk")
LATENCY = {"warning": "latency_warning", "critical": "latency_critical"}


@dataclass(frozen=True)
class Thresholds:
    path: str
    levels: dict[str, dict[str, float]]  # {"cpu": {"warning": 70, "critical": 85}, ...}
    latency_ms: dict[str, float]  # {"warning": 500, "critical": 1000}


def parse_thresholds(path: str, data) -> Thresholds:
    def number(section: str, key: str) -> float:
        value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path}: {section}.{key} is {value!r}, not a number: write the guide's "
                             f"monitoring-thresholds.json (Monitoring Configuration 1)")
        return float(value)

    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    levels = {resource: {level: number(resource, level) for level in ("warning", "critical")}
              for resource in RESOURCES}
    return Thresholds(path, levels, {level: number("network", key) for level, key in LATENCY.items()})


def differences(thresholds: Thresholds, settings: Settings) -> list[str]:
    """Each level on which the file and [resources] disagree, in words."""
    found = []
    for resource in RESOURCES:
        ours = getattr(settings.resources, resource)
        for level, theirs in thresholds.levels[resource].items():
            if getattr(ours, level) != theirs:
                found.append(f"{resource}.{level}: {theirs:g} in the file, {getattr(ours, level):g} in "
                             f"[resources.{resource}]")
    return found


class MonitoringProbe:
    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.path = str(settings.monitoring.thresholds_file)

    @functools.cached_property
    def thresholds(self) -> Thresholds:
        try:
            data = self.box.call(hardwarescan.read_json, self.path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path} does not exist: write the guide's monitoring-thresholds.json "
                                    "there, or set [monitoring] thresholds_file") from None
        return parse_thresholds(self.path, data)
