"""Monitoring Configuration 1-2 (MON-001..003): the guide's monitoring-thresholds.json against [resources], the
network latency against its levels, and the application's answer times as figures.

The file is parsed here without the lab; the checks run as cron runs them against the shared lab, which
writes the guide's file (lab/hardware.py): `thresholds-differ` edits two of its levels, `exchange-slow` makes
the exchange answer 700 ms late through the tunnel (over the 500 ms warning, under the 1000 ms critical).
"""

from __future__ import annotations

import pytest

from configuration import load
from conftest import config_with, run_cadence
from lab import hardware as recorded
from probes.monitoring import differences, parse_thresholds


def test_the_guides_file_is_read_and_agrees_with_the_suites_defaults(tmp_path):
    thresholds = parse_thresholds("m.json", recorded.THRESHOLDS)
    assert thresholds.levels["memory"] == {"warning": 80, "critical": 90}
    assert thresholds.latency_ms == {"warning": 500, "critical": 1000}
    config = tmp_path / "maintenance.toml"
    config.write_text("[resources]\n")  # the suite's defaults
    assert differences(thresholds, load(config)) == []
    assert differences(parse_thresholds("m.json", recorded.DIFFERING), load(config)) == [
        "cpu.warning: 80 in the file, 70 in [resources.cpu]", "disk.critical: 90 in the file, 85 in [resources.disk]"]


@pytest.mark.parametrize(("data", "said"), [
    ({**recorded.THRESHOLDS, "network": {"latency_warning": 500}}, "m.json: network.latency_critical is None, not a "
                                                                   "number: write the guide's"),
    ({**recorded.THRESHOLDS, "cpu": {"warning": "70", "critical": 85}}, "m.json: cpu.warning is '70', not a number"),
    ([1, 2], "m.json: not a JSON object"),
])
def test_a_file_without_a_level_is_named_not_guessed(data, said):
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        parse_thresholds("m.json", data)


# -- the checks, on the shared lab


def daily(config, tmp_path):
    return run_cadence(config, tmp_path / "daily", "-k", "monitoring", cadence="daily")


def weekly(config, tmp_path):
    return run_cadence(config, tmp_path / "weekly", "-k", "monitoring", cadence="weekly")


def test_the_healthy_lab_agrees_and_answers_in_time_with_its_figures(healthy_lab, lab_config, tmp_path):
    done = daily(lab_config, tmp_path)
    assert done.returncode == 0 and {r.check_id for r in done.results} == {"MON-002", "MON-003"}, done.output
    assert {r.properties["verdict"] for r in done.results} == {"passed"}, done.output
    assert 0 < int(done.only("MON-002", "warning").properties["network_latency_ms"]) < 500
    figures = done.only("MON-003").properties
    assert int(figures["api_response_ms"]) >= 0 and int(figures["database_answer_ms"]) >= 0
    assert figures["severity"] == "info"
    agree = weekly(healthy_lab.config_path, tmp_path)  # the lab's own file: lab_config relaxes the CPU levels
    assert agree.only("MON-001").properties["verdict"] == "passed", agree.output


def test_thresholds_that_differ_are_each_named(healthy_lab, tmp_path):
    healthy_lab.inject("thresholds-differ")
    done = weekly(healthy_lab.config_path, tmp_path)
    result = done.only("MON-001")
    assert result.properties["verdict"] == "failed" and result.properties["thresholds_differing"] == "2"
    assert ("monitoring-thresholds.json and the suite's [resources] disagree on 2 level(s): cpu.warning: 80 in the "
            "file, 70 in [resources.cpu]; disk.critical: 90 in the file, 85 in [resources.disk]") in result.message


def test_a_slow_exchange_fails_the_warning_level_only(healthy_lab, lab_config, tmp_path):
    healthy_lab.inject("exchange-slow")
    done = daily(lab_config, tmp_path)
    warning, critical = done.only("MON-002", "warning"), done.only("MON-002", "critical")
    assert (warning.properties["verdict"], critical.properties["verdict"]) == ("failed", "passed"), done.output
    assert int(warning.properties["network_latency_ms"]) >= 700
    assert "the exchange answered through the tunnel in 7" in warning.message
    assert "ms; warning threshold 500 ms (over by " in warning.message


def test_a_missing_thresholds_file_is_unknown_naming_it(healthy_lab, tmp_path):
    gone = tmp_path / "nowhere" / "monitoring-thresholds.json"
    config = config_with(healthy_lab.config_path, tmp_path / "gone.toml", {"monitoring": {"thresholds_file": str(gone)}})
    done = weekly(config, tmp_path)
    result = done.only("MON-001")
    assert result.properties["verdict"] == "unknown", done.output
    assert f"{gone} does not exist: write the guide's monitoring-thresholds.json there" in result.message
