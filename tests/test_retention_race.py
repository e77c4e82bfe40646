"""Deletion that cannot be steered (issue 17, item 3): the retention walker, as root, beside an agent user who
plants links and swaps directories under it. The attacks themselves (a link higher up, the parent swapped during
deletion) are tried in tests/test_attacker.py, with the pieces defined here.

The agent user is `nobody` here (uid 65534; no user is created on this machine). Its directory T/agent holds the
rule's directory app/logs; a victim directory of root's holds files of the same user, name and age, so only the
way the walker reaches the rule's directory protects them. Over SSH the walker is a program root installs on the
box: here a "box" whose commands run on this machine stands in for one, with the program installed under a
temporary root.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from commands import boxhelpers
from commands.sudoers import privileged_commands
from configuration import load
from core.vocabulary import ActionStatus, Mode
from probes.host import box_of
from probes.remote import expiry
from remediations import load_all
from remediations.runner import ActionContext

NOBODY = 65534
DAY = 86400
RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100
RUNS = 50

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: files of another user, root's victim directory")


def settings_for(tmp_path: Path, directory: Path, owner: str = "nobody", extra: str = ""):
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[services]\nuser = "{owner}"\n[[retention]]\nname = "agent-logs"\ndir = "{directory}"\n'
                      f'pattern = "trading-*"\nmax_age_days = 1\n{extra}')
    return load(config)


def context(settings, box=None, mode=Mode.APPLY) -> ActionContext:
    return ActionContext(settings, box=box or box_of(settings), services=None, mode=mode)


def delete(ctx) -> object:
    return load_all()["delete_expired_files"](ctx, retention_rule="agent-logs")


def expired_file(directory: Path | int, name: str | bytes, owner: int = NOBODY, days: float = 3) -> None:
    """A file `days` old of `owner` in `directory` (a path, or a descriptor that stays bound to it)."""
    where = {"dir_fd": directory} if isinstance(directory, int) else {}
    target = name if isinstance(directory, int) else os.path.join(os.fsencode(directory), os.fsencode(name))
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644, **where))
    os.chown(target, owner, owner, **where)
    when = time.time() - days * DAY
    os.utime(target, (when, when), **where)


def agent_tree(tmp_path: Path) -> tuple[Path, Path]:
    """T/agent/app/logs, all nobody's, with three expired files; T/victim/logs, root's, with three more."""
    logs, victim = tmp_path / "agent" / "app" / "logs", tmp_path / "victim" / "logs"
    logs.mkdir(parents=True)
    victim.mkdir(parents=True)
    for directory in (tmp_path / "agent", tmp_path / "agent" / "app", logs):
        os.chown(directory, NOBODY, NOBODY)
    for n in range(3):
        expired_file(logs, f"trading-{n}.log")
        expired_file(victim, f"trading-{n}.log")
    return logs, victim


# ---- the walker on its own


def test_a_name_that_is_not_utf8_is_deleted_and_reported_escaped(tmp_path):
    owner = pwd.getpwuid(os.geteuid()).pw_name
    (tmp_path / "logs").mkdir()
    expired_file(tmp_path / "logs", b"trading-\xff", owner=os.geteuid())
    expired_file(tmp_path / "logs", "trading-\x1b]0;owned\x07", owner=os.geteuid())
    extra = "allow_root_owned = true\n" if owner == "root" else ""
    outcome = delete(context(settings_for(tmp_path, tmp_path / "logs", owner, extra)))
    assert outcome.status == ActionStatus.DONE, outcome.summary()
    assert outcome.output.splitlines() == [f"{tmp_path}/logs/trading-\\x1b]0;owned\\x07",
                                           f"{tmp_path}/logs/trading-\\xff"]
    assert os.listdir(tmp_path / "logs") == []


@needs_root
def test_find_on_the_same_path_would_have_followed_the_link(tmp_path):
    """What the walker replaced: root's `find -P DIR ...` resolves DIR itself through the link."""
    _, victim = agent_tree(tmp_path)
    os.symlink(tmp_path / "victim", tmp_path / "agent" / "via")
    found = subprocess.run(["find", str(tmp_path / "agent" / "via" / "logs"), "-xdev", "-maxdepth", "1", "-name",
                            "trading-*", "-type", "f", "-user", "nobody", "-mtime", "+1", "-print"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(found) == 3 and all(os.path.samefile(path, victim / Path(path).name) for path in found)


@needs_root
def test_a_recursive_rule_refuses_an_unsafe_transition_below_and_never_follows_a_link(tmp_path):
    logs, _ = agent_tree(tmp_path)
    (logs / "rotated").mkdir()
    os.chown(logs / "rotated", NOBODY, NOBODY)
    expired_file(logs / "rotated", "trading-old.log")
    (logs / "roots").mkdir()  # root's, in nobody's directory: nobody could have put anything there
    expired_file(logs / "roots", "trading-kept.log")
    os.symlink(tmp_path / "victim", logs / "trading-victim")
    os.utime(logs / "trading-victim", (time.time() - 5 * DAY,) * 2, follow_symlinks=False)
    os.symlink(tmp_path / "victim", logs / "elsewhere")
    outcome = delete(context(settings_for(tmp_path, logs, extra="recursive = true\n")))
    assert outcome.status == ActionStatus.FAILED
    assert f"refused {logs}/roots: unsafe path transition: {logs} is owned by nobody" in outcome.detail
    assert "left as not the rule's: 1 symbolic link" in outcome.detail  # counted, never named
    assert "trading-victim" not in outcome.detail + outcome.output
    assert not (logs / "rotated" / "trading-old.log").exists() and (logs / "roots" / "trading-kept.log").exists()
    assert len(os.listdir(tmp_path / "victim" / "logs")) == 3


# ---- the parent swapped while the walker runs


def libc_renameat2():
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        pytest.skip("this libc has no renameat2 (glibc 2.28 or later has it)")
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


def start_swapping(agent: Path) -> tuple[int, int]:
    """A child, as nobody, exchanging agent/app and agent/swap (a link to the victim) as fast as it can.
    Returns its pid and a pipe's read end that gets one byte once it has swapped (then it swaps on)."""
    renameat2 = libc_renameat2()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls from here, then _exit
        try:
            os.close(ready_read)
            os.chdir(agent)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            said = False
            while True:
                if renameat2(AT_FDCWD, b"app", AT_FDCWD, b"swap", RENAME_EXCHANGE) == 0 and not said:
                    os.write(ready_write, b"x")
                    said = True
        finally:
            os._exit(1)
    os.close(ready_write)
    return pid, ready_read


# ---- over SSH: the installed program, one exact sudo rule per retention rule


@dataclass
class ThisMachineAsABox:
    """A box reached over SSH as far as the remediation can tell: each command runs here (as root, as its sudo
    rule would run it), and is recorded with whether it asked for root."""

    name: str = "box-under-test"
    python: str = "/usr/bin/python3"  # the box's own, standard library only (-I -S)
    sudo: bool = True
    local: bool = False
    ran: list = field(default_factory=list)

    def run(self, argv, *, privileged=False, timeout=None):
        self.ran.append((list(argv), privileged))
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def installed(tmp_path, monkeypatch) -> Path:
    """The walker installed by `commands boxhelpers install` under a root of this test's own."""
    print(boxhelpers.install(str(tmp_path / "root")))
    program = Path(boxhelpers.installed_path(str(tmp_path / "root")))
    monkeypatch.setattr(expiry, "PROGRAM", str(program))
    return program


@needs_root
def test_over_ssh_the_plan_names_the_sudo_command_and_the_installed_program_deletes(tmp_path, installed):
    logs, victim = agent_tree(tmp_path)
    expired_file(logs, b"trading-\xfe.log")
    settings = settings_for(tmp_path, logs)
    exact = [str(installed), str(logs), "trading-*", "1", "nobody", "flat"]
    assert exact in privileged_commands(settings)  # what `make sudoers` prints, argument for argument

    box = ThisMachineAsABox()
    plan = delete(context(settings, box, Mode.PLAN))
    assert plan.status == ActionStatus.PLANNED and f"would run sudo -n {installed} {logs} 'trading-*' 1 nobody flat: " \
        "4 file(s)" in plan.detail, plan.detail
    assert plan.detail.endswith(f"{logs}/trading-\\xfe.log") and len(os.listdir(logs)) == 4

    outcome = delete(context(settings, box))
    assert outcome.status == ActionStatus.DONE, outcome.summary()
    assert [argv for argv, privileged in box.ran if privileged] == [exact]
    assert os.listdir(logs) == [] and len(os.listdir(victim)) == 3
    assert f"{logs}/trading-\\xfe.log" in outcome.output.splitlines()
    assert installed.read_text().startswith("#!/usr/bin/python3 -IS\n")


@needs_root
def test_over_ssh_a_program_that_is_not_this_suites_is_never_run(tmp_path, installed):
    logs, _ = agent_tree(tmp_path)
    with installed.open("a") as program:
        program.write("\n# changed on the box\n")
    box = ThisMachineAsABox()
    outcome = delete(context(settings_for(tmp_path, logs), box))
    assert outcome.status == ActionStatus.FAILED and "not the one this suite writes" in outcome.detail
    assert "make install-box-helpers" in outcome.detail and not [argv for argv, root in box.ran if root]
    assert len(os.listdir(logs)) == 3


@needs_root
def test_the_installer_refuses_a_path_another_user_could_change_naming_it(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "local").mkdir(parents=True)
    os.chown(root / "usr", NOBODY, NOBODY)
    done = subprocess.run([sys.executable, "-m", "commands", "boxhelpers", "install", "--root", str(root)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 1 and f"{root}/usr is owned by nobody" in done.stderr, done.stderr
    assert not Path(boxhelpers.installed_path(str(root))).exists()
