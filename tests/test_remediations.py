"""Remediations on their own: guards, dry runs, bounded commands, and the records they leave."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import time
from types import SimpleNamespace

import pytest

from configuration import load
from probes.host import box_of
from probes.services import service_manager
from remediations import load_all
from remediations.runner import ActionContext

DAY = 86400


def settings_for(tmp_path, text: str = '[remediation]\nmode = "apply"\n'):
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


def retention_config(tmp_path, extra: str = "") -> str:
    """A rule for tmp_path/tmp, owned by whoever runs the tests (the files they write are theirs; as root the
    rule must say it may delete root's files)."""
    root = "allow_root_owned = true\n" if getpass.getuser() == "root" else ""
    return (f'[services]\nuser = "{getpass.getuser()}"\n[[retention]]\nname = "temp-files"\n'
            f'dir = "{tmp_path / "tmp"}"\npattern = "trading-*"\nmax_age_days = 1\n{root}{extra}')


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


@pytest.mark.skipif(os.geteuid() != 0, reason="another owner (chown) and another filesystem (mount) need root")
def test_the_clean_up_deletes_only_what_its_rule_owns(tmp_path):
    """First contact, finding 1: the temp-files rule went down into every directory under /tmp and
    deleted other programs' trading-*.log.gz. Planted here: another program's files in a
    subdirectory, a link into another tree, a file on another filesystem, a file of another user."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ours = aged(tmp / "trading-export.csv", 3)
    (tmp / "other-program").mkdir()
    theirs = aged(tmp / "other-program" / "trading-2026-11-01.log.gz", 20)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = aged(elsewhere / "trading-precious", 20)
    link = tmp / "trading-link"
    link.symlink_to(target)
    os.utime(link, (time.time() - 5 * DAY,) * 2, follow_symlinks=False)
    other_user = aged(tmp / "trading-nobodys", 9)
    os.chown(other_user, 65534, 65534)
    mount = tmp / "trading-mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "trading-test", str(mount)], check=True)
    try:
        foreign_fs = aged(mount / "trading-on-another-fs", 9)
        never = (link, target, other_user, foreign_fs)

        def clean(extra: str, planned: set):
            settings = settings_for(tmp_path, retention_config(tmp_path, extra))
            plan = load_all()["delete_expired_files"](context(settings, "plan"), retention_rule="temp-files")
            listed = {path for path in (ours, theirs, *never) if str(path) in plan.detail}
            assert listed == planned, plan.detail
            done = load_all()["delete_expired_files"](context(settings), retention_rule="temp-files")
            assert done.status == "done" and set(done.output.split()) == {str(p) for p in planned}, done.output
            assert all(os.path.lexists(kept) for kept in never)

        clean("", {ours})  # directly in the directory only: the other program's subdirectory is not its
        assert theirs.exists()
        clean("recursive = true\n", {theirs})  # going down, still never across a filesystem, a link, an owner
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# -- a plan names the command as it will run (issue 18, item 9)

SUDO_BOX = '[remediation]\nmode = "plan"\n[host]\nsudo = true\n'


def typed_by_box_run(box, argv: list[str], privileged: bool = True) -> str:
    """What Box.run hands the box for `argv`, its `timeout -k 5 N` bound taken off: the command as it runs."""
    sent = []

    class Recorder:
        backend = box.host.backend

        def run(self, template, *words):
            sent.append(list(words))
            return SimpleNamespace(rc=0, stdout_bytes=b"", stderr_bytes=b"")

    recorded = type(box)(box.name, Recorder(), box.python, box.sudo, box.timeout)
    recorded.run(argv, privileged=privileged)
    assert sent[0][:3] == ["timeout", "-k", "5"], sent
    return shlex.join(sent[0][4:])


def test_a_restart_plan_names_sudo_as_the_box_will_run_it(tmp_path):
    ctx = context(settings_for(tmp_path, SUDO_BOX), "plan")
    plan = load_all()["restart_service"].plan(ctx, service="trading-dashboard")
    assert plan == "run sudo -n systemctl restart trading-dashboard"
    assert plan == "run " + typed_by_box_run(ctx.box, ctx.services.restart_argv("trading-dashboard"))


def test_a_plan_without_sudo_names_the_bare_command(tmp_path):
    ctx = context(settings_for(tmp_path, '[remediation]\nmode = "plan"\n'), "plan")
    assert load_all()["restart_service"].plan(ctx, service="trading-agent") == "run systemctl restart trading-agent"


def test_rotation_and_diagnostics_plans_are_what_box_run_runs(tmp_path):
    ctx = context(settings_for(tmp_path, SUDO_BOX), "plan")
    rotate = list(ctx.settings.logrotate.command)
    assert load_all()["rotate_logs"].plan(ctx) == "run " + typed_by_box_run(ctx.box, rotate)
    assert load_all()["rotate_logs"].plan(ctx).startswith("run sudo -n ")
    which = "health_check"
    argv = list(getattr(ctx.settings.diagnostics, which))  # a diagnostic only reads: never through sudo
    assert load_all()["run_diagnostic"].plan(ctx, which=which) == "run " + typed_by_box_run(ctx.box, argv, False)


def test_an_emergency_plan_names_its_service_commands_with_sudo(tmp_path):
    ctx = context(settings_for(tmp_path, SUDO_BOX), "plan")
    ctx.state_dir, ctx.check, ctx.run_id = tmp_path / "state", "EMG-006", "run-1"
    plan = load_all()["emergency_response"].plan(ctx, kind="agent-down")
    assert "restart the agent: would run: sudo -n systemctl restart trading-agent" in plan, plan
