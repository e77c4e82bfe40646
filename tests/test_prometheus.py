"""The node_exporter textfile (reports/prometheus.py): parsed with prometheus_client's own parser, one series
per check instance, names by Prometheus' conventions, and `promtool check metrics` where promtool is."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from trail_helpers import START, LedgerWriter, add_run, case

from configuration import Settings
from reports import index
from reports.prometheus import figure_metric


@pytest.fixture(scope="module")
def textfile(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("prom")
    writer = LedgerWriter(directory)
    for day in range(3):
        add_run(writer, START + datetime.timedelta(days=day), "daily", [
            case("SVC-001", "test_service_is_running[nuc-1-trading-agent]", "fixed" if day == 2 else "passed",
                 box="nuc-1", trades_today=5 + day, api_response_ms="120.5", banned_total=3),
            case("SVC-001", "test_service_is_running[nuc-1-ssh-tunnel]", "passed", box="nuc-1"),
            case("RES-003", "test_disk_usage_below_threshold[nuc-2-/-warning]", "failed" if day == 2 else "passed",
                 box="nuc-2", severity="warning", database_size="8192 bytes"),
        ], boxes=("nuc-1", "nuc-2"), exit_status=11, exit_words="failures remain")
    add_run(writer, START + datetime.timedelta(days=3), "weekly",
            [case("DB-010", "test_dead_tuples[nuc-1]", "unknown", box="nuc-1", cadence="weekly")], boxes=("nuc-1",),
            exit_status=12, exit_words="could not check")
    writer.close()
    settings = Settings()
    index.after_run(directory, settings)
    return directory / "trading-maintenance.prom"


def families(path: Path) -> dict:
    return {family.name: family for family in text_string_to_metric_families(path.read_text())}


def test_one_series_per_check_instance_with_its_verdict(textfile):
    found = families(textfile)["trading_maintenance_check_failing"]
    series = {(s.labels["box"], s.labels["instance"]): (s.labels["verdict"], s.value) for s in found.samples}
    assert series == {
        ("nuc-1", "SVC-001[nuc-1-trading-agent]"): ("fixed", 0.0),
        ("nuc-1", "SVC-001[nuc-1-ssh-tunnel]"): ("passed", 0.0),
        ("nuc-2", "RES-003[nuc-2-/-warning]"): ("failed", 1.0),
        ("nuc-1", "DB-010[nuc-1]"): ("unknown", 1.0),
    }
    assert {s.labels["cadence"] for s in found.samples} == {"daily", "weekly"}
    assert found.type == "gauge"


def test_the_last_run_of_each_cadence_on_each_box(textfile):
    found = families(textfile)
    status = {(s.labels["cadence"], s.labels["box"]): s.value
              for s in found["trading_maintenance_last_run_exit_status"].samples}
    assert status == {("daily", "nuc-1"): 11, ("daily", "nuc-2"): 11, ("weekly", "nuc-1"): 12}
    ended = {(s.labels["cadence"], s.labels["box"]): s.value
             for s in found["trading_maintenance_last_run_timestamp_seconds"].samples}
    assert ended[("weekly", "nuc-1")] == (START + datetime.timedelta(days=3, seconds=42.5)).timestamp()
    assert {s.value for s in found["trading_maintenance_last_run_duration_seconds"].samples} == {42.5}


def test_figures_in_base_units_and_conventional_names(textfile):
    found = families(textfile)
    assert [s.value for s in found["trading_maintenance_figure_trades_today"].samples] == [7.0]
    assert [s.value for s in found["trading_maintenance_figure_api_response_seconds"].samples] == [0.1205]
    assert [s.value for s in found["trading_maintenance_figure_database_size_bytes"].samples] == [8192.0]
    assert "trading_maintenance_figure_banned" in found  # a gauge: no _total
    text = textfile.read_text()
    for name in set(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)):
        metric, kind = name
        assert re.fullmatch(r"trading_maintenance_[a-z0-9_]+", metric), metric
        assert kind == "gauge" and not metric.endswith("_total"), metric
        assert f"# HELP {metric} " in text
    assert figure_metric("io_read_kb_per_s") == ("trading_maintenance_figure_io_read_kb_per_s", 1.0)
    assert figure_metric("handler_rss_kb") == ("trading_maintenance_figure_handler_rss_bytes", 1024.0)


def test_written_whole_where_the_configuration_says(tmp_path):
    writer = LedgerWriter(tmp_path / "reports")
    add_run(writer, START, "daily", [case("SVC-001", "test_svc[a]", "passed")])
    writer.close()
    target = tmp_path / "node-exporter" / "trading.prom"
    settings = Settings.model_validate({"reports": {"prometheus_textfile": str(target)}})
    index.after_run(tmp_path / "reports", settings)
    assert "trading_maintenance_check_failing{" in target.read_text()
    assert not (tmp_path / "reports" / "trading-maintenance.prom").exists()
    assert [p.name for p in target.parent.iterdir()] == ["trading.prom"], "no temporary file left beside it"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed: as root, `make setup` installs Debian's prometheus (TEST_DEPS)")
def test_promtool_accepts_the_textfile(textfile):
    checked = subprocess.run(["promtool", "check", "metrics"], input=textfile.read_text(), capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout + checked.stderr)
