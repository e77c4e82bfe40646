"""The agent's error handler processes (the guide's Error Handling Monthly 2): trading-error-handler,
ai-error-handler, network-error-handler and system-error-manager, each a supervised process whose own
name (argv[0]'s base name) is exactly the handler's.

Each is `sleep infinity` started through a link named as the handler in $LAB_DIR/bin: a real process
that does nothing, whose name is what the suite looks for (the real handlers' work is the agent's).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.errors import LabError

HANDLERS = ["trading-error-handler", "ai-error-handler", "network-error-handler", "system-error-manager"]
STOPPED_BY_FAULT = "network-error-handler"  # the fault handler-stopped


def bin_dir(root: Path) -> Path:
    return Path(root) / "bin"


def command(root: Path, name: str) -> list[str]:
    return [str(bin_dir(root) / name), "infinity"]


def ensure_links(root: Path) -> None:
    """$LAB_DIR/bin/<handler> -> sleep, for every handler."""
    sleep = shutil.which("sleep")
    if sleep is None:
        raise LabError("the lab's error handlers need coreutils' sleep, which is not on PATH")
    directory = bin_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    for name in HANDLERS:
        link = directory / name
        if link.is_symlink() and link.readlink() == Path(sleep):
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(sleep)
