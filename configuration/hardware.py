"""The [hardware] section: the guide's Quarterly 2, Hardware Maintenance (`smartctl -a /dev/sda`, the NUC's
health), read where the box has the disks and sensors; a VM or a container has neither, and its checks
say so (skipped, "not applicable here").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from configuration.section import PathText, Section


class Hardware(Section):
    """The guide's Quarterly 2, Hardware Maintenance (HW-001..HW-006). Each disk is read by `<smartctl> --json -a
    <disk>` on the box (smartmontools 7 or newer). A VM's virtual disk, a box without smartctl and a machine without
    temperature sensors make their checks \"not applicable here\" (skipped, with the reason)."""

    per_box = True

    smartctl: list[str] = Field(default=["smartctl"], min_length=1,
                                description="smartctl as the box runs it: [\"smartctl\"] as root, [\"sudo\", \"-n\", "
                                            "\"smartctl\"] for a maintenance user with a sudo rule for it.")
    disks: list[PathText] = Field(default=["/dev/sda"],
                                  description="The disks read (an Intel NUC with an NVMe disk: [\"/dev/nvme0\"]).")
    smartctl_timeout_seconds: float = Field(default=60, gt=0, le=600,
                                            description="How long one disk's reading may take.")
    max_bad_sectors: int = Field(default=0, ge=0, le=10**9,
                                 description="Reallocated, pending and offline-uncorrectable sectors (attributes 5, "
                                             "197, 198) or NVMe media errors: more fails.")
    max_wear_percent: float = Field(default=80, ge=0, le=100,
                                    description="Wear: NVMe percentage_used, or 100 minus the normalised value of a "
                                                "SATA SSD's wear attribute (177, 231 or 233): more fails.")
    max_disk_temperature_celsius: float = Field(default=65, gt=0, le=150, description="A disk hotter than this fails.")
    max_cpu_temperature_celsius: float = Field(default=85, gt=0, le=150,
                                               description="A CPU sensor (thermal zones and hwmon sensors under "
                                                           "sys_dir) hotter than this fails.")
    max_throttle_events: int = Field(default=0, ge=0, le=10**9,
                                     description="Thermal throttling counted since boot: more fails (a dusty fan shows "
                                                 "here first).")
    sys_dir: Path = Field(default=Path("/sys"), description="Where the kernel's sensors are read.")
