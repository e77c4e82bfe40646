"""Issue 18, part A: the host layer classifies once what never ran, and a box that stops answering is
unreachable for the rest of the run (probes/host.py, plugin/flow.py, alerts/dispatch.py, reports/summary.py).

The words are ssh's and sudo's own (OpenSSH 9, sudo 1.9). The runs use a stand-in for `ssh` on PATH (FAKE_SSH):
a box that is this machine, with a master connection that survives its sshd the way OpenSSH's does, an sshd that
can be stopped, hung or powered off with the box. It shows what the suite does with each, in milliseconds and
deterministically; tests/test_box_suite.py shows the same against a real sshd on a systemd box.
"""

from __future__ import annotations

import os
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import testinfra

from alerts.dispatch import Alerter
from configuration import load
from conftest import ROOT, read_alerts
from core.unread import CouldNotRead
from core.vocabulary import ActionStatus, AlertKind, Mode, Prop, Recheck, Unread, Verdict
from decision.policy import Budget
from decision.state import StateStore
from probes import host
from probes.host import Box, Unreadable, alive_options, ssh_cause, sudo_refusal
from remediations import REGISTRY, Outcome, Remediation
from remediations.runner import ActionContext, remediate_and_recheck
from reports.summary import summarize
from reports.tally import Tally

# -- the words: ssh's exit 255, sudo -n's refusals

SSH_SAID = {
    "Host key verification failed.": Unread.HOST_KEY,
    "No ED25519 host key is known for [127.0.0.1]:28522 and you have requested strict checking.\n"
    "Host key verification failed.": Unread.HOST_KEY,
    "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@": Unread.HOST_KEY,
    "trading-maint@127.0.0.1: Permission denied (publickey).": Unread.AUTHENTICATION,
    "ssh: connect to host 127.0.0.1 port 28522: Connection refused": Unread.TRANSPORT,
    "kex_exchange_identification: read: Connection reset by peer": Unread.TRANSPORT,
    "kex_exchange_identification: Connection closed by remote host": Unread.TRANSPORT,
    "ssh: connect to host nuc.lan port 22: No route to host": Unread.TRANSPORT,
    "ssh: connect to host 10.0.0.9 port 22: Connection timed out": Unread.TIMEOUT,
    "Connection timed out during banner exchange": Unread.TIMEOUT,
    "Timeout, server 127.0.0.1 not responding.": Unread.TIMEOUT,
    "mux_client_request_session: something ssh has no rule for": Unread.TRANSPORT,
}


@pytest.mark.parametrize("said", SSH_SAID, ids=lambda said: said.splitlines()[-1][:40])
def test_ssh_exit_255_is_classified_by_its_own_words(said):
    cause, line = ssh_cause(said)
    assert cause == SSH_SAID[said]
    assert line in said.splitlines()


SUDO_SAID = ["sudo: a password is required",
             "Sorry, user trading-maint is not allowed to execute '/usr/bin/systemctl restart cron' as root on box.",
             "sudo: a terminal is required to read the password; either use the -S option to read from standard input"]


@pytest.mark.parametrize("said", SUDO_SAID, ids=["password", "not-allowed", "terminal"])
def test_sudo_refusing_a_command_is_told_from_the_commands_own_failure(said):
    assert sudo_refusal(1, f"{said}\n") == said
    assert sudo_refusal(0, said) is None
    assert sudo_refusal(3, "inactive\nthe unit says: a password is required by the app") is None


def local_box(**fields) -> Box:
    return Box("here", testinfra.get_host("local://"), sys.executable, **{"sudo": False, "timeout": 30, **fields})


def fake_program(directory: Path, name: str, text: str, monkeypatch) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    (directory / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:{os.environ['PATH']}")


def test_a_command_sudo_refuses_never_ran_and_names_the_rule_to_add(tmp_path, monkeypatch):
    """A stand-in `sudo` that refuses as sudo -n does without a rule: the command is not run."""
    fake_program(tmp_path / "bin", "sudo", "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n", monkeypatch)
    with pytest.raises(CouldNotRead) as refused:
        local_box(sudo=True).run(["systemctl", "restart", "cron"], privileged=True)
    assert refused.value.cause == Unread.SUDO_REFUSED and refused.value.box == "here"
    assert refused.value.what == "`sudo -n systemctl restart cron`"
    assert refused.value.fix == "add the sudo rule `make sudoers` prints for it"
    assert local_box(sudo=True).run(["false"]).returncode == 1  # not through sudo: the command's own status


def test_a_reader_that_may_not_read_is_could_not_read_and_still_a_permission_error(tmp_path):
    def unreadable(path):
        raise PermissionError(13, "Permission denied", path)

    with pytest.raises(Unreadable) as refused:
        local_box().call(unreadable, "/var/log/auth.log")
    assert isinstance(refused.value, PermissionError) and refused.value.cause == Unread.PERMISSION
    assert "/var/log/auth.log" in str(refused.value)


def test_the_keep_alives_give_a_dead_connection_up_within_the_connect_timeout():
    for seconds in (1, 3, 10, 30, 120):
        words = alive_options(seconds)
        interval, count = (int(words[i].split("=")[1]) for i in (1, 3))
        assert interval * count <= max(seconds, 3), (seconds, words)


# -- runs through the stand-in ssh

FAKE_SSH = '''#!{python}
"""Stands in for OpenSSH to a box that is this machine; FAKE_BOX holds its state and a log of every attempt.
A command goes through the run's master connection when its ControlPath is there (as OpenSSH's does, it keeps
working after sshd is stopped), else through a new connection, which sshd must accept: refused when
FAKE_BOX/sshd-stopped is there, a banner that never comes when FAKE_BOX/sshd-hung is (after ConnectTimeout),
no route at all when FAKE_BOX/powered-off is (the master dies with the box). `-O exit` closes the master."""
import os, sys, time
from pathlib import Path

state, args, options, verb = Path(os.environ["FAKE_BOX"]), sys.argv[1:], {{}}, None
while args and args[0].startswith("-"):
    if args[0] == "-o":
        key, _, value = args[1].partition("=")
        options.setdefault(key.lower(), value)
    elif args[0] == "-O":
        verb = args[1]
    args = args[2:]
master = Path(options.get("controlpath", "/nonexistent"))


def said(line, status=255):
    with (state / "log").open("a") as log:
        log.write(line + "\\n")
    if status:
        print(line, file=sys.stderr)
        sys.exit(status)


if verb:
    said(f"-O {{verb}} {{master.name}}", 0)
    if verb == "exit":
        master.unlink(missing_ok=True)
    sys.exit(0)
if (state / "powered-off").exists():
    master.unlink(missing_ok=True)
    said("ssh: connect to host box.lan port 22: No route to host")
if master.exists():
    said(f"through {{master.name}}", 0)
elif (state / "sshd-hung").exists():
    time.sleep(float(options.get("connecttimeout", 10)))
    said("Connection timed out during banner exchange")
elif (state / "sshd-stopped").exists():
    said("ssh: connect to host box.lan port 22: Connection refused")
else:
    said(f"connect {{master.name}}", 0)
    if options.get("controlmaster") == "auto":
        master.touch()
os.execvp("sh", ["sh", "-c", args[1]])
'''

INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider -rN --tb=no
junit_family = xunit1
markers =
    daily: d
    weekly: w
    monthly: m
    quarterly: q
    emergency: e
    check(id, severity, why, depends_on): identity
    remediate(name): remediation
"""

CONFTEST = '''
import os
from core.vocabulary import ActionStatus
from remediations import Outcome, remediation

pytest_plugins = ["plugin"]

def _restart(ctx, service):
    ctx.run(["sh", "-c", "echo restarted >> " + os.environ["FAKE_BOX"] + "/actions"])
    return Outcome("restart", ActionStatus.DONE, "restarted " + service)

remediation("restart", touches="one service", plan=lambda ctx, service: "restart " + service,
            target=lambda ctx, service: "service " + service)(_restart)
'''

# Four checks in file order: one reads before anything goes wrong, one reads a service as down (a fault to act on)
# and then the box goes dark (the stand-in's switch, as the power would), two come after.
CHECKS = '''
import os, pytest
from pathlib import Path

def _switch(name):
    if os.environ.get("CUT_AT") == name:
        (Path(os.environ["FAKE_BOX"]) / os.environ["CUT"]).touch()  # "start": as the first check starts

@pytest.mark.daily
@pytest.mark.check("X-001", severity="critical", why="w")
def test_1_first(box):
    _switch("start")
    assert box.run(["true"]).returncode == 0
    _switch("X-001")

@pytest.mark.daily
@pytest.mark.check("X-002", severity="critical", why="w")
@pytest.mark.remediate("restart", service="agent")
def test_2_service(box):
    _switch("start")
    state = box.run(["sh", "-c", "cat " + os.environ["FAKE_BOX"] + "/agent"]).stdout.strip()
    _switch("X-002")
    assert state == "active", "agent is " + state

@pytest.mark.daily
@pytest.mark.check("X-003", severity="critical", why="w")
def test_3_after(box):
    _switch("start")
    assert box.run(["true"]).returncode == 0

@pytest.mark.daily
@pytest.mark.check("X-004", severity="warning", why="w")
def test_4_after(box):
    _switch("start")
    assert box.run(["true"]).returncode == 0
'''


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    """A box reached over the stand-in ssh, with four checks and a restart; the agent service is down."""
    state = tmp_path / "box"
    state.mkdir()
    (state / "agent").write_text("inactive\n")
    fake_program(tmp_path / "bin", "ssh", FAKE_SSH.format(python=sys.executable), monkeypatch)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("FAKE_BOX", str(state))
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[host]\nname = "nuc"\nbackend = "ssh://maint@box.lan"\nconnect_timeout_seconds = 1\n'
                      f'python = "{sys.executable}"\n[remediation]\nmode = "apply"\nrecheck_after_seconds = 0\n'
                      f'[reports]\ndir = "{tmp_path}/reports"\n[policy]\nstate_dir = "{tmp_path}/state"\n'
                      f'[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    pytester.state, pytester.config_path, pytester.env = state, config, monkeypatch
    pytester.reports, pytester.alerts = tmp_path / "reports", tmp_path / "alerts.jsonl"
    return pytester


def run(project, *args: str):
    before = set(project.reports.glob("*.xml")) if project.reports.exists() else set()
    log = project.state / "log"
    seen = len(log.read_text().splitlines()) if log.exists() else 0
    result = project.runpytest_subprocess(f"--maintenance-config={project.config_path}", "-m", "daily", *args)
    xml = (set(project.reports.glob("*.xml")) - before).pop()
    result.properties = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
                         for case in ET.parse(xml).getroot().iter("testcase")}
    result.ssh = log.read_text().splitlines()[seen:] if log.exists() else []
    result.summary = result.stdout.str().split("maintenance summary")[-1]
    return result


def attempts(result) -> list[str]:
    """What the stand-in sshd saw: new connections tried, commands through a master, ssh's failures."""
    return [line for line in result.ssh if not line.startswith("-O ")]


def test_a_box_powered_off_mid_run_is_unknown_from_then_on_acted_on_never_and_told_once(project):
    """Issue 18, item 5: checks after the power went off came out FAILED, a restart was tried on the dead box,
    four alerts, exit 11. Here X-002 read the agent as down just before the box went dark."""
    project.env.setenv("CUT_AT", "X-002")
    project.env.setenv("CUT", "powered-off")
    result = run(project)
    verdicts = {name.split("_", 2)[1]: props["verdict"] for name, props in result.properties.items()}
    assert verdicts == {"1": "passed", "2": "unknown", "3": "unknown", "4": "unknown"}, result.stdout.str()
    assert not (project.state / "actions").exists(), "a restart was tried on a box that does not answer"
    service = result.properties["test_2_service"]
    assert "no route to host" in service["problem"].lower() and "remediation_outcome" not in service
    assert [line for line in attempts(result) if "No route" in line] == [attempts(result)[-1]], result.ssh
    assert result.ret == 12
    alerts = read_alerts(project.alerts)
    assert [(a["title"], a["kind"]) for a in alerts] == [("box nuc unreachable", "unknown")], alerts
    assert "No route to host" in alerts[0]["message"] and "(3 check(s) could not look)" in alerts[0]["message"]
    assert result.summary.count("No route to host") == 1, result.summary
    assert "box nuc unreachable" in result.summary and "X-002, X-003, X-004" in result.summary


def test_sshd_stopped_after_a_run_is_seen_by_the_next_run_through_no_old_connection(project):
    """Issue 18, item 4: the next run reported 30 passed through the connection the last one left open for 60 s."""
    (project.state / "agent").write_text("active\n")
    first = run(project)
    assert first.ret == 0, first.stdout.str()
    assert [line.split()[0] for line in first.ssh][-1] == "-O" and "exit" in first.ssh[-1], first.ssh
    (project.state / "sshd-stopped").touch()
    second = run(project)
    assert {props["verdict"] for props in second.properties.values()} == {"unknown"}, second.stdout.str()
    assert attempts(second) == ["ssh: connect to host box.lan port 22: Connection refused"], second.ssh
    assert second.ret == 12 and len(read_alerts(project.alerts)) == 1
    assert "connection failed (ssh: connect to host box.lan port 22: Connection refused)" in second.summary


def test_each_run_opens_its_own_connection_and_closes_it_as_it_ends(project):
    (project.state / "agent").write_text("active\n")
    masters = []
    for _ in range(2):
        result = run(project)
        opened = [line.split()[1] for line in result.ssh if line.startswith("connect ")]
        closed = [line.split()[2] for line in result.ssh if line.startswith("-O exit")]
        assert len(opened) == 1 and closed == opened, result.ssh  # one connection a run, closed by the run
        masters += opened
    assert masters[0] != masters[1]
    assert [path.name for path in (project.config_path.parent / "state" / "ssh").iterdir()] == []


def test_a_hung_sshd_costs_one_connect_timeout_and_every_check_is_unknown(project):
    (project.state / "sshd-hung").touch()
    result = run(project)
    assert {props["verdict"] for props in result.properties.values()} == {"unknown"}
    assert attempts(result) == ["Connection timed out during banner exchange"], result.ssh  # one try, one timeout
    assert "timed out (Connection timed out during banner exchange)" in result.properties["test_3_after"]["problem"]
    assert result.ret == 12 and len(read_alerts(project.alerts)) == 1


def test_on_two_workers_a_box_that_stopped_answering_is_tried_once(project):
    """The mark is a file in the state directory: the other worker reads it instead of trying the box."""
    project.env.setenv("CUT_AT", "start")
    project.env.setenv("CUT", "powered-off")
    result = run(project, "-n", "2")
    assert {props["verdict"] for props in result.properties.values()} == {"unknown"}, result.stdout.str()
    assert len([line for line in attempts(result) if "No route" in line]) <= 2, result.ssh  # at most one in flight each
    assert result.ret == 12 and not (project.state / "actions").exists()


def test_a_restart_that_sudo_refuses_could_not_act_and_spends_no_budget(tmp_path, monkeypatch):
    """Before: `restart_service: failed`, counted against the service's budget like a restart that ran."""
    fake_program(tmp_path / "bin", "sudo", "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n", monkeypatch)
    monkeypatch.setitem(REGISTRY, "restart_cron", Remediation(
        "restart_cron", "a service", lambda ctx: _outcome(ctx.run(["systemctl", "restart", "cron"])),
        lambda ctx: "restart cron", target=lambda ctx: "service cron"))
    context = ActionContext(load_settings(tmp_path), local_box(sudo=True), None, Mode.APPLY)
    remedy = remediate_and_recheck("restart_cron", {}, context, lambda: "cron is inactive", tmp_path / "state",
                                   budget=Budget(max_remediations=1))
    assert remedy.outcome.status == ActionStatus.COULD_NOT_ACT and remedy.recheck == Recheck.NOT_RECHECKED
    assert remedy.outcome.summary() == (
        "restart_cron: could not act: `sudo -n systemctl restart cron` did not run on box here: sudo refused "
        "(sudo: a password is required): add the sudo rule `make sudoers` prints for it")
    assert StateStore(tmp_path / "state").load_targets()["trading-box service cron"].remediations == []
    assert not (tmp_path / "state" / "actions.jsonl").exists()


def _outcome(done) -> Outcome:
    return Outcome("restart", ActionStatus.DONE if done.returncode == 0 else ActionStatus.FAILED, "ran")


def load_settings(tmp_path: Path):
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[policy]\nstate_dir = "{tmp_path}/state"\n[alerts]\nfile = "{tmp_path}/alerts.jsonl"\n'
                      f'spool_dir = "{tmp_path}/spool"\n')
    return load(config)


# -- told once: the alert and the summary


def unreachable_check(check_id: str, box: str, problem: str) -> dict:
    return {Prop.CHECK_ID: check_id, Prop.SEVERITY: "critical", Prop.VERDICT: Verdict.UNKNOWN, Prop.BOX: box,
            Prop.PROBLEM: problem, Prop.UNREACHABLE: box, Prop.ALERT: AlertKind.UNKNOWN}


def test_thirty_two_checks_of_a_box_that_does_not_answer_are_one_line_and_one_alert(tmp_path):
    """Issue 18, item 9: an unreachable box printed the same reason 32 times in the summary."""
    reason = "could not read true on box nuc: connection failed (ssh: connect to host nuc port 22: Connection refused)"
    tally, alerter = Tally(), Alerter(load_settings(tmp_path), "daily run")
    for number in range(32):
        properties = unreachable_check(f"X-{number % 8:03}", "nuc", reason)
        tally.observe(f"test_{number}", properties)
        alerter.observe(properties, f"test_{number}")
    tally.observe("test_other", {Prop.CHECK_ID: "Y-001", Prop.SEVERITY: "warning", Prop.VERDICT: Verdict.UNKNOWN,
                                 Prop.PROBLEM: "the agent API timed out"})
    alerter.finish()
    summary = summarize("daily run", tally, alerter, [])
    heading, entries = summary.sections[0]
    assert heading == "could not check (33)" and len(entries) == 2
    assert entries[0] == [f"UNKNOWN  box nuc unreachable: {reason}",
                          "32 check(s) could not look: X-000 x4, X-001 x4, X-002 x4, X-003 x4, X-004 x4, X-005 x4, "
                          "X-006 x4, X-007 x4"]
    assert "the agent API timed out" in entries[1][0]
    sent = [alert for alert in alerter.sent if alert.check_id == "BOX"]
    assert len(sent) == 1 and sent[0].message == f"{reason} (32 check(s) could not look)"


def test_a_box_marked_in_one_process_is_unreachable_in_another_of_the_same_run_only(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setattr(host, "RUN", host.RunScope("run-one", True))
    box = local_box(state_dir=tmp_path)
    monkeypatch.setattr(Box, "local", property(lambda self: False))
    box._mark(CouldNotRead(Unread.TIMEOUT, "true", "Connection timed out during banner exchange", "", "here"))
    code = ("import sys; from pathlib import Path; from probes import host; from probes.host import Box\n"
            "Box.local = property(lambda self: False)\n"
            "host.join_run(sys.argv[2], owner=False)\n"
            "found = Box('here', None, 'python3', False, 30, Path(sys.argv[1])).unreachable()\n"
            "print(found.cause if found else 'answers')\n")
    said = [subprocess.run([sys.executable, "-c", code, str(tmp_path), run_id], cwd=ROOT, capture_output=True,
                           text=True, timeout=60).stdout.strip() for run_id in ("run-one", "run-two")]
    assert said == [str(Unread.TIMEOUT), "answers"]


def test_the_commands_a_run_gives_ssh_name_the_runs_own_master(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "RUN", host.RunScope("0123456789abcdef", True))
    settings = load(_ssh_config(tmp_path))
    options = host.ssh_options(settings)
    assert Path(options["controlpath"]) == tmp_path / "state" / "ssh" / host.control_name("nuc")
    monkeypatch.setattr(host, "RUN", host.RunScope("another run", True))
    assert host.ssh_options(settings)["controlpath"] != options["controlpath"]
    assert options["timeout"] == 3
    assert shlex.split(options["ssh_extra_args"])[-4:] == ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3"]


def _ssh_config(tmp_path: Path) -> Path:
    config = tmp_path / "ssh.toml"
    config.write_text(f'[host]\nname = "nuc"\nbackend = "ssh://maint@nuc.lan"\nconnect_timeout_seconds = 2.5\n'
                      f'[policy]\nstate_dir = "{tmp_path}/state"\n[alerts]\nfile = "{tmp_path}/alerts.jsonl"\n'
                      f'spool_dir = "{tmp_path}/spool"\n')
    return config
