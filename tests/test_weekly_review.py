"""The weekly review (PERF, STRAT, OPT, EHW): its readers on real files, /proc and gzip of this machine,
then its checks as cron runs them on the shared lab (tests/conftest.py), healthy and with their faults.

The independent counts are the guide's own tools (zcat, grep, awk, wc) over the same files, so the
figures are compared with what an operator's shell would say over the whole window.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from configuration.performance import WeeklyReview
from conftest import config_with, run_cadence
from lab import files as lab_files
from probes.host import Box, box_of
from probes.logs import TradingWindow, WeekLogs
from probes.remote import logscan, weeklyscan
from probes.strategies import parse_strategies
from probes.system import SystemReadings, iostat_x

TODAY = "2026-11-26"
CHECKS = "weekly_performance or weekly_strategy or weekly_optimization or weekly_error_handling"
needs_tools = pytest.mark.skipif(not all(shutil.which(tool) for tool in ("zcat", "grep", "awk", "wc")),
                                 reason="zcat, grep, awk and wc are needed for the independent count")


def day(back: int, today: str = TODAY) -> str:
    return (date.fromisoformat(today) - timedelta(days=back)).isoformat()


def trading_text(back: int, trades: int) -> str:
    lines = [f"{day(back)}T00:00:00Z INFO HEARTBEAT agent=alive\n"]
    for n in range(trades):
        lines.append(f"{day(back)}T01:{n:02d}:00Z INFO TRADE_EXECUTED id=T{back}{n} pair=BTC_USDT side=buy\n")
        lines.append(f"{day(back)}T01:{n:02d}:01Z INFO PROFIT id=T{back}{n} pair=BTC_USDT {back + n / 8 - 0.3:.2f}\n")
    return "".join(lines)


def write(path: Path, text: str, compressed: bool = False) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if compressed else text.encode())
    return path


def shell(command: str, files: list[Path]) -> str:
    return subprocess.run(["sh", "-c", command, "sh", *map(str, files)], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def guide_count(files: list[Path]) -> tuple[int, float]:
    """The guide's per-line semantics over every file of the window, compressed or not, in date order."""
    trades = int(shell('zcat -f "$@" | grep TRADE_EXECUTED | wc -l', files))
    profit = float(shell('zcat -f "$@" | grep PROFIT | awk \'{sum+=$NF} END {printf "%.6f", sum}\'', files) or 0)
    return trades, profit


@needs_tools
def test_the_week_is_its_days_by_name_rotated_ones_included(tmp_path):
    """Plain, .gz and .log.1 files, a day rotated half-way (plain and .gz both there), an old day touched
    today (chosen by name, not mtime), a day outside the window: the window's figures are the guide's
    tools over exactly the files of its 7 days."""
    logs = tmp_path / "logs"
    logs.mkdir()
    window = []  # the files of the window, oldest first
    for back in range(7, 0, -1):
        if back == 3:  # rotated twice on its day: its older part is .log.1.gz, read first
            window.append(write(logs / f"trading-{day(3)}.log.1.gz", trading_text(3, 2), compressed=True))
        if back == 4:  # a rotation cut short left the plain file and a partial .gz of it: only the plain one counts
            window.append(write(logs / f"trading-{day(4)}.log", trading_text(4, 6)))
            (logs / f"trading-{day(4)}.log.gz").write_bytes(gzip.compress(trading_text(4, 6).encode())[:40])
            continue
        compressed = back > 1
        window.append(write(logs / f"trading-{day(back)}.log{'.gz' if compressed else ''}",
                            trading_text(back, back + 2), compressed))
    outside = write(logs / f"trading-{day(8)}.log.gz", trading_text(8, 9), compressed=True)
    os.utime(outside)  # modified now, dated 8 days ago: not in the window
    write(logs / f"error-{day(2)}.log", "x TE001 recovery attempt failed\n")  # another kind
    (logs / "notes.txt").write_text("TRADE_EXECUTED PROFIT 1000\n")

    days = logscan.window_figures("trading", str(logs), 1, 7, TODAY)
    week = TradingWindow(days)

    assert [entry["date"] for entry in days] == [day(back) for back in range(7, 0, -1)]
    assert week.missing == []
    ordered = [path for entry in days for path in map(Path, entry["files"])]
    assert ordered == window
    trades, profit = guide_count(window)
    assert week.trades == trades == sum(back + 2 for back in range(1, 8)) + 2
    assert round(week.profit_usdt, 6) == round(profit, 6)
    assert week.average_usdt == pytest.approx(profit / trades)
    # The guide's own pipeline: the date of 7 days ago, over the uncompressed logs only: not the week.
    guide = shell(f'cat "$@" | grep TRADE_EXECUTED | grep {day(7)} | wc -l',
                  [path for path in logs.iterdir() if path.name.startswith("trading-") and path.suffix == ".log"])
    assert int(guide) == 0 < week.trades


def test_a_week_without_trades_has_no_average(tmp_path):
    for back in range(1, 8):
        write(tmp_path / f"trading-{day(back)}.log", trading_text(back, 0))
    week = TradingWindow(logscan.window_figures("trading", str(tmp_path), 1, 7, TODAY))
    assert (week.trades, week.profit_usdt, week.average_usdt, week.missing) == (0, 0.0, None, [])


def test_a_missing_day_is_named_and_a_damaged_one_is_not_read(tmp_path):
    for back in (1, 2, 4, 5, 6, 7):
        write(tmp_path / f"trading-{day(back)}.log.gz", trading_text(back, 3), compressed=True)
    week = TradingWindow(logscan.window_figures("trading", str(tmp_path), 1, 7, TODAY))
    assert week.missing == [day(3)]
    assert week.trades == 18

    damaged = tmp_path / f"trading-{day(5)}.log.gz"
    damaged.write_bytes(damaged.read_bytes()[:-20])
    with pytest.raises(OSError, match=f"{damaged}: cannot be read to its end"):
        logscan.window_figures("trading", str(tmp_path), 1, 7, TODAY)
    with pytest.raises(FileNotFoundError, match="log directory .*nowhere does not exist"):
        logscan.window_figures("trading", str(tmp_path / "nowhere"), 1, 7, TODAY)


def test_errors_per_day_and_the_last_failed_recoveries(tmp_path):
    for back in range(0, 7):
        text = "".join(f"{day(back)}T0{n}:00:00Z ERROR TE00{n} order placement retry exhausted\n" for n in range(back))
        text += f"{day(back)}T09:00:00Z WARN NE001 auto recovery attempt failed, retrying (day {back})\n"
        write(tmp_path / f"error-{day(back)}.log{'.gz' if back > 1 else ''}", text, compressed=back > 1)
    (tmp_path / f"error-{day(3)}.log.gz").unlink()
    days = logscan.window_figures("error", str(tmp_path), 0, 7, TODAY)
    assert [entry["figures"] and entry["figures"]["lines"] for entry in days] == [7, 6, 5, None, 3, 2, 1]
    lines = logscan.window_lines("error", str(tmp_path), 0, 7, "recovery.*failed", 3, TODAY)
    assert lines == [f"error-{day(back)}.log{'.gz' if back > 1 else ''}: {day(back)}T09:00:00Z WARN NE001 auto "
                     f"recovery attempt failed, retrying (day {back})" for back in (2, 1, 0)]


def test_the_strategies_file_is_judged_by_the_guide_s_fields():
    path = Path("/box/strategies.json")
    good = parse_strategies(path, {"data": {"strategies": [
        {"name": "a", "enabled": True, "weight": 0.6, "performance": {"winRate": 0.5}},
        {"name": "b", "enabled": False, "weight": 0}]}})
    assert (good.problems, [s.name for s in good.enabled]) == ([], ["a"])
    assert good.strategies[0].describe() == "a (enabled, weight 0.6, performance {winRate=0.5})"
    assert parse_strategies(path, {"invalid": "not valid JSON: x"}).problems == ["not valid JSON: x"]
    assert parse_strategies(path, {"data": [1]}).problems == ['no "strategies" list at the top level']
    bad = parse_strategies(path, {"data": {"strategies": [
        {"name": "a", "enabled": "yes", "weight": 0.5}, {"name": "b", "enabled": True, "weight": 1.5}, 7,
        {"name": "c", "enabled": True, "weight": True}, {"name": "d", "enabled": True, "weight": 0.2},
        {"name": "d", "enabled": False, "weight": 0.1}]}})
    assert bad.problems == ['strategies[0] (a): "enabled" is "yes", not true or false',
                            'strategies[1] (b): "weight" is 1.5, not a number from 0 to 1',
                            "strategies[2] is not an object",
                            'strategies[3] (c): "weight" is true, not a number from 0 to 1',
                            "a strategy is listed twice: d"]


def test_the_lab_strategies_file_reads_back(tmp_path):
    from lab.paths import LabPaths

    paths = LabPaths(tmp_path)
    lab_files.write_strategies(paths)
    found = parse_strategies(lab_files.strategies_file(paths), weeklyscan.read_json(str(lab_files.strategies_file(paths))))
    assert not found.problems and sum(s.weight for s in found.enabled) == pytest.approx(1)
    lab_files.strategies_malformed(paths)
    assert "not valid JSON" in weeklyscan.read_json(str(lab_files.strategies_file(paths)))["invalid"]


def test_iostat_figures_from_two_diskstats_readings():
    """Two /proc/diskstats lines of a disk 2 s apart; the figures `iostat -x` prints for that interval."""
    before = [31308, 6134, 1838890, 4151, 1513541, 1257563, 83324760, 965629, 0, 215552, 1083044]
    after = [31348, 6134, 1839890, 4231, 1513741, 1257663, 83328760, 966229, 2, 216052, 1083744]
    figures = iostat_x(before, after, 2.0)
    assert figures == {"r_per_s": 20.0, "w_per_s": 100.0, "rkb_per_s": 250.0, "wkb_per_s": 1000.0,
                       "r_await_ms": 2.0, "w_await_ms": 3.0, "await_ms": 680 / 240, "util_percent": 25.0}
    idle = iostat_x(before, before, 1.0)
    assert (idle["await_ms"], idle["r_await_ms"], idle["util_percent"]) == (None, None, 0.0)


def test_the_disk_that_holds_a_path(tmp_path):
    found = weeklyscan.block_device(str(tmp_path))
    if "no_disk" in found:
        assert "no block device" in found["no_disk"]
    else:
        assert weeklyscan.diskstats(found["name"])  # the disk is in /proc/diskstats
        sample = weeklyscan.io_sample(str(tmp_path), 0.05)
        assert sample["seconds"] >= 0.05 and len(sample["before"]) == len(sample["after"]) == 11
    assert "no block device" in weeklyscan.block_device("/proc")["no_disk"]  # procfs: device 0:N
    memory = weeklyscan.meminfo()
    assert 0 < memory["MemAvailable"] <= memory["MemTotal"]


def test_the_example_has_the_guide_s_thresholds(monkeypatch):
    from configuration import load, machine
    from configuration.schema import EXAMPLE

    monkeypatch.setattr(machine, "account_uid", lambda name: 1000)  # as on the guide's box, which has `trading`
    review = load(EXAMPLE).weekly_review
    assert (review.window_days, review.error_days, review.max_active_patterns, review.min_recovery_rate_percent,
            review.failed_recovery_pattern) == (7, 7, 5, 70, "recovery.*failed")


def test_a_bad_recovery_pattern_is_refused():
    with pytest.raises(ValidationError, match="not a regular expression"):
        WeeklyReview(failed_recovery_pattern="recovery.*(failed")


class ShippedBox(Box):
    """This machine reached the way an SSH box is: the reader module's source run by `python3 -I -S`."""

    @property
    def local(self) -> bool:
        return False


def test_the_readers_run_shipped_to_a_box_python(tmp_path):
    """Over SSH the readers' modules run as source on the box's python3: the same figures as in-process."""
    for back in range(0, 8):
        write(tmp_path / f"trading-{day(back)}.log.gz", trading_text(back, back), compressed=True)
        write(tmp_path / f"error-{day(back)}.log", f"x TE001 recovery attempt failed ({back})\n")
    (tmp_path / "strategies.json").write_text('{"strategies": []}')
    from configuration import Settings

    local = box_of(Settings())
    shipped = ShippedBox(local.name, local.host, sys.executable, False, 30)
    review = WeeklyReview(io_path=tmp_path, io_sample_seconds=0.05)
    here, there = WeekLogs(local, tmp_path, review, TODAY), WeekLogs(shipped, tmp_path, review, TODAY)
    assert there.trading.days == here.trading.days and there.trading.trades == sum(range(1, 8))
    assert there.errors == here.errors
    assert there.failed_recoveries() == here.failed_recoveries() != []
    assert shipped.call(weeklyscan.read_json, str(tmp_path / "strategies.json")) == {"data": {"strategies": []}}
    with pytest.raises(FileNotFoundError):
        shipped.call(weeklyscan.read_json, str(tmp_path / "gone.json"))
    readings = SystemReadings(shipped, review)
    assert set(readings.memory()) == set(weeklyscan.MEMINFO_KEYS)
    disk = readings.disk_io()
    assert "no_disk" in disk or disk["figures"]["util_percent"] >= 0


# ---- the checks on the lab, as cron runs them -------------------------------------------------------------

def lab_files_of(lab, kind: str, dates: list[str]) -> list[Path]:
    return [path for when in dates for path in sorted(lab.paths.log_dir.glob(f"{kind}-{when}.log*"))]


@needs_tools
def test_the_healthy_lab_passes_with_the_week_s_figures(healthy_lab, lab_config, tmp_path):
    run = run_cadence(lab_config, tmp_path / "reports", "-k", CHECKS, cadence="weekly")
    # OPT-002 applies where the application lies on a block device (a tmpfs or overlay has no disk I/O to read).
    on_disk = "no_disk" not in weeklyscan.block_device(str(healthy_lab.paths.opt_dir))
    assert {r.check_id: r.outcome for r in run.results} == {
        **{check: "passed" for check in ("PERF-001", "STRAT-001", "STRAT-002", "STRAT-003", "OPT-001",
                                         "EHW-001", "EHW-002", "EHW-003", "EHW-004", "EHW-005")},
        "OPT-002": "passed" if on_disk else "skipped"}, run.output
    today = date.today()
    week = [(today - timedelta(days=back)).isoformat() for back in range(7, 0, -1)]
    trades, profit = guide_count(lab_files_of(healthy_lab, "trading", week))
    perf = run.only("PERF-001").properties
    assert (int(perf["trades_7d"]), perf["profit_7d_usdt"]) == (trades, f"{profit:.2f}")
    assert perf["avg_profit_per_trade_usdt"] == f"{profit / trades:.2f}"
    assert perf["trading_window"] == f"{week[0]}..{week[-1]}"
    errors_week = [(today - timedelta(days=back)).isoformat() for back in range(6, -1, -1)]
    counts = [int(shell('zcat -f "$@" | wc -l', lab_files_of(healthy_lab, "error", [when]))) for when in errors_week]
    assert run.only("EHW-001").properties["errors_per_day"] == ", ".join(
        f"{when}={count}" for when, count in zip(errors_week, counts, strict=True))
    assert "momentum (enabled, weight 0.4" in run.only("STRAT-001").properties["strategies"]
    assert float(run.only("OPT-001").properties["memory_available_percent"]) > 0
    assert run.only("EHW-003").properties["recovery_rate_percent"] == "92.5"
    assert run.only("EHW-005").properties["alert_rules_triggered"] == "exchange-latency=2"


def test_each_fault_fails_its_check_with_its_figures(healthy_lab, lab_config, tmp_path):
    """Four faults at once, each failing only its own check; and an io_path on no block device (/proc):
    OPT-002 does not apply there and says so."""
    for fault in ("strategy-zero-weight", "error-patterns-high", "recovery-rate-low", "logs-missing-day"):
        healthy_lab.inject(fault)
    config = config_with(lab_config, tmp_path / "maintenance.toml", {"weekly_review": {"io_path": "/proc"}})
    run = run_cadence(config, tmp_path / "reports", "-k", CHECKS, cadence="weekly")
    failed = {r.check_id: r for r in run.results if r.outcome == "failed"}
    assert sorted(failed) == ["EHW-001", "EHW-002", "EHW-003", "PERF-001", "STRAT-003"], run.output
    skipped = run.only("OPT-002")
    assert skipped.outcome == "skipped" and "not applicable here: /proc is on device 0:" in skipped.message
    gone = lab_files.missing_day().isoformat()
    assert f"no trading log for {gone}" in failed["PERF-001"].message
    assert failed["PERF-001"].properties["trades_per_day"].count("no log") == 1
    assert f"no error log and no trading log for {gone}" in failed["EHW-001"].message
    assert "7 active error patterns, at most 5 (over by 2)" in failed["EHW-002"].message
    assert failed["EHW-002"].properties["active_error_patterns"] == "7"
    said = failed["EHW-003"].message
    assert "auto-recovery success rate 55%, at least 70% expected (short by 15 points)" in said
    assert "6 manual intervention(s)" in said and "auto recovery attempt failed" in said
    assert failed["EHW-003"].properties["manual_interventions"] == "6"
    assert "enabled with weight 0" in failed["STRAT-003"].message and "grid" in failed["STRAT-003"].message


def test_bad_strategies_files_fail(healthy_lab, lab_config, tmp_path):
    healthy_lab.inject("strategy-weights-off")
    run = run_cadence(lab_config, tmp_path / "off", "-k", "weekly_strategy", cadence="weekly")
    assert {r.check_id: r.outcome for r in run.results} == {
        "STRAT-001": "passed", "STRAT-002": "failed", "STRAT-003": "passed"}, run.output
    assert "add up to 0.85, not 1 (± 0.01; off by -0.15)" in run.only("STRAT-002").message

    healthy_lab.clear()
    healthy_lab.inject("strategies-malformed")
    run = run_cadence(lab_config, tmp_path / "malformed", "-k", "weekly_strategy", cadence="weekly")
    assert "not valid JSON" in run.only("STRAT-001").message
    assert {r.properties.get("caused_by") for r in run.results if r.check_id != "STRAT-001"} == {"STRAT-001"}, \
        run.output
