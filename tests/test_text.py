"""Text from outside stays text (issue 17, item 9): control characters from the agent's logs are shown
escaped, never obeyed, and a quoted log line is cut so that a report stays small whatever the logs hold.

The unit tests pin core/text.py; the run at the end is a small suite of its own (pytester, no lab) whose
check quotes ten 5 MB log lines full of escape sequences in its message, a figure, its output and its
log, with the options that put the most on paper: nothing raw reaches the terminal, both reports stay
small and valid, and what was cut says so.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, read_alerts
from core.redact import RedactingFilter, Redactor
from core.text import LIMIT, LONG_LIMIT, MARGIN, printable, shown, size

# An OSC that retitles the terminal (and hid the rest of the summary), a screen clear, a bell, a C1 CSI,
# a right-to-left override, a lone surrogate (a byte no codec could read, kept by surrogateescape).
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\udcff"


# -- printable


def test_control_characters_are_shown_as_escapes_and_newlines_and_tabs_stay():
    assert printable(f"a{HOSTILE}b\tc\nd\re\x00\x7f") == \
        "a\\x1b]0;pwned\\x07\\x1b[2J\\u009b31m\\u202e\\udcff" + "b\tc\nd\\x0de\\x00\\x7f"


def test_ordinary_text_is_left_as_it_is():
    text = "2024-05-01 12:00:00 ERROR TE001 ordre refusé: solde insuffisant (€) 🚨 C:\\path\\x1b"
    assert printable(text) is text or printable(text) == text
    assert shown(text) == text


# -- shown: capped, saying how much was cut


def test_a_long_text_is_cut_to_the_limit_and_says_how_many_bytes_were_cut():
    text = "x" * 1_050_000
    result = shown(text)
    assert size(result) <= LIMIT and result.startswith("x" * 4000)
    kept = result.index("…")
    assert result.endswith(f"… [cut {1_050_000 - kept:,} bytes]")


def test_cutting_never_splits_a_character_or_an_escape():
    for text in ("é" * 5000, "\x1b" * 5000, "a\u009b" * 3000):
        result = shown(text)
        assert size(result) <= LIMIT
        result.encode("utf-8")  # whole characters only: no lone surrogate, no half of one
        head = result[:result.index("…")]
        assert printable(text).startswith(head), "the escape at the cut was split"


def test_the_cut_counts_bytes_of_the_original_text_not_of_its_escapes():
    text = "\x1b" * 10_000  # 10,000 bytes, shown as 40,000
    result = shown(text)
    kept = result[:result.index("…")].count("\\x1b")
    assert result.endswith(f"[cut {10_000 - kept:,} bytes]")


def test_a_tail_keeps_the_end_of_a_traceback_and_cuts_in_the_middle():
    text = "checks/test_x.py:12: in test_y\n" + "E   " + "y" * 200_000 + "\nchecks/test_x.py:12: AssertionError"
    result = shown(text, LONG_LIMIT, tail=1024)
    assert size(result) <= LONG_LIMIT
    assert result.startswith("checks/test_x.py:12: in test_y\nE   yyy")
    assert result.endswith("yyy\nchecks/test_x.py:12: AssertionError") and "… [cut " in result


def test_what_is_shown_once_is_shown_again_unchanged():
    for text in ("x" * 100_000, HOSTILE * 2000, "é" * 3000 + HOSTILE, "short"):
        once = shown(text)
        assert shown(once) == once
        long = shown(text, LONG_LIMIT, tail=4096)
        assert shown(long, LONG_LIMIT, tail=4096) == long


def test_a_secret_across_the_cut_is_masked_before_anything_is_cut():
    secret = "s3cr3t-canary-0123456789"
    text = "x" * (LIMIT - 30) + secret + "y" * 10_000
    result = shown(text, redact=Redactor([secret]).text)
    assert secret[:6] not in result and "s3cr3t" not in result


def test_of_a_huge_text_only_what_can_be_shown_is_redacted():
    """A 50 MB figure would take seconds in every pattern of the second pass: only the ends pass through it."""
    seen = []

    def redact(text: str) -> str:
        seen.append(len(text))
        return text.replace("token=abc123", "token=***")

    text = "token=abc123 " + "z" * 50_000_000 + " token=abc123"
    result = shown(text, LONG_LIMIT, tail=4096, redact=redact)
    assert result.startswith("token=*** zzz") and result.endswith("zzz token=***")
    assert seen and max(seen) <= LONG_LIMIT + MARGIN


# -- every log record: the terminal's live log and the runs log


def test_a_log_record_that_quotes_a_log_line_is_shown_as_text_and_cut():
    record = logging.LogRecord("agent", logging.WARNING, __file__, 1, "last line: %s", (HOSTILE + "x" * 100_000,), None)
    RedactingFilter(Redactor([])).filter(record)
    message = record.getMessage()
    assert "\x1b" not in message and "\\x1b]0;pwned\\x07" in message
    assert size(message) <= LONG_LIMIT and "[cut " in message


# -- a run whose check quotes ten 5 MB log lines full of escape sequences

INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
junit_family = xunit1
markers =
    daily: d
    weekly: w
    monthly: m
    quarterly: q
    emergency: e
    check(id, severity, why): identity
    remediate(name): remediation
"""

CONFTEST = 'pytest_plugins = ["plugin"]\n'

CHECK = '''
import logging
import pytest

LOG = {log!r}


@pytest.mark.daily
@pytest.mark.check("LOG-901", severity="warning", why="a failed recovery is an error the agent did not handle")
def test_no_failed_recoveries(record_property):
    lines = open(LOG, encoding="utf-8", errors="surrogateescape").read().splitlines()
    print("first failed recovery:", lines[0])
    logging.getLogger("agent").warning("last failed recovery: %s", lines[-1])
    record_property("last_failed_recovery", lines[-1])
    assert not lines, f"{{len(lines)}} failed recoveries in the agent's log: " + "; ".join(lines)
'''

LINE = HOSTILE + " recovery failed " + "A" * (5 * 1024 * 1024)
MB = 1024 * 1024


@pytest.fixture
def quoting_run(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    log = tmp_path / "error.log"
    log.write_bytes(("\n".join(LINE for _ in range(10)) + "\n").encode("utf-8", "surrogateescape"))
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[services]\nuser = "nobody"\n[remediation]\nmode = "off"\n'
                      f'[reports]\ndir = "{tmp_path}/reports"\n[policy]\nstate_dir = "{tmp_path}/state"\n'
                      f'[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_logs=CHECK.format(log=str(log)))
    result = pytester.runpytest_subprocess(
        f"--maintenance-config={config}", "-m", "daily", "--tb=short", "-rA", "-vv",
        "-o", "junit_logging=all", "-o", "log_cli=true", "--log-cli-level=WARNING")
    return result, tmp_path


def test_ten_5mb_log_lines_with_escape_sequences_stay_text_and_the_reports_stay_small(quoting_run):
    result, tmp_path = quoting_run
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == 11, output[-3000:]  # the finding was made: a failure
    assert not any(char in output for char in "\x1b\x07\x9b\u202e"), "a control character reached the terminal"
    assert "\\x1b]0;pwned\\x07" in output, "the escape sequence is not shown as text"
    assert len(output) < 1 * MB, f"{len(output):,} characters on the terminal"

    [html_report] = (tmp_path / "reports").glob("daily-*.html")
    [xml_report] = (tmp_path / "reports").glob("daily-*.xml")
    assert html_report.stat().st_size < 5 * MB and xml_report.stat().st_size < 5 * MB
    [case] = ET.parse(xml_report).getroot().iter("testcase")  # still valid XML
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    for name in ("problem", "last_failed_recovery"):
        assert size(properties[name]) <= LIMIT and "[cut " in properties[name], name
        assert "\\x1b]0;pwned\\x07" in properties[name] and "\x1b" not in properties[name]
    assert "\x1b" not in html_report.read_text(errors="replace")

    [alert] = read_alerts(tmp_path / "alerts.jsonl")
    assert "\\x1b]0;pwned" in alert["message"] and "\x1b" not in alert["message"] + alert["title"]
    assert size(alert["message"]) <= LIMIT
