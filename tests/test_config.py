"""The configuration file: the shipped example is valid, and every bad input is named, not traced."""

from __future__ import annotations

import subprocess
import sys

import pytest

from configuration import EXAMPLE, ConfigError, load, resolve_path
from conftest import ROOT


def test_shipped_example_is_valid_and_matches_the_guide():
    settings = load(EXAMPLE)
    assert settings.services.critical() == ["ssh-tunnel", "trading-agent", "trading-dashboard", "postgresql"]
    assert (settings.resources.cpu.warning, settings.resources.cpu.critical) == (70, 85)
    assert (settings.resources.disk.warning, settings.resources.disk.critical) == (75, 85)
    assert {rule.name: rule.max_age_days for rule in settings.retention} == {
        "temp-files": 1, "app-logs": 7, "backups": 30}
    assert settings.api.base_url.endswith(":3001") and settings.dashboard.url.endswith(":3000")


@pytest.mark.parametrize("text, key, expected", [
    ("[resources.cpu]\nwarning = 90\ncritical = 85\n", "resources.cpu", "must not exceed critical"),
    ("[api]\ntimeout_seconds = -1\n", "api.timeout_seconds", "greater than 0"),
    ("[host]\nservice_manager = \"upstart\"\n", "host.service_manager", "'systemd' or 'supervisor'"),
    ("[tunnel]\nport = 70000\n", "tunnel.port", "less than or equal to 65535"),
    ("[remediation]\nmode = \"yolo\"\n", "remediation.mode", "'off', 'plan' or 'apply'"),
    ("[[retention]]\nname = \"x\"\ndir = \"tmp\"\npattern = \"*\"\nmax_age_days = 1\n", "retention.0", "absolute"),
    ("[api]\nbase_urll = \"http://x\"\n", "api.base_urll", "Extra inputs are not permitted"),
])
def test_bad_value_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message and key in message and expected in message, message


def test_a_secret_under_a_wrong_key_is_not_echoed(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[database]\npassword = "hunter2-canary"\n')
    with pytest.raises(ConfigError) as error:
        load(path)
    assert "database.password" in str(error.value) and "hunter2-canary" not in str(error.value)


def test_broken_toml_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[api\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load(path)


def test_missing_file_says_to_copy_the_example(tmp_path):
    with pytest.raises(ConfigError, match="does not exist. Copy .*maintenance.example.toml"):
        load(tmp_path / "nowhere.toml")


def test_no_file_given_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MAINTENANCE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="--maintenance-config=PATH or MAINTENANCE_CONFIG=PATH"):
        resolve_path(None)


def test_bad_configuration_stops_the_run_before_any_check_without_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[resources.disk]\nwarning = 95\ncritical = 85\n")
    completed = subprocess.run([sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={path}"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "resources.disk" in completed.stderr and str(path) in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout
    assert "passed" not in completed.stdout and "failed" not in completed.stdout
