"""What the weekly review reads on the box (probes/system.py and probes/strategies.py call these through
`box.call`): the strategies file, /proc/meminfo, and /proc/diskstats sampled as `iostat -x` does.

Standard library only, JSON values in and out (see probes/remote/readers.py): over SSH this module's source
runs on the box's own python3.
"""

from __future__ import annotations

import json
import os
import time

MEMINFO_KEYS = ("MemTotal", "MemFree", "MemAvailable", "Cached")


def read_json(path: str) -> dict:
    """{"data": ...} of a JSON file, or {"invalid": ...} when it is there but is not JSON: a file that no
    longer parses is a finding; one that is not there (FileNotFoundError) or not readable raises."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return {"data": json.loads(text)}
    except ValueError as error:
        return {"invalid": f"not valid JSON: {error}"}


def meminfo() -> dict:
    """MemTotal, MemFree, MemAvailable and Cached of /proc/meminfo, in kB (what `free` reads)."""
    values = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in MEMINFO_KEYS:
                values[key] = int(rest.split()[0])
    missing = [key for key in MEMINFO_KEYS if key not in values]
    if missing:
        raise LookupError(f"/proc/meminfo has no {', '.join(missing)} (a kernel older than 3.14 has no MemAvailable)")
    return values


def block_device(path: str) -> dict:
    """The disk that holds `path`, as /proc/diskstats names it: {"name", "device", "partition"}; the whole
    disk when `path` lies on a partition (iostat's %util is a disk's). {"no_disk"} when no block device
    holds it (tmpfs, overlay, a network filesystem: device major 0)."""
    info = os.stat(path)
    device = f"{os.major(info.st_dev)}:{os.minor(info.st_dev)}"
    sysfs = f"/sys/dev/block/{device}"
    if os.major(info.st_dev) == 0 or not os.path.exists(sysfs):
        return {"no_disk": f"{path} is on device {device}, which is no block device (tmpfs, overlay, btrfs "
                           "subvolume or a network filesystem): it has no disk I/O statistics"}
    real = os.path.realpath(sysfs)
    partition = os.path.exists(os.path.join(real, "partition"))
    name = os.path.basename(os.path.dirname(real) if partition else real)
    return {"name": name, "device": device, "partition": os.path.basename(real) if partition else None}


def diskstats(name: str) -> list[int]:
    """The counters of one device in /proc/diskstats: reads, reads merged, sectors read, ms reading, writes,
    writes merged, sectors written, ms writing, I/Os in progress, ms doing I/O, weighted ms."""
    with open("/proc/diskstats") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 14 and fields[2] == name:
                return [int(value) for value in fields[3:14]]
    raise LookupError(f"device {name} is not in /proc/diskstats")


def io_sample(path: str, seconds: float) -> dict:
    """Two readings of the disk that holds `path`, `seconds` apart: {"name", "device", "before", "after",
    "seconds"} (the time measured, not the one asked for), or {"no_disk"} (see block_device)."""
    disk = block_device(path)
    if "no_disk" in disk:
        return disk
    started, before = time.monotonic(), diskstats(disk["name"])
    time.sleep(seconds)
    after = diskstats(disk["name"])
    return {**disk, "before": before, "after": after, "seconds": time.monotonic() - started}
