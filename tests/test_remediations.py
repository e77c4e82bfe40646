"""Remediations on their own: guards, dry runs, bounded commands, and the records they leave."""

from __future__ import annotations

import os
import time

from configuration import load
from fixtures.host import box_of
from fixtures.services import service_manager
from remediations import load_all
from remediations.runner import ActionContext

DAY = 86400


def settings_for(tmp_path, text: str = ""):
    path = tmp_path / "maintenance.toml"
    path.write_text(text)
    return load(path)


def context(settings, mode="apply"):
    """What the glue gives an action: the host and the run's service probe for the configured manager."""
    return ActionContext(settings, box=box_of(settings), services=service_manager(settings), mode=mode)


def aged(path, days: float):
    path.write_text("x")
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def test_only_configured_services_are_restarted(tmp_path):
    outcome = load_all()["restart_service"](context(settings_for(tmp_path)), service="sshd")
    assert outcome.status == "skipped" and "not one of the configured services" in outcome.detail


def retention_config(tmp_path) -> str:
    return f'[[retention]]\nname = "temp-files"\ndir = "{tmp_path / "tmp"}"\npattern = "trading-*"\nmax_age_days = 1\n'


def test_cleanup_plan_lists_and_deletes_nothing(tmp_path):
    (tmp_path / "tmp").mkdir()
    old = aged(tmp_path / "tmp" / "trading-old", 3)
    outcome = load_all()["delete_expired_files"](context(settings_for(tmp_path, retention_config(tmp_path)), "plan"),
                                                 retention_rule="temp-files")
    assert outcome.status == "planned" and str(old) in outcome.detail and old.exists()


def test_cleanup_deletes_only_expired_matching_files_and_never_through_links(tmp_path):
    (tmp_path / "tmp").mkdir()
    outside = aged(tmp_path / "precious", 10)
    old = aged(tmp_path / "tmp" / "trading-old", 3)
    fresh = aged(tmp_path / "tmp" / "trading-fresh", 0.5)
    other = aged(tmp_path / "tmp" / "unrelated", 10)
    link = tmp_path / "tmp" / "trading-link"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 5 * DAY,) * 2, follow_symlinks=False)
    outcome = load_all()["delete_expired_files"](context(settings_for(tmp_path, retention_config(tmp_path))),
                                                 retention_rule="temp-files")
    assert outcome.status == "done" and outcome.output == str(old)
    assert not old.exists() and fresh.exists() and other.exists() and outside.exists() and link.is_symlink()


def test_a_failing_command_is_recorded_with_its_exit_status_and_output(tmp_path):
    settings = settings_for(tmp_path, '[logrotate]\ncommand = ["sh", "-c", "echo cannot rotate >&2; exit 3"]\n')
    outcome = load_all()["rotate_logs"](context(settings))
    assert (outcome.status, outcome.exit_status, outcome.output) == ("failed", 3, "cannot rotate")


def test_a_hanging_command_is_stopped_at_the_timeout(tmp_path):
    settings = settings_for(tmp_path, '[logrotate]\ncommand = ["sleep", "30"]\n[remediation]\ntimeout_seconds = 0.5\n')
    outcome = load_all()["rotate_logs"](context(settings))
    assert outcome.status == "failed" and outcome.exit_status == 124 and "timed out" in outcome.output


def test_a_missing_diagnostic_tool_is_skipped_with_the_reason(tmp_path):
    settings = settings_for(tmp_path, '[diagnostics]\nerror_analysis = ["/nonexistent/trading-error-analysis"]\n')
    outcome = load_all()["run_diagnostic"](context(settings), which="error_analysis")
    assert outcome.status == "skipped" and "not installed" in outcome.detail
