"""Several boxes in one run: each check per box, each finding on its own box, one alert for a box that
does not answer. Here the lab ("here", read locally) and a box nobody listens for ("gone", over SSH)."""

from __future__ import annotations

import pytest

from conftest import config_with, run_cadence

pytestmark = pytest.mark.lab


@pytest.fixture
def fleet_config(healthy_lab, lab_config, tmp_path):
    return config_with(lab_config, tmp_path / "fleet.toml", {
        "boxes": [
            {"name": "here"},
            {"name": "gone", "host": {"backend": "ssh://nobody@127.0.0.1:9", "connect_timeout_seconds": 3,
                                      "ssh_extra_args": ["-o", "BatchMode=yes"]}},
        ],
    })


def test_each_box_is_checked_and_an_unreachable_box_is_one_alert(fleet_config, healthy_lab, tmp_path):
    healthy_lab.inject("dashboard-down")
    run = run_cadence(fleet_config, tmp_path / "reports")
    by_box = {}
    for result in run.results:
        by_box.setdefault(result.properties.get("box"), []).append(result)
    assert set(by_box) == {"here", "gone"}, run.output
    assert len(by_box["here"]) == len(by_box["gone"]) >= 25

    here = {r.check_id: r.properties for r in by_box["here"] if r.properties["verdict"] in ("failed", "fixed")}
    assert set(here) == {"SVC-001"}, here  # WEB-001 looks after SVC-001 restarted the dashboard
    assert all(r.properties["verdict"] == "unknown" for r in by_box["gone"])
    assert all("unreachable" in r.properties["problem"] for r in by_box["gone"])

    unreachable = [a for a in run.alerts if a["title"] == "box gone unreachable"]
    assert len(unreachable) == 1 and unreachable[0]["box"] == "gone"
    assert [a for a in run.alerts if a.get("box") == "gone" and a is not unreachable[0]] == []
    assert all(a["box"] == "here" for a in run.alerts if a["check_id"] not in ("BOX",))
    assert "[here-" in " ".join(r.name for r in by_box["here"])  # the box is part of each check's instance
