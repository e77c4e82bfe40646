"""The suite against a real systemd box: run inside it (local) and from the machine over SSH, the
same faults give the same verdicts, remediations and re-checks; systemd's own ways for real; and a
fleet of boxes, each with its own fault, one of them down.

A box is a real systemd as PID 1 of its own namespaces with the guide's paths and an sshd with a
maintenance user and sudo rules (lab/box); only root can run one, the tests skip saying why otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, CadenceRun, config_with, read_alerts, read_junit, run_cadence
from lab.box import Box
from lab.box.fleet import boxes as fleet_boxes
from lab.box.fleet import fleet_config

PORT_BASE = int(os.environ.get("TEST_BOX_SUITE_PORT_BASE", "28500"))  # test_box.py takes 28100-28300
WHY_NOT = Box.unavailable()
RELAXED_CPU = {"resources": {"cpu": {"warning": 100, "critical": 100}}}  # the machine's CPU, not the box's

pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=f"no box here: {WHY_NOT}")]

# The daily faults of the lab, made on the box the way they happen there.
DAILY_FAULTS = ["service-down:trading-agent", "service-down:trading-dashboard", "service-down:ssh-tunnel",
                "service-down:postgresql", "api-500", "api-malformed", "error-rate-high", "critical-errors",
                "circuit-breakers-open", "health-low", "no-trades-today", "new-error-code", "logs-unrotated",
                "files-past-retention", "exchange-down"]


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    instance = Box(tmp_path_factory.mktemp("box") / "box-1", PORT_BASE)
    instance.up()
    yield instance
    instance.down()


@pytest.fixture
def healthy_box(box):
    """No fault, and the suite with no memory of earlier runs, inside or outside."""
    box.clear()
    for state in (box.paths.maintenance_dir, box.paths.root / "outside"):
        shutil.rmtree(state, ignore_errors=True)
    yield box
    box.clear()


def over_ssh(box: Box, reports: Path, *args: str):
    config = config_with(box.paths.ssh_maintenance_config, box.paths.root / "outside-relaxed.toml", RELAXED_CPU)
    return run_cadence(config, reports, *args)


def inside(box: Box, reports: Path, *args: str):
    """The daily cadence run by the box's own processes: the suite's local fast path, systemctl direct."""
    relaxed = config_with(box.paths.config, box.paths.root / "inside-relaxed.toml", RELAXED_CPU)
    seen_inside = Path("/run/trading-box") / relaxed.name
    report_dir = box.paths.root / "inside-reports"
    report_dir.mkdir(exist_ok=True)
    before = set(report_dir.iterdir())
    python = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "python"
    completed = box.run(["env", "-C", str(ROOT), str(python), "-m", "pytest", "-m", "daily", "-p", "no:cacheprovider",
                         f"--maintenance-config={seen_inside}", "--reports-dir=/run/trading-box/inside-reports", *args],
                        timeout=300)
    new = sorted(set(report_dir.iterdir()) - before)
    junit = next((p for p in new if p.suffix == ".xml"), None)
    alerts_file = box.paths.var_log / "trading-maintenance" / "alerts.jsonl"
    return CadenceRun(completed.returncode, completed.stdout + completed.stderr, None, junit,
                      read_junit(junit) if junit else [], read_alerts(alerts_file))


def findings(run) -> set[tuple]:
    """What the operator is told about each check that did not pass: verdict, action, outcome, re-check."""
    told = set()
    for result in run.results:
        p = result.properties
        if p.get("verdict") in ("failed", "fixed", "unknown"):
            action = p.get("remediation_outcome", "").split(":")[:2]
            told.add((p["check_id"], result.name.split("[")[-1].rstrip("]").split("-")[-1], p["verdict"],
                      tuple(part.strip() for part in action), p.get("recheck", "")))
    return told


@pytest.mark.parametrize("fault", DAILY_FAULTS)
def test_a_fault_is_told_alike_inside_the_box_and_over_ssh(healthy_box, fault, tmp_path):
    healthy_box.inject(fault)
    remote = over_ssh(healthy_box, tmp_path / "ssh")
    healthy_box.clear()
    shutil.rmtree(healthy_box.paths.root / "outside" / "state", ignore_errors=True)
    healthy_box.inject(fault)
    local = inside(healthy_box, tmp_path / "inside")
    assert remote.returncode in (10, 11, 12) and local.returncode == remote.returncode, remote.output + local.output
    assert findings(remote), f"{fault} was not found over SSH:\n{remote.output}"
    assert findings(remote) == findings(local), f"over SSH:\n{remote.output}\ninside:\n{local.output}"


def test_a_healthy_box_passes_every_daily_check_over_ssh(healthy_box, tmp_path):
    run = over_ssh(healthy_box, tmp_path / "ssh")
    assert run.returncode == 0, run.output
    assert {r.properties["box"] for r in run.results} == {"box-1"} and len(run.results) >= 25


def test_a_stopped_unit_is_restarted_through_sudo_systemctl_over_ssh(healthy_box, tmp_path):
    """PostgreSQL: only the service check looks at it, so its own finding is the one remediated."""
    healthy_box.inject("service-down:postgresql")
    run = over_ssh(healthy_box, tmp_path / "ssh")
    service = run.only("SVC-001", "postgresql").properties
    assert service["verdict"] == "fixed" and "inactive" in service["problem"]
    assert service["remediation_outcome"].startswith("restart_service: done") and service["recheck"] == "fixed"
    assert healthy_box.unit_states(["postgresql"])["postgresql"]["ActiveState"] == "active"


def test_a_unit_at_its_start_limit_is_reported_and_not_restarted(healthy_box, tmp_path):
    healthy_box.inject("crashloop:trading-agent")
    before = healthy_box.unit_states(["trading-agent"])["trading-agent"]
    run = over_ssh(healthy_box, tmp_path / "ssh")
    service = run.only("SVC-001", "trading-agent").properties
    assert service["verdict"] == "failed"
    assert "guard refused" in service["remediation_outcome"] and "start limit" in service["remediation_outcome"]
    assert "reset-failed trading-agent" in service["remediation_outcome"]
    after = healthy_box.unit_states(["trading-agent"])["trading-agent"]
    assert after["ActiveState"] == "failed" and after["NRestarts"] == before["NRestarts"]  # nobody restarted it


def test_without_the_sudo_rule_a_restart_is_refused_and_said(healthy_box, tmp_path):
    """The maintenance user may restart only what its rules name: a service outside them is refused by sudo."""
    config = config_with(healthy_box.paths.ssh_maintenance_config, tmp_path / "other.toml",
                         {**RELAXED_CPU, "services": {"dashboard": "cron"}})
    run = run_cadence(config, tmp_path / "ssh")
    service = run.only("SVC-001", "cron").properties
    assert service["verdict"] == "failed"  # what it read is a fault: the restart it needs never ran (could not act)
    assert service["remediation_outcome"] == ("restart_service: could not act: `sudo -n systemctl restart cron` did "
                                              "not run on box box-1: sudo refused (sudo: a password is required): add "
                                              "the sudo rule `make sudoers` prints for it")


# -- issue 18, part A: a box that stops answering is unreachable for the run, told once, never acted on


def services_over_ssh(box: Box, reports: Path, changes: dict | None = None, *args: str) -> CadenceRun:
    """The daily service checks only (SVC-001, DB-001) over SSH: enough to see the connection, quick to run."""
    config = config_with(box.paths.ssh_maintenance_config, reports.parent / f"{reports.name}.toml",
                         {**RELAXED_CPU, **(changes or {})})
    return run_cadence(config, reports, "checks/test_daily_services.py", *args)


def sudo_lines(box: Box, cursor: str) -> list[str]:
    """What the box's sudo logged since `cursor`: a line for every command anyone ran through it."""
    said = box.run(["journalctl", "--no-pager", "-q", "--after-cursor", cursor, "-t", "sudo", "-o", "cat"]).stdout
    return [line for line in said.splitlines() if "COMMAND=" in line]


def assert_unknown_told_once(run: CadenceRun, box: str, cause: str, said: str) -> None:
    """Every check UNKNOWN with the cause and ssh's words, one alert naming the box, the reason once, exit 12."""
    assert run.returncode == 12, run.output
    assert run.results and all(r.properties["verdict"] == "unknown" for r in run.results), run.output
    assert all(f": {cause} (" in r.properties["problem"] and said in r.properties["problem"] for r in run.results)
    assert [(a["title"], a["kind"]) for a in run.alerts] == [(f"box {box} unreachable", "unknown")], run.alerts
    assert run.output.count(said) == 1, run.output  # the summary says it once, not once per check


def test_sshd_stopped_right_after_a_run_is_seen_by_the_next_run(healthy_box, tmp_path):
    """Issue 18, item 4: the next run reported every check passed, through the connection the last run left open
    for 60 s (systemd stops only sshd's listener: a session, a master connection too, lives on)."""
    first = services_over_ssh(healthy_box, tmp_path / "first")
    assert first.returncode == 0, first.output
    cursor = healthy_box.journal_cursor()
    healthy_box.systemctl("stop", "ssh")
    try:
        second = services_over_ssh(healthy_box, tmp_path / "second")
    finally:
        healthy_box.systemctl("start", "ssh")
    assert_unknown_told_once(second, "box-1", "connection failed", "Connection refused")
    assert sudo_lines(healthy_box, cursor) == []


def listen_queue(port: int) -> int:
    """Connections the kernel accepted for a listener that has not taken them (ss's Recv-Q of a listening socket)."""
    said = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=30).stdout
    return int(said.split()[1])


def test_a_hung_sshd_is_tried_once_and_every_check_is_unknown(healthy_box, tmp_path):
    """Issue 18, item 4: a stopped sshd (SIGSTOP to its listener) cost twice the connect timeout. The kernel still
    takes connections for it and keeps them queued: the queue counts the run's attempts, one connect timeout each."""
    healthy_box.systemctl("kill", "-s", "STOP", "--kill-whom=main", "ssh")
    try:
        run = services_over_ssh(healthy_box, tmp_path / "hung", {"host": {"connect_timeout_seconds": 2}})
        attempts = listen_queue(healthy_box.ports.ssh)
    finally:
        healthy_box.systemctl("kill", "-s", "CONT", "--kill-whom=main", "ssh")
    assert_unknown_told_once(run, "box-1", "timed out", "Connection timed out during banner exchange")
    assert attempts == 1


def test_a_box_whose_host_key_nobody_trusted_is_unknown_with_the_fix(healthy_box, tmp_path):
    """Issue 18, item 6: the first run gave 32 UNKNOWN "Host key verification failed." and no word of what to do."""
    run = services_over_ssh(healthy_box, tmp_path / "untrusted", {"host": {"known_hosts": str(tmp_path / "none")}})
    assert_unknown_told_once(run, "box-1", "host key not trusted", "Host key verification failed.")
    assert "make trust-box BOX=box-1" in run.results[0].properties["problem"]


def test_the_clean_up_rule_allows_its_own_walker_and_nothing_smuggled_through_its_pattern(healthy_box):
    """The retention walker installed by root in the box runs through its exact rule; sudo's `*` matches any
    text, spaces and further arguments included, unless escaped: the rules escape it, so another pattern is
    refused."""
    ssh = ["ssh", "-F", str(healthy_box.paths.ssh_config), "trading-box"]
    rule = "/usr/local/libexec/trading-maintenance/expire /tmp {} 1 root flat"
    own = subprocess.run([*ssh, "sudo -n " + rule.format("'trading-*'")], capture_output=True, text=True, timeout=30)
    smuggled = [subprocess.run([*ssh, "sudo -n " + rule.format(pattern)], capture_output=True, text=True, timeout=30)
                for pattern in ("'trading-x'", "'trading-* 1 root recursive /etc'")]
    assert own.returncode == 0 and '"refused": []' in own.stdout, own.stdout + own.stderr
    assert all(s.returncode != 0 and "password is required" in s.stderr for s in smuggled), smuggled


def test_trust_box_takes_the_key_the_box_prints_and_the_suite_trusts_that_alone(box, tmp_path):
    """`make trust-box` against the box's real sshd, from a monitoring host with no known_hosts of its own: the
    suite's ssh refuses the box (its ssh_config's known_hosts would have let it in), a fingerprint the box does not
    have writes nothing, the one its console prints (ssh-keygen -lf of its host key) is written, and then the
    suite's ssh reaches it."""
    import shlex
    import sys

    from configuration import load
    from probes.host import ssh_options

    config = config_with(box.paths.ssh_maintenance_config, tmp_path / "untrusted.toml",
                         {"host": {"known_hosts": str(tmp_path / "known_hosts")}})

    def suite_reaches() -> subprocess.CompletedProcess:
        """ssh as the suite's SSH backend calls it (its options, the box's ssh_config), without a master."""
        extra = shlex.split(ssh_options(load(config))["ssh_extra_args"])
        return subprocess.run(["ssh", *extra, "-F", str(box.paths.ssh_config), "-o", "BatchMode=yes", "-o",
                               "ControlMaster=no", "trading-box", "true"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def trust(fingerprint: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "commands", "trustbox", "--config", str(config), "--fingerprint",
                               fingerprint], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    refused = suite_reaches()
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr, refused.stderr
    assert trust("SHA256:" + "A" * 43).returncode == 4 and not (tmp_path / "known_hosts").exists()
    printed = subprocess.run(["ssh-keygen", "-lf", str(box.paths.host_key.with_suffix(".pub"))], capture_output=True,
                             text=True, timeout=30).stdout.split()[1]
    trusted = trust(printed)
    assert trusted.returncode == 0, trusted.stderr
    assert f"trusted: {printed} (ED25519)" in trusted.stdout
    reached = suite_reaches()
    assert reached.returncode == 0, reached.stderr


FLEET_PORTS = int(os.environ.get("TEST_BOX_FLEET_PORT_BASE", "28600"))  # 28600, 28700, 28800, 28900
FLEET_FAULTS = {"box-1": "service-down:postgresql", "box-2": "health-low", "box-3": "files-past-retention"}
@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Three boxes up and a fourth that was up once and is down: its sshd no longer answers."""
    root = tmp_path_factory.mktemp("fleet")
    boxes = fleet_boxes(root, 4, FLEET_PORTS)
    try:
        for box in boxes:
            box.up()
        boxes[3].down()
        yield boxes
    finally:
        for box in boxes:
            box.down()


def test_a_fleet_finds_each_fault_on_its_own_box_and_one_box_down_is_one_alert(fleet, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fleet")  # short: the SSH control sockets live below it
    for box in fleet[:3]:
        box.inject(FLEET_FAULTS[box.paths.root.name])
    config = fleet_config(fleet, tmp_path / "fleet.toml", RELAXED_CPU)
    run = run_cadence(config, tmp_path / "reports", "-n", "2", "--dist", "loadgroup")
    found: dict[str, set[str]] = {}
    for result in run.results:
        if result.properties["verdict"] in ("failed", "fixed", "unknown"):
            found.setdefault(result.properties["box"], set()).add(result.properties["check_id"])
    assert found.get("box-1") == {"SVC-001"}, run.output
    assert found.get("box-2") == {"ERR-003"}, run.output
    assert found.get("box-3") == {"LOG-002"}, run.output
    down = [r for r in run.results if r.properties["box"] == "box-4"]
    assert len(down) >= 25 and all(r.properties["verdict"] == "unknown" for r in down)
    unreachable = [a for a in run.alerts if a["title"].startswith("box ") and a["title"].endswith(" unreachable")]
    assert [a["box"] for a in unreachable] == ["box-4"]
    assert {a["box"] for a in run.alerts if a["check_id"] != "BOX"} <= {"box-1", "box-2", "box-3"}
    fleet[0].clear()
    assert fleet[0].unit_states(["postgresql"])["postgresql"]["ActiveState"] == "active"


def test_a_box_powered_off_mid_run_is_unknown_from_then_on_never_acted_on_and_told_once(fleet, tmp_path_factory):
    """Issue 18, item 5 (two boxes, the power of one goes off mid-run, tests/power_cut.py): its later checks came
    out FAILED, a restart was tried on the dead box, four alerts, exit 11; the other box was unaffected."""
    tmp_path = tmp_path_factory.mktemp("cut")  # short: the SSH control sockets live below it
    for box in fleet[:2]:
        box.clear()
    dark = fleet[1]
    cursor = dark.journal_cursor()
    config = fleet_config(fleet[:2], tmp_path / "two.toml", {**RELAXED_CPU, "host": {"connect_timeout_seconds": 2}})
    cut = {"PYTHONPATH": f"{ROOT / 'tests'}:{os.environ.get('PYTHONPATH', '')}", "POWER_CUT_BOX": "box-2",
           "POWER_CUT_AFTER": "4", "POWER_CUT_FREEZE": str(dark.cgroup.path / "cgroup.freeze")}
    try:
        run = run_cadence(config, tmp_path / "reports", "-p", "power_cut", "checks/test_daily_services.py",
                          "checks/test_daily_connectivity.py", env=cut)
    finally:
        (dark.cgroup.path / "cgroup.freeze").write_text("0")
    by_box: dict[str, list[str]] = {}
    for result in run.results:
        by_box.setdefault(result.properties["box"], []).append(result.properties["verdict"])
    assert set(by_box["box-1"]) == {"passed"}, run.output
    # its four service checks first (SVC-001 reads every service at once), then the power goes off
    assert by_box["box-2"][:4] == ["passed"] * 4 and by_box["box-2"][4:] == ["unknown"] * 4, run.output
    assert run.returncode == 12, run.output
    assert [(a["title"], a["box"]) for a in run.alerts] == [("box box-2 unreachable", "box-2")], run.alerts
    assert not any("remediation_outcome" in r.properties for r in run.results), run.output
    assert sudo_lines(dark, cursor) == []


def test_the_readmes_ssh_section_followed_as_written_from_a_monitoring_host_with_nothing_set_up(
        healthy_box, tmp_path_factory, monkeypatch):
    """Issue 18's acceptance: README, "From another machine, over SSH", step by step, from a monitoring host with
    no known_hosts, no password in its environment and no sudo rules on the box, to a healthy first run. Before
    each step is done the run is UNKNOWN with its cause and the fix, one alert, exit 12, and nothing is done on
    the box. The sshd's `Match User` block (step 2) is the box's own already (lab/box/access.py)."""
    import tomllib

    import tomli_w

    box = healthy_box
    monkeypatch.delenv("TRADING_DB_PASSWORD", raising=False)
    home = tmp_path_factory.mktemp("mon")  # the monitoring host's /etc/trading-maintenance and state, short
    secrets = home / "secrets.env"
    data = tomllib.loads(box.paths.ssh_maintenance_config.read_text())  # step 3: [host] names the box
    data["host"]["known_hosts"] = str(home / "known_hosts")  # nothing trusted yet
    data["database"].pop("password_file")
    data["database"]["password_env"] = "TRADING_DB_PASSWORD"
    data.update(RELAXED_CPU, schedule={"secrets_file": str(secrets), "log_dir": str(home / "log")},
                policy={**data["policy"], "state_dir": str(home / "state")},
                alerts={**data["alerts"], "file": str(home / "alerts.jsonl"), "spool_dir": str(home / "spool")})
    config = box.paths.root / "monitoring.toml"  # where the box can read it too, for `make sudoers` on the box
    config.write_text(tomli_w.dumps(data))
    secrets.write_text("# the monitoring host's secrets ([schedule] secrets_file): the password comes later\n")
    secrets.chmod(0o600)
    lab_rule = box.paths.sudoers_dir / "trading-maint"
    saved = lab_rule.read_bytes()
    lab_rule.unlink()  # no sudo rules on the box
    cursor = box.journal_cursor()

    def daily(name: str) -> CadenceRun:
        return run_cadence(config, home / name, "checks/test_daily_services.py")

    try:
        untrusted = daily("untrusted")
        assert_unknown_told_once(untrusted, "box-1", "host key not trusted", "Host key verification failed.")

        # First, the box's host key: its fingerprint as the box prints it on its own console.
        said = box.run(["ssh-keygen", "-lf", f"{box.paths.inside().host_key}.pub"]).stdout.split()
        trusted = subprocess.run(["make", "--no-print-directory", "-o", "system-deps", "trust-box",
                                  f"CONFIG={config}", f"FINGERPRINT={said[1]}"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)
        assert trusted.returncode == 0 and said[1] in trusted.stdout, trusted.stdout + trusted.stderr

        # 1. On the box: the sudo rules as make sudoers prints them, checked by visudo and installed.
        installed = box.run(["sh", "-c", f"cd {ROOT} && make --no-print-directory sudoers "
                                         f"CONFIG={box.inside_path(config)} SUDO_USER_NAME=trading-maint "
                                         f"> /run/trading-maintenance.sudoers && visudo -cf /run/trading-maintenance"
                                         f".sudoers && install -m 0440 /run/trading-maintenance.sudoers "
                                         f"/etc/sudoers.d/trading-maintenance"], timeout=180)
        assert installed.returncode == 0, installed.stdout + installed.stderr

        # 2. The password, not in the secrets file yet.
        no_password = daily("no-password")
        assert no_password.returncode == 12, no_password.output
        db = no_password.only("DB-001")
        assert db.properties["verdict"] == "unknown" and "secret not available" in db.properties["problem"]
        assert "TRADING_DB_PASSWORD" in db.properties["problem"] and str(secrets) in db.properties["problem"]
        assert [r.check_id for r in no_password.results if r.properties["verdict"] != "passed"] == ["DB-001"]
        # one alert of its own; the checks the untrusted host key had made UNKNOWN are told resolved
        assert [(a["check_id"], a["kind"]) for a in no_password.alerts if a["kind"] != "resolved"] == [
            ("DB-001", "unknown")], no_password.alerts

        secrets.write_text(f"TRADING_DB_PASSWORD={box.paths.db_password_file.read_text().strip()}\n")
        first_run = daily("healthy")
        assert first_run.returncode == 0, first_run.output
        assert first_run.results and all(r.properties["verdict"] == "passed" for r in first_run.results)
        assert sudo_lines(box, cursor) == []  # nothing was done on the box by any of these runs
    finally:
        box.run(["rm", "-f", "/etc/sudoers.d/trading-maintenance"])
        lab_rule.write_bytes(saved)
        lab_rule.chmod(0o440)
