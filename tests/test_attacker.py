"""The agent's user against the suite (issue 17): each class of attack that worked against the lab, tried again as
that user, and what the suite does and says about it.

The suite runs as root beside the agent; the agent's user owns its log directory and its checkout, and what the
exchange sends lands in its logs. On this machine `nobody` (uid 65534) stands in for that user (no user is
created here): every planting, swap and write below is done by a process that has become nobody (`setpriv`, or
a forked child that set its uid), never by the test's root. docs/SECURITY.md lists what each test shows.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w
from test_retention_race import RUNS, agent_tree, context, delete, expired_file, settings_for, start_swapping

from alerts.channel import Permanent
from alerts.channels.file import FileChannel
from alerts.message import Alert, Message
from commands.sudoers import sudoers_rules
from configuration import load
from conftest import ROOT, read_junit
from core import rootfiles
from core.vocabulary import ActionStatus
from decision.state import STATE_FILE

AGENT = 65534
SUDOERS_COPY = "root ALL=(ALL:ALL) ALL\n"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv: the attacks are made as another user (nobody)")


AS_AGENT = ["setpriv", f"--reuid={AGENT}", f"--regid={AGENT}", "--clear-groups"]


def as_agent(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """`argv` run as the agent's user, with no group of root's, in `cwd` (entered as root: pytest's temporary
    directories are root's 0700, so the agent works by names relative to its own directory)."""
    return subprocess.run([*AS_AGENT, *argv], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture
def box(tmp_path) -> Path:
    """The guide's layout under tmp_path: the agent's log directory and checkout are the agent's; /etc, the
    suite's state and the backups are root's."""
    for name in ("etc", "var/lib/trading-maintenance", "opt/trading-agent", "var/log/trading-agent"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "var/lib/trading-maintenance").chmod(0o700)
    for name in ("opt/trading-agent", "var/log/trading-agent"):
        os.chown(tmp_path / name, AGENT, AGENT)
    sudoers = tmp_path / "etc" / "sudoers"
    sudoers.write_text(SUDOERS_COPY)
    sudoers.chmod(0o440)
    return tmp_path


def plant_link(link: Path, target: Path) -> None:
    planted = as_agent("ln", "-s", str(target), link.name, cwd=link.parent)
    assert planted.returncode == 0, planted.stderr


# ---- 2: links where root writes


def test_a_link_planted_for_the_alert_file_never_leads_root_to_write_elsewhere(box):
    """The old example kept the alert file in the agent's log directory; the agent linked it to sudoers."""
    alerts = box / "var/log/trading-agent/maintenance-alerts.jsonl"
    plant_link(alerts, box / "etc/sudoers")
    alert = Alert(check_id="SVC-001", severity="critical", kind="problem", title="trading-agent", message="down")
    # refused for its directory before the link is even looked at: the agent could swap anything in there
    with pytest.raises(Permanent, match=f"refusing to write {alerts}: {alerts.parent} is owned by nobody"):
        FileChannel(alerts).send(Message.from_alert(alert))
    assert (box / "etc/sudoers").read_text() == SUDOERS_COPY  # permanent: the fallback channel takes the alert


def test_a_link_planted_for_the_network_log_never_leads_root_to_write_elsewhere(box):
    log = box / "var/log/trading-agent/network-failures.log"
    plant_link(log, box / "etc/sudoers")
    with pytest.raises(rootfiles.RefusedFile, match=f"refusing to write {log}: it is a symbolic link"):
        rootfiles.append_as_owner(log, "Fri Dec 04 10:00:00 UTC 2026: Network failure detected\n")
    assert (box / "etc/sudoers").read_text() == SUDOERS_COPY


def test_the_network_log_root_appends_to_is_written_with_the_agents_rights_only(box):
    """Without a link the guide's log is written, but as its directory's owner: nothing root alone may write."""
    log = box / "var/log/trading-agent/network-failures.log"
    rootfiles.append_as_owner(log, "Fri Dec 04 10:00:00 UTC 2026: Network failure detected\n")
    assert log.stat().st_uid == AGENT and log.read_text().endswith("Network failure detected\n")


# ---- 3: deletion steered by a link or a swap


def test_a_link_the_agent_puts_high_in_a_rules_path_deletes_nothing_outside_and_fails(tmp_path):
    logs, victim = agent_tree(tmp_path)
    plant_link(tmp_path / "agent" / "via", tmp_path / "victim")
    settings = settings_for(tmp_path, tmp_path / "agent" / "via" / "logs")
    outcome = delete(context(settings))
    assert outcome.status == ActionStatus.FAILED, outcome.summary()  # never "fixed": the operator is told
    assert f"refused {tmp_path}/agent/via/logs: {tmp_path}/agent/via is a symbolic link" in outcome.detail
    assert sorted(os.listdir(victim)) == ["trading-0.log", "trading-1.log", "trading-2.log"]


def test_a_parent_the_agent_swaps_during_deletion_never_leads_it_outside_and_refusals_are_said(tmp_path):
    """The agent exchanges the rule's parent with a link to the victim as fast as it can (renameat2)."""
    logs, victim = agent_tree(tmp_path)
    agent = tmp_path / "agent"
    plant_link(agent / "swap", tmp_path / "victim")
    victims = sorted(os.listdir(victim))
    ctx = context(settings_for(tmp_path, logs))
    real_logs = os.open(logs, os.O_RDONLY | os.O_DIRECTORY)  # the rule's own directory, wherever it is renamed
    pid, ready = start_swapping(agent)
    try:
        assert select.select([ready], [], [], 10)[0], "the swapping child never swapped"
        refused = done = 0
        # RUNS runs, and more if needed (up to 20 times as many) until both ways of the race were seen once
        while done + refused < RUNS or (not (refused and done) and done + refused < 20 * RUNS):
            for n in range(3):
                expired_file(real_logs, f"trading-run-{done + refused}-{n}.log")
            outcome = delete(ctx)
            left = [name for name in os.listdir(real_logs) if name.startswith("trading-run-")]
            if outcome.status == ActionStatus.FAILED:
                refused += 1
                assert outcome.detail.startswith(f"refused {logs}: ") and "symbolic link" in outcome.detail, \
                    outcome.summary()
                assert "refused: " in outcome.output and len(left) == 3, outcome.summary()
                for name in left:
                    os.unlink(name, dir_fd=real_logs)
            else:
                done += 1
                assert outcome.status == ActionStatus.DONE and "refused" not in outcome.detail, outcome.summary()
                assert left == [] and len(outcome.output.splitlines()) >= 3, outcome.summary()
            assert sorted(os.listdir(victim)) == victims, f"a victim's file was deleted: {outcome.summary()}"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(real_logs)
    assert refused > 0 and done > 0, (refused, done)


# ---- 4: root through a script the agent can rewrite


def test_the_emergency_backup_script_in_the_agents_checkout_gets_no_sudo_rule(box):
    script = box / "opt/trading-agent/emergency-backup.sh"
    written = as_agent("sh", "-c", f"printf '#!/bin/sh\\nid\\n' > {script.name} && chmod 755 {script.name}",
                       cwd=script.parent)
    assert written.returncode == 0, written.stderr
    config = box / "maintenance.toml"
    config.write_text(tomli_w.dumps({"host": {"backend": "ssh://trading-maint@nuc.lan"},
                                     "emergency": {"backup_command": [str(script)]}}))
    text, notes = sudoers_rules(load(config), "trading-maint")
    rules = [line for line in text.splitlines() if not line.startswith("#")]
    assert not [line for line in rules if str(script) in line], text  # the agent's rewrite can never run as root
    [note] = [note for note in notes if str(script) in note]
    assert "nobody could rewrite it and become root" in note and "backup_command" in note, note


# ---- 7: the suite's own state, out of the agent's reach, and damaged anyway (a power cut)


def run_emergency(config: Path, reports: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "emergency", "-k", "test_failed_logins_below_threshold",
                           "-p", "no:cacheprovider",
                           f"--maintenance-config={config}", f"--reports-dir={reports}", "--remediation=off", *args],
                          cwd=ROOT, capture_output=True, timeout=300)


def auth_config(box: Path, auth_log: Path) -> Path:
    config = box / "maintenance.toml"
    config.write_text(tomli_w.dumps({
        "remediation": {"mode": "plan"},
        "policy": {"state_dir": str(box / "var/lib/trading-maintenance")},
        "alerts": {"file": str(box / "var/lib/trading-maintenance/alerts.jsonl"),
                   "spool_dir": str(box / "var/lib/trading-maintenance/spool"), "fallback": []},
        "security": {"auth_log": str(auth_log), "failed_logins_max": 5}}))
    return config


def test_the_agent_cannot_touch_the_state_and_a_truncated_one_stops_nothing(box):
    state = box / "var/lib/trading-maintenance" / STATE_FILE
    state.write_bytes(b'{"checks": {"SEC-004": {"verdicts": [[1, "pas')  # what a power cut mid-write could leave
    tampered = as_agent("sh", "-c", f": > {state.name}", cwd=state.parent)
    assert tampered.returncode != 0 and "Permission denied" in tampered.stderr
    auth_log = box / "var/log/trading-agent/auth.log"
    auth_log.write_text("")
    done = run_emergency(auth_config(box, auth_log), box / "reports")
    out = done.stdout.decode()
    assert done.returncode == 0, out  # checked as usual: SEC-004 passed
    assert "could not be read" in out and len(list(state.parent.glob("state.json.corrupt-*"))) == 1, out
    alerts = [json.loads(line) for line in (state.parent / "alerts.jsonl").read_text().splitlines()]
    assert ["could not be read" in alert["message"] for alert in alerts] == [True], alerts  # one alert says so


# ---- 9: text from outside: escape sequences and 5 MB lines in a log the suite quotes


def test_escape_sequences_and_5mb_lines_in_a_log_stay_text_and_the_reports_stay_small(box):
    """Ten failed-login lines whose source is 5 MB of escape sequences (as an address an attacker made sshd log),
    written into the log by the agent's user: SEC-004 fails and quotes the sources."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    payload = "\x1b]2owned\x07\x1b[2J\u009b31m\u202e" * 250_000  # about 5 MB a line, one word (no ';')
    line = f"{stamp} nuc sshd[1]: Failed password for root from {payload} port 22 ssh2\n"
    auth_log = box / "var/log/trading-agent/auth.log"
    writer = subprocess.Popen([*AS_AGENT, "sh", "-c", f"cat > {auth_log.name}"], stdin=subprocess.PIPE,
                              cwd=auth_log.parent)
    writer.communicate((line * 10).encode(), timeout=120)
    assert writer.returncode == 0 and auth_log.stat().st_uid == AGENT
    reports = box / "reports"
    done = run_emergency(auth_config(box, auth_log), reports, "--tb=short", "-rA")
    assert done.returncode != 0
    assert not any(byte in done.stdout + done.stderr for byte in (b"\x1b", b"\x07", "\u009b".encode(),
                                                                   "\u202e".encode())), "raw control on the terminal"
    assert b"\\x1b]2owned\\x07" in done.stdout and b"[cut " in done.stdout
    html, junit = next(reports.glob("*.html")), next(reports.glob("*.xml"))
    assert html.stat().st_size < 5_000_000 and junit.stat().st_size < 5_000_000
    ET.parse(junit)  # still valid XML
    [sec] = [result for result in read_junit(junit) if result.check_id == "SEC-004"]
    assert sec.properties["verdict"] == "failed" and len(sec.message.encode()) <= 8192, len(sec.message)
