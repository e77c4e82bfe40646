"""What the update checks read on the box itself (standard library only: run by the box's python3 over
SSH, in-process locally; see probes/host.py `Box.call`)."""

import os


def reboot_required(flag: str, packages_file: str) -> dict:
    """Whether the flag file (Debian's /var/run/reboot-required) exists, and the packages that asked for
    the reboot (its .pkgs, one a line, in order, without repeats). No flag: no reboot needed. A flag or
    a list that exists but cannot be read raises (PermissionError), so the check is UNKNOWN."""
    if not os.path.lexists(flag):
        return {"required": False, "packages": [], "since": None}
    since = os.stat(flag).st_mtime
    with open(flag, encoding="utf-8", errors="replace"):
        pass  # readable, or PermissionError
    packages = []
    try:
        with open(packages_file, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name = line.strip()
                if name and name not in packages:
                    packages.append(name)
    except FileNotFoundError:
        pass  # some packages set the flag alone
    return {"required": True, "packages": packages, "since": since}
