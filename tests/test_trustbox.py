"""`make trust-box`: a box's host keys are trusted only once a human vouched for them, and the suite's ssh trusts
nothing else (StrictHostKeyChecking=yes against [host] known_hosts, never `no`).

The box's sshd is stood in for by a fake `ssh-keyscan` first on PATH: it prints the key lines a real one prints
for the box (keys made here by ssh-keygen) and records how it was called. ssh (-G), ssh-keygen and the file are
real. The real keyscan against a real sshd is in tests/test_box_suite.py (a box it boots anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from commands.__main__ import main as commands_main
from configuration import ConfigError, load
from conftest import ROOT
from probes.host import ssh_options

ADDRESS = "[127.0.0.1]:2222"  # the box's name in known_hosts: a port other than 22 is part of it


def keypair(directory: Path, kind: str) -> str:
    """A public key made here, as `type base64`."""
    key = directory / f"host_{kind}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(key)], check=True, timeout=30)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def fingerprint(public: str) -> str:
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("host-keys")
    return {kind: keypair(directory, kind) for kind in ("ed25519", "ecdsa")}


@pytest.fixture
def box(tmp_path, keys, monkeypatch):
    """The fake keyscan on PATH, answering with the box's keys (or what `shown` is set to)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shown = tmp_path / "shown"
    shown.write_text("# 127.0.0.1:2222 SSH-2.0-OpenSSH_9.2\n" + "".join(f"{ADDRESS} {key}\n" for key in keys.values()))
    calls = tmp_path / "calls"
    scan = bin_dir / "ssh-keyscan"
    scan.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncat {shown}\n')
    scan.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return {"shown": shown, "calls": calls, "path": f"{bin_dir}:{os.environ['PATH']}"}


def config(tmp_path: Path, **host) -> Path:
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({"host": {"name": "nuc", "backend": "ssh://trading-maint@127.0.0.1:2222",
                                            "connect_timeout_seconds": 3, **host},
                                   "policy": {"state_dir": str(tmp_path / "state")}}))
    return path


def trust(path: Path, *args: str) -> int:
    return commands_main(["trustbox", "--config", str(path), *args])


def known(tmp_path: Path) -> Path:
    return tmp_path / "state" / "known_hosts"


def test_the_fingerprint_given_is_the_one_key_written_and_ssh_finds_it(tmp_path, box, keys, capsys):
    chosen = fingerprint(keys["ed25519"])
    assert trust(config(tmp_path), "--fingerprint", chosen) == 0
    said = capsys.readouterr().out
    assert f"box nuc ({ADDRESS}) shows 2 host key(s):" in said
    assert f"  {chosen} (ED25519)" in said and f"  {fingerprint(keys['ecdsa'])} (ECDSA)" in said
    assert f"trusted: {chosen} (ED25519), written to {known(tmp_path)} (mode 0644)" in said
    lines = [line for line in known(tmp_path).read_text().splitlines() if not line.startswith("#")]
    assert lines == [f"{ADDRESS} {keys['ed25519']}"]  # the ECDSA key, fetched alongside, nobody compared
    assert oct(known(tmp_path).stat().st_mode & 0o777) == "0o644"
    found = subprocess.run(["ssh-keygen", "-F", ADDRESS, "-f", str(known(tmp_path))], capture_output=True, text=True,
                           timeout=30)
    assert found.returncode == 0 and keys["ed25519"] in found.stdout
    assert box["calls"].read_text() == "-T 3 -p 2222 127.0.0.1\n"


def test_a_fingerprint_the_box_did_not_show_writes_nothing(tmp_path, box, keys, capsys):
    assert trust(config(tmp_path), "--fingerprint", "SHA256:" + "A" * 43) == 4
    err = capsys.readouterr().err
    assert f"FINGERPRINT SHA256:{'A' * 43} is none of the keys the box showed ({fingerprint(keys['ed25519'])}" in err
    assert "nothing written" in err and not known(tmp_path).exists()


def test_without_a_terminal_or_a_fingerprint_nothing_is_written(tmp_path, box, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - closed with the test's process
    assert trust(config(tmp_path)) == 4
    err = capsys.readouterr().err
    assert "nothing written: no terminal to confirm on" in err and "FINGERPRINT=SHA256:" in err
    assert not known(tmp_path).exists()


@pytest.mark.parametrize("answer, written", [("y\n", True), ("\n", False), ("n\n", False)])
def test_on_a_terminal_every_key_shown_is_written_only_on_yes(tmp_path, box, keys, answer, written):
    """The command on a real terminal (a pty) for its standard input, as `make trust-box` typed in a shell."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        done = subprocess.run([sys.executable, "-m", "commands", "trustbox", "--config", str(config(tmp_path))],
                              cwd=ROOT, stdin=terminal, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PATH": box["path"]})
    finally:
        os.close(controller)
        os.close(terminal)
    assert f"Trust these 2 keys of box nuc and write them to {known(tmp_path)}? [y/N]" in done.stderr
    if written:
        assert done.returncode == 0, done.stderr
        assert sorted(known(tmp_path).read_text().splitlines()[1:]) == sorted(f"{ADDRESS} {k}" for k in keys.values())
    else:
        assert done.returncode == 4 and "nothing written: not confirmed" in done.stderr
        assert not known(tmp_path).exists()


def hashed(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_other_boxes_and_revocations_stay_and_this_boxs_old_keys_go_named(tmp_path, box, keys, capsys):
    """A reinstalled box: its old keys (one under a hashed name, as HashKnownHosts writes them) are replaced."""
    old = keys["ecdsa"]  # an earlier key of this box, not shown any more
    box["shown"].write_text(f"{ADDRESS} {keys['ed25519']}\n")
    other, revoked = f"nuc-2.lan {keys['ecdsa']}", f"@revoked * {keys['ecdsa']}"
    known(tmp_path).parent.mkdir()
    known(tmp_path).write_text(f"# ours\n{other}\n{hashed(ADDRESS)} {old}\n{revoked}\n")
    assert trust(config(tmp_path), "--fingerprint", fingerprint(keys["ed25519"])) == 0
    assert known(tmp_path).read_text() == f"# ours\n{other}\n{revoked}\n{ADDRESS} {keys['ed25519']}\n"
    assert f"no longer trusted: {fingerprint(old)} (ECDSA)" in capsys.readouterr().out


def test_keys_already_trusted_need_no_answer_and_change_nothing(tmp_path, box, keys, capsys, monkeypatch):
    assert trust(config(tmp_path), "--fingerprint", fingerprint(keys["ed25519"])) == 0
    box["shown"].write_text(f"{ADDRESS} {keys['ed25519']}\n")
    before = known(tmp_path).stat()
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - no terminal: no answer could be given
    assert trust(config(tmp_path)) == 0
    assert f"already trusted in {known(tmp_path)}: nothing changed" in capsys.readouterr().out
    after = known(tmp_path).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_box_that_shows_no_key_is_12_and_what_the_network_sent_is_not_shown(tmp_path, box, capsys):
    box["shown"].write_text(f"{ADDRESS} ssh-ed25519\x1b]0;owned\x07 AAAA\n{ADDRESS} ssh-ed25519 not-base64!\n")
    assert trust(config(tmp_path), "--fingerprint", "SHA256:x") == 12
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and not known(tmp_path).exists()
    assert "no host key from 127.0.0.1 port 2222 within 3s: is the box up and its sshd listening there?" in captured.err


def test_the_ssh_config_decides_where_and_under_which_name(tmp_path, box, keys):
    """HostName and Port from the box's ssh_config reach ssh-keyscan; a HostKeyAlias is the name ssh looks up."""
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host trading-box\n  HostName 127.0.0.7\n  Port 2200\n  HostKeyAlias nuc-keys\n")
    path = config(tmp_path, backend="ssh://trading-box", ssh_config=str(ssh_config))
    assert trust(path, "--fingerprint", fingerprint(keys["ecdsa"])) == 0
    assert box["calls"].read_text() == "-T 3 -p 2200 127.0.0.7\n"
    assert known(tmp_path).read_text().splitlines()[1:] == [f"nuc-keys {keys['ecdsa']}"]


def test_a_known_hosts_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, box, keys, capsys):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    known(tmp_path).parent.mkdir()
    known(tmp_path).symlink_to(target)
    assert trust(config(tmp_path), "--fingerprint", fingerprint(keys["ed25519"])) == 4
    assert f"cannot read {known(tmp_path)}" in capsys.readouterr().err and target.read_text() == "precious\n"


def test_a_local_box_has_no_host_key_to_trust(tmp_path, capsys):
    path = tmp_path / "local.toml"
    path.write_text('[host]\nname = "here"\n')
    assert trust(path) == 4
    assert "box here is reached as local://, not over SSH: it has no host key to trust" in capsys.readouterr().err


def test_the_suites_ssh_checks_host_keys_against_its_own_file_first(tmp_path):
    settings = load(config(tmp_path, ssh_extra_args=["-o", "BatchMode=yes"]))
    words = ssh_options(settings)["ssh_extra_args"].split()
    assert words[:4] == ["-o", f"UserKnownHostsFile={known(tmp_path)}", "-o", "StrictHostKeyChecking=yes"]
    assert "BatchMode=yes" in words[4:]  # the operator's own come after: ssh keeps an option's first value
    elsewhere = load(config(tmp_path, known_hosts=str(tmp_path / "keys" / "box 1%")))
    assert f"'UserKnownHostsFile=\"{tmp_path}/keys/box 1%%\"'" in ssh_options(elsewhere)["ssh_extra_args"]


@pytest.mark.parametrize("words", [["-o", "StrictHostKeyChecking=no"], ["-oStrictHostKeyChecking no"],
                                   ["-o", "UserKnownHostsFile=/dev/null"], ["-o", "GlobalKnownHostsFile /tmp/k"]])
def test_extra_arguments_cannot_loosen_or_move_the_host_key_check(tmp_path, words):
    with pytest.raises(ConfigError) as refused:
        load(config(tmp_path, ssh_extra_args=words))
    assert "host.ssh_extra_args" in str(refused.value) and "make trust-box BOX=name" in str(refused.value)


def test_nothing_in_the_repository_turns_host_key_checking_off():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.split()
    loose = re.compile(r"StrictHostKeyChecking[ =]+[\"']?(no|off|accept-new)\b", re.IGNORECASE)
    found = [name for name in listed if name != "tests/test_trustbox.py" and (ROOT / name).is_file()
             and loose.search((ROOT / name).read_text(errors="replace"))]
    assert found == []


def test_make_passes_the_box_and_the_fingerprint_as_typed():
    shown = subprocess.run(["make", "-n", "trust-box", "CONFIG=/etc/tm.toml", "BOX=nuc-1", "FINGERPRINT=SHA256:a+b/c"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    import shlex

    [command] = [line for line in shown.splitlines() if "commands trustbox" in line]
    assert shlex.split(command)[-5:] == ["commands", "trustbox", "--config=/etc/tm.toml", "--box=nuc-1",
                                         "--fingerprint=SHA256:a+b/c"]
