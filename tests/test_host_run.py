"""`Box.run` (probes/host.py): output that is not UTF-8 is text with U+FFFD, never an exception that turns an
action that did its work into `failed: UnicodeDecodeError`; `input=` reaches the command's standard input, here
and over SSH (through the run's master connection), so that root loads what the suite gives it and no file.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import testinfra

from probes.host import Box


def local_box(timeout: float = 30) -> Box:
    return Box("here", testinfra.get_host("local://"), "python3", sudo=False, timeout=timeout)


def test_a_file_name_that_is_not_utf8_is_listed_with_a_replacement_character(tmp_path):
    (tmp_path / os.fsdecode(b"trading-\xff.log")).write_text("")
    done = local_box().run(["ls", str(tmp_path)])
    assert (done.returncode, done.stdout) == (0, "trading-\ufffd.log\n")


def test_invalid_utf8_on_stderr_and_with_input_is_decoded_the_same_way():
    program = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read() + b'\\xfe'); sys.stderr.buffer.write(b'\\xff')"
    done = local_box().run([sys.executable, "-c", program], input="ruleset\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ruleset\n\ufffd", "\ufffd")


def test_input_reaches_the_command_byte_for_byte_and_the_timeout_still_bounds_it():
    text = 'table inet t {\n\tchain input { type filter hook input priority 0; policy drop; }\n}\n$HOME `x` "q"\n'
    assert local_box().run(["cat"], input=text).stdout == text
    stuck = local_box(timeout=1).run(["sleep", "60"], input="")
    assert stuck.returncode == 124 and "timed out after 1s" in stuck.stderr


FAKE_SSH = """#!/bin/sh
# Records what the suite asked ssh to do and what it gave on standard input; runs nothing.
for word in "$@"; do printf '%s\\0' "$word"; done > "$RECORD.argv"
cat > "$RECORD.stdin"
echo "loaded"
"""


def test_over_ssh_the_input_goes_through_the_master_connection_to_the_quoted_command(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("RECORD", str(tmp_path / "ssh"))
    host = testinfra.get_host("ssh://trading-maint@nuc.lan:2222", controlpath=str(tmp_path / "master"),
                              controlpersist=60, timeout=7)
    box = Box("nuc", host, "python3", sudo=True, timeout=30)
    ruleset = "table inet lock {\n}\n"
    done = box.run(["nft", "-f", "-"], privileged=True, input=ruleset)
    assert (done.returncode, done.stdout) == (0, "loaded\n"), done.stderr
    argv = Path(f"{tmp_path}/ssh.argv").read_bytes().decode().split("\0")[:-1]
    assert f"ControlPath={tmp_path / 'master'}" in argv and "ControlMaster=auto" in argv
    assert argv[argv.index("User=trading-maint"):][:3] == ["User=trading-maint", "-o", "Port=2222"]
    assert argv[-2:] == ["nuc.lan", shlex.join(["timeout", "-k", "5", "30", "sudo", "-n", "nft", "-f", "-"])]
    assert Path(f"{tmp_path}/ssh.stdin").read_text() == ruleset
