"""A stand-in for `smartctl --json -a DISK`: prints the JSON recorded for DISK and exits with its exit status.

There is no real disk with SMART in the lab (a VM's virtio disk has none): lab/hardware.py records what
smartctl 7 prints for a healthy NVMe disk and a SATA SSD in DIR/<disk's name>.json. A disk with no record
gets what smartctl says of a device it cannot open (exit status 2, the JSON with its message).

    python lab/smartctl.py DIR --json -a /dev/sda
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1:3] != ["--json", "-a"]:
        print("usage: smartctl.py DIR --json -a DISK (the lab's stand-in reads only that)", file=sys.stderr)
        return 1
    directory, disk = Path(argv[0]), argv[3]
    try:
        data = json.loads((directory / (disk.rsplit("/", 1)[-1] + ".json")).read_text())
    except FileNotFoundError:
        data = {"json_format_version": [1, 0],
                "smartctl": {"version": [7, 3], "argv": ["smartctl", "--json", "-a", disk], "exit_status": 2,
                             "messages": [{"string": f"Smartctl open device: {disk} failed: No such device",
                                           "severity": "error"}]},
                "device": {"name": disk, "info_name": disk, "type": "ata", "protocol": "ATA"}}
    print(json.dumps(data, indent=2))
    return data["smartctl"]["exit_status"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
