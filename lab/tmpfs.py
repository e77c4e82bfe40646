"""A small tmpfs standing in for the box's root filesystem, so `disk-full` can really fill a disk.

Only root can mount; everywhere else the lab works without it and `disk-full` is unavailable.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SIZE_MIB = 64
FILLER = "filler.bin"


def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


def mount(path: Path) -> tuple[bool, str]:
    """Mount (or keep) the tmpfs; returns (mounted, why not)."""
    if is_mounted(path):
        return True, ""
    if os.geteuid() != 0:
        return False, "not root"
    path.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m,mode=0755", "trading-lab-disk", str(path)],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    if result.returncode != 0:
        return False, (result.stderr or result.stdout).strip()
    return True, ""


def unmount(path: Path) -> str:
    """Unmount if mounted; returns an error text or ''."""
    if not is_mounted(path):
        return ""
    for args in (["umount", str(path)], ["umount", "-l", str(path)]):
        try:
            result = subprocess.run(args, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
        if result.returncode == 0:
            return ""
    return (result.stderr or result.stdout).strip()


def usage_percent(path: Path) -> float:
    st = os.statvfs(path)
    return 100.0 * (st.f_blocks - st.f_bfree) / st.f_blocks if st.f_blocks else 0.0


def fill(path: Path, percent: float = 92.0) -> None:
    """Write real bytes (tmpfs has no sparse savings for written pages) up to `percent` used."""
    st = os.statvfs(path)
    total, used = st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize
    filler = Path(path) / FILLER
    if filler.exists():
        used -= filler.stat().st_blocks * 512
    wanted = max(int(total * percent / 100) - used, 0)
    chunk = b"\0" * (1 << 20)
    with filler.open("wb") as out:
        while wanted > 0:
            out.write(chunk[: min(wanted, len(chunk))])
            wanted -= len(chunk)


def unfill(path: Path) -> None:
    (Path(path) / FILLER).unlink(missing_ok=True)
