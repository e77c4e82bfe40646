"""The benchmarks' baseline store (probes/baselines.py) and `make baseline`'s choice of figures, without a lab:
the first value is recorded with its date, later ones are compared, and a regression is judged the way the
figure goes (a time worse higher, a speed worse lower), a time's noise below the floor forgiven."""

from __future__ import annotations

import json

import pytest

from commands.baseline import chosen
from probes.baselines import API_RESPONSE, DISK_READ, BaselineStore


def test_the_first_value_is_recorded_with_its_date_and_later_ones_compared(tmp_path):
    store = BaselineStore(tmp_path / "state" / "baselines.json")
    first = store.compare("nuc-1", API_RESPONSE, 20.0)
    assert first.first and first.baseline == 20.0
    assert not first.regressed(50, 0)
    assert dict(first.properties())["api_response_ms_change_percent"] == "first run: recorded"
    later = store.compare("nuc-1", API_RESPONSE, 35.0)
    assert not later.first and later.baseline == 20.0 and later.recorded == first.recorded
    assert later.change_percent == pytest.approx(75.0)
    assert dict(later.properties())["api_response_ms_change_percent"] == "+75.0"
    assert "against the baseline 20 ms of " in later.describe() and "(+75.0 %)" in later.describe()
    stored = json.loads((tmp_path / "state" / "baselines.json").read_text())
    assert stored["nuc-1"]["api_response_ms"]["value"] == 20.0  # a comparison never moves the baseline
    assert stored["nuc-1"]["api_response_ms"]["recorded"] == first.recorded


def test_each_box_has_its_own_baseline(tmp_path):
    store = BaselineStore(tmp_path / "baselines.json")
    store.compare("nuc-1", API_RESPONSE, 10.0)
    assert store.compare("nuc-2", API_RESPONSE, 90.0).first
    assert store.compare("nuc-1", API_RESPONSE, 11.0).baseline == 10.0


def test_a_time_regresses_higher_and_a_speed_lower(tmp_path):
    store = BaselineStore(tmp_path / "baselines.json")
    store.record("box", API_RESPONSE, 100.0, "test")
    store.record("box", DISK_READ, 400.0, "test")
    assert store.compare("box", API_RESPONSE, 160.0).regressed(50, 0)  # 60 % slower
    assert not store.compare("box", API_RESPONSE, 140.0).regressed(50, 0)  # 40 %
    assert not store.compare("box", API_RESPONSE, 20.0).regressed(50, 0)  # faster is never a regression
    slower_disk = store.compare("box", DISK_READ, 150.0)  # 62.5 % less MB/s
    assert slower_disk.regression_percent == pytest.approx(62.5) and slower_disk.regressed(50, 0)
    assert not store.compare("box", DISK_READ, 900.0).regressed(50, 0)


def test_a_time_within_the_noise_floor_is_not_a_regression(tmp_path):
    store = BaselineStore(tmp_path / "baselines.json")
    store.record("box", API_RESPONSE, 2.0, "test")
    doubled = store.compare("box", API_RESPONSE, 4.0)  # +100 %, but 2 ms
    assert not doubled.regressed(50, noise_floor_ms=50)
    assert doubled.regressed(50, noise_floor_ms=1)
    store.record("box", DISK_READ, 2.0, "test")  # the floor is for times only
    assert store.compare("box", DISK_READ, 0.5).regressed(50, noise_floor_ms=50)


def test_recording_replaces_the_baseline_on_purpose(tmp_path):
    store = BaselineStore(tmp_path / "baselines.json")
    store.compare("box", API_RESPONSE, 10.0)
    entry = store.record("box", API_RESPONSE, 30.0, "new disk")
    assert entry["why"] == "new disk" and store.get("box", "api_response_ms")["value"] == 30.0
    assert not store.compare("box", API_RESPONSE, 40.0).regressed(50, 0)


def test_a_damaged_store_is_named_not_overwritten(tmp_path):
    path = tmp_path / "baselines.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"baselines.json is not the JSON .* \(make baseline\)"):
        BaselineStore(path).compare("box", API_RESPONSE, 1.0)
    assert path.read_text() == "{not json"


def test_what_names_figures_by_word_or_name_and_refuses_the_unknown():
    assert [f.name for f in chosen("api, disk")] == ["api_response_ms", "disk_read_mb_per_s"]
    assert [f.name for f in chosen("db_query_ms")] == ["db_query_ms"]
    assert len(chosen(None)) == 4
    with pytest.raises(ValueError, match="names no benchmark; known: api, database, disk, error-handling"):
        chosen("cpu")
