"""Malformed configuration files, one fault each, made from a valid base: every one is refused in a few lines
that name the file and the key (the line, for TOML that does not parse), with exit status 4, no traceback,
and nothing written (issue 17, item 13: 18 of 55 such files were not refused well).

The bulk goes through the real command `python -m commands budget show` in this process; a handful of them through
the real run entries, `python -m pytest -m daily` and `python -m commands run daily`, as cron starts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomli_w

from commands.__main__ import main as commands_main
from configuration import load
from conftest import ROOT, merged

TMP = "@TMP@"  # where the test's directory goes in a fault's values


def base() -> dict:
    """A valid configuration whose every path is under the test's directory; the agent user is `nobody`."""
    return {
        "services": {"user": "nobody"},
        "paths": {"log_dir": f"{TMP}/log"},
        "retention": [{"name": "temp-files", "dir": f"{TMP}/tmp", "pattern": "trading-*", "max_age_days": 1}],
        "remediation": {"mode": "plan"},
        "policy": {"state_dir": f"{TMP}/state"},
        "reports": {"dir": f"{TMP}/reports"},
        "alerts": {"file": f"{TMP}/alerts.jsonl", "spool_dir": f"{TMP}/spool", "fallback": ["file"]},
        "schedule": {"log_dir": f"{TMP}/runs"},
    }


def rule(**changes) -> dict:
    return {"retention": [{"name": "temp-files", "dir": f"{TMP}/tmp", "pattern": "trading-*", "max_age_days": 1,
                           **changes}]}


@dataclass
class Fault:
    id: str
    said: str  # the key (or, for a file that does not parse, what names the place)
    changes: dict = field(default_factory=dict)  # deep-merged into the base (a list replaces the base's)
    text: str = ""  # TOML appended to the base as written
    raw: bytes | None = None  # the whole file instead
    prepare: Callable[[Path], None] | None = None  # something the fault needs on disk, made before the snapshot

    def write(self, tmp: Path) -> Path:
        path = tmp / "maintenance.toml"
        if self.prepare:
            self.prepare(tmp)
        if self.raw is not None:
            path.write_bytes(self.raw.replace(TMP.encode(), str(tmp).encode()))
        else:
            text = tomli_w.dumps(merged(base(), self.changes)) + self.text
            path.write_text(text.replace(TMP, str(tmp)))
        return path


DEEP = 5000  # past what the TOML reader can recurse into
FAULTS = [
    # The file itself
    Fault("empty", "is empty", raw=b""),
    Fault("blanks-and-comments", "is empty", raw=b"  \n# [remediation]\n# mode = \"apply\"\n\t\n"),
    Fault("not-utf8", "offset 18 (line 2)", raw=b'[host]\nname = "caf\xe9"\n'),
    Fault("latin1-comment", "not UTF-8", raw=b"# r\xe9glages\n[host]\n"),
    Fault("utf16", "not UTF-8", raw="[host]\n".encode("utf-16")),
    Fault("bom", "byte order mark", raw=b'\xef\xbb\xbf[host]\nname = "x"\n'),
    Fault("binary-junk", "not UTF-8", raw=bytes(range(256)) * 4),
    Fault("nul-bytes", "(at line 1", raw=b"\x00\x00\x00\x00"),
    Fault("too-large", "larger than", raw=b"# " + b"x" * (2 << 20) + b"\n"),
    Fault("nested-too-deep-for-toml", "nested too deeply", raw=b"[api]\ntimeout_seconds = " + b"[" * DEEP
          + b"]" * DEEP + b"\n"),
    Fault("nested-40-levels", "api.timeout_seconds", raw=b"[api]\ntimeout_seconds = " + b"[" * 40 + b"]" * 40),
    # TOML that does not parse: the line is named
    Fault("unclosed-table", "(at line", text="[api\n"),
    Fault("duplicate-key", "(at line", text="[api]\ntimeout_seconds = 3\ntimeout_seconds = 4\n"),
    Fault("duplicate-table", "(at line", text="[policy]\nflap_window = 6\n"),
    Fault("bare-word", "(at line", text="[api]\ntimeout_seconds = five\n"),
    Fault("unterminated-string", "(at line", text='[host]\nname = "box\n'),
    # Keys and types
    Fault("unknown-table", "apii", text="[apii]\ntimeout_seconds = 3\n"),
    Fault("unknown-key", "api.base_urll", changes={"api": {"base_urll": "http://x"}}),
    Fault("source-is-not-a-key", "source", changes={"source": "/etc/other.toml"}),
    Fault("string-for-int", "tunnel.port", changes={"tunnel": {"port": "https"}}),
    Fault("list-for-string", "services.agent", changes={"services": {"agent": ["a", "b"]}}),
    Fault("table-for-list", "resources.disk_paths", changes={"resources": {"disk_paths": {"a": "/"}}}),
    Fault("not-a-boolean", "host.sudo", changes={"host": {"sudo": "maybe"}}),
    Fault("bad-date", "waivers.0.expires", changes={"waivers": [{"check": "X-1", "reason": "known", "expires": "soon"}]}),
    Fault("missing-required", "retention.0.pattern",
          changes={"retention": [{"name": "temp-files", "dir": f"{TMP}/tmp", "max_age_days": 1}]}),
    Fault("bad-mode", "remediation.mode", changes={"remediation": {"mode": "yolo"}}),
    Fault("bad-service-manager", "host.service_manager", changes={"host": {"service_manager": "upstart"}}),
    Fault("bad-backend", "host.backend", changes={"host": {"backend": "telnet://box"}}),
    Fault("ftp-url", "api.base_url", changes={"api": {"base_url": "ftp://127.0.0.1"}}),
    Fault("url-without-scheme", "dashboard.url", changes={"dashboard": {"url": "localhost:3000"}}),
    Fault("heartbeat-not-http", "heartbeat.url", changes={"heartbeat": {"url": "file:///etc/passwd"}}),
    Fault("unknown-fallback", "alerts.fallback.0", changes={"alerts": {"fallback": ["pager"]}}),
    # Numbers out of range
    Fault("negative-timeout", "api.timeout_seconds", changes={"api": {"timeout_seconds": -1}}),
    Fault("port-zero", "database.port", changes={"database": {"port": 0}}),
    Fault("port-too-big", "tunnel.port", changes={"tunnel": {"port": 70000}}),
    Fault("age-10e23-days", "retention.0.max_age_days", changes=rule(max_age_days=10**23)),
    Fault("negative-age", "retention.0.max_age_days", changes=rule(max_age_days=-1)),
    Fault("keep-a-million-years", "reports.keep_days", changes={"reports": {"keep_days": 365_000_000}}),
    Fault("nan", "resources.cpu_sample_seconds", changes={"resources": {"cpu_sample_seconds": float("nan")}}),
    Fault("infinite-interval", "policy.repeat_interval_minutes",
          changes={"policy": {"repeat_interval_minutes": float("inf")}}),
    Fault("huge-float", "policy.repeat_interval_minutes", changes={"policy": {"repeat_interval_minutes": 1e300}}),
    Fault("warning-above-critical", "resources.cpu", changes={"resources": {"cpu": {"warning": 90, "critical": 85}}}),
    Fault("flapping-never-seen", "policy", changes={"policy": {"flap_window": 4, "flap_changes": 4}}),
    Fault("old-budget-key", "policy.budget", changes={"policy": {"budget": {"window_minutes": 60}}}),
    Fault("budget-of-a-million", "policy.budget.max_remediations",
          changes={"policy": {"budget": {"max_remediations": 10**6}}}),
    # Paths
    Fault("relative-state-dir", "policy.state_dir", changes={"policy": {"state_dir": "state"}}),
    Fault("dotdot-state-dir", "policy.state_dir", changes={"policy": {"state_dir": f"{TMP}/../state"}}),
    Fault("double-slash", "policy.state_dir", changes={"policy": {"state_dir": f"{TMP}//state"}}),
    Fault("trailing-slash", "paths.log_dir", changes={"paths": {"log_dir": f"{TMP}/log/"}}),
    Fault("dot-component", "emergency.bundle_dir", changes={"emergency": {"bundle_dir": f"{TMP}/./bundles"}}),
    Fault("relative-disk-path", "resources.disk_paths.0", changes={"resources": {"disk_paths": ["var"]}}),
    Fault("relative-reports-dir", "reports.dir", changes={"reports": {"dir": "reports"}}),
    Fault("relative-in-a-list", "emergency.bundle_log_dirs.1",
          changes={"emergency": {"bundle_log_dirs": [f"{TMP}/log", "logs"]}}),
    Fault("nul-in-path", "paths.log_dir", changes={"paths": {"log_dir": f"{TMP}/log\x00/etc"}}),
    Fault("newline-in-program", "diagnostics.health_check",
          changes={"diagnostics": {"health_check": ["/usr/local/bin/x\n@include /tmp/evil"]}}),
    Fault("escape-in-service", "services.dashboard", changes={"services": {"dashboard": "web\x1b]0;owned\x07"}}),
    Fault("escape-in-free-text", "waivers.0.reason",
          changes={"waivers": [{"check": "X-1", "reason": "ok \x1b[2J", "expires": "2030-01-01"}]}),
    Fault("semicolon-in-service", "services.agent", changes={"services": {"agent": "trading-agent;reboot"}}),
    Fault("slash-in-service", "services.tunnel", changes={"services": {"tunnel": "../../bin/sh"}}),
    Fault("space-in-service", "services.database", changes={"services": {"database": "postgresql restart"}}),
    Fault("shell-in-user", "services.user", changes={"services": {"user": "x;rm -rf /"}}),
    Fault("user-not-here", "services.user", changes={"services": {"user": "no-such-agent-user"}}),
    Fault("owner-not-here", "retention.0.owners", changes=rule(owners=["no-such-owner"])),
    # Retention rules that would delete what is not theirs
    Fault("retention-on-root", "retention.0.dir", changes=rule(dir="/")),
    Fault("retention-on-etc", "retention.0.dir", changes=rule(dir="/etc", pattern="*")),
    Fault("retention-below-etc", "retention.0.dir", changes=rule(dir="/etc/cron.d")),
    Fault("retention-on-usr-local", "retention.0.dir", changes=rule(dir="/usr/local/bin")),
    Fault("retention-on-var-lib", "retention.0.dir", changes=rule(dir="/var/lib/postgresql")),
    Fault("retention-on-boot", "retention.0.dir", changes=rule(dir="/boot")),
    Fault("retention-on-lib64", "retention.0.dir", changes=rule(dir="/lib64")),
    Fault("retention-on-root-home", "retention.0.dir", changes=rule(dir="/root")),
    Fault("retention-on-all-homes", "retention.0.dir", changes=rule(dir="/home")),
    Fault("retention-on-run", "retention.0.dir", changes=rule(dir="/run/user")),
    Fault("retention-leaving-its-tree", "retention.0.dir", changes=rule(dir="/tmp/../etc")),
    Fault("pattern-with-slash", "retention.0", changes=rule(pattern="../*")),
    Fault("root-owned", "retention.0", changes=rule(owners=["root"])),
    Fault("root-by-default", "retention.0", changes={"services": {"user": "root"}}),
    Fault("duplicate-rule-names", "retention", changes={"retention": [
        {"name": "temp-files", "dir": f"{TMP}/tmp", "pattern": "trading-*", "max_age_days": 1},
        {"name": "temp-files", "dir": f"{TMP}/other", "pattern": "*.log", "max_age_days": 7}]}),
    Fault("duplicate-waivers", "waivers", changes={"waivers": [
        {"check": "X-1", "reason": "known", "expires": "2030-01-01"},
        {"check": "X-1", "reason": "again", "expires": "2031-01-01"}]}),
    Fault("duplicate-boxes", "boxes.1", text='[[boxes]]\nname = "a"\n[[boxes]]\nname = "a"\n'),
    Fault("box-sets-alerts", "boxes.0", text='[[boxes]]\nname = "a"\n[boxes.alerts]\nfile = "/x"\n'),
    # Secrets and the machine
    Fault("two-password-sources", "database",
          changes={"database": {"password_env": "DB_PASSWORD", "password_file": f"{TMP}/db-password"}},
          prepare=lambda tmp: (tmp / "db-password").write_text("x\n")),
    Fault("missing-password-file", "database", changes={"database": {"password_file": f"{TMP}/nowhere"}}),
    Fault("alert-file-is-a-directory", "alerts.file", changes={"alerts": {"file": f"{TMP}/alerts"}},
          prepare=lambda tmp: (tmp / "alerts").mkdir()),
    Fault("state-dir-is-a-file", "policy.state_dir", changes={"policy": {"state_dir": f"{TMP}/state-file"}},
          prepare=lambda tmp: (tmp / "state-file").write_text("")),
]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root with its kind, size and modification time: what a write would change."""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def by_id(name: str) -> Fault:
    return next(fault for fault in FAULTS if fault.id == name)


def assert_refused(path: Path, code: int, stderr: str, said: str) -> None:
    __tracebackhide__ = True
    assert code == 4, stderr
    assert str(path) in stderr and said in stderr, stderr
    assert "Traceback" not in stderr and "INTERNALERROR" not in stderr, stderr
    assert len(stderr.splitlines()) <= 4, stderr  # a few lines, never a dump


def test_there_are_over_fifty_faults_each_named_once():
    assert len(FAULTS) >= 55 and len({fault.id for fault in FAULTS}) == len(FAULTS)


def test_the_base_without_a_fault_loads(tmp_path):
    """Else every refusal below could be the base's own."""
    settings = load(Fault("none", "").write(tmp_path))
    assert settings.retention[0].owners == ["nobody"] and settings.remediation.mode == "plan"


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.id)
def test_a_malformed_file_is_refused_naming_file_and_key_and_writes_nothing(tmp_path, capsys, fault):
    path = fault.write(tmp_path)
    before = snapshot(tmp_path)
    code = commands_main(["budget", "show", "--config", str(path)])
    assert_refused(path, code, capsys.readouterr().err, fault.said)
    assert snapshot(tmp_path) == before


def test_a_directory_or_a_fifo_given_as_the_file_is_refused_without_waiting(tmp_path, capsys):
    fifo = tmp_path / "maintenance.fifo"
    os.mkfifo(fifo)  # opened for reading, a FIFO waits for a writer: the load must not
    for path, said in ((tmp_path, "is a directory"), (fifo, "is not a regular file")):
        assert_refused(path, commands_main(["budget", "show", "--config", str(path)]), capsys.readouterr().err, said)


def run_entry(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["empty", "not-utf8", "nested-too-deep-for-toml", "nul-in-path", "retention-on-etc",
                                  "user-not-here", "alert-file-is-a-directory"])
def test_the_run_entry_refuses_before_anything_is_written(tmp_path, name):
    """As the schedule runs pytest: exit 4 (a usage error), one message, no lock, no state or report directory.
    Should a fault ever load, nothing acts (--remediation=off) and nothing is written outside tmp_path: the base
    keeps every path there, and the empty file (whose state would be the machine's) is only listed."""
    fault = by_id(name)
    path = fault.write(tmp_path)
    before = snapshot(tmp_path)
    listing = ["--collect-only"] if name == "empty" else []
    done = run_entry(["-m", "pytest", "-m", "daily", f"--maintenance-config={path}", "--remediation=off",
                      f"--reports-dir={tmp_path / 'reports'}", *listing])
    assert_refused(path, done.returncode, done.stderr, fault.said)
    assert "passed" not in done.stdout and "failed" not in done.stdout
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["retention-on-etc", "semicolon-in-service"])
def test_a_scheduled_run_refuses_with_one_line_in_its_runs_log_and_nothing_else(tmp_path, name):
    fault = by_id(name)
    path = fault.write(tmp_path)
    before = snapshot(tmp_path)
    done = run_entry(["-m", "commands", "run", "daily", "--config", str(path)])
    assert_refused(path, done.returncode, done.stderr, fault.said)
    runs_log = tmp_path / "runs" / "runs.log"
    assert fault.said in runs_log.read_text()  # what cron's operator reads later
    after = snapshot(tmp_path)
    written = {"runs", "runs/runs.log", "runs/.runs.log.lock", "."}  # the runs log, its lock, their directories
    assert set(after) - set(before) <= written
    assert {key: value for key, value in after.items() if key not in written} == {
        key: value for key, value in before.items() if key not in written}


def read_only(directory: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """argv where `directory` is a read-only mount of its own namespace: unwritable even for root."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           str(directory), sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only mount needs root (unshare --mount)")
@pytest.mark.parametrize("state", ["readonly", "readonly/not-yet"])
def test_a_state_directory_that_cannot_be_written_is_named_before_any_lock_or_report(tmp_path, state):
    """Issue 17, item 13: the run exited 4 without naming the key, after writing a lock."""
    (tmp_path / "readonly").mkdir()
    path = Fault("unwritable", "", changes={"policy": {"state_dir": f"{TMP}/{state}"}}).write(tmp_path)
    before = snapshot(tmp_path)
    done = read_only(tmp_path / "readonly", ["-m", "pytest", "-m", "daily", f"--maintenance-config={path}"])
    assert_refused(path, done.returncode, done.stderr, "policy.state_dir")
    assert f"cannot write {tmp_path / 'readonly'}: Read-only file system" in done.stderr
    assert snapshot(tmp_path) == before  # no reports directory, no spool, no lock
