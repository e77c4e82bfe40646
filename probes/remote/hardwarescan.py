"""What the hardware and monitoring checks read on a box, as plain functions of the standard library only.

Like probes/remote/securityscan.py, this module is shipped whole to the box's `python3 -I -S` over SSH (or
called in the suite's process for `local://`), one function per call, JSON in and out, and must run on
Python 3.8: no import outside the standard library, no state between calls.

- CPU temperatures: /sys/class/thermal/thermal_zone*/temp (with its `type`) and
  /sys/class/hwmon/hwmon*/temp*_input (with the chip's `name` and the sensor's label), millidegrees;
- CPU throttling: /sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count (since boot);
- a JSON file (the guide's monitoring-thresholds.json).

A machine without the sensors (a VM, a container) gives an empty answer, which the checks tell as "not
applicable here"; a sensor that cannot be read is left out (a thermal zone of a sleeping device answers
EIO or ENODATA), and so is a reading no sensor gives (-273 °C and below).
"""

from __future__ import annotations

import glob
import json
import os


def _text(path: str):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, UnicodeError):
        return None


def _millidegrees(path: str):
    text = _text(path)
    try:
        celsius = int(text) / 1000.0
    except (TypeError, ValueError):
        return None
    return celsius if celsius > -273 else None


def cpu_temperatures(sys_dir: str) -> list:
    """[{"sensor", "celsius"}] of every thermal zone and hwmon temperature input under sys_dir."""
    found = []
    for zone in sorted(glob.glob(os.path.join(sys_dir, "class", "thermal", "thermal_zone*"))):
        celsius = _millidegrees(os.path.join(zone, "temp"))
        if celsius is not None:
            kind = _text(os.path.join(zone, "type")) or "?"
            found.append({"sensor": f"{os.path.basename(zone)} ({kind})", "celsius": celsius})
    for chip in sorted(glob.glob(os.path.join(sys_dir, "class", "hwmon", "hwmon*"))):
        name = _text(os.path.join(chip, "name")) or os.path.basename(chip)
        for reading in sorted(glob.glob(os.path.join(chip, "temp*_input"))):
            celsius = _millidegrees(reading)
            if celsius is None:
                continue
            label = _text(reading[:-len("_input")] + "_label") or os.path.basename(reading)[:-len("_input")]
            found.append({"sensor": f"{name} {label}", "celsius": celsius})
    return found


def throttle_counts(sys_dir: str) -> dict:
    """{"cpu0 core": n, "cpu0 package": n, ...}: thermal throttling events since boot, where the CPU counts them."""
    counts = {}
    pattern = os.path.join(sys_dir, "devices", "system", "cpu", "cpu*", "thermal_throttle", "*_throttle_count")
    for path in sorted(glob.glob(pattern)):
        text = _text(path)
        if text is None or not text.isdigit():
            continue
        cpu = os.path.basename(os.path.dirname(os.path.dirname(path)))
        counts["{} {}".format(cpu, os.path.basename(path)[:-len("_throttle_count")])] = int(text)
    return counts


def read_json(path: str):
    """The file's JSON; a missing or unreadable file raises (FileNotFoundError, PermissionError), bad JSON
    ValueError."""
    with open(path) as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None
