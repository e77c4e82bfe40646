"""Values typed to make reach the commands exactly as typed: `make attest NOTE='...'` with backticks, `$`, quotes
and a newline puts that very note in the ledger and runs nothing; `make sudoers ... > FILE` writes the rules alone.

Each test runs the real make on the real Makefile with a configuration of its own in a tmp directory. `-o
system-deps` keeps make from installing system packages (the lab's, which `setup` installs as root).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import tomli_w

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def hostile(tmp_path: Path, what: str) -> str:
    """Text an operator might type, holding everything a shell or make would act on; each command in it would
    leave a file in tmp_path if anything ran it."""
    return (f"{what}: `touch {tmp_path}/backtick` $(touch {tmp_path}/dollar) $(shell touch {tmp_path}/make) "
            f"$5 $$ ${{HOME}} \"quoted\" 'single' back\\slash % # , ;\nsecond line; touch {tmp_path}/semicolon")


def ran_nothing(tmp_path: Path) -> list[str]:
    return sorted(name for name in ("backtick", "dollar", "make", "semicolon") if (tmp_path / name).exists())


def make(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-o", "system-deps", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def write_config(tmp_path: Path, name: str = "maintenance.toml", **tables) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps({
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"), "fallback": ["file"]},
        "reports": {"dir": str(tmp_path / "reports")}, **tables}))
    return path


def test_make_attest_records_the_note_and_who_verbatim_and_runs_nothing_in_them(tmp_path):
    config = write_config(tmp_path)
    note, who = hostile(tmp_path, "rotated the keys"), "o'neil `touch " + str(tmp_path / "backtick") + "`"
    done = make("attest", f"CONFIG={config}", "TASK=configuration-review", f"NOTE={note}", f"WHO={who}")
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [json.loads(text) for text in (tmp_path / "reports" / "ledger.jsonl").read_text().splitlines()]
    assert (line["kind"], line["note"], line["who"]) == ("attest", note, who), line
    assert ran_nothing(tmp_path) == []


def test_make_attest_rotation_hands_the_secrets_name_over_verbatim(tmp_path):
    config = write_config(tmp_path)
    what = hostile(tmp_path, "no such secret")
    done = make("attest-rotation", f"CONFIG={config}", f"WHAT={what}", "WHO=alice")
    assert done.returncode != 0 and repr(what) in done.stderr, done.stderr  # the command names what it was given
    assert ran_nothing(tmp_path) == []


def test_make_sudoers_reads_the_configuration_named_verbatim_and_prints_only_the_rules(tmp_path):
    config = write_config(tmp_path / "odd $5 'q' \"x\" `touch backtick` $(touch dollar)", host={
        "backend": "ssh://trading-maint@nuc.lan"}, policy={"state_dir": "/var/lib/trading-maintenance"})  # not made:
    # make sudoers writes no state; a state directory this deep would leave no room for the SSH socket
    done = make("sudoers", f"CONFIG={config}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# Written by `make sudoers` from {config}:"), done.stdout
    assert "trading-maint ALL=(root) NOPASSWD: TRADING_MAINTENANCE\n" in done.stdout
    assert not [line for line in done.stdout.splitlines() if not line.startswith(("#", "Cmnd_Alias", "    ",
                                                                                     "trading-maint "))]
    assert ran_nothing(tmp_path) == [] and ran_nothing(ROOT) == []


FAKE_PYTHON = """#!/bin/bash
# Stands in for `python3 -m venv DIR`: says something on stdout, as venv and pip do, and makes DIR/bin/python
# (silent for the rest, noisy as pip) and DIR/bin/pip-sync, so that the real .venv is never touched.
echo "NOISE: venv"
mkdir -p "$3/bin"
printf '#!/bin/bash\\nif [ "$1 $2" = "-m pip" ]; then echo "NOISE: pip"; exit 0; fi\\nexec %s "$@"\\n' > "$3/bin/python"
printf '#!/bin/bash\\necho "NOISE: pip-sync"\\n' > "$3/bin/pip-sync"
chmod +x "$3/bin/python" "$3/bin/pip-sync"
"""


def test_make_sudoers_sends_the_setup_of_its_venv_to_stderr_so_the_file_holds_the_rules_alone(tmp_path):
    """`make sudoers ... > FILE` on a box whose venv is set up by this very command: what setting it up prints
    (make's own lines, venv, pip) must not land in FILE, which visudo then reads as rules."""
    import sys

    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON % sys.executable)
    fake.chmod(0o755)
    lock = tmp_path / "requirements.lock"
    lock.write_text("pip==0\n")
    config = write_config(tmp_path, host={"backend": "ssh://trading-maint@nuc.lan"})
    done = make("sudoers", f"CONFIG={config}", f"VENV={tmp_path / 'venv'}", f"PYTHON={fake}", f"LOCK={lock}")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "venv" / "bin" / "pip-sync").exists(), "the venv was not set up by this make"
    assert "NOISE" not in done.stdout and done.stderr.count("NOISE") == 4, done.stdout
    assert done.stdout.startswith("# Written by `make sudoers`"), done.stdout


def test_make_sudoers_without_a_configuration_says_so_on_stderr_only():
    done = make("sudoers", "CONFIG=")
    assert done.returncode != 0 and done.stdout == "" and "make sudoers CONFIG=" in done.stderr
