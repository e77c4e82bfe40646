"""Keeping secrets out of everything a human or a log file can read.

The Telegram token is part of the URL path (/bot<token>/sendMessage), so it shows up in requests'
exception messages and in urllib3's DEBUG log of every request. Reasons, spool entries and logs
all pass through a Redactor; `install` makes logging itself redact every record.

Two passes: the secrets the configuration knows, in every form they take in a URL or JSON; then the
usual shapes of a secret in text the suite did not write (a log line, a diagnostic's output, an
exchange's error), masked whether the configuration knows them or not: `Authorization:` headers,
bearer tokens, `password=`/`api_key: `/`"token": "..."` assignments, a URL's password, private keys.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from core.text import LONG_LIMIT, LONG_TAIL, shown

MASK = "***"
SHORTEST = 6  # a shorter piece is too likely to be an ordinary word of a report
ELLIPSIS = "…"

# What a name calls secret: `DB_PASSWORD`, `x-api-key`, `apiSecret`, `signature` (an exchange's signed
# request), `private_key`. Not `pass` alone: "passed=3" is a count.
_SECRET_NAME = (r"(?:passw(?:or)?d|passphrase|pwd|secret|token|api[ _-]?key|access[ _-]?key|private[ _-]?key"
                r"|credentials?|signature)")
# Each shape: the pattern and what its match becomes. Every quantifier is bounded or anchored on a
# literal, so a 5 MB hostile line costs one pass, not one per character.
SHAPES: list[tuple[re.Pattern, str]] = [
    # A private key block, with or without its END line (a tail of a log can start or end inside one).
    # Its body: whole lines of base64 (indented, or joined by a JSON `\n`) and `Proc-Type: ...` headers,
    # nothing else, so a marker planted in a log masks no more than a key would take.
    (re.compile(r"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)"
                r"(?:(?:\r?\n|\\[rn]|[ \t]){1,40}(?:[A-Za-z0-9+/=]{1,100}|[A-Za-z-]{1,30}: [^\r\n]{0,200})"
                r"(?=[\r\n]|\\[rn]|-----END|\Z))*"
                r"(?:(?:\r?\n|\\[rn]|[ \t]){0,40}(-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----))?"),
     rf"\1{MASK}\2"),
    # `Authorization: Basic ...`, `"authorization": "Bearer ..."`: the rest of the header's value.
    (re.compile(r"""(?i)\b((?:proxy-)?authori[sz]ation["']?[ \t]*[:=][ \t]*["']?)[^\r\n"']+"""), rf"\1{MASK}"),
    (re.compile(r"\b([Bb]earer[ \t]+)[A-Za-z0-9\-._~+/]{6,}=*"), rf"\1{MASK}"),
    # `password=...`, `API_KEY: ...`, `"token": "..."` (a quoted value whole, spaces and all). Unquoted and not
    # right after `=`, a value is a secret from SHORTEST characters on: "without credentials: it serves" is prose.
    (re.compile(rf"""(?i)({_SECRET_NAME}[\w.-]{{0,40}}["']?[ \t]*[=:][ \t]*["']?)"""
                r"""(?:(?<=")[^"\r\n]+|(?<=')[^'\r\n]+|(?<==)[^\s"',;&{}()<>\[\]]+"""
                rf"""|[^\s"',;&{{}}()<>\[\]]{{{SHORTEST},}})"""), rf"\1{MASK}"),
    # `invalid api key 7Hx0...`: an exchange's key named but not assigned.
    (re.compile(r"(?i)\b(api[ _-]?key[ \t]+)[A-Za-z0-9_\-]{16,}"), rf"\1{MASK}"),
    # `postgresql://user:password@host`: a URL's password.
    (re.compile(r"(://[^\s/:@]{1,200}:)[^\s/@]{1,200}@"), rf"\1{MASK}@"),
]


def mask_shapes(text: str) -> str:
    """The second pass: every usual shape of a secret in `text`, masked."""
    for pattern, replacement in SHAPES:
        text = pattern.sub(replacement, text)
    return text


def url_shown(url: str) -> str:
    """A secret URL as it may be shown: its scheme and host, `https://hooks.slack.com/…`. The path, the
    query and the user-info are where a hook's token lives."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is no number: not shown
        port = ""
    return f"{parts.scheme}://{host}{port}/{ELLIPSIS}"


def url_secrets(url: str, path_is_secret: bool = False) -> list[str]:
    """The forms a secret URL leaks in: whole, its query (`?token=...`) and each value in it, its
    user-info password, and (a webhook's token, healthchecks.io's uuid) its path, alone and after the
    host. urllib3's DEBUG line names the path and query apart from the host."""
    parts = urlsplit(url)
    found = [url, parts.query, parts.password or ""]
    found += [value for _, value in parse_qsl(parts.query)]
    if path_is_secret:
        path = parts.path.rstrip("/")
        found += [path, f"{parts.netloc}{path}"] if path else []
    return [piece for piece in found if len(piece) >= SHORTEST]


def _form_pattern(form: str) -> str:
    """A URL path (`/trading`) is masked only where it is a path of its own, not the tail of another
    (`/var/log/trading-agent`); any other form wherever it is."""
    if form.startswith("/"):
        return rf"(?<![\w.~%/-]){re.escape(form)}(?![\w.~%-])"
    return re.escape(form)


class Redactor:
    """Masks the `secrets` the configuration knows, then (`shapes`) the usual shapes of any other."""

    def __init__(self, secrets: Iterable[str], shapes: bool = True):
        forms: dict[str, str] = {}
        for secret in secrets:
            if secret:
                # The forms a secret takes in a URL (path or query) or inside a JSON string.
                for form in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
                             json.dumps(secret)[1:-1]):
                    forms.setdefault(form, MASK)
                if secret.startswith(("http://", "https://")):
                    forms[secret] = url_shown(secret)  # whole, a URL still says where it leads
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._shown = forms
        self._pattern = re.compile("|".join(map(_form_pattern, ordered))) if ordered else None
        self.shapes = shapes

    def text(self, value: object) -> str:
        text = value if isinstance(value, str) else str(value)
        if self._pattern:
            text = self._pattern.sub(lambda match: self._shown.get(match.group(), MASK), text)
        return mask_shapes(text) if self.shapes else text

    def __bool__(self) -> bool:
        return self._pattern is not None or self.shapes


class RedactingFilter(logging.Filter):
    """Rewrites a record in place: the formatted message, the traceback and the stack, redacted, then
    shown as text (core/text.py: control characters escaped, at most LONG_LIMIT bytes), since a record
    may quote a log line or a server's answer and reaches the terminal and the runs log.

    The message is formatted here (msg % args) rather than redacting args one by one, because an
    argument may be any object (an exception, a URL) whose str() holds the secret.
    """

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must still be logged, just not formatted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.text(message), ()
        if record.exc_info:
            # The formatter prints exc_text when set and exc_info is gone: the raw exception can't leak.
            record.exc_text = self.text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)
        return True

    def text(self, text: str) -> str:
        return shown(self.redactor.text(text), LONG_LIMIT, LONG_TAIL)


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
