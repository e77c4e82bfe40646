"""Quarterly 2: Hardware Maintenance, the guide's `smartctl -a /dev/sda` and hardware-health-check.sh.

Each configured disk's SMART data (`smartctl --json -a`): its overall health, its bad sectors, its wear and
its temperature; the CPU's temperatures and its thermal throttling since boot. Where the box has nothing
of it to read (no smartctl, no such disk, a virtual disk, no sensor: a VM, a container) the check is
skipped as "not applicable here" with the reason, never passed. The guide's `hdparm -tT` (read speed) is
the benchmark's; its cleaning (dust, thermal paste) is a manual task, TASK-003 hardware-cleaning. Findings
are the operator's: no remediation.
"""

import pytest

from probes.host import NotApplicable

pytestmark = pytest.mark.quarterly


def applicable(read, *args):
    """`read(*args)`, or a skip saying why it does not apply on this box."""
    __tracebackhide__ = True
    try:
        return read(*args)
    except NotApplicable as why:
        pytest.skip(f"not applicable here: {why}")


@pytest.mark.check("HW-001", severity="critical", why="a disk whose SMART health fails loses the database and "
                   "the backups on it next")
def test_disk_smart_health_passes(hardware, disk, record_property):
    reading = applicable(hardware.smart, disk)
    record_property("smart_passed", str(reading.passed))
    assert reading.passed, (f"{disk} ({reading.model}): SMART overall health FAILED: replace the disk after a "
                            f"backup ({'; '.join(reading.messages) or 'smartctl says the disk is failing'})")


@pytest.mark.check("HW-002", severity="critical", why="reallocated and pending sectors grow until the disk fails")
def test_disk_has_no_bad_sectors(hardware, settings, disk, record_property):
    reading = applicable(hardware.smart, disk)
    limit = settings.hardware.max_bad_sectors
    for kind, count in reading.bad_sectors.items():
        record_property(f"{kind}_sectors" if kind != "media_errors" else "media_errors", count)
    assert reading.bad_sector_total <= limit, (
        f"{disk} ({reading.model}): {reading.bad_sector_total} bad sector(s) "
        f"({', '.join(f'{kind} {count}' for kind, count in reading.bad_sectors.items() if count)}); "
        f"at most {limit} allowed (over by {reading.bad_sector_total - limit}): back up and plan its replacement")


@pytest.mark.check("HW-003", severity="warning", why="a worn-out SSD turns read-only or dies without warning")
def test_disk_wear_within_limit(hardware, settings, disk, record_property):
    reading = applicable(hardware.smart, disk)
    if reading.wear_percent is None:
        pytest.skip(f"not applicable here: {disk} ({reading.model}) reports no wear level (not an SSD?)")
    limit = settings.hardware.max_wear_percent
    record_property("wear_percent_used", f"{reading.wear_percent:g}")
    assert reading.wear_percent <= limit, (
        f"{disk} ({reading.model}): {reading.wear_percent:g} % of its rated life used ({reading.wear_source}); "
        f"limit {limit:g} % (over by {reading.wear_percent - limit:g}): plan its replacement")


@pytest.mark.check("HW-004", severity="warning", why="a hot disk ages fast and throttles the database's writes")
def test_disk_temperature_within_limit(hardware, settings, disk, record_property):
    reading = applicable(hardware.smart, disk)
    if reading.temperature_celsius is None:
        pytest.skip(f"not applicable here: {disk} ({reading.model}) reports no temperature")
    limit = settings.hardware.max_disk_temperature_celsius
    record_property("disk_temperature_celsius", f"{reading.temperature_celsius:g}")
    assert reading.temperature_celsius <= limit, (
        f"{disk} ({reading.model}) at {reading.temperature_celsius:g} °C; limit {limit:g} °C (over by "
        f"{reading.temperature_celsius - limit:g}): clean the fan and vents, check the airflow")


@pytest.mark.check("HW-005", severity="warning", why="a CPU running hot throttles the agent and wears the board")
def test_cpu_temperature_within_limit(hardware, settings, record_property):
    readings = applicable(hardware.cpu_temperatures)
    limit = settings.hardware.max_cpu_temperature_celsius
    hottest = max(readings, key=lambda reading: reading["celsius"])
    record_property("cpu_temperature_max_celsius", f"{hottest['celsius']:g}")
    hot = [f"{reading['sensor']} {reading['celsius']:g} °C" for reading in readings if reading["celsius"] > limit]
    assert not hot, (f"{len(hot)} sensor(s) over {limit:g} °C: {', '.join(hot)} (hottest over by "
                     f"{hottest['celsius'] - limit:g}): clean the fan, renew the thermal paste")


@pytest.mark.check("HW-006", severity="warning", why="thermal throttling slows the agent's decisions: the cooling "
                   "no longer keeps up")
def test_cpu_not_throttled(hardware, settings, record_property):
    counts = applicable(hardware.throttle_counts)
    limit = settings.hardware.max_throttle_events
    total = sum(counts.values())
    record_property("throttle_events", total)
    throttled = [f"{where} {count}" for where, count in counts.items() if count]
    assert total <= limit, (f"the CPU throttled {total} time(s) since boot ({', '.join(throttled)}); at most "
                            f"{limit} allowed (over by {total - limit}): clean the fan, renew the thermal paste")
