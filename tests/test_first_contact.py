"""First contact with a real box: what the suite says is exactly what happened, and it does no harm.

Each test here names the finding of the "first contact" issue it covers.
"""

from __future__ import annotations

import pytest

from conftest import config_with, run_cadence

pytestmark = pytest.mark.lab


def test_a_service_the_manager_could_not_be_asked_about_is_unknown_and_never_restarted(healthy_lab, lab_config,
                                                                                      tmp_path):
    """Finding 6: on a machine without systemd as PID 1, `systemctl` cannot answer."""
    config = config_with(lab_config, tmp_path / "systemd.toml", {"host": {"service_manager": "systemd"}})
    run = run_cadence(config, tmp_path / "reports")
    services = [r for r in run.results if r.check_id == "SVC-001"]
    assert len(services) == 4
    for result in services:
        assert result.properties["verdict"] == "unknown", result.properties
        assert "systemctl could not be asked" in result.properties["problem"]
        assert "remediation_outcome" not in result.properties
    assert run.returncode == 12, run.output
