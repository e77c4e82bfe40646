"""Keeping secrets out of everything a human or a log file can read.

The Telegram token is part of the URL path (/bot<token>/sendMessage), so it shows up in requests'
exception messages and in urllib3's DEBUG log of every request. Reasons, spool entries and logs
all pass through a Redactor; `install` makes logging itself redact every record.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
SHORTEST = 6  # a shorter piece is too likely to be an ordinary word of a report


# `password=...`, `API_KEY: ...`, `"token": "..."`: a value that a name calls secret, in a log line or a
# config file the suite did not write (the diagnostics bundle masks them whether it knows them or not).
ASSIGNED_SECRET = re.compile(
    r"""(?i)(\b[\w.-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential)[\w.-]*"?\s*[=:]\s*"?)"""
    r"""([^\s"',;&]+)""")


def mask_assigned_secrets(text: str) -> str:
    return ASSIGNED_SECRET.sub(lambda m: m.group(1) + MASK, text)


def url_secrets(url: str, path_is_secret: bool = False) -> list[str]:
    """The forms a secret URL leaks in: whole, its query (`?token=...`) and each value in it, its
    user-info password, and (healthchecks.io: the check's uuid) its path. urllib3's DEBUG line names
    the path and query apart from the host."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    found = [url, parts.query, parts.password or ""]
    found += [value for _, value in parse_qsl(parts.query)]
    if path_is_secret:
        found.append(parts.path.rstrip("/"))
    return [piece for piece in found if len(piece) >= SHORTEST]


class Redactor:
    def __init__(self, secrets: Iterable[str]):
        forms = set()
        for secret in secrets:
            if secret:
                # The forms a secret takes in a URL (path or query) or inside a JSON string.
                forms |= {secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
                          json.dumps(secret)[1:-1]}
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def text(self, value: object) -> str:
        text = value if isinstance(value, str) else str(value)
        return self._pattern.sub(MASK, text) if self._pattern else text

    def __bool__(self) -> bool:
        return self._pattern is not None


class RedactingFilter(logging.Filter):
    """Rewrites a record in place: the formatted message, the traceback and the stack, redacted.

    The message is formatted here (msg % args) rather than redacting args one by one, because an
    argument may be any object (an exception, a URL) whose str() holds the secret.
    """

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must still be logged, just not formatted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redactor.text(message), ()
        if record.exc_info:
            # The formatter prints exc_text when set and exc_info is gone: the raw exception can't leak.
            record.exc_text = self.redactor.text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True


def install(redactor: Redactor) -> Callable[[], None]:
    """Redact every log record in the process, from any logger, for any handler; returns `uninstall`.

    A filter added to the root *logger* does not see records that propagate up from other loggers
    (Python runs logger filters only for records logged on that very logger), and urllib3's DEBUG
    line with the token comes from the "urllib3.connectionpool" logger. Filters on handlers miss
    handlers added later (pytest adds its own). So the filter runs in the record factory, where
    every record is born, before any logger or handler sees it.
    """
    redacting = RedactingFilter(redactor)
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redacting.filter(record)
        return record

    logging.setLogRecordFactory(factory)

    def uninstall() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return uninstall
