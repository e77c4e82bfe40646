"""The audit trail's pages (reports/index.py, history.py, trends.py, trail.py): made from a ledger and JUnit XML
the test writes in the run's format (tests/trail_helpers.py), read back as an operator reads them: the HTML's
text, and headless Chromium rendering the pages offline from file://."""

from __future__ import annotations

import datetime
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trail_helpers import START, LedgerWriter, add_run, case

from configuration import Settings
from conftest import ROOT
from reports import index, trends
from reports.history import HISTORY_DIR, file_name
from reports.trail import CACHE, Trail

DAY = datetime.timedelta(days=1)


def outputs(directory: Path) -> dict[str, bytes]:
    """Every page and the textfile, by name: what a rebuild must make again byte for byte."""
    names = ["index.html", "trends.html", "trading-maintenance.prom", *sorted(
        f"{HISTORY_DIR}/{p.name}" for p in (directory / HISTORY_DIR).glob("*.html"))]
    names += sorted(p.name for p in directory.glob("runs-*.html"))
    return {name: (directory / name).read_bytes() for name in names}


def text_of(path: Path) -> str:
    """The page's text without its markup, whitespace folded: roughly what a reader sees."""
    raw = re.sub(r"<style>.*?</style>", " ", path.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


def build_small_trail(directory: Path) -> LedgerWriter:
    """Eight daily runs on two boxes and a weekly one: a fix, a failure silenced, a budget spent, a waiver,
    a pruned run, a report deleted behind the suite's back and one edited after the run."""
    writer = LedgerWriter(directory)
    for day in range(8):
        when = START + day * DAY
        service = "fixed" if day in (2, 5) else "failed" if day == 7 else "passed"
        outcome = {"fixed": "restart_service: done: systemctl restart trading-agent",
                   "failed": "restart_service: skipped: the budget for service trading-agent is spent"}.get(service, "")
        extra = {"remediation_outcome": outcome} if outcome else {}
        if day == 7:
            extra["human_needed"] = "service trading-agent: 3 restarts in 5 runs"
        disk = "failed" if day == 6 else "passed"
        add_run(writer, when, "daily", [
            case("SVC-001", "test_service_is_running[nuc-1-trading-agent]", service, box="nuc-1",
                 trades_today=10 + day, profit_today_usdt=f"{day * 1.5:.2f}", database_size=f"{100 + day} MB", **extra),
            case("RES-003", "test_disk_usage_below_threshold[nuc-1-/-warning]", disk, box="nuc-1",
                 severity="warning", disk_percent=60 + day * 3,
                 **({"policy": "alert silenced until 2026-12-01: disk swap planned"} if disk == "failed" else {})),
            case("SVC-001", "test_service_is_running[nuc-2-trading-agent]", "waived" if day >= 6 else "passed",
                 box="nuc-2", **({"policy": "waived until 2026-12-24: agent retired"} if day >= 6 else {})),
        ], boxes=("nuc-1", "nuc-2"), exit_status=11 if day == 7 else 0,
            exit_words="failures remain" if day == 7 else "all passed")
        if day == 6:
            add_run(writer, when + datetime.timedelta(hours=1), "weekly",
                    [case("DB-010", "test_dead_tuples_below_limit", "passed", box="nuc-1", cadence="weekly",
                          dead_tuple_percent=4.5)], boxes=("nuc-1",))
    first = "daily-20261101-020000-000"
    for suffix in (".html", ".xml"):
        (directory / f"{first}{suffix}").unlink()
    writer.append("prune", files=[f"{first}.html", f"{first}.xml"])
    (directory / "daily-20261102-020000-000.html").unlink()  # gone, and no prune line says so
    with (directory / "daily-20261104-020000-000.xml").open("a") as handle:
        handle.write("<!-- edited -->")
    return writer


@pytest.fixture(scope="module")
def trail(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("trail") / "reports"
    build_small_trail(directory).close()
    index.after_run(directory, Settings())
    return directory


def test_index_lists_runs_newest_first_with_counts_exit_status_and_both_reports(trail):
    page = (trail / "index.html").read_text()
    rows = re.findall(r'<tr class="row c-(\w+)[^"]*"><td>([^<]+)</td>', page.split("Runs, newest first")[1])
    assert [started[:10] for _, started in rows] == [
        "2026-11-08", "2026-11-07", "2026-11-07", "2026-11-06", "2026-11-05", "2026-11-04", "2026-11-03",
        "2026-11-02", "2026-11-01"], rows
    assert rows[1][0] == "weekly"
    text = text_of(trail / "index.html")
    # the newest run: still wrong 1, fixed 0, unknown 0, passed 1, waived 1, exit 11
    assert "daily nuc-1, nuc-2 1 0 0 1 1/0 11 failures remain" in text, text
    assert '<a href="daily-20261108-020000-000.html">' in page and '<a href="daily-20261108-020000-000.xml">' in page


def test_a_pruned_report_is_named_without_a_link_and_told_apart_from_a_missing_or_edited_one(trail):
    page = (trail / "index.html").read_text()
    text = text_of(trail / "index.html")
    assert "daily-20261101-020000-000.html pruned" in text and 'href="daily-20261101-020000-000.html"' not in page
    assert "daily-20261102-020000-000.html missing" in text and 'href="daily-20261102-020000-000.html"' not in page
    assert "daily-20261104-020000-000.xml changed since the run (make verify-trail)" in text


def test_pages_fetch_nothing_from_anywhere_and_filter_without_a_script(trail):
    pages = [trail / "index.html", trail / "trends.html", *(trail / HISTORY_DIR).glob("*.html")]
    assert len(pages) == 6
    for path in pages:
        source = path.read_text()
        external = re.findall(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//[^"' >]*""", source, re.I)
        assert not external, f"{path.name} fetches {external}"
        assert "<script" not in source.lower() and "@import" not in source and "url(" not in source, path.name
    page = (trail / "index.html").read_text()
    for ident in ("c-daily", "c-weekly", "b-b0", "b-b1", "v-failed", "v-fixed", "v-unknown", "v-passed"):
        assert f'type="radio" name="{ident[0]}" id="{ident}"' in page
        assert f"#{ident}:checked ~ main .row:not(.{ident}) {{ display: none; }}" in page
    assert re.search(r'<tr class="row c-weekly b-b0 v-passed">', page)  # the weekly run on nuc-1 only


def test_history_shows_the_strip_last_failure_remediations_and_state(trail):
    agent = trail / HISTORY_DIR / file_name("nuc-1/SVC-001[nuc-1-trading-agent]")
    text = text_of(agent)
    assert "current state failed remediation budget spent: service trading-agent: 3 restarts in 5 runs" in text
    assert "last failed 2026-11-08T02:00:00+00:00" in text
    assert "remediated 3 times restart_service: done: 2 restart_service: skipped: 1" in text
    strip = re.findall(r'class="v-(\w+)" title="([^"]+)"', agent.read_text())
    # the pruned run (Nov 1) and the edited one (Nov 4) are not read: their results cannot be trusted or are gone
    assert [verdict for verdict, _ in strip] == ["passed", "fixed", "passed", "fixed", "passed", "failed"]
    assert strip[0][1] == "2026-11-02T02:00:00+00:00: passed"
    disk = text_of(trail / HISTORY_DIR / file_name("nuc-1/RES-003[nuc-1-/-warning]"))
    assert "current state passed" in disk and "last failed 2026-11-07T02:00:00+00:00" in disk
    assert "current state failed alert silenced" not in disk
    waived = text_of(trail / HISTORY_DIR / file_name("nuc-2/SVC-001[nuc-2-trading-agent]"))
    assert "current state waived waived until 2026-12-24: agent retired" in waived
    assert "last failed not in the runs on record" in waived


def test_a_silenced_alert_shows_in_the_state(tmp_path):
    writer = LedgerWriter(tmp_path)
    add_run(writer, START, "daily", [case("RES-003", "test_disk[/-warning]", "failed",
                                          policy="alert silenced until 2026-12-01: disk swap planned")])
    writer.close()
    index.after_run(tmp_path)
    assert "failed alert silenced until 2026-12-01: disk swap planned" in text_of(tmp_path / "index.html")


def test_trends_draw_the_figures_with_their_configured_thresholds(trail):
    settings = Settings()
    page = (trail / "trends.html").read_text()
    disk = page.split('aria-label="disk_percent"')[1].split("</svg>")[0]
    assert "disk_percent: last 81 (6 points, 2026-11-02 to 2026-11-08)" in disk
    assert 'class="threshold"' in disk and ">warning 75<" in disk and ">critical 85<" in disk
    trades = page.split('aria-label="trades_today"')[1].split("</svg>")[0]
    assert "last 17" in trades and 'class="threshold"' not in trades
    assert f"database_size: last {107 * 1024 ** 2:.6g}" in page  # 107 MB, read in bytes
    assert 'aria-label="dead_tuple_percent"' in page and ">limit 20<" in page
    assert trends.thresholds_for(settings, "nuc-1", "xid_age") == [("warning", 1.3e9), ("critical", 1.4e9)]
    history = (trail / HISTORY_DIR / file_name("nuc-1/RES-003[nuc-1-/-warning]")).read_text()
    assert 'aria-label="disk_percent"' in history and ">critical 85<" in history


def test_one_more_run_reads_one_line_and_ends_as_a_rebuild_would(tmp_path):
    directory = tmp_path / "reports"
    writer = build_small_trail(directory)
    assert index.after_run(directory, Settings()).rebuilt
    add_run(writer, START + 9 * DAY, "daily", [case("SVC-001", "test_service_is_running[nuc-1-trading-agent]",
                                                    "passed", box="nuc-1", trades_today=30)], boxes=("nuc-1",))
    writer.close()
    written = index.after_run(directory, Settings())
    assert (written.lines_read, written.rebuilt) == (1, False)
    touched = {path.name for path in written.paths if path.parent.name == HISTORY_DIR}
    assert touched == {file_name("nuc-1/SVC-001[nuc-1-trading-agent]")}, "only the check that ran is rewritten"
    incremental = outputs(directory)
    index.rebuild(directory, Settings())
    assert outputs(directory) == incremental


def test_a_line_still_being_written_waits_and_a_rewritten_ledger_is_read_again(tmp_path):
    writer = LedgerWriter(tmp_path)
    add_run(writer, START, "daily", [case("SVC-001", "test_svc[a]", "passed")])
    writer.close()
    whole = (tmp_path / "ledger.jsonl").read_bytes()
    with (tmp_path / "ledger.jsonl").open("ab") as handle:
        handle.write(b'{"seq":2,"kind":"run","cad')  # a run killed mid-append
    assert index.after_run(tmp_path).lines_read == 1
    assert len(Trail.load(tmp_path).runs) == 1
    (tmp_path / "ledger.jsonl").write_bytes(whole.replace(b'"daily"', b'"weekly"'))  # not the ledger it read
    again = index.after_run(tmp_path)
    assert again.rebuilt and again.lines_read == 1
    assert "weekly" in Trail.load(tmp_path).runs[0]["cadence"]


def test_make_reindex_rebuilds_every_page_and_the_textfile_from_the_ledger_and_reports_alone(trail, tmp_path):
    directory = tmp_path / "reports"
    shutil.copytree(trail, directory)
    before = outputs(directory)
    for name in [*before, CACHE]:
        (directory / name).unlink()
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[reports]\ndir = "{directory}"\n')
    done = subprocess.run([sys.executable, "-m", "commands", "reindex", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"open {directory / 'index.html'}" in done.stdout
    assert outputs(directory) == before
    (directory / "ledger.jsonl").unlink()
    missing = subprocess.run([sys.executable, "-m", "commands", "reindex", "--config", str(config)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no ledger in" in missing.stderr


def test_ten_thousand_runs_page_the_index_and_one_more_run_reads_one_line(tmp_path):
    """10,000 runs: 300 with their JUnit XML, the rest ledger lines whose reports were pruned (the common case
    for old runs). Times are the bench's (bench/bench_index.py), not asserted here."""
    writer = LedgerWriter(tmp_path)
    cases = [case(f"CHK-{n:03d}", f"test_{n}", "passed", trades_today=n) for n in range(20)]
    for n in range(10_000):
        when = START + datetime.timedelta(hours=n)
        add_run(writer, when, "daily", cases if n >= 9_700 else None)
    writer.close()
    rebuilt = index.rebuild(tmp_path)
    assert rebuilt.lines_read == 10_000
    assert len(list(tmp_path.glob("runs-*.html"))) == 20
    page = (tmp_path / "index.html").read_text()
    assert page.count('<tr class="row c-daily') == index.PAGE_SIZE + 20  # the newest runs and every check
    assert "the newest 500 of 10000 runs" in text_of(tmp_path / "index.html")
    writer = LedgerWriter(tmp_path)
    add_run(writer, START + datetime.timedelta(hours=10_000), "daily", cases)
    writer.close()
    one_more = index.after_run(tmp_path)
    assert one_more.lines_read == 1 and not one_more.rebuilt
    assert sum(path.name.startswith("runs-") for path in one_more.paths) == 0, "full pages are not written again"


# -- the pages as an operator sees them: headless Chromium, offline, from file:// --

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{hashlib.sha256(repr(args).encode()).hexdigest()[:8]}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})


@pytest.mark.skipif(CHROMIUM is None and os.geteuid() != 0,
                    reason="headless Chromium is not installed: as root, `make setup` installs Debian's chromium "
                           "(the Makefile's TEST_DEPS)")
@pytest.mark.parametrize("page", ["index.html", "history"])
def test_chromium_renders_the_page_offline(trail, tmp_path, page):
    assert CHROMIUM is not None, "chromium is missing: `make setup` (as root) installs it (the Makefile's TEST_DEPS)"
    path = trail / page if page != "history" else trail / HISTORY_DIR / file_name("nuc-1/SVC-001[nuc-1-trading-agent]")
    dom = chromium(tmp_path, "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom.stdout)))
    if page == "index.html":
        assert "Trading box maintenance: the runs" in rendered
        assert "daily nuc-1, nuc-2 1 0 0 1 1/0 11 failures remain" in rendered
        assert "daily-20261101-020000-000.html pruned" in rendered
    else:
        assert "SVC-001[nuc-1-trading-agent] on nuc-1" in rendered
        assert "remediated 3 times" in rendered and "last failed 2026-11-08T02:00:00+00:00" in rendered
        assert "trades_today: last 17" in rendered
    screenshot = tmp_path / f"{path.stem}.png"
    shot = chromium(tmp_path, f"--screenshot={screenshot}", path.as_uri())
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot of {path.name}: {screenshot}")
