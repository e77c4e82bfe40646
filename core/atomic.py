"""Files that are either wholly old or wholly new: what a run killed mid-write must leave behind."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# A writer killed between creating its temporary file and renaming it leaves the file behind; one
# that old is nobody's any more (a write takes milliseconds), so the next run removes it.
STALE_SECONDS = 3600


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, flush to disk, then rename over it; readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


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
