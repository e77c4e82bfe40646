"""The README's "Point it at the real box", followed as written on a systemd box at the guide's paths:
the shipped example with its secrets filled in (the database password in its secrets file, not in the
environment) runs first in plan, then in apply, and touches nothing that is not its own.

The first contact issue's acceptance. Another program's `trading-*` files in a subdirectory of
/tmp, a `trading-*` symlink into another tree and a `trading-*` file on another filesystem are
planted next to the agent's own expired export: all of them match the temp-files rule's pattern,
are old enough and belong to the service user, so only the rule's ownership of its directory
protects them. They all survive, and no plan, report or alert ever names them.

The box shares the machine's loopback (lab/box/README.md), so its servers cannot take the guide's
fixed ports on a CI machine: besides the database password (the example's one secret), the edit
the README asks for ("paths, ports, services ...") sets the five network addresses to the box's.
Root only: a box is a real systemd as PID 1 of its own namespaces.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET

import pytest

from lab.box import Box

PORT_BASE = 29500  # test_box.py 28100-28300, test_box_suite.py 28500-28900 (+444), fleet demo 30000-
WHY_NOT = Box.unavailable()
CONFIG = "/etc/trading-maintenance/maintenance.toml"
SECRETS = "/etc/trading-maintenance/secrets.env"  # the example's [schedule] secrets_file
REPORTS = "/var/lib/trading-maintenance/reports"  # the example's [reports] dir, in the box

pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=f"no box here: {WHY_NOT}")]

OWN = "/tmp/trading-export-4711.csv"  # the agent's own expired export: the rule's to delete
NOT_OWN = {
    "another program's tree": "/tmp/other-program/trading-cache.log.gz",
    "a symlink into another tree": "/tmp/trading-latest.tmp",
    "the symlink's target": "/opt/other-tree/trading-precious.dat",
    "another filesystem": "/tmp/other-fs/trading-spill.tmp",
    "another user's file": "/tmp/trading-root.tmp",
}


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    instance = Box(tmp_path_factory.mktemp("first-run") / "box", PORT_BASE)
    instance.up()
    yield instance
    instance.down()


def sh(box: Box, script: str, timeout: float = 300):
    """A shell command run by root inside the box, from the suite's checkout (read-only there)."""
    from conftest import ROOT

    return box.run(["sh", "-c", f"cd {shlex.quote(str(ROOT))} && {script}"], timeout=timeout)


def plant(box: Box) -> None:
    planted = sh(box, " && ".join([
        "mkdir -p /tmp/other-program /opt/other-tree /tmp/other-fs",
        "mount -t tmpfs -o size=1m other-fs /tmp/other-fs",
        *(f"echo data > {path}" for path in (OWN, NOT_OWN["another program's tree"], NOT_OWN["the symlink's target"],
                                               NOT_OWN["another filesystem"], NOT_OWN["another user's file"])),
        f"ln -s {NOT_OWN['the symlink' + chr(39) + 's target']} {NOT_OWN['a symlink into another tree']}",
        "chown -h trading:trading " + " ".join([OWN, *[p for k, p in NOT_OWN.items() if k != "another user's file"]]),
        "touch -h -d '3 days ago' " + " ".join([OWN, *NOT_OWN.values()]),
    ]))
    assert planted.returncode == 0, planted.stdout + planted.stderr


def exists(box: Box, path: str) -> bool:
    return box.run(["test", "-e", path]).returncode == 0 or box.run(["test", "-L", path]).returncode == 0


def newest_junit(box: Box) -> dict[str, dict]:
    listing = box.run(["sh", "-c", f"ls -t {REPORTS}/daily-*.xml | head -1"]).stdout.strip()
    xml = box.run(["cat", listing]).stdout
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in ET.fromstring(xml).iter("testcase")}


def everything_said(box: Box, output: str) -> str:
    """The run's output, every report and every alert the box holds."""
    reports = box.run(["sh", "-c", f"cat {REPORTS}/* /var/log/trading-maintenance/alerts.jsonl"]).stdout
    return output + reports


@pytest.fixture(scope="module")
def followed(box):
    """The README, step by step, as root in the box; returns (plan run, apply run) as (exit status, output)."""
    steps = sh(box, "sudo mkdir -p /etc/trading-maintenance && "
                    f"sudo cp config/maintenance.example.toml {CONFIG}")
    assert steps.returncode == 0, steps.stderr
    # "sudoedit": the box's addresses (see the docstring); nothing else of the example changes.
    ports = box.ports
    text = box.run(["cat", CONFIG]).stdout
    for pattern, value in ((r'base_url = "http://127.0.0.1:3001"', f'base_url = "http://127.0.0.1:{ports.api}"'),
                           (r'url = "http://127.0.0.1:3000"', f'url = "http://127.0.0.1:{ports.dashboard}"'),
                           (r"(?m)^port = 8443$", f"port = {ports.tunnel}"),
                           (r"https://127.0.0.1:8443/", f"https://127.0.0.1:{ports.tunnel}/"),
                           (r"(?m)^port = 5432$", f"port = {ports.postgres}"),
                           (r"(?m)^# secrets_file = ", "secrets_file = ")):  # "uncomment [schedule] secrets_file"
        text, count = re.subn(pattern, value, text)
        assert count == 1, f"the example no longer has {pattern}"
    assert box.run(["sh", "-c", f"cat > {CONFIG}"], input=text).returncode == 0
    # The password in the secrets file alone: `sudo make daily` keeps none of the caller's variables anyway.
    steps = sh(box, f"sudo install -m 600 /dev/null {SECRETS} && "
                    f"echo TRADING_DB_PASSWORD=$(cat /run/trading-box/secrets/db-password) > {SECRETS}")
    assert steps.returncode == 0, steps.stderr
    plant(box)
    plan = sh(box, f"sudo make daily CONFIG={CONFIG} 2>&1")
    plan_said = everything_said(box, plan.stdout)
    plan_junit = newest_junit(box)
    # "When every planned action is one you want, set [remediation] mode = "apply"."
    assert sh(box, f"sed -i 's/^mode = \"plan\"/mode = \"apply\"/' {CONFIG}").returncode == 0
    apply = sh(box, f"sudo make daily CONFIG={CONFIG} 2>&1")
    return plan, plan_said, plan_junit, apply, everything_said(box, apply.stdout), newest_junit(box)


def test_the_plan_lists_the_rules_own_file_and_changes_nothing(box, followed):
    plan, _, junit, *_ = followed
    temp_files = junit["test_no_files_past_retention[temp-files]"]
    assert temp_files["verdict"] == "failed", plan.stdout
    assert temp_files["remediation_outcome"].startswith("delete_expired_files: planned: "), temp_files
    assert temp_files["remediation_outcome"].endswith(f": {OWN}"), temp_files["remediation_outcome"]
    assert "remediation mode plan" in plan.stdout


def test_sudo_make_daily_finds_the_database_password_in_the_secrets_file(followed):
    plan, _, junit, *_ = followed
    assert junit["test_database_answers"]["verdict"] == "passed", plan.stdout


@pytest.mark.parametrize("what", NOT_OWN)
def test_no_plan_report_or_alert_names_what_is_not_the_rules(followed, what):
    _, plan_said, _, _, apply_said, _ = followed
    name = NOT_OWN[what].rsplit("/", 1)[-1]
    assert name not in plan_said and name not in apply_said, f"{what} ({NOT_OWN[what]}) was named"


def test_apply_deletes_the_rules_own_file_and_says_fixed(box, followed):
    *_, apply, _, junit = followed
    assert not exists(box, OWN), apply.stdout
    assert junit["test_no_files_past_retention[temp-files]"]["verdict"] == "fixed", apply.stdout


@pytest.mark.parametrize("what", NOT_OWN)
def test_what_is_not_the_rules_survives_apply(box, followed, what):
    assert exists(box, NOT_OWN[what]), f"{what} ({NOT_OWN[what]}) was deleted"


def test_nothing_outside_the_box_was_written(box, followed):
    from pathlib import Path

    assert not Path(CONFIG).exists(), "the README's configuration landed on the machine, not in the box"
    assert not Path(REPORTS).exists() or not any(Path(REPORTS).iterdir()), "the box's reports landed on the machine"
