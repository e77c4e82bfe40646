"""Package updates (Weekly 3, Quarterly 1, System Updates 1-2): apt's simulation and release data read
right, security updates told apart by their origin, the reboot flag, npm audit and Node.js; then the checks
end to end on the session's shared lab (tests/conftest.py), the remediation's plan, its window and its backup
first, and one real install into the lab's private dpkg admin directory (never the machine's).

The lab's apt is real apt and dpkg over local repositories (lab/apt.py). Its `npm` is a stand-in that
prints a recorded `npm audit --json` report: the npm registry is not reachable here.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trail_helpers import acts

from configuration import ConfigError, load
from configuration.updates import Window
from conftest import ROOT, TEST_PORT_BASE, config_with, run_cadence
from core.vocabulary import LedgerKind
from probes.remote import updatescan
from probes.updates import (
    classify,
    node_major,
    origin_matches,
    parse_npm_audit,
    parse_package_files,
    parse_simulation,
)

PORT_BASE = TEST_PORT_BASE  # the shared lab's
UPDATE_CHECKS = "weekly_updates or quarterly_updates"  # -k: the modules of the update checks
PATTERNS = ["n=*-security", "a=*-security", "l=Debian-Security"]

# What apt-get -s dist-upgrade prints on Debian and Ubuntu (LC_ALL=C).
SIMULATION = """NOTE: This is only a simulation!
Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
  libc6 security-utils tzdata
Inst libc6 [2.36-9+deb12u4] (2.36-9+deb12u7 Debian:12.6/stable, Debian-Security:12/stable-security [amd64]) []
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12/stable-updates [all])
Inst security-utils [1.0-1] (1.1-1 Debian:12.6/stable [all])
Inst openssl [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-security [amd64])
Inst libnew1 (1.0-1 Debian:12.6/stable [amd64])
Conf libc6 (2.36-9+deb12u7 Debian:12.6/stable, Debian-Security:12/stable-security [amd64])
"""
POLICY = """Package files:
 100 /var/lib/dpkg/status
     release a=now
 500 http://security.debian.org/debian-security bookworm-security/main amd64 Packages
     release v=12,o=Debian,a=stable-security,n=bookworm-security,l=Debian-Security,c=main,b=amd64
     origin security.debian.org
 500 http://deb.debian.org/debian bookworm/main amd64 Packages
     release v=12.6,o=Debian,a=stable,n=bookworm,l=Debian,c=main,b=amd64
     origin deb.debian.org
Pinned packages:
"""


# -- readers, without the lab

def test_simulation_lines_are_read_with_every_source():
    found = {entry["name"]: entry for entry in parse_simulation(SIMULATION)}
    assert set(found) == {"libc6", "tzdata", "security-utils", "openssl", "libnew1"}
    assert found["libc6"]["installed"] == "2.36-9+deb12u4" and found["libc6"]["candidate"] == "2.36-9+deb12u7"
    assert found["libc6"]["sources"] == ["Debian:12.6/stable", "Debian-Security:12/stable-security"]
    assert found["libc6"]["arch"] == "amd64"
    assert found["libnew1"]["installed"] is None  # a new dependency


def test_security_is_the_origin_not_the_name():
    """The guide's `apt list --upgradable | grep -i security` would take security-utils (a name) and miss
    libc6 (its fix is in the point release and the security archive): the origin decides."""
    pending = {p.name: p for p in classify(parse_simulation(SIMULATION), parse_package_files(POLICY), PATTERNS)}
    assert pending["libc6"].security and pending["openssl"].security  # Debian-Security; Ubuntu's -security pocket
    assert not pending["security-utils"].security and not pending["tzdata"].security
    codename = next(o for o in pending["libc6"].origins if o.get("l") == "Debian-Security")
    assert codename["n"] == "bookworm-security" and codename["site"] == "security.debian.org"
    assert str(pending["libnew1"]) == "libnew1 (new) -> 1.0-1 (Debian:12.6/stable)"


def test_origin_patterns_as_unattended_upgrades_writes_them():
    fields = {"o": "Debian", "a": "stable-security", "n": "bookworm-security", "l": "Debian-Security"}
    assert origin_matches("origin=Debian,codename=bookworm-security,label=Debian-Security", fields)
    assert not origin_matches("o=Debian,n=bookworm", fields)
    assert origin_matches("n=*-security", fields) and not origin_matches("l=Ubuntu", fields)


def test_a_bad_origin_pattern_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[updates]\nsecurity_origins = ["security"]\n')
    with pytest.raises(ConfigError) as error:
        load(path)
    assert "updates.security_origins" in str(error.value) and "key=glob" in str(error.value)


@pytest.mark.parametrize("days, start, end, weekday, now, inside", [
    (["sun"], "02:00", "05:00", 6, "03:00", True),
    (["sun"], "02:00", "05:00", 6, "05:00", False),
    (["sun"], "02:00", "05:00", 5, "03:00", False),
    (["sat"], "23:00", "01:00", 6, "00:30", True),   # past midnight: Saturday's window, on Sunday morning
    (["sat"], "23:00", "01:00", 5, "00:30", False),  # Saturday morning belongs to Friday's window
])
def test_maintenance_window(days, start, end, weekday, now, inside):
    assert Window(days=days, start=start, end=end).holds(weekday, now) is inside


def test_npm_audit_json_of_npm_7_and_6_and_its_errors():
    seven = {"auditReportVersion": 2, "vulnerabilities": {"axios": {"severity": "high"}},
             "metadata": {"vulnerabilities": {"info": 0, "low": 0, "moderate": 0, "high": 1, "critical": 0,
                                              "total": 1}}}
    found = parse_npm_audit(json.dumps(seven))
    assert found["counts"]["high"] == 1 and found["packages"] == {"high": ["axios"]}
    six = {"advisories": {}, "metadata": {"vulnerabilities": {"info": 0, "low": 2, "moderate": 0, "high": 0,
                                                              "critical": 0}}}
    assert parse_npm_audit(json.dumps(six))["counts"]["low"] == 2
    with pytest.raises(RuntimeError, match="ENOLOCK"):
        parse_npm_audit(json.dumps({"error": {"code": "ENOLOCK", "summary": "This command requires a lockfile"}}))
    with pytest.raises(ValueError, match="did not print JSON"):
        parse_npm_audit("npm ERR! network")
    assert node_major("v20.11.1\n") == 20


def test_reboot_flag_and_its_packages(tmp_path):
    flag, pkgs = tmp_path / "reboot-required", tmp_path / "reboot-required.pkgs"
    assert updatescan.reboot_required(str(flag), str(pkgs))["required"] is False
    flag.write_text("*** System restart required ***\n")
    assert updatescan.reboot_required(str(flag), str(pkgs))["packages"] == []
    pkgs.write_text("linux-image-6.1.0-26-amd64\nlibc6\nlibc6\n")
    assert updatescan.reboot_required(str(flag), str(pkgs))["packages"] == ["linux-image-6.1.0-26-amd64", "libc6"]


def test_an_install_is_a_line_of_the_runs_ledger_and_one_not_written_is_said_in_its_outcome(tmp_path):
    from types import SimpleNamespace

    from configuration import Settings
    from core.vocabulary import ActionStatus
    from remediations.updates import Install

    reports = tmp_path / "reports"
    context = SimpleNamespace(settings=Settings(), box=None, reports_dir=reports, check="UPD-001")
    outcome = Install(context, "security").outcome(ActionStatus.DONE, "installed openssl", 0)
    assert outcome.detail == "installed openssl"
    [line] = acts(reports, LedgerKind.OS_UPDATE)
    assert line | {"at": 0} == {"at": 0, "event": "install-updates-security", "box": "trading-box",
                                "check": "UPD-001", "status": "done", "detail": "installed openssl"}
    with (reports / "ledger.jsonl").open("a") as ledger_file:
        ledger_file.write("written over by hand\n")
    outcome = Install(context, "security").outcome(ActionStatus.DONE, "installed tzdata", 0)
    assert outcome.status == ActionStatus.DONE, "what was installed stands"
    assert outcome.detail.startswith(f"installed tzdata (not recorded in the ledger of {reports}: ")


# -- the checks and the remediation on a lab

@pytest.fixture
def healthy(healthy_lab):
    """The session's shared lab (tests/conftest.py), healthy and with no memory of earlier runs."""
    return healthy_lab


def run(config: Path, tmp_path: Path, *args: str, cadence: str = "weekly or quarterly"):
    return run_cadence(config, tmp_path / "reports", "-k", UPDATE_CHECKS, *args, cadence=cadence)


def window_around_now(hours: int = 2) -> dict:
    now = datetime.datetime.now()
    return {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": (now - datetime.timedelta(hours=hours)).strftime("%H:%M"),
            "end": (now + datetime.timedelta(hours=hours)).strftime("%H:%M")}


def window_not_now() -> dict:
    tomorrow = (datetime.datetime.now() + datetime.timedelta(days=1)).strftime("%a").lower()
    return {"days": [tomorrow], "start": "12:00", "end": "12:01"}


def installed(lab, name: str) -> str | None:
    from lab import apt

    return apt.installed_version(lab.paths, name)


def test_healthy_lab_passes_every_update_check(healthy, tmp_path):
    done = run(healthy.config_path, tmp_path)
    outcomes = {r.check_id: r.outcome for r in done.results}
    assert set(outcomes) == {"UPD-001", "UPD-002", "UPD-003", "UPD-004", "UPD-005", "UPD-006"}, done.output
    assert all(outcome in ("passed", "skipped") for outcome in outcomes.values()), done.output
    assert outcomes["UPD-004"] == "passed"  # the lab's application has a package.json and an npm
    if shutil.which("node"):
        assert outcomes["UPD-006"] == "passed", done.output
    else:
        assert "no node on the box" in done.only("UPD-006").message


def test_each_fault_fails_its_check_with_what_and_how_many(healthy, tmp_path):
    """One weekly and quarterly run with every fault on: each check names what it found; the ordinary
    updates are counted (UPD-002 passes) and never taken for security ones; installing is off."""
    for fault in ("security-updates-pending", "updates-pending", "reboot-required", "npm-vulnerable"):
        healthy.inject(fault)
    done = run(healthy.config_path, tmp_path)
    security = done.only("UPD-001")
    assert security.outcome == "failed", done.output
    assert ("1 security update(s) pending: openssl 3.0.11-1~deb12u2 -> 3.0.15-1~deb12u1 "
            "(Debian-Security:12/stable-security)") in security.message
    assert "guard refused: installing updates is off ([updates] install = false); it would install openssl" \
        in security.properties["remediation_outcome"]
    counted = done.only("UPD-002")
    assert counted.outcome == "passed" and counted.properties["updates_pending"] == "3", done.output
    reboot = done.only("UPD-003")
    assert reboot.outcome == "failed" and "for: linux-image-6.1.0-26-amd64, libc6" in reboot.message
    npm = done.only("UPD-004")
    assert npm.outcome == "failed" and "2 vulnerabilit(ies) at moderate or above (moderate 1, high 1)" in npm.message
    assert "axios (high), follow-redirects (moderate)" in npm.message
    quarterly = done.only("UPD-005")
    assert quarterly.outcome == "failed", done.output
    assert "2 update(s) not installed: openssl" in quarterly.message and "tzdata 2024a-0+deb12u1 -> 2025b" \
        in quarterly.message
    assert "held back ([updates] hold linux-*): linux-image-amd64 6.1.106-3 -> 6.1.112-1" in quarterly.message


def test_too_many_pending_updates_and_an_old_node(healthy, tmp_path):
    healthy.inject("updates-pending")
    config = config_with(healthy.config_path, tmp_path / "strict.toml",
                         {"updates": {"max_pending": 1, "node_min_major": 999}})
    done = run(config, tmp_path)
    counted = done.only("UPD-002")
    assert counted.outcome == "failed" and "2 update(s) pending, [updates] max_pending 1 (over by 1), 0 of them " \
        "security" in counted.message
    if shutil.which("node"):
        node = done.only("UPD-006")
        assert node.outcome == "failed" and "is older than major 999 ([updates] node_min_major)" in node.message


def _context(config: Path, mode):
    from probes.host import box_of
    from probes.services import service_manager
    from remediations.runner import ActionContext

    settings = load(config)
    return ActionContext(settings=settings, box=box_of(settings), services=service_manager(settings), mode=mode,
                         state_dir=settings.policy.state_dir, check="UPD-001")


def test_plan_lists_the_packages_and_holds_the_kernel(healthy, tmp_path):
    from core.vocabulary import ActionStatus, Mode
    from remediations import load_all

    healthy.inject("security-updates-pending")
    healthy.inject("updates-pending")
    config = config_with(healthy.config_path, tmp_path / "on.toml",
                         {"updates": {"install": True, "window": window_around_now()}})
    action = load_all()["install_updates"]
    security = action(_context(config, Mode.PLAN), scope="security")
    assert security.status == ActionStatus.PLANNED
    assert "install 1 security update(s): openssl 3.0.11-1~deb12u2 -> 3.0.15-1~deb12u1" in security.detail
    assert "apt-get -y -q" in security.detail and "install --only-upgrade openssl" in security.detail
    everything = action(_context(config, Mode.PLAN), scope="all")
    assert "install 2 update(s)" in everything.detail and "hold back linux-image-amd64" in everything.detail
    assert installed(healthy, "openssl") == "3.0.11-1~deb12u2"  # a plan installs nothing


def test_outside_the_window_nothing_is_installed(healthy, tmp_path):
    from core.vocabulary import ActionStatus, Mode
    from remediations import load_all

    healthy.inject("security-updates-pending")
    config = config_with(healthy.config_path, tmp_path / "closed.toml",
                         {"updates": {"install": True, "window": window_not_now()}})
    outcome = load_all()["install_updates"](_context(config, Mode.APPLY), scope="security")
    assert outcome.status == ActionStatus.SKIPPED
    assert "outside the maintenance window" in outcome.detail and "not installed" in outcome.detail
    assert installed(healthy, "openssl") == "3.0.11-1~deb12u2"


def test_security_updates_installed_into_the_labs_own_dpkg_after_a_backup(healthy, tmp_path):
    """A real apt-get install under the lab's APT_CONFIG: the security fix only, after a full backup, the
    daily checks after it; the machine's /var/lib/dpkg/status is the same bytes after as before."""
    from core.vocabulary import ActionStatus, Mode
    from remediations import load_all

    healthy.inject("security-updates-pending")
    healthy.inject("updates-pending")
    system_status = Path("/var/lib/dpkg/status")
    before = hashlib.sha256(system_status.read_bytes()).hexdigest() if system_status.exists() else None
    fulls = set(healthy.paths.backup_dir.glob("full-*.tar.gz"))
    relaxed = config_with(healthy.config_path, tmp_path / "install.toml",
                          {"updates": {"install": True, "window": window_around_now()},
                           "resources": {"cpu": {"warning": 100, "critical": 100}}})
    outcome = load_all()["install_updates"](_context(relaxed, Mode.APPLY), scope="security")
    assert outcome.status == ActionStatus.DONE, outcome
    assert installed(healthy, "openssl") == "3.0.15-1~deb12u1"
    assert installed(healthy, "tzdata") == "2024a-0+deb12u1"  # not a security update: left for the quarter
    assert set(healthy.paths.backup_dir.glob("full-*.tar.gz")) - fulls, "no new full backup was taken first"
    assert "the daily checks after it: passed" in outcome.detail, outcome
    after = hashlib.sha256(system_status.read_bytes()).hexdigest() if system_status.exists() else None
    assert after == before
    trail = acts(load(relaxed).reports.dir, LedgerKind.OS_UPDATE)  # no run's --reports-dir: [reports] dir's ledger
    assert trail[-1]["event"] == "install-updates-security" and trail[-1]["status"] == "done"


def test_make_update_os_plans_by_default_and_schedules_the_reboot_it_needs(healthy, tmp_path):
    healthy.inject("updates-pending")
    healthy.inject("reboot-required")
    config = config_with(healthy.config_path, tmp_path / "os.toml", {"updates": {
        "window": {"days": ["sun"], "start": "02:00", "end": "05:00"}, "daily_checks_after": False,
        "schedule_reboot": ["echo", "reboot scheduled for", "{calendar}"]}})
    plan = subprocess.run([sys.executable, "-m", "commands", "osupdate", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "install tzdata 2024a-0+deb12u1 -> 2025b-0+deb12u1" in plan.stdout
    assert "hold back linux-image-amd64" in plan.stdout
    assert "would schedule it at the window's next start (sun 02:00-05:00 (box local time)): echo reboot " \
           "scheduled for Sun *-*-* 02:00:00" in plan.stdout
    assert installed(healthy, "tzdata") == "2024a-0+deb12u1"
    done = subprocess.run([sys.executable, "-m", "commands", "osupdate", "--config", str(config), "--apply"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(healthy, "tzdata") == "2025b-0+deb12u1"
    assert installed(healthy, "linux-image-amd64") == "6.1.106-3"  # the kernel held
    assert "reboot for linux-image-6.1.0-26-amd64, libc6 scheduled" in done.stdout


def test_a_failed_backup_means_nothing_installed(healthy, tmp_path):
    from core.vocabulary import ActionStatus, Mode
    from remediations import load_all

    healthy.inject("security-updates-pending")
    config = config_with(healthy.config_path, tmp_path / "nobackup.toml",
                         {"updates": {"install": True, "window": window_around_now(), "daily_checks_after": False},
                          "backups": {"pg_dump": ["false"]}})
    outcome = load_all()["install_updates"](_context(config, Mode.APPLY), scope="security")
    assert outcome.status == ActionStatus.FAILED, outcome
    assert "the backup before it failed, nothing installed" in outcome.detail and "pg_dump failed" in outcome.detail
    assert installed(healthy, "openssl") == "3.0.11-1~deb12u2"


# -- a fleet: the update of one box is verified with that box's checks (issue 18, item 12)

def test_updates_of_one_box_of_a_fleet_verify_with_its_checks_only(tmp_path):
    """The application update (commands/update.py) and the package updates (install_updates, `make update-os`)
    both end with the daily checks: of the box they changed, not of every box the configuration names.
    tests/test_plugin.py shows that `--maintenance-box` runs that box's checks only."""
    from commands.update import verify_argv
    from remediations.updates import daily_checks_argv

    path = tmp_path / "fleet.toml"
    path.write_text(f'[policy]\nstate_dir = "{tmp_path}/state"\n\n[[boxes]]\nname = "nuc-1"\n\n'
                    f'[[boxes]]\nname = "nuc-2"\n')
    box = load(path).box("nuc-2")
    for argv in (verify_argv(box, path), daily_checks_argv(box)):
        assert [word for word in argv if word.startswith("--maintenance-")] == [
            f"--maintenance-config={path.resolve()}", "--maintenance-box=nuc-2"], argv
