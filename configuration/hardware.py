"""The [hardware] section: the guide's Quarterly 2, Hardware Maintenance (`smartctl -a /dev/sda`, the NUC's
health), read where the box has the disks and sensors; a VM or a container has neither, and its checks
say so (skipped, "not applicable here").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from configuration.section import PathText, Section


class Hardware(Section):
    # smartctl as the box runs it: ["smartctl"] as root, ["sudo", "-n", "smartctl"] for a maintenance user
    # with a sudo rule for it. Each disk is read by `<smartctl> --json -a <disk>`.
    smartctl: list[str] = Field(default=["smartctl"], min_length=1)
    disks: list[PathText] = Field(default=["/dev/sda"])
    smartctl_timeout_seconds: float = Field(default=60, gt=0, le=600)
    # Reallocated (5), pending (197) and offline-uncorrectable (198) sectors, NVMe media errors: more fails.
    max_bad_sectors: int = Field(default=0, ge=0, le=10**9)
    # Wear: NVMe percentage_used, or 100 minus the normalised value of a SATA SSD's wear attribute
    # (177 Wear_Leveling_Count, 231 SSD_Life_Left, 233 Media_Wearout_Indicator).
    max_wear_percent: float = Field(default=80, ge=0, le=100)
    max_disk_temperature_celsius: float = Field(default=65, gt=0, le=150)
    # CPU temperatures (thermal zones and hwmon sensors under sys_dir) and throttling since boot.
    max_cpu_temperature_celsius: float = Field(default=85, gt=0, le=150)
    max_throttle_events: int = Field(default=0, ge=0, le=10**9)
    sys_dir: Path = Path("/sys")
