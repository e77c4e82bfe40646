"""The local file channel: one JSON object a line, the alert of last resort that needs no network."""

from __future__ import annotations

import json
from pathlib import Path

from alerts.channel import Permanent, Transient, channel
from alerts.message import Message
from configuration.alerts import FILE_CHANNEL
from core import rootfiles


def append(path: Path, record: dict) -> None:
    """One write per line on an O_APPEND file: concurrent runs never interleave inside a line. Mode 0600 (alerts
    hold findings), never through a link, as root only in a directory only root can change."""
    rootfiles.append(path, json.dumps(record, ensure_ascii=False) + "\n", rootfiles.PRIVATE)


@channel(FILE_CHANNEL)
class FileChannel:
    """Configured by `[alerts] file`, its path; always on."""

    def __init__(self, path: Path, redactor=None):
        self.path = path

    def send(self, message: Message) -> None:
        try:
            append(self.path, message.alert.as_dict())
        except rootfiles.RefusedFile as error:  # a link, another user's directory: retrying cannot help
            raise Permanent(str(error)) from None
        except OSError as error:
            raise Transient(f"cannot append to {self.path}: {error.strerror or error}") from None
