"""The weekly review's checks on a box (a real systemd as PID 1, the guide's paths; box port base 24500,
TEST_BOX_WEEKLY_PORT_BASE), watched from this machine over SSH as its maintenance user: the week's logs,
the strategies file, /proc/meminfo and /proc/diskstats are read by the box's own python3, not as root,
and only the figures come back.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta

import pytest

from conftest import run_cadence
from lab.box import Box
from probes.remote import weeklyscan

PORT_BASE = int(os.environ.get("TEST_BOX_WEEKLY_PORT_BASE", "24500"))
WHY_NOT = Box.unavailable()
CHECKS = "weekly_performance or weekly_strategy or weekly_optimization or weekly_error_handling"

pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=f"no box here: {WHY_NOT}")]


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    instance = Box(tmp_path_factory.mktemp("weeklybox"), PORT_BASE)
    instance.up()
    yield instance
    instance.down()


def test_the_weekly_review_over_ssh(box, tmp_path):
    box.clear()
    shutil.rmtree(box.paths.root / "outside", ignore_errors=True)
    healthy = run_cadence(box.paths.ssh_maintenance_config, tmp_path / "healthy", "-k", CHECKS, cadence="weekly")
    # OPT-002 applies where the application lies on a block device (a tmpfs or overlay has no disk I/O to read).
    on_disk = "no_disk" not in weeklyscan.block_device(str(box.paths.opt_dir))
    outcomes = {r.check_id: r.outcome for r in healthy.results}
    assert outcomes.pop("OPT-002") == ("passed" if on_disk else "skipped"), healthy.output
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == 10, healthy.output
    today = date.today()
    perf = healthy.only("PERF-001").properties
    assert perf["trading_window"] == f"{today - timedelta(days=7)}..{today - timedelta(days=1)}"
    assert int(perf["trades_7d"]) > 0
    assert "momentum (enabled" in healthy.only("STRAT-001").properties["strategies"]

    for fault in ("logs-missing-day", "strategy-zero-weight", "recovery-rate-low"):
        box.inject(fault)
    try:
        broken = run_cadence(box.paths.ssh_maintenance_config, tmp_path / "broken", "-k", CHECKS, cadence="weekly")
    finally:
        box.clear()
    failed = {r.check_id: r.message for r in broken.results if r.outcome == "failed"}
    assert sorted(failed) == ["EHW-001", "EHW-003", "PERF-001", "STRAT-003"], broken.output
    gone = (today - timedelta(days=3)).isoformat()
    assert f"no trading log for {gone} in /var/log/trading-agent" in failed["PERF-001"]
    assert "auto recovery attempt failed" in failed["EHW-003"]
    assert "/opt/trading-agent/config/strategies.json: grid" in failed["STRAT-003"]
