"""The lab's hardware and monitoring records: recorded smartctl output, the guide's monitoring-thresholds.json,
and the operators' attestations of the manual tasks.

No real disk with SMART exists here (a VM's virtio disk has none), so the lab's [hardware] smartctl is a
stand-in (lab/smartctl.py) that prints the JSON smartctl 7 prints for a disk, recorded in
$LAB_DIR/hardware/smart/<disk>.json, with its exit status. The samples follow smartmontools' JSON output
(`smartctl --json -a`, json_format_version 1.0) for a healthy NVMe disk (an Intel NUC's) and a SATA SSD;
`disk-failing` replaces the SATA SSD's by one with reallocated and pending sectors whose overall health
fails (exit status 8 + 16 + 64: DISK FAILING, prefail attribute at threshold, errors in its log) and which
is worn (Wear_Leveling_Count normalised 12: 88 % of its rated life used).
"""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from lab.paths import REPO, LabPaths

NVME = "/dev/nvme0"
SATA = "/dev/sda"
THRESHOLDS = {"cpu": {"warning": 70, "critical": 85}, "memory": {"warning": 80, "critical": 90},
              "disk": {"warning": 75, "critical": 85}, "network": {"latency_warning": 500, "latency_critical": 1000}}
# thresholds-differ: the file someone edited by hand and the suite's [resources] never heard of.
DIFFERING = {**THRESHOLDS, "cpu": {"warning": 80, "critical": 85}, "disk": {"warning": 75, "critical": 90}}
SLOW_EXCHANGE_SECONDS = 0.7  # exchange-slow: over the 500 ms warning, under the 1000 ms critical
TASK_AGE_DAYS = {"weekly": 2, "monthly": 10, "quarterly": 30}  # the healthy lab: every task done in time
# The guide's manual tasks and their cadences, as [tasks] has them by default (the lab imports none of the suite).
TASKS = {"strategy-review": "weekly", "system-optimization": "weekly", "strategy-optimization": "monthly",
         "configuration-review": "monthly", "documentation": "monthly", "hardware-cleaning": "quarterly",
         "security-review": "quarterly"}
BOX_NAME = "trading-box"  # the lab's [host] name (the default)
OVERDUE_TASK, OVERDUE_DAYS = "strategy-optimization", 40  # task-overdue: a monthly task last done 40 days ago

HEALTHY_NVME = {
    "json_format_version": [1, 0],
    "smartctl": {"version": [7, 3], "svn_revision": "5338", "platform_info": "x86_64-linux-6.1.0-13-amd64",
                 "build_info": "(local build)", "argv": ["smartctl", "--json", "-a", NVME], "exit_status": 0},
    "local_time": {"time_t": 1764115200, "asctime": "Wed Nov 26 00:00:00 2025 UTC"},
    "device": {"name": NVME, "info_name": NVME, "type": "nvme", "protocol": "NVMe"},
    "model_name": "Samsung SSD 970 EVO Plus 500GB", "serial_number": "S4EVNX0N123456A",
    "firmware_version": "2B2QEXM7",
    "nvme_pci_vendor": {"id": 5197, "subsystem_id": 5197},
    "nvme_ieee_oui_identifier": 9528, "nvme_controller_id": 4, "nvme_version": {"string": "1.3", "value": 66304},
    "nvme_number_of_namespaces": 1,
    "user_capacity": {"blocks": 976773168, "bytes": 500107862016},
    "logical_block_size": 512,
    "smart_support": {"available": True, "enabled": True},
    "smart_status": {"passed": True, "nvme": {"value": 0}},
    "nvme_smart_health_information_log": {
        "critical_warning": 0, "temperature": 38, "available_spare": 100, "available_spare_threshold": 10,
        "percentage_used": 3, "data_units_read": 12345678, "data_units_written": 23456789,
        "host_reads": 234567890, "host_writes": 345678901, "controller_busy_time": 1234, "power_cycles": 87,
        "power_on_hours": 8760, "unsafe_shutdowns": 12, "media_errors": 0, "num_err_log_entries": 0,
        "warning_temp_time": 0, "critical_comp_time": 0, "temperature_sensors": [38, 41]},
    "temperature": {"current": 38},
    "power_cycle_count": 87, "power_on_time": {"hours": 8760},
}


def _attribute(number, name, value, worst, thresh, raw, flags="-O--CK", prefailure=False):
    return {"id": number, "name": name, "value": value, "worst": worst, "thresh": thresh,
            "when_failed": "FAILING_NOW" if prefailure and value <= thresh else "",
            "flags": {"value": 50 if prefailure else 50 - 1, "string": flags, "prefailure": prefailure,
                      "updated_online": True, "performance": False, "error_rate": False, "event_count": True,
                      "auto_keep": True},
            "raw": {"value": raw, "string": str(raw)}}


def _sata(passed: bool, reallocated: int, pending: int, uncorrectable: int, wear: int, temperature: int,
          exit_status: int) -> dict:
    return {
        "json_format_version": [1, 0],
        "smartctl": {"version": [7, 3], "svn_revision": "5338", "platform_info": "x86_64-linux-6.1.0-13-amd64",
                     "build_info": "(local build)", "argv": ["smartctl", "--json", "-a", SATA],
                     "exit_status": exit_status,
                     **({"messages": [{"string": "SMART overall-health self-assessment test result: FAILED!",
                                       "severity": "error"}]} if not passed else {})},
        "device": {"name": SATA, "info_name": f"{SATA} [SAT]", "type": "sat", "protocol": "ATA"},
        "model_family": "Crucial/Micron Client SSDs", "model_name": "Crucial_CT500MX200SSD1",
        "serial_number": "1543F0123456", "firmware_version": "MU03",
        "user_capacity": {"blocks": 976773168, "bytes": 500107862016},
        "rotation_rate": 0,
        "smart_support": {"available": True, "enabled": True},
        "smart_status": {"passed": passed},
        "ata_smart_attributes": {"revision": 16, "table": [
            _attribute(1, "Raw_Read_Error_Rate", 100, 100, 0, 0, "-O--CK"),
            _attribute(5, "Reallocate_NAND_Blk_Cnt", 100 if not reallocated else 3, 100 if not reallocated else 3,
                       10, reallocated, "PO--CK", prefailure=True),
            _attribute(9, "Power_On_Hours", 100, 100, 0, 21422),
            _attribute(12, "Power_Cycle_Count", 100, 100, 0, 312),
            _attribute(173, "Ave_Block-Erase_Count", wear, wear, 0, 1321),
            _attribute(177, "Wear_Leveling_Count", wear, wear, 0, 1321),
            _attribute(194, "Temperature_Celsius", 100 - temperature, 50, 0, temperature),
            _attribute(197, "Current_Pending_ECC_Cnt", 100, 100, 0, pending),
            _attribute(198, "Offline_Uncorrectable", 100, 100, 0, uncorrectable, "----CK"),
            _attribute(202, "Percent_Lifetime_Remain", wear, wear, 1, 100 - wear, "P---CK", prefailure=True),
        ]},
        "temperature": {"current": temperature},
        "power_cycle_count": 312, "power_on_time": {"hours": 21422},
    }


HEALTHY_SATA = _sata(True, 0, 0, 0, wear=94, temperature=34, exit_status=0)
FAILING_SATA = _sata(False, 1104, 24, 24, wear=12, temperature=71, exit_status=8 | 16 | 64)


def smart_dir(paths: LabPaths) -> Path:
    return paths.root / "hardware" / "smart"


def tasks_file(paths: LabPaths) -> Path:
    return paths.root / "records" / "tasks.json"


def thresholds_file(paths: LabPaths) -> Path:
    return paths.config_dir / "monitoring-thresholds.json"


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _sample_name(disk: str) -> str:
    return disk.rsplit("/", 1)[-1] + ".json"


def regenerate(paths: LabPaths, now: datetime) -> None:
    """The healthy records: two healthy disks, the guide's thresholds, every task attested in time."""
    _write_json(smart_dir(paths) / _sample_name(NVME), HEALTHY_NVME)
    _write_json(smart_dir(paths) / _sample_name(SATA), HEALTHY_SATA)
    _write_json(thresholds_file(paths), THRESHOLDS)
    done = {task: {"when": (now - timedelta(days=TASK_AGE_DAYS[cadence])).isoformat(timespec="seconds"),
                   "who": "lab", "note": "done (the lab's record)"}
            for task, cadence in TASKS.items()}
    _write_json(tasks_file(paths), {BOX_NAME: done})


def disk_failing(paths: LabPaths, now: datetime | None = None) -> None:
    _write_json(smart_dir(paths) / _sample_name(SATA), copy.deepcopy(FAILING_SATA))


def thresholds_differ(paths: LabPaths, now: datetime | None = None) -> None:
    _write_json(thresholds_file(paths), DIFFERING)


def task_overdue(paths: LabPaths, now: datetime | None = None) -> None:
    now = now or datetime.now().astimezone()
    records = json.loads(tasks_file(paths).read_text())
    for tasks in records.values():
        tasks[OVERDUE_TASK] = {"when": (now - timedelta(days=OVERDUE_DAYS)).isoformat(timespec="seconds"),
                               "who": "alice", "note": "tuned the grid strategy's spacing"}
    _write_json(tasks_file(paths), records)


def config_sections(paths: LabPaths, python: str) -> list[tuple[str, dict]]:
    return [
        ("hardware", {"smartctl": [python, str(REPO / "lab" / "smartctl.py"), str(smart_dir(paths))],
                      "disks": [NVME, SATA], "smartctl_timeout_seconds": 20}),
        ("tasks", {"file": tasks_file(paths), "grace_days": 3}),
        ("monitoring", {"thresholds_file": thresholds_file(paths)}),
    ]
