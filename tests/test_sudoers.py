"""`make sudoers`: exactly the commands the configured remediations run as root, accepted by visudo."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from commands.sudoers import privileged_commands, rule_line
from configuration import load
from conftest import ROOT


def config(tmp_path, text: str):
    path = tmp_path / "maintenance.toml"
    path.write_text(text)
    return path


def test_the_rules_name_each_configured_service_and_the_rotation_command(tmp_path):
    settings = load(config(tmp_path, '[services]\nagent = "agent-x"\n[logrotate]\ncommand = ["/bin/true", "-f", "a,b"]\n'))
    commands = privileged_commands(settings)
    assert ["systemctl", "restart", "agent-x"] in commands and ["/bin/true", "-f", "a,b"] in commands
    # Four services, the rotation, the emergency's system recovery and backup: no diagnostic, no clean-up (they
    # need no root), and nothing of the emergency's later steps, which are off unless enabled. Then the weekly
    # audit's readings: sshd -T and fail2ban-client's status, of the server and of each jail.
    assert len(commands) == 7 + 4 and ["/usr/local/bin/trading-system-recovery"] in commands
    assert ["sshd", "-T", "-f", "/etc/ssh/sshd_config"] in commands
    assert ["fail2ban-client", "status", "ssh-tunnel"] in commands
    assert ["/opt/trading-agent/scripts/emergency-backup.sh"] in commands
    assert rule_line(["/bin/true", "-f", "a,b"]) == r"/bin/true -f a\,b"  # sudoers' special characters escaped


def test_the_emergency_steps_an_operator_enables_are_in_the_rules(tmp_path):
    settings = load(config(tmp_path, "[emergency.responses]\nshutdown = true\nstop_tunnel = true\nfirewall_lock = true\n"))
    commands = privileged_commands(settings)
    for argv in (["systemctl", "stop", "trading-agent"], ["systemctl", "stop", "trading-dashboard"],
                 ["systemctl", "stop", "ssh-tunnel"], ["nft", "-f", "/run/trading-maintenance-lock.nft"]):
        assert argv in commands


def test_every_box_of_a_fleet_adds_its_own_services(tmp_path):
    settings = load(config(tmp_path, '[[boxes]]\nname = "a"\n[[boxes]]\nname = "b"\nservices = { agent = "agent-b" }\n'))
    restarted = {argv[2] for argv in privileged_commands(settings) if argv[:2] == ["systemctl", "restart"]}
    assert {"trading-agent", "agent-b"} <= restarted


@pytest.mark.skipif(shutil.which("visudo") is None, reason="visudo is not installed (Debian package sudo)")
def test_the_printed_file_is_valid_sudoers_for_the_user_of_the_ssh_backend(tmp_path):
    path = config(tmp_path, '[host]\nbackend = "ssh://trading-maint@nuc.lan"\n')
    printed = subprocess.run([sys.executable, "-m", "commands.sudoers", "--config", str(path)], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert "trading-maint ALL=(root) NOPASSWD: TRADING_MAINTENANCE" in printed
    rules = tmp_path / "rules"
    rules.write_text(printed)
    checked = subprocess.run(["visudo", "-cf", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_a_user_nothing_is_printed_and_the_reason_is_given(tmp_path):
    done = subprocess.run([sys.executable, "-m", "commands.sudoers", "--config", str(config(tmp_path, ""))],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 4 and done.stdout == "" and "--user" in done.stderr


def test_the_audits_readings_are_allowed_without_the_sudo_prefix_the_operator_configured(tmp_path):
    settings = load(config(tmp_path, '[audit]\nsshd = ["sudo", "-n", "/usr/sbin/sshd"]\nfail2ban = false\n'))
    commands = privileged_commands(settings)
    assert ["/usr/sbin/sshd", "-T", "-f", "/etc/ssh/sshd_config"] in commands
    assert not [argv for argv in commands if "sudo" in argv or "fail2ban-client" in argv]
