"""Files that are either wholly old or wholly new: what a run killed mid-write must leave behind."""

from __future__ import annotations

import time
from pathlib import Path

from core import rootfiles

# A writer killed between creating its temporary file and renaming it leaves the file behind; one
# that old is nobody's any more (a write takes milliseconds), so the next run removes it.
STALE_SECONDS = 3600


def write_atomically(path: Path, text: str, mode: int = rootfiles.PRIVATE, group: str | int | None = None) -> None:
    """Write beside the target, flush to disk, then rename over it; readers see old or new, never half.
    The file has its mode (0600 unless said) and group from its first byte; as root, only in a directory only
    root can change, never through a link (core/rootfiles.py)."""
    rootfiles.replace(path, text, mode, group)


def remove_stale_temporaries(directory: Path, patterns: tuple[str, ...] = (".*.tmp",),
                             older_than: float = STALE_SECONDS) -> list[Path]:
    """Temporary files of interrupted writes in `directory` (write_atomically's `.NAME.*.tmp`)."""
    removed = []
    for pattern in patterns:
        for path in directory.glob(pattern):
            try:
                if time.time() - path.lstat().st_mtime > older_than:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    return removed
