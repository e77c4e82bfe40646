"""Text from outside stays text: shown, never obeyed, and never more of it than a report can hold.

The agent user writes its logs, and the exchange's answers end up in them; the suite quotes such lines
in findings, figures, alerts and on the operator's terminal. There an escape sequence is a command to
the terminal (an OSC sequence hid the rest of a summary) and a 5 MB line made a 141 MB report. So text
the suite did not write is shown through `printable` (control characters escaped) and, where it is
recorded, `shown` (escaped and capped, saying how much was cut).
"""

from __future__ import annotations

import re
from collections.abc import Callable

LIMIT = 4096  # bytes of a finding's message, of a figure: a report stays small whatever the logs hold
LONG_LIMIT = 32 * 1024  # bytes of a traceback, a captured output, an attachment
LONG_TAIL = 8 * 1024  # of those, kept from the end: where a traceback says what failed, and where
MARGIN = 16 * 1024  # around what is shown of a long text, redacted too: a secret (a private key) across the edge

# Every control character but tab and newline (C0, DEL, C1); the bidirectional overrides and isolates,
# which make a line read otherwise than it is; lone surrogates (bytes no codec could read, kept by
# surrogateescape), which no terminal can print.
_CONTROL_CODES = [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F),
                  *range(0x2066, 0x206A), *range(0xD800, 0xE000)]
ESCAPES = {code: f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" for code in _CONTROL_CODES}
_CLASS = "\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff"
CONTROL = re.compile(f"[{_CLASS}]+")
_RUNS = re.compile(f"[{_CLASS}]+|[^{_CLASS}]+")  # the text as alternating runs: control, ordinary


def printable(text: str) -> str:
    """`text` with each control character shown as its escape (`\\x1b`, `\\x07`, `\\u009b`); newlines and
    tabs stay, so a multi-line output still reads as lines."""
    return CONTROL.sub(lambda run: run.group().translate(ESCAPES), text)


def size(text: str) -> int:
    """Bytes of `text` in UTF-8 (a lone surrogate counts as the three bytes it was written as)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def cut_note(cut: int) -> str:
    return f"… [cut {cut:,} bytes]"


def shown(text: str, limit: int = LIMIT, tail: int = 0, redact: Callable[[str], str] | None = None) -> str:
    """`text` as the suite records and shows it: printable, and at most `limit` bytes with the note of
    what was cut (`… [cut 1,048,000 bytes]`, counted in bytes of `text`). `tail`: bytes of those kept from
    the end of `text`, the cut then falls in the middle. `redact` (core/redact.py) masks secrets before
    anything is cut, so no part of one is shown; of a long text, only the parts that can be shown (and a
    margin for a secret across their edge) pass through it. Shown again, the result is unchanged."""
    if redact is not None and len(text) > limit + tail + 2 * MARGIN:
        end = redact(text[-(tail + MARGIN):]) if tail else ""
        return _cut(redact(text[:limit + MARGIN]), end, size(text), limit, tail)
    if redact is not None:
        text = redact(text)
    if len(text) * 6 <= limit:  # an escape takes at most 6 bytes: it fits, whatever it holds
        return printable(text)
    whole = printable(text[:limit + 1])  # every character shows as a byte at least: no more can fit
    if len(text) <= limit and size(whole) <= limit:
        return whole
    return _cut(text, text, size(text), limit, tail)


def _cut(start: str, end: str, total: int, limit: int, tail: int) -> str:
    """The beginning of `start` and (`tail` bytes) the end of `end`, printable, `limit` bytes in all with
    the note of how many of the `total` bytes were cut between them."""
    budget = limit - len(cut_note(total).encode()) - (1 if tail else 0)
    tail = min(tail, budget // 2)
    shown_end, end_kept = _fit(end, max(len(end) - tail, 0), tail, backwards=True) if tail else ("", 0)
    shown_start, start_kept = _fit(start, 0, budget - size(shown_end), backwards=False)
    return shown_start + cut_note(max(total - start_kept - end_kept, 0)) + ("\n" + shown_end if tail else "")


def _fit(text: str, start: int, budget: int, backwards: bool) -> tuple[str, int]:
    """The longest printable run of `text` from `start` (or from `start` to its end, `backwards`) that
    takes at most `budget` bytes shown, and how many bytes of `text` it shows. Never splits a character
    or an escape."""
    window = text[start:] if backwards else text[start:start + max(budget, 0)]
    runs = [run.group() for run in _RUNS.finditer(window)]
    parts: list[str] = []
    used = kept = 0
    for run in reversed(runs) if backwards else runs:
        if not CONTROL.fullmatch(run):  # ordinary text: shown as it is, cut anywhere between characters
            part = run if used + size(run) <= budget else _within(run, budget - used, backwards)
            parts.append(part)
            used, kept = used + size(part), kept + size(part)
            if part is not run:
                break
            continue
        for char in reversed(run) if backwards else run:  # escapes: whole or not at all
            escape = ESCAPES[ord(char)]
            if used + len(escape) > budget:
                return "".join(reversed(parts) if backwards else parts), kept
            parts.append(escape)
            used, kept = used + len(escape), kept + size(char)
    return "".join(reversed(parts) if backwards else parts), kept


def _within(text: str, budget: int, from_end: bool) -> str:
    """The start (or the end) of `text` that takes at most `budget` bytes of UTF-8, in whole characters."""
    data = text.encode("utf-8")
    at = max(len(data) - budget, 0) if from_end else min(budget, len(data))
    step = 1 if from_end else -1
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:  # a continuation byte: inside a character
        at += step
    return (data[at:] if from_end else data[:at]).decode("utf-8")
