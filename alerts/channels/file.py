"""The local file channel: one JSON object a line, the alert of last resort that needs no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

from alerts.channel import Transient, channel
from alerts.message import Message
from configuration.alerts import FILE_CHANNEL


def append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    # One write per line on an O_APPEND file: concurrent runs never interleave inside a line.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@channel(FILE_CHANNEL)
class FileChannel:
    """Configured by `[alerts] file`, its path; always on."""

    def __init__(self, path: Path, redactor=None):
        self.path = path

    def send(self, message: Message) -> None:
        try:
            append(self.path, message.alert.as_dict())
        except OSError as error:
            raise Transient(f"cannot append to {self.path}: {error.strerror or error}") from None
