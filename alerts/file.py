"""The local file channel: one JSON object a line, the alert of last resort that needs no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

from alerts import Alert


def append(path: Path, alert: Alert) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(alert.as_dict(), ensure_ascii=False) + "\n"
    # One write per line on an O_APPEND file: concurrent runs never interleave inside a line.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
