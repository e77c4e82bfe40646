"""probes/remote/logscan.py gives what the guide's grep/awk pipelines give, byte for byte.

Every comparison runs the real commands (grep, awk, sort, uniq, comm) on the same generated file,
and the scanner with chunk sizes small enough that chunk boundaries fall inside lines, inside the
words and inside the numbers.
"""

from __future__ import annotations

import gzip
import math
import random
import shutil
import subprocess
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

import probes.remote.logscan as logscan
from probes.remote.logscan import (
    CHUNK_SIZE,
    ErrorCounts,
    awk_number,
    read_known_errors,
    scan_error_log,
    scan_trading_log,
)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "grep", "awk", "sort", "uniq", "comm")),
    reason="needs grep, awk, sort, uniq and comm to compare against",
)

# Tiny sizes put boundaries everywhere; 7 and 13 are prime so they drift across the lines.
CHUNK_SIZES = [1, 2, 3, 7, 13, 64, CHUNK_SIZE]
CODE_RE = "(TE|AI|NE|SE)[0-9]{3}"


def _awk_is_mawk() -> bool:
    probe = subprocess.run(["awk", "-W", "version"], capture_output=True, text=True)
    return "mawk" in (probe.stdout + probe.stderr)


# hex, inf and nan fields: mawk hands fields to strtod (accepts them), gawk does not.
mawk_only = pytest.mark.skipif(not _awk_is_mawk(), reason="strtod extensions are mawk's reading of fields")


def _sh(script: str, *args: str) -> str:
    done = subprocess.run(["bash", "-c", script, "bash", *args], capture_output=True, text=True, check=True)
    return done.stdout


def guide_trading(path: Path) -> tuple[int, float]:
    """The guide's two commands; the sum printed with every digit (%.17g) instead of awk's %.6g."""
    cat = "zcat" if path.suffix == ".gz" else "cat"
    trades = _sh(f'{cat} "$1" | grep -c TRADE_EXECUTED || true', str(path))
    profit = _sh(f"""{cat} "$1" | grep PROFIT | awk '{{sum+=$NF}} END {{printf "%.17g", sum}}'""", str(path))
    return int(trades), float(profit)


def guide_errors(path: Path) -> tuple[Counter, int, int]:
    cat = "zcat" if path.suffix == ".gz" else "cat"
    counted = _sh(f'{cat} "$1" | grep -oE "{CODE_RE}" | sort | uniq -c || true', str(path))
    by_code = Counter({code: int(n) for n, code in (line.split() for line in counted.splitlines())})
    critical = int(_sh(f'{cat} "$1" | grep -c CRITICAL || true', str(path)))
    lines = int(_sh(f"{cat} \"$1\" | grep -c '' || true", str(path)))  # a last line without \n counts
    return by_code, critical, lines


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def write(tmp_path: Path, content: bytes, name: str = "trading-2026-11-25.log") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(content)
    else:
        path.write_bytes(content)
    return path


def assert_trading_matches_guide(path: Path) -> None:
    trades, profit = guide_trading(path)
    for chunk_size in CHUNK_SIZES:
        totals = scan_trading_log(path, chunk_size=chunk_size)
        assert totals.trades == trades, f"chunk_size={chunk_size}"
        assert same_float(totals.profit_usdt, profit), f"chunk_size={chunk_size}: {totals.profit_usdt!r} != {profit!r}"


def assert_errors_match_guide(path: Path) -> None:
    by_code, critical, lines = guide_errors(path)
    for chunk_size in CHUNK_SIZES:
        counts = scan_error_log(path, chunk_size=chunk_size)
        assert counts.by_code == by_code, f"chunk_size={chunk_size}"
        assert counts.critical_lines == critical, f"chunk_size={chunk_size}"
        assert counts.lines == lines, f"chunk_size={chunk_size}"


TRADING_SAMPLE = b"""\
2026-11-25T09:14:03Z INFO TRADE_EXECUTED id=T000123 pair=BTC_USDT side=buy qty=0.0100 price=43000.50
2026-11-25T09:14:03Z INFO PROFIT id=T000123 pair=BTC_USDT 12.34
2026-11-25T09:14:04Z INFO MARKET_TICK pair=ETH_USDT bid=2299.77 ask=2300.23
2026-11-25T09:15:00Z INFO TRADE_EXECUTED id=T000124 pair=ETH_USDT side=sell qty=0.5000 price=2300.00
2026-11-25T09:15:01Z INFO PROFIT id=T000124 pair=ETH_USDT -3.21
2026-11-25T09:16:00Z WARN RISK_CHECK pair=BTC_USDT exposure=81.0% limit=80%
"""


@pytest.mark.parametrize("case", [
    pytest.param(TRADING_SAMPLE, id="guide-format"),
    pytest.param(b"", id="empty-file"),
    pytest.param(b"\n\n\n", id="only-newlines"),
    pytest.param(TRADING_SAMPLE.rstrip(b"\n"), id="no-trailing-newline"),
    pytest.param(b"a TRADE_EXECUTED b\nPROFIT 1.5", id="last-line-profit-without-newline"),
    pytest.param(b"x TRADE_EXECUTED TRADE_EXECUTED\nTRADE_EXECUTEDTRADE_EXECUTED\nTRADE_EXECUTED\n",
                 id="word-twice-on-a-line"),
    pytest.param(b"PROFIT 1 PROFIT 2\nPROFIT PROFIT\nx PROFIT 3 PROFIT\n", id="profit-twice-on-a-line"),
    pytest.param(b"TRADE_EXECUTED PROFIT 7.25\nPROFIT TRADE_EXECUTED 1\nPROFIT x TRADE_EXECUTED\n",
                 id="both-words-on-a-line"),
    pytest.param(b"TRADE_EXECUTE\nRADE_EXECUTED\ntrade_executed\nPROFI 3\nprofit 4\n", id="near-misses"),
    pytest.param(b"PROFIT -5\nPROFIT -0.01\nPROFIT +2\nPROFIT -.5\nPROFIT 1e3\nPROFIT -2.5E-1\n",
                 id="signed-and-exponent"),
    pytest.param(b"PROFIT abc\nPROFIT pair=BTC_USDT\nPROFIT 12.34USDT\nPROFIT 1,5\nPROFIT .\nPROFIT -\n"
                 b"PROFIT 1e\nPROFIT 1e+\nPROFIT --5\nPROFIT 5.\nPROFIT 1_000\nPROFIT 1.2.3\n", id="non-numeric"),
    pytest.param(b"PROFIT 3   \nPROFIT\t4\t\nPROFIT 5 \t \n   PROFIT 6\n\tPROFIT\t\t7\n", id="blanks-and-tabs"),
    pytest.param(b"PROFIT 5\r\nPROFIT 6 \r\nPROFIT \r7\nPROFIT 8\x0b9\nPROFIT \x0c10\n", id="cr-vt-ff-are-not-separators"),
    pytest.param(b"x PROFIT\nx 1.5PROFIT\nPROFIT=3\n2PROFIT   \nxPROFITy 4\n-7PROFIT\n", id="last-field-holds-the-word"),
    pytest.param(b"PROFIT 0.1\n" * 1000, id="rounding-order"),
    pytest.param(b"PROFIT 1e308\nPROFIT 1e308\nPROFIT -1e308\n", id="overflow-to-inf"),
    pytest.param(b"PROFIT 1e-400\nPROFIT 4.9e-324\n", id="underflow"),
    pytest.param(b"x" * 300 + b" TRADE_EXECUTED " + b"y" * 300 + b" PROFIT " + b"9" * 40 + b".25\n", id="long-line"),
])
def test_trading_totals_equal_the_guides_commands(tmp_path, case):
    assert_trading_matches_guide(write(tmp_path, case))


@mawk_only
@pytest.mark.parametrize("case", [
    pytest.param(b"PROFIT 0x1A\nPROFIT 0X10\nPROFIT 0x1p3\nPROFIT -0x.8\nPROFIT 0x\nPROFIT 0xg\n", id="hex"),
    pytest.param(b"PROFIT inf\nPROFIT 1\n", id="inf"),
    pytest.param(b"PROFIT -Infinity\nPROFIT 1\n", id="minus-infinity"),
    pytest.param(b"PROFIT 5\nPROFIT nan\n", id="nan"),
    pytest.param(b"PROFIT nan(123)x\nPROFIT 2\n", id="nan-payload"),
    pytest.param(b"PROFIT infx\nPROFIT -3\n", id="inf-prefix"),
    pytest.param(b"PROFIT 0x1p99999\n", id="hex-overflow"),
])
def test_strtod_extensions_match_mawk(tmp_path, case):
    assert_trading_matches_guide(write(tmp_path, case))


def _random_trading_log(rng: random.Random, lines: int) -> bytes:
    tokens = [b"TRADE_EXECUTED", b"PROFIT", b"INFO", b"id=T000123", b"pair=BTC_USDT", b"12.34", b"-0.5",
              b"+3", b".25", b"1e2", b"7e", b"abc", b"-", b"0", b"TRADE_", b"EXECUTED", b"PRO", b"FIT",
              b"PROFIT9", b"3PROFIT", b"1_0", b"\r", b"\x0b2"]
    out = []
    for _ in range(lines):
        words = [rng.choice(tokens) for _ in range(rng.randint(0, 6))]
        line = b""
        for word in words:
            line += word + rng.choice([b" ", b"  ", b"\t", b" \t", b""])
        out.append(rng.choice([b"", b" ", b"\t"]) + line)
    return b"\n".join(out) + rng.choice([b"", b"\n"])


@pytest.mark.parametrize("seed", range(12))
def test_random_trading_logs_equal_the_guides_commands(tmp_path, seed):
    rng = random.Random(seed)
    assert_trading_matches_guide(write(tmp_path, _random_trading_log(rng, rng.randint(1, 400))))


def test_gzip_trading_log_equals_plain(tmp_path):
    content = _random_trading_log(random.Random(99), 2000) + TRADING_SAMPLE
    plain = write(tmp_path, content)
    packed = write(tmp_path, content, "trading-2026-11-24.log.gz")
    assert_trading_matches_guide(packed)
    for chunk_size in (5, 4096, CHUNK_SIZE):
        assert scan_trading_log(packed, chunk_size=chunk_size) == scan_trading_log(plain, chunk_size=chunk_size)


def test_empty_gzip_file(tmp_path):
    totals = scan_trading_log(write(tmp_path, b"", "trading.log.gz"))
    assert (totals.trades, totals.profit_usdt, totals.profit_lines) == (0, 0.0, 0)
    counts = scan_error_log(write(tmp_path, b"", "error.log.gz"))
    assert (counts.by_code, counts.critical_lines, counts.lines) == (Counter(), 0, 0)


def test_profit_lines_counts_lines_not_words(tmp_path):
    totals = scan_trading_log(write(tmp_path, b"PROFIT PROFIT 1\nno\nx PROFIT 2\n"), chunk_size=3)
    assert (totals.profit_lines, totals.profit_usdt) == (2, 3.0)


ERROR_SAMPLE = b"""\
2026-11-25T09:14:03Z ERROR TE001 order placement failed: exchange timeout
2026-11-25T09:14:05Z CRITICAL SE003 disk almost full
2026-11-25T09:15:00Z ERROR NE002 connection reset, retried with TE001 and AI004
2026-11-25T09:16:00Z ERROR AI004 model inference slow
2026-11-25T09:16:30Z CRITICAL CRITICAL TE009 twice the word
"""


@pytest.mark.parametrize("case", [
    pytest.param(ERROR_SAMPLE, id="guide-format"),
    pytest.param(b"", id="empty-file"),
    pytest.param(b"\n", id="one-empty-line"),
    pytest.param(ERROR_SAMPLE.rstrip(b"\n"), id="no-trailing-newline"),
    pytest.param(b"TE001TE002 SE003SE004\n", id="adjacent-codes"),
    pytest.param(b"TE1234 TE12 XTE123 TEE123 AI99 AI000 NE999x\n", id="longer-shorter-embedded"),
    pytest.param(b"SE12SE345\nATE123\nNNE001\nTTE002\nAAI003\n", id="restart-inside-a-prefix"),
    pytest.param(b"te001 Te001 tE001 TI001 AE001 XE001\n", id="case-and-wrong-prefixes"),
    pytest.param(b"critical\nCRITICA\nxCRITICALx\nCRITICAL CRITICAL\n", id="critical-lines"),
    pytest.param(b"TE001\r\nTE002 \r\n", id="crlf"),
])
def test_error_counts_equal_the_guides_commands(tmp_path, case):
    assert_errors_match_guide(write(tmp_path, case, "error-2026-11-25.log"))


def _random_error_log(rng: random.Random, lines: int) -> bytes:
    pieces = [b"TE", b"AI", b"NE", b"SE", b"T", b"E", b"A", b"I", b"N", b"S", b"0", b"1", b"12", b"123",
              b"9999", b" ", b"CRITICAL", b"CRIT", b"ICAL", b"ERROR", b"x"]
    out = [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(lines)]
    return b"\n".join(out) + rng.choice([b"", b"\n"])


@pytest.mark.parametrize("seed", range(12))
def test_random_error_logs_equal_the_guides_commands(tmp_path, seed):
    rng = random.Random(seed)
    assert_errors_match_guide(write(tmp_path, _random_error_log(rng, rng.randint(1, 300)), "error.log"))


def test_gzip_error_log_equals_plain(tmp_path):
    content = _random_error_log(random.Random(7), 3000) + ERROR_SAMPLE
    plain = write(tmp_path, content, "error.log")
    packed = write(tmp_path, content, "error-2026-11-24.log.gz")
    assert_errors_match_guide(packed)
    assert scan_error_log(packed, chunk_size=11) == scan_error_log(plain)


def test_top_and_new_codes_equal_sort_uniq_and_comm(tmp_path):
    rng = random.Random(3)
    codes = [f"{prefix}{n:03d}" for prefix in ("TE", "AI", "NE", "SE") for n in range(1, 9)]
    log = write(tmp_path, "".join(f"x {rng.choice(codes)} y\n" for _ in range(500)).encode(), "error.log")
    known = tmp_path / "known-errors.txt"
    known.write_text("".join(f"{code}\n" for code in sorted(rng.sample(codes, 20))))

    top = _sh(f'grep -oE "{CODE_RE}" "$1" | sort | uniq -c | sort -nr | head -10', str(log))
    new = _sh(f'grep -oE "{CODE_RE}" "$1" | sort -u | comm -23 - "$2"', str(log), str(known))

    counts = scan_error_log(log)
    assert counts.top(10) == [(code, int(n)) for n, code in (line.split() for line in top.splitlines())]
    assert counts.new_codes(read_known_errors(known)) == new.split()


def test_read_known_errors(tmp_path):
    known = tmp_path / "known-errors.txt"
    known.write_bytes(b"# codes we handle\nTE001\r\n  AI002  \n\nSE003")
    assert read_known_errors(known) == {"TE001", "AI002", "SE003"}
    with pytest.raises(FileNotFoundError):
        read_known_errors(tmp_path / "missing.txt")


def test_error_counts_top_breaks_ties_like_sort_nr():
    counts = ErrorCounts(by_code=Counter({"TE001": 2, "TE002": 2, "AI005": 1, "SE001": 1}))
    assert counts.top(3) == [("TE002", 2), ("TE001", 2), ("SE001", 1)]


@pytest.mark.parametrize("text, value", [
    (b"12.34", 12.34), (b"-3", -3.0), (b"abc", 0.0), (b"", 0.0), (b"1e", 1.0), (b"1_000", 1.0),
    (b"\r5", 5.0), (b"5\r7", 5.0), (b".5x", 0.5), (b"0x1A", 26.0), (b"0x", 0.0), (b"-0x1p-1", -0.5),
    (b"inf", math.inf), (b"-infinity", -math.inf), (b"infinit", math.inf), (b"1e400", math.inf),
    (b"0x1p99999", math.inf), (b"-0x1p99999", -math.inf),
])
def test_awk_number_is_strtod(text, value):
    assert awk_number(text) == value


def test_awk_number_nan():
    assert math.isnan(awk_number(b"nan")) and math.isnan(awk_number(b"-NaN(x1)"))


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        scan_trading_log(tmp_path / "trading-2026-11-25.log")


def test_chunk_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        scan_trading_log(write(tmp_path, TRADING_SAMPLE), chunk_size=0)


@pytest.fixture
def small_ranges(monkeypatch):
    """Worker ranges of a few hundred bytes, so that a small file is cut in many places."""
    monkeypatch.setattr(logscan, "RANGE_BYTES", 333)


def test_worker_processes_give_the_same_trading_totals(tmp_path, small_ranges):
    rng = random.Random(5)
    content = b"".join(_random_trading_log(rng, 300) + b"\n" for _ in range(20)) + TRADING_SAMPLE
    content += b"x" * 2000 + b" PROFIT 2.5 long line spanning several ranges\nPROFIT 1"
    path = write(tmp_path, content)
    trades, profit = guide_trading(path)
    for workers in (2, 3):
        totals = scan_trading_log(path, chunk_size=64, workers=workers)
        assert totals.trades == trades
        assert same_float(totals.profit_usdt, profit)
        assert totals == scan_trading_log(path, workers=1)


def test_big_files_go_to_workers_by_default(tmp_path, small_ranges, monkeypatch):
    monkeypatch.setattr(logscan, "PARALLEL_MIN_BYTES", 1000)
    monkeypatch.setattr(logscan, "_cpus", lambda: 2)
    started = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(logscan.subprocess, "Popen", lambda *a, **k: started.append(a) or real_popen(*a, **k))
    path = write(tmp_path, TRADING_SAMPLE * 50)
    assert scan_trading_log(path) == scan_trading_log(path, workers=1)
    assert len(started) == 2
    started.clear()
    scan_trading_log(write(tmp_path, TRADING_SAMPLE * 50, "trading.log.gz"))  # gzip cannot be split
    assert started == []


def test_a_dead_worker_is_an_error_not_a_wrong_total(tmp_path, small_ranges, monkeypatch):
    monkeypatch.setattr(logscan, "_WORKER_MAIN", "import sys; sys.exit(3)")
    with pytest.raises(RuntimeError, match="died"):
        scan_trading_log(write(tmp_path, TRADING_SAMPLE * 50), workers=2)


def test_worker_processes_give_the_same_error_counts(tmp_path, small_ranges):
    content = _random_error_log(random.Random(8), 3000) + b"\n" + ERROR_SAMPLE + b"TE001 " * 500 + b"\nSE002"
    path = write(tmp_path, content, "error.log")
    by_code, critical, lines = guide_errors(path)
    counts = scan_error_log(path, chunk_size=100, workers=2)
    assert (counts.by_code, counts.critical_lines, counts.lines) == (by_code, critical, lines)


def test_line_ranges_cover_the_file_in_whole_lines(tmp_path):
    content = b"".join(b"%d %s\n" % (n, b"y" * (n % 17)) for n in range(400)) + b"z" * 900 + b"\nlast"
    path = write(tmp_path, content)
    for target in (1, 7, 50, 333, len(content) - 1, len(content), 10 * len(content)):
        ranges = logscan._line_ranges(path, len(content), target)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(content)
        assert all(stop == next_start for (_, stop), (next_start, _) in zip(ranges, ranges[1:], strict=False))
        assert all(start < stop for start, stop in ranges)
        assert all(content[start - 1:start] == b"\n" for start, _ in ranges[1:])


def test_memory_does_not_grow_with_the_file(tmp_path):
    """A 24 MiB log scanned in 256 KiB chunks never holds more than a few chunks in memory."""
    block = TRADING_SAMPLE * 200
    path = tmp_path / "big.log"
    with path.open("wb") as handle:
        for _ in range((24 << 20) // len(block)):
            handle.write(block)
    tracemalloc.start()
    try:
        totals = scan_trading_log(path, chunk_size=256 << 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert totals.trades == 2 * 200 * ((24 << 20) // len(block))
    assert peak < 2 << 20, f"peak {peak} bytes for a {path.stat().st_size} byte file"
