"""First contact with a real box: what the suite says is exactly what happened, and it does no harm.

Each test here names the finding of the "first contact" issue it covers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, config_with, run_cadence

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
        "retention": [{"name": "temp-files", "dir": str(gone / "tmp"), "pattern": "trading-*", "max_age_days": 1,
                       "allow_root_owned": os.geteuid() == 0}],  # the lab's user's files, as its own rules say
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


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user (nobody)")
def test_an_unreadable_configuration_is_one_line_naming_it(tmp_path):
    """Finding 5: a configuration the user may not read (mode 600, another owner) ended in a traceback.

    The command is imported as root and only then run as nobody: the checkout may sit where nobody may not
    read (a clone under /root, mode 700 on Debian)."""
    config = tmp_path / "maintenance.toml"  # tmp_path is root's, mode 700: nobody may not read in it
    config.write_text("")
    code = ("import os, sys; from commands.__main__ import main; os.setgroups([]); os.setgid(65534); "
            f"os.setuid(65534); sys.exit(main(['budget', 'show', '--config', {str(config)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 4, done.stderr
    assert "cannot be read: Permission denied" in done.stderr and str(config) in done.stderr
    assert "Traceback" not in done.stderr


def _read_only(directory: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """argv run where `directory` is a read-only mount (its own mount namespace): really unwritable, even for root."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           str(directory), *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)


needs_unshare = pytest.mark.skipif(os.geteuid() != 0, reason="a read-only mount needs root (unshare --mount)")


@needs_unshare
def test_an_unwritable_state_directory_is_one_line_and_status_4(lab_config, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    config = config_with(lab_config, tmp_path / "ro.toml", {"policy": {"state_dir": str(state)}})
    done = _read_only(state, [sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={config}",
                              f"--reports-dir={tmp_path / 'reports'}"])
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"cannot write {state}" in done.stderr and "Read-only file system" in done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr and "Traceback" not in done.stderr


@needs_unshare
def test_a_schedule_that_cannot_be_written_is_one_line_and_status_4(lab_config, tmp_path):
    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir()
    done = _read_only(cron_dir, [sys.executable, "-m", "commands", "schedule", "install", "--config", str(lab_config),
                                 "--cron-file", str(cron_dir / "trading-maintenance")])
    assert done.returncode == 4, done.stdout + done.stderr
    assert "not installed: cannot write" in done.stderr and "Traceback" not in done.stderr
