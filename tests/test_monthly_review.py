"""The monthly review (REV), benchmarks (BENCH) and monthly error handling (EHM): their readers on real files
and processes without the lab, then the checks end to end on the shared lab, as cron runs them.

Without the lab: a month of error logs written into a temporary log directory (rotated .gz days, a file
with an old name but a new modification time, one with a new name but an old one) proves the selection by
the date in the name; real processes prove the exact match by name, where `pgrep -f` would also find a
process that merely mentions it. `systemctl --failed` and `journalctl` are parsed from recorded output:
this machine runs no systemd (the box has one, but a boot is not worth two parsers).
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from trail_helpers import acts

from configuration import Settings
from conftest import ROOT, config_with, run_cadence
from core.vocabulary import LedgerKind
from probes.errors import ErrorAnalysis, month_before
from probes.host import box_of
from probes.remote import reviewscan
from probes.system import parse_journal, parse_supervisor_failed, parse_systemctl_failed

TODAY = datetime.date(2026, 11, 26)


def day(n: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=n)


def set_mtime(path, when: datetime.date) -> None:
    stamp = time.mktime(when.timetuple()) + 3600
    os.utime(path, (stamp, stamp))


def write_log(log_dir, when: datetime.date, lines: list[str], *, gz: bool = False, mtime: datetime.date | None = None):
    name = f"error-{when.isoformat()}.log" + (".gz" if gz else "")
    data = "".join(line + "\n" for line in lines).encode()
    path = log_dir / name
    path.write_bytes(gzip.compress(data) if gz else data)
    set_mtime(path, mtime or when)
    return path


def error_lines(when: datetime.date, n: int, critical: int) -> list[str]:
    codes = ["TE001", "NE002", "AI003", "SE001"]
    return [f"{when}T10:{i:02d}:00Z {'CRITICAL' if i < critical else 'ERROR'} {codes[i % 4]} something failed"
            for i in range(n)]


@pytest.fixture
def month_dir(tmp_path):
    """A month of error logs as a box keeps them: today's plain, the rest rotated to .gz, with three traps."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    expected = {"lines": 0, "critical": 0, "days": set()}
    for n in range(0, 32):  # 2026-10-26 (a month before) .. today
        when = day(n)
        lines = error_lines(when, 3 + n % 4, 1 if n % 5 == 0 else 0)
        write_log(log_dir, when, lines, gz=n > 1)
        expected["lines"] += len(lines)
        expected["critical"] += sum("CRITICAL" in line for line in lines)
        expected["days"].add(when)
    # An old day's log touched today (by a copy, a chmod -R, a restore): -newermt would take it; its name says 40 days.
    write_log(log_dir, day(40), error_lines(day(40), 50, 50), gz=True, mtime=TODAY)
    # A day of the window whose rotation was rewritten long after: its name is in the window, whatever its mtime.
    set_mtime(log_dir / f"error-{day(12)}.log.gz", day(60))
    # A day caught between compressing and removing: both files, counted once (the plain one).
    shutil.copy(log_dir / f"error-{day(1)}.log", log_dir / f"error-{day(1)}.log.gz.tmp")
    (log_dir / f"error-{day(1)}.log.gz").write_bytes(gzip.compress((log_dir / f"error-{day(1)}.log").read_bytes()))
    # Not error logs at all.
    (log_dir / f"trading-{TODAY}.log").write_text("CRITICAL TE001 not an error log\n")
    return log_dir, expected


def analysis(log_dir) -> ErrorAnalysis:
    settings = Settings.model_validate({"paths": {"log_dir": str(log_dir)}})
    return ErrorAnalysis(box_of(settings), settings)


def test_a_month_is_chosen_by_the_date_in_the_names_rotated_logs_read(month_dir):
    log_dir, expected = month_dir
    month = analysis(log_dir).month(TODAY)
    assert (month.start, month.end) == (datetime.date(2026, 10, 26), TODAY)
    read = [entry["path"].rsplit("/", 1)[-1] for entry in month.files]
    assert len(read) == 32 and f"error-{day(40)}.log.gz" not in read  # new mtime, old name: not this month
    assert f"error-{day(12)}.log.gz" in read  # old mtime, a name in the window: this month
    assert f"error-{day(1)}.log" in read and f"error-{day(1)}.log.gz" not in read  # one day, read once
    assert month.total == expected["lines"] and month.critical == expected["critical"]
    assert month.critical_rate_percent == pytest.approx(expected["critical"] * 100 / expected["lines"])
    assert month.days_without_log() == []
    top = month.top(10)
    assert sum(count for _, count in top) == expected["lines"]  # one code a line in these logs
    assert top == sorted(top, key=lambda item: (item[1], item[0]), reverse=True)


def test_no_errors_is_zero_percent_not_a_division_by_zero(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    write_log(log_dir, TODAY, [])
    month = analysis(log_dir).month(TODAY)
    assert (month.total, month.critical, month.critical_rate_percent, month.top()) == (0, 0, 0.0, [])
    assert len(month.days_without_log()) == 31


def test_a_broken_rotated_log_is_named_not_skipped(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    broken = write_log(log_dir, day(3), error_lines(day(3), 5, 1), gz=True)
    broken.write_bytes(broken.read_bytes()[:20])  # cut in its middle
    with pytest.raises(OSError, match=f"cannot read {broken}"):
        analysis(log_dir).month(TODAY)


def test_one_month_before_is_the_calendars():
    assert month_before(datetime.date(2026, 3, 31)) == datetime.date(2026, 2, 28)
    assert month_before(datetime.date(2028, 3, 30)) == datetime.date(2028, 2, 29)
    assert month_before(datetime.date(2026, 1, 15)) == datetime.date(2025, 12, 15)


def test_handlers_are_matched_by_their_own_name_never_by_a_command_line(tmp_path):
    """`pgrep -f NAME` finds the shell that runs it and any process whose arguments mention NAME."""
    name = f"r2-test-handler-{os.getpid()}"
    sleep = shutil.which("sleep")
    handler = subprocess.Popen([name, "60"], executable=sleep)  # argv[0] is the handler's name
    mentions = subprocess.Popen(["sh", "-c", f"sleep 60; echo {name}"],  # a command line that mentions it
                                start_new_session=True)  # its sleep goes with it
    try:  # Popen returns once the child has exec'd: its name is in /proc already
        found = reviewscan.processes_named([name, "no-such-handler"])
        assert [p["pid"] for p in found[name]] == [handler.pid]
        assert found[name][0]["rss_kb"] > 0
        assert found["no-such-handler"] == []
        if shutil.which("pgrep"):  # what the guide's check would have seen
            pgrep = subprocess.run(["pgrep", "-f", name], capture_output=True, text=True, timeout=10)
            assert str(mentions.pid) in pgrep.stdout.split()
    finally:
        handler.kill()
        os.killpg(mentions.pid, signal.SIGKILL)
        for process in (handler, mentions):
            process.wait(timeout=10)


def test_handlers_are_looked_for_under_the_service_managers_process_only():
    """Two labs on one kernel: the other one's handler, of the same name, is not this one's."""
    name = f"r2-tree-handler-{os.getpid()}"
    sleep = shutil.which("sleep")
    ours = subprocess.Popen([name, "60"], executable=sleep)
    elsewhere = subprocess.Popen(["sleep", "60"])  # a process that is no ancestor of ours
    try:
        assert [p["pid"] for p in reviewscan.processes_named([name], os.getpid())[name]] == [ours.pid]
        assert reviewscan.processes_named([name], elsewhere.pid)[name] == []
        assert [p["pid"] for p in reviewscan.processes_named([name])[name]] == [ours.pid]  # the whole box
    finally:
        for process in (ours, elsewhere):
            process.kill()
            process.wait(timeout=10)


SYSTEMCTL_FAILED = """\
  ssh-tunnel.service  loaded failed failed SSH tunnel to the Oracle VM
  logrotate.service   loaded failed failed Rotate log files
"""
SUPERVISOR_STATUS = """\
ai-error-handler                 RUNNING   pid 13879, uptime 0:00:03
exposed-listener                 STOPPED   Not started
trading-dashboard                FATAL     Exited too quickly (process log may have details)
trading-agent                    BACKOFF   Exited too quickly (process log may have details)
"""
JOURNAL = """\
2026-11-02T03:14:07+0000 nuc kernel: ata1.00: failed command: READ FPDMA QUEUED
2026-11-19T12:00:01+0000 nuc node[811]: TE003 order status poll timed out
    at OrderBook.poll (/opt/trading-agent/dist/orders.js:88)
2026-11-25T23:59:59+0000 nuc systemd[1]: ssh-tunnel.service: Failed with result 'exit-code'.
"""


def test_failed_units_and_the_journal_are_parsed_as_their_tools_print_them():
    assert parse_systemctl_failed(SYSTEMCTL_FAILED) == ["ssh-tunnel.service", "logrotate.service"]
    assert parse_systemctl_failed("") == []
    # FATAL and BACKOFF failed; STOPPED is an operator's stop, as an inactive unit is not a failed one
    assert parse_supervisor_failed(SUPERVISOR_STATUS) == ["trading-dashboard (FATAL)", "trading-agent (BACKOFF)"]
    errors = parse_journal(JOURNAL, 2)
    assert errors.count == 3  # a message's continuation line is not an entry
    assert errors.last[-1].endswith("Failed with result 'exit-code'.") and len(errors.last) == 2


def test_read_speed_writes_its_scratch_file_once(tmp_path):
    first = reviewscan.read_speed("", str(tmp_path), 2)
    assert first["written"] and first["bytes"] == 2 << 20 and first["mb_per_s"] > 0
    again = reviewscan.read_speed("", str(tmp_path), 2)
    assert not again["written"] and again["path"] == first["path"]
    small = tmp_path / "small"
    small.write_bytes(b"x" * 1000)
    with pytest.raises(OSError, match="too small to measure"):
        reviewscan.read_speed(str(small), "", 2)
    with pytest.raises(OSError, match="cannot open"):
        reviewscan.read_speed(str(tmp_path / "missing"), "", 2)


# ---- end to end, on the shared lab ----------------------------------------------------------------------

CHECKS = "monthly_review or monthly_benchmarks or monthly_error_handling"


def verdicts(done) -> dict[str, str]:
    return {result.name: result.properties.get("verdict") for result in done.results}


@pytest.fixture
def monthly(healthy_lab, lab_config, tmp_path):
    """The lab's configuration with a state and a reports directory of this test's own."""
    config = config_with(lab_config, tmp_path / "maintenance.toml",
                         {"policy": {"state_dir": str(tmp_path / "state")}, "reports": {"dir": str(tmp_path / "reports")}})
    return config, tmp_path / "state" / "baselines.json"


def test_healthy_lab_passes_and_the_first_run_records_the_baselines(monthly, tmp_path):
    config, stored = monthly
    done = run_cadence(config, tmp_path / "reports", "-k", CHECKS, cadence="monthly")
    seen = verdicts(done)
    assert set(seen.values()) == {"passed", "skipped"}, done.output
    assert seen["test_journal_errors_are_read"] == "skipped"  # supervisord: no systemd journal
    skipped = done.only("REV-003")
    assert "no systemd journal" in skipped.message
    figures = {name: value for result in done.results for name, value in result.properties.items()}
    assert figures["failed_units"] == "0" and float(figures["uptime_days"]) > 0
    assert int(figures["error_logs_read"]) == 11 and int(figures["errors_month"]) > 0
    assert figures["top_error_codes_month"].count("=") == 10
    for name in ("api_response_ms", "db_query_ms", "disk_read_mb_per_s", "error_handling_response_ms"):
        assert figures[f"{name}_change_percent"] == "first run: recorded"
    recorded = json.loads(stored.read_text())["trading-box"]
    assert set(recorded) == {"api_response_ms", "db_query_ms", "disk_read_mb_per_s", "error_handling_response_ms"}
    assert recorded["error_handling_response_ms"]["value"] == 38.5
    assert all(entry["recorded"].startswith(str(datetime.date.today().year)) for entry in recorded.values())


def test_faults_fail_their_checks_with_figures_and_make_baseline_records_again(monthly, lab, tmp_path):
    config, stored = monthly
    first = run_cadence(config, tmp_path / "reports", "-k", "EHM-004 or error_handling_response", cadence="monthly")
    assert verdicts(first) == {"test_error_handling_response_within_baseline": "passed"}, first.output
    # Baselines no healthy run could beat: the comparisons must find the regressions, noise floor off.
    box = json.loads(stored.read_text())
    box["trading-box"].update({
        "api_response_ms": {"value": 1e-6, "unit": "ms", "recorded": "2026-01-01T00:00:00+00:00", "why": "test"},
        "db_query_ms": {"value": 1e-6, "unit": "ms", "recorded": "2026-01-01T00:00:00+00:00", "why": "test"},
        "disk_read_mb_per_s": {"value": 1e9, "unit": "MB/s", "recorded": "2026-01-01T00:00:00+00:00", "why": "test"}})
    stored.write_text(json.dumps(box))
    strict = config_with(config, tmp_path / "strict.toml", {"baselines": {"noise_floor_ms": 0}})
    # Handlers are looked for among the lab's supervisord's processes: another lab running on this machine
    # (make lab-up) has a network-error-handler of its own, which is not this lab's.
    for fault in ("handler-stopped", "error-handling-slow", "crashloop:trading-dashboard"):
        lab.inject(fault)
    done = run_cadence(strict, tmp_path / "reports", "-k", CHECKS, cadence="monthly")
    findings = done.findings()
    assert set(findings) == {"REV-001", "EHM-002", "EHM-004", "BENCH-001", "BENCH-002", "BENCH-003"}, done.output
    rev = done.only("REV-001")
    assert rev.properties["failed_units"] == "1" and "trading-dashboard (" in rev.message
    handler = findings["EHM-002"]
    assert len(handler) == 1 and "no process named network-error-handler is running" in handler[0].message
    assert handler[0].properties["handler_rss_kb"] == "none"
    assert done.only("EHM-002", "ai-error-handler").properties["verdict"] == "passed"
    slow = done.only("EHM-004")
    assert slow.properties["error_handling_response_ms"] == "1925"
    assert slow.properties["error_handling_response_ms_change_percent"] == "+4900.0"
    assert "1925 ms against the baseline 38.5 ms of 20" in slow.message and "at most 50 % allowed" in slow.message
    disk = done.only("BENCH-003")
    assert "disk_read_mb_per_s" in disk.message and disk.properties["disk_read_mb_per_s_baseline_recorded"].startswith(
        "2026-01-01")
    # make baseline: measured now and recorded on purpose, in the ledger
    lab.clear("error-handling-slow")
    recorded = subprocess.run([sys.executable, "-m", "commands", "baseline", "--config", str(config), "--what",
                               "error-handling,disk", "--who", "tester", "--why", "new SSD"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert recorded.returncode == 0, recorded.stderr
    assert "disk_read_mb_per_s = " in recorded.stdout and "(was 1e+09 of 2026-01-01)" in recorded.stdout
    after = json.loads(stored.read_text())["trading-box"]
    assert after["disk_read_mb_per_s"]["why"] == "new SSD" and after["disk_read_mb_per_s"]["value"] < 1e9
    assert after["api_response_ms"]["value"] == 1e-6  # WHAT chose the others
    audit = acts(tmp_path / "reports", LedgerKind.BASELINE)
    assert {(entry["figure"], entry["who"]) for entry in audit if entry["action"] == "record-baseline"} == {
        ("error_handling_response_ms", "tester"), ("disk_read_mb_per_s", "tester")}
