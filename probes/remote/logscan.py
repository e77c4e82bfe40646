"""Streaming scans of the agent's trading and error logs, equal to the guide's shell pipelines.

The guide reads today's logs with grep and awk (its "Trading Performance
Check" and "Error Log Analysis"):

    grep "TRADE_EXECUTED" trading-DAY.log | wc -l           # the same number as grep -c
    grep "PROFIT" trading-DAY.log | awk '{sum+=$NF} END {print sum}'
    grep -oE "(TE|AI|NE|SE)[0-9]{3}" error-DAY.log | sort | uniq -c | sort -nr | head -10
    grep -oE "(TE|AI|NE|SE)[0-9]{3}" error-DAY.log | sort -u | comm -23 - known-errors.txt

The checks must report the numbers an operator would get from those commands, so this module
reproduces their exact semantics rather than an approximation of them:

* a line counts once however often the word occurs in it (grep counts lines, not occurrences);
* the profit is awk's: the last field split on runs of blanks (space and tab, awk's default FS),
  made a number the way awk does it, with C strtod (the longest numeric prefix; hex, "inf" and
  "nan" included; anything else is 0), and added in file order in double precision;
* error codes are every match grep -o prints, counted per code.

Why it is written this way:

* One pass, streaming: the file is read in large binary chunks (CHUNK_SIZE) and only the partial
  line at the end of a chunk is carried over, so memory does not grow with the file. (It is bounded
  by the chunk size plus the longest line, as for grep and awk, which also hold a whole line.)
* No per-line Python: each chunk's run of complete lines goes whole to a few C routines (``re`` on
  bytes, ``bytes.count``). Python runs once per chunk, and once per line only for rare shapes
  (a field float() cannot read, a last field that contains the word itself).
* Bytes, not text: no decoding cost, and no failure on a stray invalid byte.
* ``.gz`` files (rotated logs) are read through gzip, streaming too.
* A big plain file (PARALLEL_MIN_BYTES, 256 MiB, and up) is cut into
  line-aligned ranges scanned by one worker process per CPU: Python's re is single-threaded and
  slower per byte than grep, which the guide's pipeline also runs as concurrent processes. The
  parts come back in file order and are combined exactly as one pass would (the profit values are
  added in file order). bench/bench_logscan.py measures both against the guide's commands.

Known divergence, deliberate: a log containing NUL bytes is "binary" to grep, which then prints
"binary file matches" instead of the lines, so the guide's PROFIT pipeline would sum nothing; this
module reads every line of such a file as text.
"""

from __future__ import annotations

import functools
import gzip
import math
import operator
import os
import pickle
import re
import subprocess
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# 1 MiB: big enough that per-chunk overhead vanishes, small enough that the chunk stays in the CPU
# cache between the two regex passes made over it.
CHUNK_SIZE = 1 << 20
# Plain files at least this big are scanned by worker processes (starting them costs ~0.1 s).
PARALLEL_MIN_BYTES = 256 << 20
# Size of one worker task. Also bounds what a task returns (the profit values of its lines).
RANGE_BYTES = 16 << 20

# One match per line that contains the word: the match runs to the end of the line, so a second
# occurrence on the same line is swallowed, exactly as grep counts the line once. The empty group
# makes findall return the shared empty bytes object instead of copying each line.
# The pattern starts at the word's rarest letter, X, and checks the rest of the word behind it:
# re looks for a pattern's first letter byte after byte and stops at every candidate, so starting
# at X rather than at T (in every timestamp, in USDT, ...) saves about a third of this pass.
_TRADE_LINE = re.compile(rb"X(?<=TRADE_EX)ECUTED()[^\n]*")
_CRITICAL_LINE = re.compile(rb"CRITICAL()[^\n]*")

# One match per PROFIT line; group 1 is the line's last field when that field starts after the
# line's first PROFIT (the usual "... PROFIT id=T1 pair=BTC_USDT 12.34"). The greedy [^\n]*
# backtracks from the end of the line to the last blank followed by a non-blank, which is where
# awk's $NF starts. When the last field begins before or inside the word ("x 1.5PROFIT"), group 1
# does not take part, findall gives b"" for it, and the chunk goes to the exact slow path.
_PROFIT_LINE = re.compile(rb"PROFIT(?:[^\n]*[ \t]([^ \t\n]+))?[^\n]*")
_BLANKS = re.compile(rb"[ \t]+")  # awk's default field separator (a newline cannot occur in a line)

# grep -oE "(TE|AI|NE|SE)[0-9]{3}". The four prefixes are searched separately because Python's re
# scans for a literal start several times faster than for an alternation (four passes still take
# less than half the time of one). This is exact: two matches can never overlap (a match's second character, E or I,
# and its digits cannot start another match), so grep -o's "leftmost, non-overlapping" matches are
# simply all the places the pattern matches, whichever prefix is looked for first.
ERROR_CODE_PREFIXES = (b"TE", b"AI", b"NE", b"SE")
_ERROR_CODES = tuple(re.compile(re.escape(prefix) + rb"[0-9]{3}") for prefix in ERROR_CODE_PREFIXES)

# C strtod as awk applies it to a field: skip leading white space, take the longest prefix that is a
# hexadecimal or decimal float, an infinity or a NaN; no such prefix means 0.
_STRTOD_PREFIX = re.compile(
    rb"""[ \t\n\v\f\r]*
    (?P<number>[+-]?(?:
        (?P<hex>0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)
      | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?
      | (?P<inf>inf(?:inity)?)
      | (?P<nan>nan(?:\([0-9a-z_]*\))?)
    ))""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class TradingTotals:
    """Today's trading figures, as the guide's trading performance check computes them."""

    trades: int
    """Lines containing TRADE_EXECUTED: ``grep -c TRADE_EXECUTED``."""
    profit_usdt: float
    """``grep PROFIT | awk '{sum+=$NF} END {print sum}'``, to the last bit (0.0 when no line)."""
    profit_lines: int
    """Lines containing PROFIT, i.e. how many values were added into ``profit_usdt``."""


@dataclass(frozen=True)
class ErrorCounts:
    """Today's error codes and critical lines, as the guide's error log analysis reads them."""

    by_code: Counter = field(default_factory=Counter)
    """Every ``grep -oE "(TE|AI|NE|SE)[0-9]{3}"`` match, counted per code (str)."""
    critical_lines: int = 0
    """Lines containing CRITICAL."""
    lines: int = 0
    """Lines in the file (a last line without a newline counts)."""

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        """``sort | uniq -c | sort -nr | head -n``: most frequent first, ties by code descending
        (``sort -r`` also reverses its last-resort whole-line comparison)."""
        return sorted(self.by_code.items(), key=lambda item: (item[1], item[0]), reverse=True)[:n]

    def new_codes(self, known: Iterable[str]) -> list[str]:
        """``sort -u | comm -23 - known-errors.txt``: codes seen today that are not known, sorted."""
        return sorted(set(self.by_code) - set(known))


def scan_trading_log(path: str | Path, *, chunk_size: int = CHUNK_SIZE,
                     workers: int | None = None) -> TradingTotals:
    """Trades and profit of one trading log (plain or ``.gz``), in one streaming pass.

    ``workers``: processes for a big plain file; None chooses (one per CPU from
    PARALLEL_MIN_BYTES up, else none), 1 scans in this process.
    """
    trades = 0
    profit_lines = 0
    profit = 0.0
    for part_trades, part_profits in _parts("trading", path, chunk_size, workers):
        trades += part_trades
        profit_lines += len(part_profits)
        # awk adds in file order; reduce keeps that order (builtin sum() may not: Python 3.12 made
        # it compensated for floats, which would differ from awk in the last bits).
        profit = functools.reduce(operator.add, part_profits, profit)
    return TradingTotals(trades=trades, profit_usdt=profit, profit_lines=profit_lines)


def scan_error_log(path: str | Path, *, chunk_size: int = CHUNK_SIZE,
                   workers: int | None = None) -> ErrorCounts:
    """Error codes, critical lines and line count of one error log (plain or ``.gz``), one pass.

    ``workers`` as for scan_trading_log.
    """
    raw_codes: Counter[bytes] = Counter()
    critical = 0
    lines = 0
    for part_codes, part_critical, part_lines in _parts("error", path, chunk_size, workers):
        raw_codes.update(part_codes)
        critical += part_critical
        lines += part_lines
    by_code = Counter({code.decode("ascii"): count for code, count in raw_codes.items()})
    return ErrorCounts(by_code=by_code, critical_lines=critical, lines=lines)


def trading_figures(path: str, workers: int | None = None) -> dict:
    """scan_trading_log as JSON values: what a box sends back when it scans its own log."""
    totals = scan_trading_log(path, workers=workers)
    return {"trades": totals.trades, "profit_usdt": totals.profit_usdt, "profit_lines": totals.profit_lines}


def error_figures(path: str, workers: int | None = None) -> dict:
    """scan_error_log as JSON values."""
    counts = scan_error_log(path, workers=workers)
    return {"by_code": dict(counts.by_code), "critical_lines": counts.critical_lines, "lines": counts.lines}


def read_known_errors(path: str | Path) -> set[str]:
    """The codes listed in known-errors.txt, one per line.

    Surrounding white space (a CRLF's CR included), blank lines and ``#`` comments are ignored;
    comm would treat those as lines that match no code, so the new-code verdict is the same. A
    missing file raises FileNotFoundError: "nothing is known" and "the list is gone" are different
    findings, and the caller decides.
    """
    known = set()
    with open(path, encoding="utf-8", errors="replace") as listing:
        for line in listing:
            code = line.strip()
            if code and not code.startswith("#"):
                known.add(code)
    return known


# ----------------------------------------------------------------------------------------------
# A window of days (the weekly review): each date's logs, rotated ones included, chosen by the date in
# their name, never by modification time (a log copied or touched keeps its date).

_DATED_NAME = r"^{kind}-(\d{{4}}-\d{{2}}-\d{{2}})\.log(?:\.(\d+))?(\.gz)?$"


def window_dates(newest_days_ago: int, days: int, today: str | None = None) -> list[str]:
    """The `days` dates whose newest is `newest_days_ago` days before today, oldest first. Today is the
    box's local date (the agent names its logs by `date +%F`) unless given (YYYY-MM-DD)."""
    import datetime

    end = (datetime.date.fromisoformat(today) if today else datetime.date.today()) \
        - datetime.timedelta(days=newest_days_ago)
    return [(end - datetime.timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]


def dated_logs(log_dir: str, kind: str, dates: list[str]) -> dict[str, list[str]]:
    """Each date's `kind` logs directly in log_dir: KIND-DATE.log and its rotations (KIND-DATE.log.gz,
    .log.N, .log.N.gz), the oldest rotation first. When a file and its compressed copy are both there
    (a rotation cut short), the plain one is read, not both. A log directory that is not there raises."""
    if not os.path.isdir(log_dir):
        raise FileNotFoundError(f"log directory {log_dir} does not exist (or is not a directory): "
                                "check [paths] log_dir")
    pattern = re.compile(_DATED_NAME.format(kind=re.escape(kind)))
    found: dict[str, dict[str, tuple[int, str]]] = {date: {} for date in dates}
    for name in os.listdir(log_dir):
        match = pattern.match(name)
        path = os.path.join(log_dir, name)
        if not match or match[1] not in found or not os.path.isfile(path):
            continue
        base = name[:-3] if match[3] else name
        if base not in found[match[1]] or not match[3]:
            found[match[1]][base] = (int(match[2] or 0), path)
    return {date: [path for _, path in sorted(files.values(), key=lambda item: -item[0])]
            for date, files in found.items()}


def window_figures(kind: str, log_dir: str, newest_days_ago: int, days: int, today: str | None = None,
                   workers: int | None = None) -> list[dict]:
    """Per date of the window, oldest first: {date, files, figures}, figures None when the date has no log.

    trading: {trades, profit_usdt, profit_lines} of the day, and `window_profit_usdt`, the profit of the
    window up to and including that day added line by line in date order, as awk adds the lines of
    `zcat -f trading-*.log | grep PROFIT | awk '{sum+=$NF}'`. error: {lines, critical_lines, by_code}.
    A file that cannot be read to its end raises, naming it.
    """
    if kind not in _PART_KINDS:
        raise ValueError(f"kind must be one of {sorted(_PART_KINDS)}, not {kind!r}")
    window_profit = 0.0
    result = []
    for date, paths in dated_logs(log_dir, kind, window_dates(newest_days_ago, days, today)).items():
        figures = None
        for path in paths:
            parts = _read_whole(kind, path, workers)
            if kind == "trading":
                figures = figures or {"trades": 0, "profit_usdt": 0.0, "profit_lines": 0}
                for part_trades, part_profits in parts:
                    figures["trades"] += part_trades
                    figures["profit_lines"] += len(part_profits)
                    figures["profit_usdt"] = functools.reduce(operator.add, part_profits, figures["profit_usdt"])
                    window_profit = functools.reduce(operator.add, part_profits, window_profit)
                figures["window_profit_usdt"] = window_profit
            else:
                figures = figures or {"lines": 0, "critical_lines": 0, "by_code": {}}
                for part_codes, part_critical, part_lines in parts:
                    for code, count in part_codes.items():
                        text = code.decode("ascii")
                        figures["by_code"][text] = figures["by_code"].get(text, 0) + count
                    figures["critical_lines"] += part_critical
                    figures["lines"] += part_lines
        result.append({"date": date, "files": paths, "figures": figures})
    return result


def window_lines(kind: str, log_dir: str, newest_days_ago: int, days: int, pattern: str, limit: int,
                 today: str | None = None) -> list[str]:
    """The last `limit` lines of the window's `kind` logs (dates oldest first, each file in order) in
    which the regular expression `pattern` matches (as grep's "recovery.*failed": anywhere in the line),
    each as "FILE: LINE"."""
    import collections

    wanted = re.compile(pattern.encode())
    last: collections.deque = collections.deque(maxlen=max(limit, 0))
    for paths in dated_logs(log_dir, kind, window_dates(newest_days_ago, days, today)).values():
        for path in paths:
            try:
                for data, begin, end in _line_runs(Path(path), CHUNK_SIZE):
                    for line in data[begin:end].splitlines():
                        if wanted.search(line):
                            last.append(f"{os.path.basename(path)}: {line.decode('utf-8', 'replace')}")
            except (OSError, EOFError, zlib.error) as error:
                _unreadable(path, error)
    return list(last)


def _read_whole(kind: str, path: str, workers: int | None) -> list[tuple]:
    """Every part of one log, read to its end before any is used: a damaged file adds nothing."""
    try:
        return list(_parts(kind, path, CHUNK_SIZE, workers))
    except (OSError, EOFError, zlib.error) as error:
        _unreadable(path, error)


def _unreadable(path: str, error: Exception):
    if isinstance(error, PermissionError):
        raise PermissionError(f"{path}: not readable by this user ({error.strerror}): run the suite as a user "
                              "who may read the agent's logs") from None
    raise OSError(f"{path}: cannot be read to its end ({type(error).__name__}: {error}): a damaged log or "
                  "rotation; its figures would be wrong, so none are given") from None


def awk_number(text: bytes) -> float:
    """The number awk makes of a field in arithmetic: C strtod's longest numeric prefix, else 0.

    This is mawk (Debian's and Ubuntu's awk), which hands fields to strtod, so "0x1A" is 26 and
    "inf"/"nan" are accepted; gawk would read those three as 0.
    """
    match = _STRTOD_PREFIX.match(text)
    if match is None:
        return 0.0
    number = match["number"]
    negative = number.startswith(b"-")
    if match["hex"] is not None:
        try:
            return float.fromhex(number.decode("ascii"))
        except OverflowError:  # strtod returns +-HUGE_VAL, i.e. infinity
            return -math.inf if negative else math.inf
    if match["inf"] is not None:
        return -math.inf if negative else math.inf
    if match["nan"] is not None:
        return float("-nan") if negative else float("nan")
    return float(number)  # correctly rounded like glibc strtod; too big gives inf like strtod


# ----------------------------------------------------------------------------------------------
# Parts: what some runs of whole lines contribute, as plain tuples (small, bounded by the lines
# they cover, and cheap to pickle), so the same code serves the one-process scan and the workers.


Run = tuple[bytes, int, int]  # (data, begin, end): data[begin:end] is a run of whole lines


def _trading_part(runs: Iterable[Run]) -> tuple[int, array]:
    """(lines with TRADE_EXECUTED, array("d") of each PROFIT line's value in file order)."""
    trades = 0
    profits = array("d")
    for data, start, end in runs:
        trades += len(_TRADE_LINE.findall(data, start, end))
        fields = _PROFIT_LINE.findall(data, start, end)
        if fields:
            profits.extend(_profit_values(fields, data, start, end))
    return trades, profits


def _error_part(runs: Iterable[Run]) -> tuple[Counter, int, int]:
    """(Counter of error codes as bytes, lines with CRITICAL, lines)."""
    codes: Counter[bytes] = Counter()
    critical = lines = 0
    for data, start, end in runs:
        for pattern in _ERROR_CODES:
            codes.update(pattern.findall(data, start, end))
        critical += len(_CRITICAL_LINE.findall(data, start, end))
        lines += data.count(b"\n", start, end)
        if data[end - 1] != 0x0A:  # only the file's last line can end without a newline
            lines += 1
    return codes, critical, lines


_PART_KINDS = {"trading": _trading_part, "error": _error_part}


def _profit_values(fields: list[bytes], data: bytes, start: int, end: int) -> list[float]:
    """awk's value of each PROFIT line's last field, for the lines of data[start:end].

    Fast path: every field was captured and float() parses it. float() accepts a subset of what
    strtod accepts, with the same value, except "_" digit separators ("1_0" is 10 to Python, 1 to
    strtod), which therefore send the chunk to the exact path, as does any field float() rejects.
    """
    if b"" not in fields and b"_" not in b"".join(fields):
        try:
            return list(map(float, fields))
        except ValueError:
            pass
    return [awk_number(_last_field(match, data, start))
            for match in _PROFIT_LINE.finditer(data, start, end)]


def _last_field(match: re.Match, data: bytes, run_start: int) -> bytes:
    """awk's $NF of the line a _PROFIT_LINE match lies in."""
    if match[1]:
        return match[1]
    line_start = max(data.rfind(b"\n", run_start, match.start()) + 1, run_start)
    return _BLANKS.split(data[line_start:match.end()].strip(b" \t"))[-1]


# ----------------------------------------------------------------------------------------------
# Reading: runs of whole lines, in one process or spread over worker processes.

def _parts(kind: str, path: str | Path, chunk_size: int, workers: int | None) -> Iterator[tuple]:
    """The parts of the whole file, in file order."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    path = Path(path)
    size = path.stat().st_size
    compressed = path.suffix == ".gz"
    if workers is None:
        workers = 1 if compressed or size < PARALLEL_MIN_BYTES else _cpus()
    if workers <= 1 or compressed or size <= RANGE_BYTES or _IMPORT_ROOT is None:
        # One part per chunk keeps memory at a chunk, whatever the file's size.
        part_of = _PART_KINDS[kind]
        for run in _line_runs(path, chunk_size):
            yield part_of([run])
        return
    yield from _parts_from_workers(kind, path, size, chunk_size, workers)


def _parts_from_workers(kind: str, path: Path, size: int, chunk_size: int,
                        workers: int) -> Iterator[tuple]:
    """Scan line-aligned ranges of RANGE_BYTES in worker processes; yield their parts in order.

    Worker i scans ranges i, i + workers, i + 2 * workers, ... and writes each part to its stdout
    as soon as it is done; reading the workers in turn gives the parts in file order. A worker
    that runs ahead blocks on its full pipe, so memory stays bounded. Plain subprocesses rather
    than multiprocessing: nothing is forked from a process that may have threads (pytest's may),
    and the caller's __main__ is never re-imported (no "if __name__ == '__main__'" needed).
    """
    ranges = _line_ranges(path, size, RANGE_BYTES)
    workers = min(workers, len(ranges))
    procs: list[subprocess.Popen] = []
    try:
        for index in range(workers):
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WORKER_MAIN, str(_IMPORT_ROOT)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            procs.append(proc)
            pickle.dump((kind, str(path), ranges[index::workers], chunk_size), proc.stdin)
            proc.stdin.close()
        for number in range(len(ranges)):
            proc = procs[number % workers]
            try:
                yield pickle.load(proc.stdout)
            except (EOFError, pickle.UnpicklingError):
                raise RuntimeError(f"log scan worker {proc.pid} for {path} died "
                                   f"(exit status {proc.wait()})") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


# Where the workers import this module from (the directory that holds the probes package); shipped to a box as
# source (no __file__), it scans in one process.
_IMPORT_ROOT = Path(globals()["__file__"]).resolve().parents[2] if "__file__" in globals() else None
_WORKER_MAIN = "import sys; sys.path.insert(0, sys.argv[1]); from probes.remote.logscan import _worker; _worker()"


def _worker() -> None:
    """A worker process: read its task from stdin, write one pickled part per range to stdout."""
    kind, path, ranges, chunk_size = pickle.load(sys.stdin.buffer)
    part_of = _PART_KINDS[kind]
    out = sys.stdout.buffer
    for start, stop in ranges:
        pickle.dump(part_of(_line_runs(Path(path), chunk_size, start, stop)), out)
        out.flush()


def _line_ranges(path: Path, size: int, target: int) -> list[tuple[int, int]]:
    """Cut [0, size) into consecutive ranges of about `target` bytes, each of whole lines."""
    bounds = [0]
    with open(path, "rb") as stream:
        for offset in range(target, size, target):
            if offset > bounds[-1]:
                boundary = _next_line_start(stream, offset, size)
                if boundary >= size:
                    break
                if boundary > bounds[-1]:
                    bounds.append(boundary)
    bounds.append(size)
    return list(zip(bounds, bounds[1:], strict=False))


def _next_line_start(stream, offset: int, size: int) -> int:
    """The offset of the first line that starts at or after `offset` (size if there is none)."""
    stream.seek(offset - 1)
    while True:
        block = stream.read(64 << 10)
        if not block:
            return size
        newline = block.find(b"\n")
        if newline >= 0:
            return stream.tell() - len(block) + newline + 1


def _line_runs(path: Path, chunk_size: int, start: int = 0, stop: int | None = None) -> Iterator[Run]:
    """Read bytes [start, stop) of a log in chunks and yield ``(data, begin, end)``:
    ``data[begin:end]`` is a run of whole lines. The runs cover the bytes in order, each line in
    exactly one run; only the last run can end without a newline (a last line without one).

    `start` must be the start of a line. The whole lines of a chunk are yielded in place, without
    a copy; the partial line at its end is kept, completed with the head of the next chunk and
    yielded on its own. (A fresh bytes object per chunk: reading into one reused bytearray was
    measured four times slower on this box.)
    """
    opener = gzip.open if path.suffix == ".gz" else functools.partial(open, buffering=0)
    remaining = None if stop is None else stop - start
    with opener(path, "rb") as stream:
        if start:
            stream.seek(start)
        pending: list[bytes] = []  # the pieces of a line begun in an earlier chunk
        while remaining is None or remaining > 0:
            chunk = stream.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            last_newline = chunk.rfind(b"\n")
            if last_newline < 0:
                pending.append(chunk)  # still inside one line
                continue
            begin = 0
            if pending:
                begin = chunk.find(b"\n") + 1
                pending.append(chunk[:begin])
                line = b"".join(pending)
                pending.clear()
                yield line, 0, len(line)
            if begin <= last_newline:
                yield chunk, begin, last_newline + 1
            if last_newline + 1 < len(chunk):
                pending.append(chunk[last_newline + 1:])
        if pending:
            line = b"".join(pending)
            yield line, 0, len(line)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
