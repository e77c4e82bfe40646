"""The manual tasks, audited: `make attest TASK=... NOTE=...` (commands/attest.py) and TASK-001..003.

The command is run as the operator runs it (`python -m commands attest`, a real configuration file, the
real audit trail); the checks run as cron runs them against the shared lab, whose tasks file
(lab/hardware.py) has every task attested in time, and `task-overdue` a monthly one 40 days ago.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from trail_helpers import acts

from configuration import load
from conftest import ROOT, config_with, run_cadence
from core.vocabulary import LedgerKind
from probes.tasks import TaskProbe, attestations_path


def write_config(tmp_path: Path, **tables) -> Path:
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"), "fallback": ["file"]},
        "reports": {"dir": str(tmp_path / "reports")}, **tables}))
    return path


def attest(config: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "commands", "attest", "--config", str(config), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def audit_lines(tmp_path: Path) -> list[dict]:
    """The attestations in the ledger of the configuration's reports directory."""
    return acts(tmp_path / "reports", LedgerKind.ATTEST)


def test_attest_records_who_when_and_the_note_in_the_tasks_file_and_the_audit_trail(tmp_path):
    config = write_config(tmp_path)
    env = {"USER": "bob", "SUDO_USER": "alice"}
    done = attest(config, "--task", "configuration-review", "--note", "rotated nothing, tightened risk.json",
                  env=env)
    assert done.returncode == 0, done.stderr
    settings = load(config)
    last = TaskProbe(settings).last("configuration-review")
    assert (last.who, last.note) == ("alice", "rotated nothing, tightened risk.json")  # sudo: the human behind it
    assert abs(last.at - datetime.datetime.now(datetime.UTC).timestamp()) < 60
    [line] = audit_lines(tmp_path)
    assert line | {"at": 0, "done": 0} == {"at": 0, "done": 0, "action": "attest-task", "box": "trading-box",
                                           "task": "configuration-review", "who": "alice",
                                           "note": "rotated nothing, tightened risk.json"}
    earlier = attest(config, "--task", "configuration-review", "--note", "the one before", "--who", "carol",
                     "--when", "2026-01-02", env={"USER": "bob"})
    assert earlier.returncode == 0, earlier.stderr
    assert TaskProbe(settings).last("configuration-review").who == "alice", "an older day attested late wins nothing"
    assert [line["who"] for line in audit_lines(tmp_path)] == ["alice", "carol"], "the audit trail keeps both"
    assert attestations_path(settings) == tmp_path / "state" / "tasks.json"
    assert not (tmp_path / "state" / "audit.jsonl").exists(), "one operator trail: the ledger"


@pytest.mark.parametrize(("args", "said"), [
    (["--task", "strategy-optimisation", "--note", "x"],
     "no task 'strategy-optimisation' in [tasks]; known: strategy-review, system-optimization, "
     "strategy-optimization, configuration-review, documentation, hardware-cleaning, security-review"),
    (["--task", "documentation", "--note", "   "], "NOTE must say what was done for documentation"),
    (["--task", "documentation"], "NOTE must say what was done for documentation"),
    (["--task", "key-rotation", "--note", "all of them"],
     "key-rotation is attested per secret (KEY-001): make attest-rotation WHAT=secret WHO=name CONFIG=...; "
     "secrets: exchange-api-key, tunnel-key"),
])
def test_attest_refuses_an_unknown_task_and_an_empty_note_and_writes_nothing(tmp_path, args, said):
    config = write_config(tmp_path)
    done = attest(config, *args, env={"USER": "bob"})
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "reports").exists()


def test_attest_rotation_still_works_beside_the_tasks(tmp_path):
    config = write_config(tmp_path)
    done = attest(config, "--what", "tunnel-key", "--who", "alice", "--when", "2026-11-01")
    assert done.returncode == 0, done.stderr
    assert [line["action"] for line in audit_lines(tmp_path)] == ["attest-rotation"]
    assert json.loads((tmp_path / "state" / "rotations.json").read_text())["trading-box"]["tunnel-key"]["who"] == "alice"


# -- the checks, on the shared lab


CADENCES = ("weekly", "monthly", "quarterly")


def run(config, tmp_path, cadence):
    return run_cadence(config, tmp_path / cadence, "-k", "manual_tasks", cadence=cadence)


def test_the_healthy_lab_has_every_task_done_in_time(healthy_lab, lab_config, tmp_path):
    ran = {}
    for cadence in CADENCES:
        done = run(lab_config, tmp_path, cadence)
        assert done.returncode == 0 and {r.properties["verdict"] for r in done.results} == {"passed"}, done.output
        ran[cadence] = sorted(r.name.split("[")[1].rstrip("]") for r in done.results)
    assert ran == {"weekly": ["strategy-review", "system-optimization"],
                   "monthly": ["configuration-review", "documentation", "strategy-optimization"],
                   "quarterly": ["hardware-cleaning", "security-review"]}
    assert done.only("TASK-003", "hardware-cleaning").properties["last_done"].endswith(" by lab")


def test_an_overdue_task_says_when_it_was_last_done_and_by_whom(healthy_lab, lab_config, tmp_path):
    healthy_lab.inject("task-overdue")
    done = run(lab_config, tmp_path, "monthly")
    assert sorted(done.findings()) == ["TASK-002"], done.output
    [overdue] = done.findings()["TASK-002"]
    assert "strategy-optimization" in overdue.name and overdue.properties["severity"] == "warning"
    when = (datetime.date.today() - datetime.timedelta(days=40)).isoformat()
    assert (f"strategy-optimization (Manual Monthly 1. Trading Strategy Optimization) overdue: last done {when} "
            "by alice, 40 days ago (note: tuned the grid strategy's spacing); allowed 34 days (over by 6): do it, then: "
            "make attest TASK=strategy-optimization") in overdue.message, overdue.message
    assert overdue.properties["last_done"] == f"{when} by alice"
    attested = attest(lab_config, "--task", "strategy-optimization", "--note", "backtested the new weights",
                      "--who", "alice")
    assert attested.returncode == 0, attested.stderr
    assert run(lab_config, tmp_path / "after", "monthly").findings() == {}


def test_a_task_never_attested_says_so(healthy_lab, lab_config, tmp_path):
    config = config_with(lab_config, tmp_path / "never.toml", {"tasks": {"file": str(tmp_path / "none.json")}})
    done = run(config, tmp_path, "weekly")
    messages = {r.name: r.message for r in done.findings()["TASK-001"]}
    assert len(messages) == 2, done.output
    assert any("strategy-review (Manual Weekly 1. Strategy Performance Review): never attested; due every 7 days: "
               "do it, then: make attest TASK=strategy-review" in message for message in messages.values()), messages
