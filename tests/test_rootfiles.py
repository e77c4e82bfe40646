"""core/rootfiles.py and the files the suite writes as root: never through a link, never where another user could
swap a directory, 0600 (or the configured shared mode and group) from the first byte, whatever the umask.

The agent user of these tests is `nobody` (65534): creating a user on this machine is not allowed."""

from __future__ import annotations

import datetime
import grp
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from trail_helpers import START, LedgerWriter, add_run, case

from alerts.channel import Permanent
from alerts.channels.file import FileChannel
from alerts.channels.file import append as append_alert
from configuration import Settings
from core import ledger, rootfiles
from core.atomic import write_atomically
from core.vocabulary import LedgerKind
from decision.state import StateStore
from probes.host import remote_program
from probes.remote import backupscan, readers
from remediations.backups import private
from reports import index

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the checks of a root-owned path are root's")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def no_umask():
    """A umask of 0: a file made with the process's umask would come out readable by everyone."""
    before = os.umask(0)
    yield
    os.umask(before)


@pytest.fixture
def secret(tmp_path) -> Path:
    """A root file a planted link points at (a copy of sudoers, say): what must stay untouched."""
    path = tmp_path / "sudoers-copy"
    path.write_text("root ALL=(ALL) ALL\n")
    path.chmod(0o440)
    return path


def agents_dir(tmp_path: Path) -> Path:
    """A directory the agent user owns, as /var/log/trading-agent is trading's."""
    directory = tmp_path / "trading-agent"
    directory.mkdir()
    os.chown(directory, NOBODY, NOBODY)
    return directory


# -- links


@needs_root
def test_a_link_planted_where_the_alert_file_goes_is_refused_and_named_and_its_target_untouched(tmp_path, secret):
    alerts = tmp_path / "alerts" / "maintenance-alerts.jsonl"
    alerts.parent.mkdir()
    alerts.symlink_to(secret)
    with pytest.raises(rootfiles.RefusedFile, match=f"refusing to write {alerts}: it is a symbolic link"):
        append_alert(alerts, {"title": "disk full"})
    assert secret.read_text() == "root ALL=(ALL) ALL\n" and mode_of(secret) == 0o440


@needs_root
def test_the_file_channel_says_a_refusal_is_permanent_so_the_fallback_takes_the_alert(tmp_path, secret):
    from alerts.message import Alert, Message

    alerts = tmp_path / "alerts.jsonl"
    alerts.symlink_to(secret)
    alert = Alert(check_id="X-001", severity="critical", kind="problem", title="t", message="m")
    with pytest.raises(Permanent, match="it is a symbolic link"):
        FileChannel(alerts).send(Message.from_alert(alert))
    assert secret.read_text() == "root ALL=(ALL) ALL\n"


@needs_root
def test_a_link_planted_where_the_ledger_goes_is_refused(tmp_path, secret):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / ledger.LEDGER).symlink_to(secret)
    with pytest.raises(rootfiles.RefusedFile, match=f"{tmp_path}/reports/{ledger.LEDGER}: it is a symbolic link"):
        ledger.append(tmp_path / "reports", LedgerKind.ATTEST, {"note": "x"})
    assert secret.read_text() == "root ALL=(ALL) ALL\n"


@needs_root
def test_a_link_planted_where_the_state_or_a_page_goes_is_replaced_never_written_through(tmp_path, secret):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").symlink_to(secret)
    with StateStore(tmp_path / "state").record("SVC-001") as record:
        record.add_verdict(1.0, "passed")
    page = tmp_path / "index.html"
    page.symlink_to(secret)
    write_atomically(page, "<html></html>")
    assert secret.read_text() == "root ALL=(ALL) ALL\n" and mode_of(secret) == 0o440
    assert not (tmp_path / "state" / "state.json").is_symlink() and not page.is_symlink()
    assert mode_of(tmp_path / "state" / "state.json") == 0o600 and page.read_text() == "<html></html>"


@needs_root
def test_a_link_on_the_way_to_the_reports_is_refused_naming_it(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "reports").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(rootfiles.RefusedFile, match=f"refusing to write {tmp_path}/reports/index.html: "
                                                    f"{tmp_path}/reports is a symbolic link"):
        write_atomically(tmp_path / "reports" / "index.html", "x")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@needs_root
def test_a_hard_link_planted_for_an_append_target_is_refused(tmp_path, secret):
    (tmp_path / "reports").mkdir()
    os.link(secret, tmp_path / "reports" / ledger.LEDGER)
    with pytest.raises(rootfiles.RefusedFile, match="it has 2 hard links"):
        ledger.append(tmp_path / "reports", LedgerKind.RESTORE, {"event": "restore-full"})
    assert secret.read_text() == "root ALL=(ALL) ALL\n"


def test_a_fifo_planted_for_an_append_target_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "alerts.jsonl")
    with pytest.raises(rootfiles.RefusedFile, match="not a regular file"):
        rootfiles.append(tmp_path / "alerts.jsonl", "x\n")


# -- directories another user could change


@needs_root
def test_a_directory_the_agent_owns_is_refused_naming_it_its_owner_and_mode(tmp_path):
    logs = agents_dir(tmp_path)
    target = logs / "maintenance-alerts.jsonl"
    with pytest.raises(rootfiles.RefusedFile) as refused:
        append_alert(target, {"title": "disk full"})
    assert str(refused.value) == (
        f"refusing to write {target}: {logs} is owned by nobody (mode 0755), which could swap what is in it for a "
        f"link: use a directory only root can write (such as /var/lib/trading-maintenance)")
    assert not target.exists()


@needs_root
def test_a_directory_the_agent_owns_higher_up_is_refused_too(tmp_path):
    inner = agents_dir(tmp_path) / "reports"
    inner.mkdir()  # root's own directory, inside the agent's: the agent could swap it
    with pytest.raises(rootfiles.RefusedFile, match=f"{tmp_path}/trading-agent is owned by nobody"):
        write_atomically(inner / "index.html", "x")


@needs_root
def test_a_sticky_directory_others_may_write_holds_no_file_of_roots(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(rootfiles.RefusedFile, match=f"{shared} is writable by others \\(mode 1777\\)"):
        rootfiles.replace(shared / "state.json", "{}")
    (shared / "mine").mkdir()  # below it, root's own directory is fine: nobody may rename it
    rootfiles.replace(shared / "mine" / "state.json", "{}")


@needs_root
def test_missing_directories_are_made_one_at_a_time_with_their_mode(tmp_path, no_umask):
    spool = tmp_path / "a" / "b" / "spool"
    rootfiles.ensure_directory(spool, 0o700)
    assert mode_of(tmp_path / "a") == 0o755 and mode_of(tmp_path / "a" / "b") == 0o755 and mode_of(spool) == 0o700


def test_without_root_only_links_are_refused_the_directories_are_the_users_own(tmp_path, monkeypatch, secret):
    monkeypatch.setattr(rootfiles, "as_root", lambda: False)
    shared = tmp_path / "group-dir"
    shared.mkdir()
    shared.chmod(0o1777)  # refused for root; a user's own choice otherwise
    rootfiles.append(shared / "alerts.jsonl", "one\n")
    (shared / "link.jsonl").symlink_to(secret)
    with pytest.raises(rootfiles.RefusedFile, match="symbolic link"):
        rootfiles.append(shared / "link.jsonl", "two\n")
    assert (shared / "alerts.jsonl").read_text() == "one\n" and secret.read_text() == "root ALL=(ALL) ALL\n"


# -- modes from the first byte


@needs_root
def test_new_files_are_0600_from_creation_with_a_umask_of_0(tmp_path, no_umask):
    append_alert(tmp_path / "alerts" / "a.jsonl", {"title": "t"})
    write_atomically(tmp_path / "state" / "state.json", "{}")
    ledger.append(tmp_path / "reports", LedgerKind.ATTEST, {"note": "x"})
    descriptor = rootfiles.create(tmp_path / "state" / "new", rootfiles.PRIVATE)
    assert stat.S_IMODE(os.fstat(descriptor).st_mode) == 0o600  # before its first byte
    os.close(descriptor)
    for path in (tmp_path / "alerts" / "a.jsonl", tmp_path / "state" / "state.json",
                 tmp_path / "reports" / ledger.LEDGER):
        assert mode_of(path) == 0o600, path


@needs_root
def test_the_spool_is_0600_in_0700_directories(tmp_path, no_umask):
    from alerts.spool import Spool

    path = Spool(tmp_path / "spool").put("email", "k1", {"subject": "disk full"})
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700


@needs_root
def test_the_pages_and_the_textfile_get_the_configured_mode_and_group_the_rest_stays_0600(tmp_path):
    group = grp.getgrgid(NOBODY).gr_name
    reports = tmp_path / "reports"
    writer = LedgerWriter(reports)
    add_run(writer, START, "daily", [case("SVC-001", "test_service_is_running[trading-agent]", "passed",
                                          trades_today=3)])
    before = os.umask(0)  # the trail's own directory made, the pages are written with no umask to help
    try:
        index.after_run(reports, Settings.model_validate({"reports": {"shared_mode": 0o640, "shared_group": group}}))
    finally:
        os.umask(before)
    shared = [reports / "index.html", reports / "trends.html", reports / "trading-maintenance.prom",
              *(reports / "history").glob("*.html")]
    assert len(shared) == 4
    for path in shared:
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, NOBODY), path
    assert mode_of(reports / ledger.LEDGER) == 0o600 and mode_of(reports / ".trail-cache.json") == 0o600


@needs_root
def test_a_runs_reports_are_made_with_the_shared_mode_before_pytest_writes_them(tmp_path, no_umask):
    from types import SimpleNamespace

    from reports import files

    config = SimpleNamespace(option=SimpleNamespace(htmlpath=None, xmlpath=None), stash=pytest.Stash(),
                             rootpath=tmp_path)
    html, xml = files.choose_report_paths(config, tmp_path / "reports", "daily", 0o640, NOBODY)
    for path in (files.partial(html), files.partial(xml)):
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid, info.st_size) == (0o640, NOBODY, 0)
    assert config.option.htmlpath == str(files.partial(html))


def test_a_backup_command_writes_its_file_0600_from_the_first_byte(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".env").write_text("DB_PASSWORD=x\n")
    tarball = tmp_path / "full.tar.gz.partial"
    argv = private(sys.executable, ["tar", "-C", str(tmp_path / "app"), "-czf", str(tarball), "."])
    subprocess.run(argv, check=True, umask=0)
    assert mode_of(tarball) == 0o600


# -- another user's directory: written as its owner


@needs_root
def test_the_network_log_in_the_agents_directory_is_written_as_the_agent(tmp_path):
    log = agents_dir(tmp_path) / "network-failures.log"
    readers.append_line(str(log), "Thu Dec 03 10:00:00 UTC 2026: Network failure detected")
    readers.append_line(str(log), "Thu Dec 03 10:05:00 UTC 2026: Network failure detected\n")
    assert log.read_text().splitlines() == ["Thu Dec 03 10:00:00 UTC 2026: Network failure detected",
                                            "Thu Dec 03 10:05:00 UTC 2026: Network failure detected"]
    assert log.stat().st_uid == NOBODY


@needs_root
def test_a_link_planted_as_the_network_log_is_refused_naming_it(tmp_path, secret):
    log = agents_dir(tmp_path) / "network-failures.log"
    log.symlink_to(secret)
    with pytest.raises(rootfiles.RefusedFile, match=f"refusing to write {log}: it is a symbolic link.*written as "
                                                    f"nobody"):
        readers.append_line(str(log), "line")
    assert secret.read_text() == "root ALL=(ALL) ALL\n"


# -- the box: a reader and what it declares travel together


def run_remotely(reader, *args):
    """What Box.call runs over SSH, run here: the box's `python3 -I -S -c PROGRAM ARGS`."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", remote_program(reader), json.dumps(args)],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_reader_that_needs_rootfiles_works_here_and_as_the_program_the_box_runs(tmp_path, no_umask):
    assert readers.write_chunk(str(tmp_path / "here.tar.gz"), "YWJj", True) == 3
    assert run_remotely(readers.write_chunk, str(tmp_path / "there.tar.gz"), "YWJj", True) == {"value": 3}
    for name in ("here.tar.gz", "there.tar.gz"):
        assert (tmp_path / name).read_bytes() == b"abc" and mode_of(tmp_path / name) == 0o600
    (tmp_path / "planted").symlink_to(tmp_path / "here.tar.gz")
    refused = run_remotely(readers.append_line, str(tmp_path / "planted"), "x")
    assert refused["error"] == "RefusedFile" and "symbolic link" in refused["message"]


def test_a_reader_without_needs_still_travels_alone(tmp_path):
    (tmp_path / "full-20260101-000000.tar.gz").write_bytes(b"x")
    assert "_define('core.safepath'" not in remote_program(backupscan.usage)
    assert run_remotely(backupscan.usage, str(tmp_path))["value"] == backupscan.usage(str(tmp_path))


def test_the_diagnostics_bundle_chunks_are_0600_and_refuse_a_planted_name(tmp_path, no_umask, secret):
    partial = tmp_path / ".bundle.tar.gz.partial"
    assert readers.write_chunk(str(partial), "YWJj", True) == 3
    assert readers.write_chunk(str(partial), "ZGVm", False) == 6
    assert partial.read_bytes() == b"abcdef" and mode_of(partial) == 0o600
    (tmp_path / ".other.partial").symlink_to(secret)
    with pytest.raises(FileExistsError):
        readers.write_chunk(str(tmp_path / ".other.partial"), "YWJj", True)
    assert secret.read_text() == "root ALL=(ALL) ALL\n"


def test_a_failed_write_leaves_no_temporary_and_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    rootfiles.replace(target, "old")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rootfiles, "write_all", full_disk)
    with pytest.raises(OSError, match="No space"):
        rootfiles.replace(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_set_aside_file_is_0600_under_its_new_name(tmp_path):
    damaged = tmp_path / "state.json"
    damaged.write_text('{"checks": {"half')
    damaged.chmod(0o644)
    stamp = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = rootfiles.set_aside(damaged, f"state.json.corrupt-{stamp}")
    assert not damaged.exists() and aside.read_text() == '{"checks": {"half' and mode_of(aside) == 0o600


@needs_root
def test_the_emergency_ladder_says_a_refused_network_log_and_goes_on(tmp_path, secret):
    from types import SimpleNamespace

    from decision.incidents import Incident
    from remediations.emergency import Ladder

    logs = agents_dir(tmp_path)
    (logs / "network-failures.log").symlink_to(secret)
    box = SimpleNamespace(call=lambda reader, *args: reader(*args))  # the box is this machine
    ctx = SimpleNamespace(settings=Settings.model_validate({"paths": {"log_dir": str(logs)}}), box=box,
                          check="EMG-003")
    ladder = Ladder(ctx, "network", Incident("trading-box", 0.0, "EMG-003"), dry=False)
    ladder.log_network_failure()
    assert ladder.failed and ladder.lines == [f"network failure log: failed: refusing to write "
                                              f"{logs}/network-failures.log: it is a symbolic link; remove it "
                                              f"(written as nobody, the owner of {logs})"], ladder.lines
    assert secret.read_text() == "root ALL=(ALL) ALL\n"


@needs_root
def test_a_run_whose_reports_directory_the_agent_owns_stops_naming_it_before_checking(pytester, tmp_path,
                                                                                       monkeypatch):
    from test_plugin import CONFTEST, INI

    from conftest import ROOT

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    reports = agents_dir(tmp_path) / "reports"
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[remediation]\nmode = "off"\n[reports]\ndir = "{reports}"\n[policy]\nstate_dir = '
                      f'"{tmp_path}/state"\n[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("import pytest\n\n@pytest.mark.daily\n@pytest.mark.check('X-001', severity='warning', "
                        "why='w')\ndef test_fine(): pass\n")
    result = pytester.runpytest_subprocess(f"--maintenance-config={config}", "-m", "daily")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: refusing to write {reports}: {tmp_path}/trading-agent is owned by nobody "
                                 f"(mode 0755)*"])
    assert not reports.exists()
