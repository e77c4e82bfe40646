"""Daily Maintenance 1: System Health Check (CPU, memory and disk against the guide's thresholds).

Each resource is checked at both levels of the guide's monitoring-thresholds.json (Monitoring
Configuration 1 of the guide): the warning level fails as a warning, the
critical level as critical.
"""

import pytest

pytestmark = [pytest.mark.daily, pytest.mark.parametrize("level", ["warning", "critical"])]


@pytest.mark.check("RES-001", why="a saturated CPU delays order decisions and API calls")
def test_cpu_usage_below_threshold(resources, settings, level):
    limit = getattr(settings.resources.cpu, level)
    usage = resources.cpu
    assert usage <= limit, f"CPU at {usage:.1f}%, {level} threshold {limit:g}% (over by {usage - limit:.1f} points)"


@pytest.mark.check("RES-002", why="memory pressure gets the agent or PostgreSQL killed")
def test_memory_usage_below_threshold(resources, settings, level):
    limit = getattr(settings.resources.memory, level)
    usage = resources.memory
    assert usage <= limit, f"memory at {usage:.1f}%, {level} threshold {limit:g}% (over by {usage - limit:.1f} points)"


@pytest.mark.check("RES-003", why="a full disk stops logging, backups and the database")
def test_disk_usage_below_threshold(resources, settings, disk_path, level):
    limit = getattr(settings.resources.disk, level)
    usage = resources.disk_percent(disk_path)
    assert usage <= limit, (
        f"disk {disk_path} at {usage:.1f}%, {level} threshold {limit:g}% (over by {usage - limit:.1f} points)")
