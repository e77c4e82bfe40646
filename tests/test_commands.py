"""One command line (`python -m commands VERB`, commands/__main__.py and commands/cli.py): every command module is a
verb, each verb's --help works, the make targets name verbs that exist, and what verbs share (--config or
MAINTENANCE_CONFIG, --box over a fleet, a probe per box, the wait for services) is done in one place.

Unit tests: in this process, with configurations in tmp directories; nothing reaches a box.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from commands import cli
from commands.__main__ import VERBS, main, parsers
from commands.updatesteps import StepFailed, check_running
from conftest import ROOT

# The modules of commands/ that are no verb: the start every verb shares, and pieces of some verbs.
HELPERS = {"cli", "runslog", "timers", "updatesteps"}
# The verbs the make targets and the README name: one each, none lost.
EXPECTED = {"attest", "baseline", "boxhelpers", "budget", "checksums", "osupdate", "reindex", "restore", "resume",
            "run", "schedule", "sudoers", "trail", "trustbox", "update"}


def write_config(tmp_path: Path, boxes: list[str] | None = None) -> Path:
    """A configuration writing only under tmp_path; with `boxes`, a fleet of those names."""
    data = {"policy": {"state_dir": str(tmp_path / "state")}, "reports": {"dir": str(tmp_path / "reports")},
            "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"),
                       "fallback": ["file"]}}
    if boxes:
        data["boxes"] = [{"name": name} for name in boxes]
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def call_of(argv: list[str]) -> cli.Call:
    """The call `python -m commands ARGV` makes, without running its verb."""
    top, own = parsers()
    args = top.parse_args(argv)
    return cli.Call(VERBS[args.verb], own[args.verb], args)


# ---- every verb registered, and its help


def test_every_module_of_commands_is_a_verb_or_a_named_helper():
    modules = {path.stem for path in (ROOT / "commands").glob("*.py") if not path.stem.startswith("_")}
    assert set(VERBS) == modules - HELPERS, "a module of commands/ defines no VERB, or a helper became one"
    assert set(VERBS) == EXPECTED


def test_each_verb_is_named_as_its_module():
    for name, verb in VERBS.items():
        assert verb.name == name and verb.run.__module__ == f"commands.{name}", name


@pytest.mark.parametrize("verb", sorted(EXPECTED))
def test_each_verbs_help_shows_its_own_and_the_shared_options(verb, capsys):
    with pytest.raises(SystemExit) as done:
        main([verb, "--help"])
    said = capsys.readouterr().out
    assert done.value.code == 0 and said.startswith(f"usage: python -m commands {verb} "), said
    shared = VERBS[verb]
    assert ("--config PATH" in said) == (shared.config != cli.Config.NONE)
    assert ("--box NAME" in said) == (shared.boxes is not None)
    assert ("--reports-dir DIR" in said) == shared.reports_dir


def test_the_command_line_lists_every_verb_with_its_summary():
    done = subprocess.run([sys.executable, "-m", "commands", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "500"})  # each summary on one line
    assert done.returncode == 0, done.stderr
    for verb in VERBS.values():
        assert re.search(rf"^ +{verb.name}\s+{re.escape(verb.summary)}$", done.stdout, re.MULTILINE), verb.name


def test_an_unknown_verb_is_a_usage_error_naming_the_verbs(capsys):
    with pytest.raises(SystemExit) as done:
        main(["clear-budget"])
    assert done.value.code == 2 and "invalid choice: 'clear-budget'" in capsys.readouterr().err


def test_every_make_target_calls_a_registered_verb():
    called = re.findall(r"\$\(PY\) -m commands (\S+)", (ROOT / "Makefile").read_text())
    assert called and set(called) <= set(VERBS), sorted(set(called) - set(VERBS))
    assert "-m commands." not in (ROOT / "Makefile").read_text().replace("from commands.runslog", "")


# ---- what verbs share


def test_the_configuration_comes_from_maintenance_config_when_not_given(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(tmp_path / "nowhere.toml"))
    assert main(["budget", "show"]) == 4
    assert str(tmp_path / "nowhere.toml") in capsys.readouterr().err
    monkeypatch.setenv("MAINTENANCE_CONFIG", str(write_config(tmp_path)))
    assert main(["budget", "show"]) == 0
    assert main(["budget", "show", "--config", str(tmp_path / "given.toml")]) == 4  # --config wins
    assert str(tmp_path / "given.toml") in capsys.readouterr().err


def test_without_config_or_maintenance_config_a_verb_that_needs_one_says_both(monkeypatch, capsys):
    monkeypatch.delenv("MAINTENANCE_CONFIG", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["budget", "show"])
    said = capsys.readouterr().err
    assert done.value.code == 2 and "--config PATH (or MAINTENANCE_CONFIG=PATH)" in said, said


def test_the_per_box_loop_acts_on_every_box_or_the_one_named_and_keeps_the_worst_status(tmp_path):
    config = str(write_config(tmp_path, ["nuc-1", "nuc-2", "nuc-3"]))
    status = {"nuc-1": 0, "nuc-2": 1, "nuc-3": 0}
    seen = []

    def act(box):
        seen.append(box.host.name)
        return status[box.host.name]

    assert call_of(["checksums", "show", "--config", config]).each_box(act) == 1
    assert seen == ["nuc-1", "nuc-2", "nuc-3"]
    seen.clear()
    assert call_of(["checksums", "show", "--config", config, "--box", "nuc-3"]).each_box(act) == 0
    assert seen == ["nuc-3"]


def test_a_box_the_fleet_does_not_name_is_status_4_naming_the_boxes(tmp_path, capsys):
    config = str(write_config(tmp_path, ["nuc-1", "nuc-2"]))
    assert main(["checksums", "show", "--config", config, "--box", "nuc-9"]) == 4
    said = capsys.readouterr().err
    assert "no box named 'nuc-9'" in said and "boxes: nuc-1, nuc-2" in said, said
    with pytest.raises(SystemExit) as done:  # a verb that acts on one box: a usage error
        main(["resume", "--config", config, "--who", "a", "--why", "b"])
    assert done.value.code == 2 and "--box NAME: the configuration names 2 boxes (nuc-1, nuc-2)" in \
        capsys.readouterr().err


def test_a_command_makes_one_box_and_one_service_manager_per_box_and_reads_the_file_once(tmp_path):
    """Two verbs' steps that ask for the box (a restore's backup found, then restored) share its connection."""
    call = call_of(["resume", "--config", str(write_config(tmp_path, ["nuc-1", "nuc-2"])), "--who", "a",
                    "--why", "b"])
    settings = call.settings()
    assert call.settings() is settings
    one, two = settings.box("nuc-1"), settings.box("nuc-2")
    assert call.box(one) is call.box(one) and call.box(one) is not call.box(two)
    assert call.services(one) is call.services(one) and call.services(one) is not call.services(two)


class Services:
    """A service manager whose services come up after `starts` looks."""

    def __init__(self, starts: int):
        self.looks, self.starts = 0, starts

    def forget(self):
        self.looks += 1

    def is_running(self, name):
        return self.looks > self.starts

    def state(self, name):
        return "activating"


def test_services_are_waited_for_until_they_run_and_named_when_they_do_not():
    coming = Services(starts=1)
    assert check_running(coming, ["trading-agent"], within=30) == "trading-agent running" and coming.looks == 2
    assert check_running(Services(starts=0), [], within=0) == "nothing to start"
    with pytest.raises(StepFailed, match="trading-agent is activating; trading-dashboard is activating"):
        check_running(Services(starts=10**6), ["trading-agent", "trading-dashboard"], within=0)


# ---- the schedule installed before this command line


def test_a_schedule_installed_before_the_one_command_line_runs_as_the_new_one(tmp_path):
    """Installed schedules run `python -m commands.run CADENCE --config PATH` (commands/schedule.py wrote it until
    the one command line): after an upgrade it is the same run as `python -m commands run`, here refused alike
    (a secrets file others may read), each with its line in the runs log."""
    secrets = tmp_path / "secrets.env"
    secrets.write_text("WEBHOOK_TOKEN=x\n")
    secrets.chmod(0o644)
    config = tmp_path / "maintenance.toml"
    config.write_text(tomli_w.dumps({"schedule": {"log_dir": str(tmp_path / "logs"), "secrets_file": str(secrets)},
                                     "policy": {"state_dir": str(tmp_path / "state")},
                                     "reports": {"dir": str(tmp_path / "reports")}}))
    runs = [subprocess.run([sys.executable, "-m", *module, "daily", "--config", str(config)], cwd=ROOT, text=True,
                           capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
            for module in (["commands.run"], ["commands", "run"])]
    assert [run.returncode for run in runs] == [4, 4], [run.stderr for run in runs]
    assert runs[0].stderr == runs[1].stderr and f"secrets file {secrets} is mode 644" in runs[0].stderr
    lines = (tmp_path / "logs" / "runs.log").read_text().splitlines()
    assert len(lines) == 2 and all(" daily exit 4 (bad configuration) report none: secrets file" in line
                                   for line in lines), lines
