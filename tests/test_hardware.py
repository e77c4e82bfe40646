"""Quarterly 2, Hardware Maintenance (HW-001..006): smartctl's JSON parsed, the sensors read, and the checks
end to end on the shared lab.

There is no real disk with SMART here (this VM's virtio disk has none) and no temperature sensor: the
smartctl output is recorded (lab/hardware.py: smartctl 7's JSON for a healthy NVMe disk, a healthy SATA SSD
and a failing one, after smartmontools' documented fields) and served by the lab's stand-in
(lab/smartctl.py); the sensors' readers run on a recorded /sys tree, and on this machine's own /sys, where
the checks say "not applicable here".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cadence
from lab import hardware as recorded
from probes.hardware import NotApplicable, parse_smart
from probes.remote import hardwarescan

SMARTCTL = [sys.executable, str(ROOT / "lab" / "smartctl.py")]


def smartctl(directory: Path, disk: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SMARTCTL, str(directory), "--json", "-a", disk], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def samples(tmp_path):
    directory = tmp_path / "smart"
    directory.mkdir()
    for name, data in (("nvme0", recorded.HEALTHY_NVME), ("sda", recorded.HEALTHY_SATA),
                       ("sdb", recorded.FAILING_SATA)):
        (directory / f"{name}.json").write_text(json.dumps(data))
    return directory


def test_a_healthy_nvme_disk_is_read_from_its_health_log(samples):
    done = smartctl(samples, "/dev/nvme0")
    reading = parse_smart("/dev/nvme0", done.returncode, done.stdout)
    assert done.returncode == 0
    assert (reading.passed, reading.protocol, reading.model) == (True, "NVMe", "Samsung SSD 970 EVO Plus 500GB")
    assert reading.bad_sectors == {"media_errors": 0}
    assert (reading.wear_percent, reading.wear_source) == (3, "NVMe percentage_used")
    assert reading.temperature_celsius == 38


def test_a_failing_sata_ssd_says_its_sectors_wear_and_temperature(samples):
    done = smartctl(samples, "/dev/sdb")
    reading = parse_smart("/dev/sdb", done.returncode, done.stdout)
    assert done.returncode == 8 | 16 | 64  # DISK FAILING, prefail attribute at threshold, error log
    assert reading.passed is False and "FAILED" in reading.messages[0]
    assert reading.bad_sectors == {"reallocated": 1104, "pending": 24, "offline_uncorrectable": 24}
    assert reading.bad_sector_total == 1152
    assert reading.wear_percent == 88 and reading.wear_source.startswith("177 Wear_Leveling_Count")
    assert reading.temperature_celsius == 71


def test_a_healthy_sata_ssd_has_no_bad_sectors(samples):
    done = smartctl(samples, "/dev/sda")
    reading = parse_smart("/dev/sda", done.returncode, done.stdout)
    assert reading.passed and reading.bad_sector_total == 0 and reading.wear_percent == 6


@pytest.mark.parametrize(("returncode", "stdout", "stderr", "said"), [
    (127, "", "timeout: failed to run command 'smartctl': No such file or directory", "smartctl cannot be run"),
    (2, json.dumps({"smartctl": {"exit_status": 2, "messages": [
        {"string": "Smartctl open device: /dev/sda failed: No such device", "severity": "error"}]}}), "",
     "/dev/sda: Smartctl open device: /dev/sda failed: No such device (no such disk here)"),
    (4, json.dumps({"smartctl": {"exit_status": 4}, "device": {"type": "scsi"}, "model_name": "QEMU HARDDISK",
                    "smart_support": {"available": False}}), "", "(QEMU HARDDISK) has no SMART (a virtual disk?)"),
])
def test_what_cannot_apply_here_says_why(returncode, stdout, stderr, said):
    with pytest.raises(NotApplicable, match=r".*" + said.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_smart("/dev/sda", returncode, stdout, stderr)


def test_what_should_have_answered_is_unknown_not_skipped():
    with pytest.raises(RuntimeError, match="gave no JSON: sudo: a password is required"):
        parse_smart("/dev/sda", 1, "", "sudo: a password is required")
    with pytest.raises(RuntimeError, match="no SMART status .* smartctl -s on /dev/sda"):
        parse_smart("/dev/sda", 0, json.dumps({"smartctl": {"exit_status": 0},
                                               "smart_support": {"available": True, "enabled": False}}))


def test_the_sensors_are_read_from_sysfs(tmp_path):
    zone = tmp_path / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("91500\n")
    (zone / "type").write_text("x86_pkg_temp\n")
    broken = tmp_path / "class" / "thermal" / "thermal_zone1"
    broken.mkdir()
    (broken / "temp").write_text("")  # a sleeping device's zone answers nothing
    chip = tmp_path / "class" / "hwmon" / "hwmon2"
    chip.mkdir(parents=True)
    (chip / "name").write_text("coretemp\n")
    (chip / "temp2_input").write_text("47000\n")
    (chip / "temp2_label").write_text("Core 0\n")
    throttle = tmp_path / "devices" / "system" / "cpu" / "cpu0" / "thermal_throttle"
    throttle.mkdir(parents=True)
    (throttle / "core_throttle_count").write_text("0\n")
    (throttle / "package_throttle_count").write_text("17\n")
    assert hardwarescan.cpu_temperatures(str(tmp_path)) == [
        {"sensor": "thermal_zone0 (x86_pkg_temp)", "celsius": 91.5}, {"sensor": "coretemp Core 0", "celsius": 47.0}]
    assert hardwarescan.throttle_counts(str(tmp_path)) == {"cpu0 core": 0, "cpu0 package": 17}


def test_this_machine_without_sensors_has_nothing_to_read():
    readings = hardwarescan.cpu_temperatures("/sys")
    if readings:
        pytest.skip(f"this machine has temperature sensors: {readings[:2]}")
    assert hardwarescan.cpu_temperatures("/sys") == [] and hardwarescan.throttle_counts("/sys") == {}


# -- end to end, on the shared lab


def quarterly(lab_config, tmp_path, *args):
    return run_cadence(lab_config, tmp_path / "reports", "-k", "hardware", *args, cadence="quarterly")


def test_the_healthy_lab_passes_the_disks_and_says_the_sensors_do_not_apply(healthy_lab, lab_config, tmp_path):
    done = quarterly(lab_config, tmp_path)
    verdicts = {result.name: result.properties.get("verdict") for result in done.results}
    disks = {name: verdict for name, verdict in verdicts.items() if "nvme0" in name or "sda" in name}
    assert len(disks) == 8 and set(disks.values()) == {"passed"}, done.output
    assert done.only("HW-003", "nvme0").properties["wear_percent_used"] == "3"
    assert done.only("HW-004", "sda").properties["disk_temperature_celsius"] == "34"
    if hardwarescan.cpu_temperatures("/sys"):
        pytest.skip("this machine has temperature sensors: the not-applicable half needs a machine without")
    for check in ("HW-005", "HW-006"):
        result = done.only(check)
        assert result.outcome == "skipped" and "not applicable here: no " in result.message, done.output
    assert done.returncode == 0, done.output


def test_a_failing_disk_fails_its_checks_with_its_figures(healthy_lab, lab_config, tmp_path):
    healthy_lab.inject("disk-failing")
    done = quarterly(lab_config, tmp_path)
    failed = sorted(result.check_id for result in done.results if result.properties.get("verdict") == "failed")
    assert failed == ["HW-001", "HW-002", "HW-003", "HW-004"], done.output
    assert all("sda" in result.name for result in done.results if result.properties.get("verdict") == "failed")
    assert "/dev/sda (Crucial_CT500MX200SSD1): SMART overall health FAILED" in done.only("HW-001", "sda").message
    sectors = done.only("HW-002", "sda")
    assert "1152 bad sector(s) (reallocated 1104, pending 24, offline_uncorrectable 24); at most 0 allowed " \
           "(over by 1152)" in sectors.message
    assert sectors.properties["reallocated_sectors"] == "1104"
    assert "88 % of its rated life used (177 Wear_Leveling_Count normalised 12); limit 80 % (over by 8)" \
        in done.only("HW-003", "sda").message
    assert "at 71 °C; limit 65 °C (over by 6)" in done.only("HW-004", "sda").message
    assert done.only("HW-001", "sda").properties["severity"] == "critical"
