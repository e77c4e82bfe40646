"""The box's hardware as the guide's Quarterly 2 looks at it: each disk's SMART data (`smartctl --json -a`),
its CPU temperatures and throttling (probes/remote/hardwarescan.py on the box).

smartctl's JSON is parsed here, on the suite's side: only its output travels. What cannot apply on this
box (no smartctl, a disk that is not there, a virtual disk without SMART, no temperature sensor) is a
`NotApplicable` with the reason, which the checks turn into a skip; what should have answered and did not
(smartctl refused by sudo, output that is no JSON) raises, and the check is UNKNOWN.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from configuration import Settings
from probes.host import Box, NotApplicable
from probes.remote import hardwarescan

NOT_FOUND = (126, 127)  # `timeout`'s exit status for a command it cannot run
DEVICE_OPEN_FAILED = 2  # smartctl's exit status bit 1
BAD_SECTOR_IDS = {5: "reallocated", 197: "pending", 198: "offline_uncorrectable"}
WEAR_IDS = (177, 231, 233)
WEAR_NAME = re.compile(r"wear|life", re.IGNORECASE)


@dataclass(frozen=True)
class SmartReading:
    disk: str
    model: str
    protocol: str  # ATA, NVMe, SCSI
    passed: bool | None  # smart_status.passed; None: not said
    bad_sectors: dict[str, int] = field(default_factory=dict)  # reallocated, pending, ..., media_errors
    wear_percent: float | None = None  # percent of the rated life used
    wear_source: str = ""
    temperature_celsius: float | None = None
    messages: tuple[str, ...] = ()

    @property
    def bad_sector_total(self) -> int:
        return sum(self.bad_sectors.values())


def _messages(data: dict) -> list[str]:
    return [m.get("string", "") for m in data.get("smartctl", {}).get("messages", []) if isinstance(m, dict)]


def parse_smart(disk: str, returncode: int, stdout: str, stderr: str = "") -> SmartReading:
    """One disk's SMART reading from `smartctl --json -a DISK`'s output and exit status."""
    if returncode in NOT_FOUND:
        raise NotApplicable(f"smartctl cannot be run on this box ({(stderr or stdout).strip()[:200] or 'not found'}): "
                            "install smartmontools, or set [hardware] smartctl")
    try:
        data = json.loads(stdout)
    except ValueError:
        said = (stderr or stdout).strip().splitlines()
        raise RuntimeError(f"smartctl --json -a {disk} (exit {returncode}) gave no JSON: "
                           f"{said[-1] if said else 'no output'}") from None
    messages = _messages(data)
    status = data.get("smartctl", {}).get("exit_status", returncode)
    if status & DEVICE_OPEN_FAILED and "smart_status" not in data:
        raise NotApplicable(f"{disk}: {'; '.join(messages) or 'smartctl could not open it'} (no such disk here)")
    support = data.get("smart_support", {})
    if support.get("available") is False:
        raise NotApplicable(f"{disk} ({data.get('model_name', data.get('device', {}).get('type', '?'))}) has no "
                            "SMART (a virtual disk?)")
    if "smart_status" not in data:
        raise RuntimeError(f"{disk}: smartctl read no SMART status ({'; '.join(messages) or 'SMART disabled?'}): "
                           f"enable it with smartctl -s on {disk}")
    protocol = data.get("device", {}).get("protocol", "?")
    bad, wear, source = {}, None, ""
    nvme = data.get("nvme_smart_health_information_log")
    if isinstance(nvme, dict):
        bad["media_errors"] = int(nvme.get("media_errors", 0))
        if "percentage_used" in nvme:
            wear, source = float(nvme["percentage_used"]), "NVMe percentage_used"
    for attribute in data.get("ata_smart_attributes", {}).get("table", []):
        number = attribute.get("id")
        if number in BAD_SECTOR_IDS:
            bad[BAD_SECTOR_IDS[number]] = int(attribute.get("raw", {}).get("value", 0))
        elif number in WEAR_IDS and WEAR_NAME.search(attribute.get("name", "")) and wear is None:
            wear = float(100 - attribute.get("value", 100))
            source = f"{number} {attribute.get('name')} normalised {attribute.get('value')}"
    temperature = data.get("temperature", {}).get("current")
    if temperature is None and isinstance(nvme, dict):
        temperature = nvme.get("temperature")
    return SmartReading(disk=disk, model=data.get("model_name", "?"), protocol=protocol,
                        passed=data["smart_status"].get("passed"), bad_sectors=bad, wear_percent=wear,
                        wear_source=source, temperature_celsius=temperature, messages=tuple(messages))


class HardwareProbe:
    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.config = settings.hardware
        self._smart: dict[str, SmartReading | Exception] = {}

    def smart(self, disk: str) -> SmartReading:
        """One smartctl call per disk and run, shared by the disk's checks (a NotApplicable too)."""
        if disk not in self._smart:
            done = self.box.run([*self.config.smartctl, "--json", "-a", disk],
                                timeout=self.config.smartctl_timeout_seconds)
            try:
                self._smart[disk] = parse_smart(disk, done.returncode, done.stdout, done.stderr)
            except (NotApplicable, RuntimeError) as error:
                self._smart[disk] = error
        found = self._smart[disk]
        if isinstance(found, Exception):
            raise found
        return found

    def cpu_temperatures(self) -> list[dict]:
        found = self.box.call(hardwarescan.cpu_temperatures, str(self.config.sys_dir))
        if not found:
            raise NotApplicable(f"no temperature sensor under {self.config.sys_dir}/class/thermal or "
                                f"{self.config.sys_dir}/class/hwmon (a VM or a container)")
        return found

    def throttle_counts(self) -> dict[str, int]:
        found = self.box.call(hardwarescan.throttle_counts, str(self.config.sys_dir))
        if not found:
            raise NotApplicable(f"no thermal_throttle counters under {self.config.sys_dir}/devices/system/cpu "
                                "(a VM, a container, or a CPU that does not count them)")
        return found


def parameters(settings: Settings) -> dict[str, list]:
    return {"disk": list(settings.hardware.disks)}
