"""`make sudoers`: exactly the commands the configured remediations run as root, accepted by visudo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from commands import sudoers
from commands.sudoers import privileged_commands, rule_line
from configuration import load
from conftest import ROOT
from probes.remote.backupscan import PROGRAM


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
    # audit's readings: sshd -T and fail2ban-client's status, of the server and of each jail. Then the backups:
    # the backup program's set-aside, write of each kind, finish, prune, read and restore-into, and the stop and
    # start of the two services the full backup stops.
    assert len(commands) == 7 + 4 + 8 + 4 and ["/usr/local/bin/trading-system-recovery"] in commands
    assert ["sshd", "-T", "-f", "/etc/ssh/sshd_config"] in commands
    assert ["fail2ban-client", "status", "ssh-tunnel"] in commands
    assert ["/opt/trading-agent/scripts/emergency-backup.sh"] in commands
    assert rule_line(["/bin/true", "-f", "a,b"]) == r"/bin/true -f a\,b"  # sudoers' special characters escaped


def test_the_emergency_steps_an_operator_enables_are_in_the_rules(tmp_path):
    settings = load(config(tmp_path, "[emergency.responses]\nshutdown = true\nstop_tunnel = true\nfirewall_lock = true\n"))
    commands = privileged_commands(settings)
    for argv in (["systemctl", "stop", "trading-agent"], ["systemctl", "stop", "trading-dashboard"],
                 ["systemctl", "stop", "ssh-tunnel"], ["nft", "-f", "-"]):  # the ruleset on stdin, no file
        assert argv in commands


def test_every_box_of_a_fleet_adds_its_own_services(tmp_path):
    settings = load(config(tmp_path, '[[boxes]]\nname = "a"\n[[boxes]]\nname = "b"\nservices = { agent = "agent-b" }\n'))
    restarted = {argv[2] for argv in privileged_commands(settings) if argv[:2] == ["systemctl", "restart"]}
    assert {"trading-agent", "agent-b"} <= restarted


@pytest.mark.skipif(shutil.which("visudo") is None, reason="visudo is not installed (Debian package sudo)")
def test_the_printed_file_is_valid_sudoers_for_the_user_of_the_ssh_backend(tmp_path):
    path = config(tmp_path, '[host]\nbackend = "ssh://trading-maint@nuc.lan"\n')
    printed = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config", str(path)], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert "trading-maint ALL=(root) NOPASSWD: TRADING_MAINTENANCE" in printed
    rules = tmp_path / "rules"
    rules.write_text(printed)
    checked = subprocess.run(["visudo", "-cf", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_a_user_nothing_is_printed_and_the_reason_is_given(tmp_path):
    done = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config", str(config(tmp_path, "[host]\n"))],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 4 and done.stdout == "" and "--user" in done.stderr


def test_the_audits_readings_are_allowed_without_the_sudo_prefix_the_operator_configured(tmp_path):
    settings = load(config(tmp_path, '[audit]\nsshd = ["sudo", "-n", "/usr/sbin/sshd"]\nfail2ban = false\n'))
    commands = privileged_commands(settings)
    assert ["/usr/sbin/sshd", "-T", "-f", "/etc/ssh/sshd_config"] in commands
    # The backup program's arguments hold [backups] pg_dump as root runs it (`sudo -u postgres pg_dump`): not a sudo
    # of the maintenance user's.
    assert not [argv for argv in commands if argv[0] != PROGRAM and ("sudo" in argv or "fail2ban-client" in argv)]


# ---- every rule exact, and nothing another user could change run as root (issue 17, item 4) --------------------

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the files are given to another owner (nobody)")
NOBODY = 65534


def test_a_program_without_arguments_is_allowed_only_without_them():
    assert rule_line(["/usr/bin/true"]) == '/usr/bin/true ""'  # bare, sudoers would allow any arguments


def test_arguments_are_escaped_so_that_sudo_matches_exactly_them():
    # `,:=#` for sudoers' parser; `*?[]` are fnmatch's wildcards; a leading `^` would make a regular expression;
    # a backslash is doubled twice (once for the parser, once for fnmatch)
    assert rule_line(["/usr/bin/printf", "a,b*", "back\\slash", "^x$", "#1", "k=v:w[0]?"]) == \
        r"/usr/bin/printf a\,b\* back\\\\slash \^x$ \#1 k\=v\:w\[0\]\?"


@pytest.mark.parametrize("argv, said", [
    (["/usr/bin/true", "x\n@include /tmp/evil"], "control character"),
    (["/usr/bin/true", "nul\x00"], "control character"),
    (["/usr/bin/tr\nue"], "control character"),
    (["/usr/bin/true", "two words"], "holds a space"),
    (["/usr/bin/true", ""], "empty"),
    (["/usr/bin/true", '""'], "no arguments"),
])
def test_a_command_sudo_could_not_match_exactly_is_left_out(argv, said):
    with pytest.raises(sudoers.LeftOut, match=said):
        rule_line(argv)


def test_a_newline_in_a_configured_command_never_reaches_the_rules_as_a_line(tmp_path, monkeypatch):
    """The configuration refuses control characters at load; the rules do not rely on it."""
    settings = load(config(tmp_path, "[host]\n"))
    injected = ["/usr/bin/true", "x\n@include /tmp/evil\nALL ALL=(ALL) NOPASSWD: ALL"]
    monkeypatch.setattr(sudoers, "privileged_commands", lambda _settings: [injected, ["/usr/bin/true"]])
    text, notes = sudoers.sudoers_rules(settings, "trading-maint")
    assert [line for line in text.splitlines() if line.startswith(("@include", "ALL"))] == []
    assert len(notes) == 1 and "x\\n@include /tmp/evil\\nALL" in notes[0] and "control character" in notes[0]
    assert '/usr/bin/true ""' in text


def agent_script(tmp_path, *, dir_owner: int = 0, file_owner: int = 0, file_mode: int = 0o755,
                 dir_mode: int = 0o755) -> str:
    scripts = tmp_path / "agent" / "scripts"
    scripts.mkdir(parents=True)
    script = scripts / "emergency-backup.sh"
    script.write_text("#!/bin/sh\n")
    os.chown(script, file_owner, file_owner)
    os.chmod(script, file_mode)
    os.chown(scripts, dir_owner, dir_owner)
    os.chmod(scripts, dir_mode)
    return str(script)


@AS_ROOT
@pytest.mark.parametrize("layout, who", [
    ({"dir_owner": NOBODY}, "nobody"),  # the agent's checkout: its directory is the agent's
    ({"file_owner": NOBODY}, "nobody"),  # a script of the agent's in a directory of root's
    ({"file_mode": 0o775}, "the group root"),
    ({"dir_mode": 0o777}, "any user"),  # anyone may swap it (no sticky bit)
])
def test_a_program_another_user_could_change_is_refused_naming_the_path_and_its_owner(tmp_path, layout, who):
    script = agent_script(tmp_path, **layout)
    with pytest.raises(sudoers.ProgramUnsafe, match=f"^{who} could rewrite it and become root"):
        rule_line([script])


@AS_ROOT
def test_a_root_owned_program_where_only_root_writes_is_allowed(tmp_path):
    script = agent_script(tmp_path)
    assert rule_line([script]) == f'{script} ""'


@AS_ROOT
def test_a_link_is_followed_only_from_a_directory_of_roots_and_its_target_judged_too(tmp_path):
    script = agent_script(tmp_path, dir_owner=NOBODY)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "backup").symlink_to(script)  # root's link, to the agent's file
    with pytest.raises(sudoers.ProgramUnsafe, match=f"nobody could rewrite it.*{tmp_path}/agent/scripts is owned"):
        rule_line([str(bin_dir / "backup")])
    (bin_dir / "true").symlink_to("/usr/bin/true")
    assert rule_line([str(bin_dir / "true")]) == f'{bin_dir}/true ""'


@AS_ROOT
def test_a_file_root_would_read_as_an_argument_is_judged_like_a_program(tmp_path):
    conf = tmp_path / "logrotate.conf"
    conf.write_text("")
    os.chown(conf, NOBODY, NOBODY)
    with pytest.raises(sudoers.FileUnsafe, match=f"root would read {conf}, which nobody could rewrite"):
        rule_line(["/usr/bin/true", "-f", str(conf)])
    assert rule_line(["/usr/bin/true", str(tmp_path)]) == f"/usr/bin/true {tmp_path}"  # a directory: not judged


@AS_ROOT
def test_a_retention_directory_in_the_agents_tree_is_named_in_the_rule_not_refused(tmp_path):
    """The walker (probes/remote/expiry.py) judges its own way into the rule's directory, which is usually the
    agent's (/opt/trading-agent/logs): leaving its rule out would leave the deletion without sudo."""
    logs = tmp_path / "agent" / "logs"
    logs.mkdir(parents=True)
    os.chown(logs.parent, NOBODY, NOBODY)
    os.chown(logs, NOBODY, NOBODY)
    assert rule_line(["/usr/bin/true", str(logs), "nobody"]) == f"/usr/bin/true {logs} nobody"


@AS_ROOT
def test_make_sudoers_names_the_refused_script_on_stderr_and_in_a_comment_with_the_key_to_change(tmp_path):
    script = agent_script(tmp_path, dir_owner=NOBODY)
    path = config(tmp_path, f'[host]\nbackend = "ssh://trading-maint@nuc.lan"\n[emergency]\n'
                            f'backup_command = ["{script}"]\nrecovery_command = ["/usr/bin/true"]\n')
    done = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    said = (f"NOT INCLUDED, {script}: nobody could rewrite it and become root ({tmp_path}/agent/scripts is owned by "
            f"nobody, mode 0755); install a root-owned copy under /usr/local/sbin and point [emergency] backup_command "
            f"at it")
    assert f"# {said}\n" in done.stdout and f"make sudoers: {said}\n" in done.stderr
    assert f"{script}," not in done.stdout and '/usr/bin/true ""' in done.stdout


def test_a_user_name_sudoers_cannot_take_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config", str(config(tmp_path, "[host]\n")),
                           "--user", "maint ALL=(ALL) ALL\n"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 4 and done.stdout == "" and "is not a user name" in done.stderr


SUDO_CHECK = """
mount --bind "$1" /etc/sudoers
shift
for case in "$@"; do
  set -f; IFS='|'; set -- $case; unset IFS; set +f
  if sudo -l -U nobody "$@" >/dev/null 2>&1; then echo allowed; else echo refused; fi
done
"""


@pytest.mark.skipif(os.geteuid() != 0 or not all(map(shutil.which, ("sudo", "unshare", "visudo"))),
                    reason="needs root, sudo and unshare: the rules are tried by the real sudo in a mount namespace")
def test_the_real_sudo_allows_exactly_the_printed_commands(tmp_path):
    """The printed rules as the only sudoers of a private mount namespace (the machine's stays untouched): sudo
    itself says which commands the maintenance user (here nobody) may run."""
    path = config(tmp_path, '[emergency]\nrecovery_command = ["/usr/bin/true"]\n'
                            '[logrotate]\ncommand = ["/usr/bin/printf", "a,b*", "back\\\\slash", "^x$", "#1"]\n')
    printed = subprocess.run([sys.executable, "-m", "commands", "sudoers", "--config", str(path), "--user", "nobody"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    rules = tmp_path / "sudoers"
    rules.write_text("Defaults !syslog\n" + printed)  # no line in the machine's logs for these tries
    rules.chmod(0o440)
    cases = {"/usr/bin/true": "allowed", "/usr/bin/true|--help": "refused",
             "/usr/bin/printf|a,b*|back\\slash|^x$|#1": "allowed",
             "/usr/bin/printf|a,bXYZ|back\\slash|^x$|#1": "refused",  # the `*` is no wildcard
             "/usr/bin/printf|a,b*|backslash|^x$|#1": "refused",
             "/usr/bin/printf|a,b*|back\\slash|^x$|#1|--extra": "refused"}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SUDO_CHECK, "sh",
                           str(rules), *cases], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert dict(zip(cases, done.stdout.split(), strict=True)) == cases, done.stdout
