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


def test_paths_that_do_not_exist_are_unknown_naming_the_path_never_a_pass(healthy_lab, lab_config, tmp_path):
    """Finding 7: a missing log_dir, retention directory or known-errors file made LOG-001, LOG-002 pass
    and ERR-005 skip."""
    gone = tmp_path / "gone"
    config = config_with(lab_config, tmp_path / "missing.toml", {
        "paths": {"log_dir": str(gone / "log")},
        "retention": [{"name": "temp-files", "dir": str(gone / "tmp"), "pattern": "trading-*", "max_age_days": 1}],
    })
    run = run_cadence(config, tmp_path / "reports", "--remediation=off")
    for check_id, path in (("LOG-001", gone / "log"), ("LOG-002", gone / "tmp"), ("ERR-005", gone / "log"),
                           ("TRD-001", gone / "log")):
        result = run.only(check_id)
        assert result.properties["verdict"] == "unknown", (check_id, result.properties)
        assert f"{path} does not exist" in result.properties["problem"], result.properties["problem"]


def test_a_missing_known_errors_file_is_unknown(healthy_lab, lab_config, tmp_path):
    config = config_with(lab_config, tmp_path / "missing.toml",
                         {"paths": {"known_errors": str(tmp_path / "gone" / "known-errors.txt")}})
    result = run_cadence(config, tmp_path / "reports", "--remediation=off").only("ERR-005")
    assert result.properties["verdict"] == "unknown" and "known-errors.txt" in result.properties["problem"]
