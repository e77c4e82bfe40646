"""The ledger and `make verify-trail` (core/ledger.py, reports/verification.py, commands/trail.py): each way of
tampering with the trail is found and named, pruning is told apart from tampering, a run killed mid-way and two
writers at once leave a valid chain. Ledgers are made by the suite's own append over real files; the runs are real
pytest runs of small pytester projects (no lab)."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import tomli_w
from test_plugin import CONFTEST, INI

from commands import trail
from commands.__main__ import main as commands_main
from configuration import Settings
from conftest import ROOT
from core import ledger
from core.vocabulary import LedgerKind, TrailFinding, Verdict
from reports.files import report_entry
from reports.retention import prune_reports
from reports.verification import verify


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"), "fallback": ["file"]},
        "reports": {"dir": str(tmp_path / "reports")}, "remediation": {"recheck_after_seconds": 0}}))
    return path


def make_runs(reports: Path, count: int, first_day: int = 1) -> list[dict]:
    """`count` daily runs, each with its two report files and its ledger line (written at the run's time),
    one day apart."""
    lines = []
    for day in range(first_day, first_day + count):
        stem = f"daily-202611{day:02d}-020000-000"
        when = datetime.datetime(2026, 11, day, 2, 0, 1).astimezone().timestamp()
        written = {}
        for kind, suffix in (("html", ".html"), ("xml", ".xml")):
            path = reports / f"{stem}{suffix}"
            reports.mkdir(parents=True, exist_ok=True)
            path.write_text(f"<report of {stem}{suffix}>")
            written[kind] = report_entry(reports, path)
        lines.append(ledger.append(reports, LedgerKind.RUN, {
            "run_id": f"run-{day}", "cadence": "daily", "boxes": ["trading-box"], "exit_status": 0,
            "exit_words": "all passed", "counts": {str(verdict): 0 for verdict in Verdict}, "reports": written},
            now=when))
    return lines


def ledger_lines(reports: Path) -> list[str]:
    return ledger.ledger_path(reports).read_text().splitlines()


def rewrite(reports: Path, lines: list[str]) -> None:
    ledger.ledger_path(reports).write_text("".join(f"{line}\n" for line in lines))


def damage(reports: Path) -> list[tuple[TrailFinding, str]]:
    return [(finding.kind, finding.text) for finding in verify(reports).damage]


def verify_trail(config: Path) -> subprocess.CompletedProcess:
    """What `make verify-trail CONFIG=...` runs."""
    return subprocess.run([sys.executable, "-m", "commands", "trail", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def trail_of_five(tmp_path):
    reports = tmp_path / "reports"
    make_runs(reports, 5)
    return reports


def test_an_intact_trail_verifies_and_every_line_is_chained_as_the_format_says(tmp_path, trail_of_five):
    lines = ledger_lines(trail_of_five)
    entries = [json.loads(line) for line in lines]
    assert [entry["seq"] for entry in entries] == [1, 2, 3, 4, 5]
    assert [entry["prev"] for entry in entries] == ["", *(entry["hash"] for entry in entries[:-1])]
    for line, entry in zip(lines, entries, strict=True):
        assert line == json.dumps(entry, sort_keys=True, separators=(",", ":")), "keys sorted, no spaces"
        assert entry["at"].endswith("+00:00") and entry["kind"] == LedgerKind.RUN
    done = verify_trail(write_config(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact: 5 line(s)" in done.stdout and f"head seq 5 hash {entries[-1]['hash']}" in done.stdout


def test_a_report_edited_is_named_with_its_run(tmp_path, trail_of_five):
    edited = trail_of_five / "daily-20261103-020000-000.xml"
    edited.write_text(edited.read_text().replace("report", "rapport"))
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.EDITED
    assert "report daily-20261103-020000-000.xml of run seq 3 (daily" in text and "was edited" in text
    done = verify_trail(write_config(tmp_path))
    assert done.returncode == trail.NOT_INTACT
    assert "edited: report daily-20261103-020000-000.xml of run seq 3" in done.stdout
    assert "NOT intact: 1 finding(s)" in done.stderr


def test_a_report_deleted_is_removed_but_one_pruned_is_pruned(tmp_path, trail_of_five):
    pruned = prune_reports(trail_of_five, keep_days=100000, keep_count=3)  # days 1 and 2 go, as retention does
    assert sorted(path.name for path in pruned) == ["daily-20261101-020000-000.html", "daily-20261101-020000-000.xml",
                                                    "daily-20261102-020000-000.html", "daily-20261102-020000-000.xml"]
    prune_line = json.loads(ledger_lines(trail_of_five)[-1])
    assert prune_line["kind"] == LedgerKind.PRUNE and sorted(prune_line["files"]) == sorted(p.name for p in pruned)
    assert len(ledger_lines(trail_of_five)) == 6, "pruning keeps the runs' lines"
    result = verify(trail_of_five)
    assert result.intact, result.findings
    [note] = result.notes
    assert note.kind == TrailFinding.PRUNED and "as prune line seq 6 says" in note.text
    assert sorted(note.names) == sorted(path.name for path in pruned)
    done = verify_trail(write_config(tmp_path))
    assert done.returncode == 0 and "note: pruned: 4 report(s) removed by retention" in done.stdout, done.stdout

    (trail_of_five / "daily-20261104-020000-000.html").unlink()  # by hand: no prune line names it
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.REMOVED
    assert text.startswith("report daily-20261104-020000-000.html of run seq 4 (daily")
    assert "missing and no prune line names it" in text
    done = verify_trail(write_config(tmp_path))
    assert done.returncode == trail.NOT_INTACT
    assert "removed: report daily-20261104-020000-000.html of run seq 4" in done.stdout
    assert "note: pruned: 4 report(s)" in done.stdout, "the pruned ones are still said as pruned"


def test_a_ledger_line_removed_is_named_by_its_seq(trail_of_five):
    lines = ledger_lines(trail_of_five)
    rewrite(trail_of_five, lines[:2] + lines[3:])
    found = damage(trail_of_five)
    assert (TrailFinding.REMOVED, "ledger line(s) seq 3 were removed: the seq jumps from 2 (line 2) to 4 (line 3) "
            "and the hash chain breaks there") in found
    # Its run's reports are still on disk and no line names them any more: said too.
    assert [kind for kind, _ in found] == [TrailFinding.REMOVED, TrailFinding.UNRECORDED]
    assert "daily-20261103-020000-000.html" in found[1][1]


def test_a_line_inserted_is_named(trail_of_five):
    lines = ledger_lines(trail_of_five)
    after = json.loads(lines[1])
    forged = {"seq": 3, "kind": "run", "at": after["at"], "prev": after["hash"], "run_id": "forged", "cadence": "daily",
              "exit_status": 0, "reports": {}}
    forged["hash"] = ledger.digest(forged)  # a careful forger: a correct hash, chained onto seq 2
    rewrite(trail_of_five, [*lines[:2], ledger.serialise(forged), *lines[2:]])
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.INSERTED
    assert text.startswith("line 3 (seq 3, run, daily run,") and "was inserted" in text
    assert "claims to follow line 2 (seq 2" in text and "goes on from line 4 instead" in text


def test_two_lines_swapped_are_named(trail_of_five):
    lines = ledger_lines(trail_of_five)
    rewrite(trail_of_five, [lines[0], lines[2], lines[1], *lines[3:]])
    assert damage(trail_of_five) == [
        (TrailFinding.SWAPPED, "ledger lines seq 2 and seq 3 were swapped: seq 3 is at line 2, seq 2 at line 3")]


def test_a_line_edited_is_named(trail_of_five):
    lines = ledger_lines(trail_of_five)
    lines[3] = lines[3].replace('"exit_status":0', '"exit_status":11')
    rewrite(trail_of_five, lines)
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.EDITED and text.startswith("line 4 (seq 4, run, daily run,")
    assert "its content no longer matches its hash" in text


def test_a_report_with_no_run_line_and_a_ledger_removed_are_named(tmp_path, trail_of_five):
    (trail_of_five / "daily-20261120-020000-000.html").write_text("made up")
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.UNRECORDED and "daily-20261120-020000-000.html" in text
    ledger.ledger_path(trail_of_five).unlink()
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.REMOVED and text.startswith(f"there is no ledger.jsonl in {trail_of_five}, but 11")


def test_a_tail_rewritten_whole_is_caught_against_a_head_kept_elsewhere(tmp_path, trail_of_five, capsys):
    """The chain alone cannot see a consistent forgery from some line on; the head noted elsewhere can."""
    kept = json.loads(ledger_lines(trail_of_five)[-1])
    rewrite(trail_of_five, ledger_lines(trail_of_five)[:2])
    for path in trail_of_five.glob("daily-2026110[345]-*"):  # the forger tidies the reports up too
        path.unlink()
    make_runs(trail_of_five, 2, first_day=3)  # two forged runs, chained as the suite chains them
    assert verify(trail_of_five).intact
    config = write_config(tmp_path)
    assert commands_main(["trail", "--config", str(config), "--head", f"5:{kept['hash']}"]) == trail.NOT_INTACT
    said = capsys.readouterr().out
    assert f"edited: the head kept elsewhere, seq 5 hash {kept['hash'][:16]}..., is no longer in the ledger" in said


def test_two_writers_at_once_keep_one_chain(tmp_path):
    """Two processes (a daily and an emergency run ending together) append 150 lines each at once."""
    reports = tmp_path / "reports"
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from core.vocabulary import LedgerKind
        from core import ledger
        go = Path(sys.argv[2])
        while not go.exists():
            time.sleep(0.01)
        for number in range(150):
            ledger.append(Path(sys.argv[1]), LedgerKind.ATTEST, {"writer": sys.argv[3], "number": number})
    """)
    go = tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", script, str(reports), str(go), name], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}) for name in ("daily", "emergency")]
    go.touch()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    entries = list(ledger.entries(reports))
    assert [entry["seq"] for entry in entries] == list(range(1, 301))
    for writer in ("daily", "emergency"):
        assert [entry["number"] for entry in entries if entry["writer"] == writer] == list(range(150))
    result = verify(reports)
    assert result.intact and not result.findings, result.findings


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from core.vocabulary import LedgerKind
    from core import ledger
    real_write = os.write
    def die(*args):
        os.kill(os.getpid(), signal.SIGKILL)
    def write_half_then_die(descriptor, data):
        real_write(descriptor, data[: len(data) // 2])
        die()
    if sys.argv[2] == "before-fsync":
        os.fsync = die
    else:
        os.write = write_half_then_die
    ledger.append(Path(sys.argv[1]), LedgerKind.ATTEST, {"who": "killed"})
""")


def kill_while_appending(reports: Path, where: str) -> int:
    return subprocess.run([sys.executable, "-c", KILLER, str(reports), where], cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode


def test_a_writer_killed_between_its_write_and_fsync_leaves_a_valid_ledger(trail_of_five):
    assert kill_while_appending(trail_of_five, "before-fsync") == -signal.SIGKILL
    entries = list(ledger.entries(trail_of_five))
    assert [entry["seq"] for entry in entries] == [1, 2, 3, 4, 5, 6] and entries[-1]["who"] == "killed"
    assert verify(trail_of_five).findings == []


def test_a_torn_last_line_is_found_and_the_next_append_sets_it_aside_and_records_it(trail_of_five):
    """A kill cannot cut one write() of a line to a file in half; a power cut or a full disk can. The
    writer here writes half its line and is killed, which is what those leave."""
    before = ledger.ledger_path(trail_of_five).read_bytes()
    assert kill_while_appending(trail_of_five, "half-a-line") == -signal.SIGKILL
    torn = ledger.ledger_path(trail_of_five).read_bytes()[len(before):]
    assert torn and not torn.endswith(b"\n")
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.TORN and f"incomplete line of {len(torn)} byte(s) after line 5" in text
    assert list(ledger.entries(trail_of_five))[-1]["seq"] == 5, "a reader skips the torn line"

    entry = ledger.append(trail_of_five, LedgerKind.ATTEST, {"who": "next"})

    entries = list(ledger.entries(trail_of_five))
    assert [(e["seq"], e["kind"]) for e in entries[-3:]] == [(5, "run"), (6, "repair"), (7, "attest")]
    assert entry == entries[-1] and entries[-2]["prev"] == entries[-3]["hash"], "chained onto the last whole line"
    aside = trail_of_five / entries[-2]["torn"]["name"]
    assert aside.name.startswith("ledger.jsonl.torn-") and aside.read_bytes() == torn
    assert ledger.ledger_path(trail_of_five).read_bytes().startswith(before), "no whole line was touched"
    result = verify(trail_of_five)
    assert result.intact, result.findings
    [note] = result.notes
    assert note.kind == TrailFinding.REPAIRED and f"{len(torn)} byte(s) was set aside in {aside.name}" in note.text
    aside.write_bytes(b"something else")
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.EDITED and text.startswith(f"{aside.name}, set aside by repair line 6")


def test_an_append_reads_only_the_end_and_a_long_line_chains_like_a_short_one(tmp_path):
    reports = tmp_path / "reports"
    long = ledger.append(reports, LedgerKind.ATTEST, {"note": "x" * 50_000})  # beyond the first read from the end
    after = ledger.append(reports, LedgerKind.ATTEST, {"note": "short"})
    assert (after["seq"], after["prev"]) == (2, long["hash"])
    assert verify(reports).findings == []


def test_an_append_never_chains_onto_a_whole_line_that_is_not_a_ledger_line(tmp_path, trail_of_five):
    with ledger.ledger_path(trail_of_five).open("a") as handle:
        handle.write("someone was here\n")
    before = ledger.ledger_path(trail_of_five).read_bytes()
    with pytest.raises(ledger.LedgerError, match="its last line is not a ledger line.*make verify-trail"):
        ledger.append(trail_of_five, LedgerKind.ATTEST, {"who": "next"})
    assert ledger.ledger_path(trail_of_five).read_bytes() == before
    [(kind, text)] = damage(trail_of_five)
    assert kind == TrailFinding.EDITED and text.startswith("line 6 is not a ledger line")


def test_the_ledger_and_the_reports_default_to_beside_the_state_not_into_the_code_package():
    default = Settings()
    assert default.reports.dir == default.policy.state_dir / "reports"
    assert default.reports.dir.is_absolute() and ROOT not in default.reports.dir.parents


def test_attestations_go_into_the_ledger(tmp_path):
    config = write_config(tmp_path)
    done = subprocess.run([sys.executable, "-m", "commands", "attest", "--config", str(config), "--task",
                           "configuration-review", "--note", "tightened risk.json", "--who", "alice"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [entry] = ledger.entries(tmp_path / "reports")
    assert entry | {"at": 0, "done": 0, "hash": 0} == {
        "seq": 1, "kind": "attest", "at": 0, "prev": "", "hash": 0, "action": "attest-task", "box": "trading-box",
        "task": "configuration-review", "who": "alice", "done": 0, "note": "tightened risk.json"}
    assert f"{tmp_path / 'reports' / 'ledger.jsonl'} (seq 1)" in done.stdout


# --- real runs ---------------------------------------------------------------------------------------

CHECKS = '''
import os, time
from pathlib import Path
import pytest

@pytest.mark.daily
@pytest.mark.check("X-001", severity="warning", why="w")
def test_fine(): pass

@pytest.mark.daily
@pytest.mark.check("X-002", severity="warning", why="w")
def test_wrong(): assert 1 == 2, "one is not two"

@pytest.mark.daily
@pytest.mark.check("X-003", severity="warning", why="w")
def test_slow():
    hold = os.environ.get("HOLD_FILE")
    if hold:  # the test kills the run while this check runs
        Path(hold).touch()
        time.sleep(60)
'''


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    pytester.config_path = write_config(tmp_path)
    pytester.reports = tmp_path / "reports"
    return pytester


def pytest_argv(project) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "daily",
            f"--maintenance-config={project.config_path}"]


def test_a_run_appends_its_line_once_both_reports_are_published(project):
    result = project.runpytest_subprocess("-m", "daily", f"--maintenance-config={project.config_path}")
    assert result.ret == 11
    [entry] = ledger.entries(project.reports)
    assert entry["kind"] == LedgerKind.RUN and entry["seq"] == 1 and entry["prev"] == ""
    assert (entry["cadence"], entry["boxes"], entry["exit_status"], entry["exit_words"]) == (
        "daily", ["trading-box"], 11, "failures remain")
    assert entry["counts"] == {"passed": 2, "fixed": 0, "failed": 1, "unknown": 0, "waived": 0, "skipped": 0}
    assert entry["started"] <= entry["ended"] <= entry["at"] and entry["duration_s"] >= 0
    assert len(entry["run_id"]) == 32
    for kind, suffix in (("html", ".html"), ("xml", ".xml")):
        report = project.reports / entry["reports"][kind]["name"]
        assert report.suffix == suffix and report.exists()
        assert entry["reports"][kind]["sha256"] == ledger.file_sha256(report), "the published file, as it stays"
    assert verify(project.reports).findings == []
    listing = project.runpytest_subprocess("-m", "daily", f"--maintenance-config={project.config_path}",
                                           "--collect-only")
    assert listing.ret == 0 and len(list(ledger.entries(project.reports))) == 1, "a listing records nothing"


def test_a_run_killed_mid_way_leaves_the_ledger_valid_and_the_next_run_chains_on(project, tmp_path):
    hold = tmp_path / "holding"
    first = subprocess.run(pytest_argv(project), cwd=project.path, capture_output=True, timeout=120)
    assert first.returncode == 11, first.stdout
    run = subprocess.Popen(pytest_argv(project), cwd=project.path, env={**os.environ, "HOLD_FILE": str(hold)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not hold.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hold.exists(), "the run never reached its slow check"
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=30) == -signal.SIGKILL
    assert [entry["seq"] for entry in ledger.entries(project.reports)] == [1]
    assert verify(project.reports).findings == [], "a killed run leaves no report and no line behind"
    last = subprocess.run(pytest_argv(project), cwd=project.path, capture_output=True, timeout=120)
    assert last.returncode == 11, last.stdout
    entries = list(ledger.entries(project.reports))
    assert [entry["seq"] for entry in entries] == [1, 2] and entries[1]["prev"] == entries[0]["hash"]
    done = verify_trail(project.config_path)
    assert done.returncode == 0 and "intact: 2 line(s)" in done.stdout, done.stdout + done.stderr


def test_a_run_that_cannot_write_its_line_says_so_and_keeps_its_status(project):
    project.reports.mkdir(parents=True)
    ledger.ledger_path(project.reports).write_text("not a ledger line\n")
    result = project.runpytest_subprocess("-m", "daily", f"--maintenance-config={project.config_path}")
    assert result.ret == 11
    result.stderr.fnmatch_lines(["maintenance: this run is not in the ledger *ledger.jsonl: *its last line is not a "
                                 "ledger line*"])
    assert ledger.ledger_path(project.reports).read_text() == "not a ledger line\n", "nothing chained onto it"
