"""The weekly security audit (AUD-001..009): its readers and parsers on real things of this machine,
then its checks as cron runs them, on the session's shared lab (tests/conftest.py).

Fail2Ban is the one stand-in: the lab's `fail2ban-client` (lab/securityaudit.py) answers `status` and
`status JAIL` in fail2ban-client's own output from a state file, because real Fail2Ban is not installed
here and installing it would start a server that reads this machine's logs and bans addresses. sshd is
the real /usr/sbin/sshd (`sshd -T` on the lab's sshd_config copy, nothing listens), keys are made by the
real ssh-keygen, and the files are real files with real modes.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w
from pydantic import ValidationError

from configuration import load
from configuration.securityaudit import Audit
from conftest import TEST_PORT_BASE, run_cadence
from lab import securityaudit as lab_audit
from lab.paths import LabPaths
from probes.host import box_of
from probes.remote import securityauditscan, securityscan
from probes.securityaudit import AuditProbe, parse_fail2ban_status, parse_fingerprint, parse_jail_status

PORT_BASE = TEST_PORT_BASE  # the shared lab's
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
PATTERNS = ["Failed password", "Invalid user", "authentication failure"]
SSHD = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/sbin")
needs_sshd = pytest.mark.skipif(not SSHD or not shutil.which("ssh-keygen"), reason="OpenSSH's sshd and ssh-keygen "
                                "are not installed")

# fail2ban-client 0.11's answers, as printed on a Debian box (tabs after the colons).
STATUS = "Status\n|- Number of jail:\t2\n`- Jail list:\tsshd, ssh-tunnel\n"
JAIL = ("Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t3\n|  |- Total failed:\t57\n"
        "|  `- File list:\t/var/log/auth.log\n`- Actions\n   |- Currently banned:\t2\n   |- Total banned:\t9\n"
        "   `- Banned IP list:\t203.0.113.7 198.51.100.23\n")


def stamp(when: float) -> str:
    local = time.localtime(when)
    return f"{MONTHS[local.tm_mon - 1]} {local.tm_mday:2d} {time.strftime('%H:%M:%S', local)}"


def failed(when: float, count: int, source: str) -> str:
    return "".join(f"{stamp(when + n)} box sshd[42]: Failed password for root from {source} port 5022 ssh2\n"
                   for n in range(count))


def write_config(tmp_path: Path, **audit) -> Path:
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"), "fallback": ["file"]},
        "reports": {"dir": str(tmp_path / "reports")},
        "audit": audit,
    }))
    return path


def probe(tmp_path: Path, **audit) -> AuditProbe:
    settings = load(write_config(tmp_path, **audit))
    return AuditProbe(box_of(settings), settings)


# -- AUD-001: a week of failed logins, over logrotate's rotations


def test_a_week_of_failed_logins_is_read_from_the_log_and_the_rotations_the_window_reaches(tmp_path):
    now = time.time()
    day = 86400
    log = tmp_path / "auth.log"
    log.write_text(failed(now - 3600, 2, "192.0.2.1"))
    one = tmp_path / "auth.log.1"
    one.write_text(failed(now - 3 * day, 3, "192.0.2.2"))
    os.utime(one, (now - 2 * day, now - 2 * day))
    two = tmp_path / "auth.log.2.gz"
    two.write_bytes(gzip.compress((failed(now - 8 * day, 4, "192.0.2.3")  # before the window
                                   + failed(now - 6 * day, 5, "192.0.2.3")).encode()))
    os.utime(two, (now - 5 * day, now - 5 * day))
    three = tmp_path / "auth.log.3.gz"  # written to last 9 days ago: nothing of this week, not opened
    three.write_bytes(b"not gzip at all")
    os.utime(three, (now - 9 * day, now - 9 * day))
    found = securityscan.failed_logins_rotated(str(log), 7 * day, PATTERNS, now)
    assert found == {"count": 10, "sources": {"192.0.2.1": 2, "192.0.2.2": 3, "192.0.2.3": 5},
                     "files": [str(log), str(one), str(two)]}
    # SEC-004's reader is unchanged: the log and its .1 only
    assert securityscan.failed_logins(str(log), 7 * day, PATTERNS, now)["files"] == [str(one), str(log)]


def test_an_auth_log_that_is_not_there_is_unknown_naming_it(tmp_path):
    audit = probe(tmp_path)
    audit.security = audit.security.model_copy(update={"auth_log": tmp_path / "nowhere.log"})
    with pytest.raises(FileNotFoundError, match=r"auth log .*nowhere.log does not exist: point \[security\] auth_log"):
        audit.failed_logins  # noqa: B018


# -- AUD-002, AUD-003: Fail2Ban


def test_fail2ban_client_answers_are_parsed():
    assert parse_fail2ban_status(STATUS) == ["sshd", "ssh-tunnel"]
    assert parse_fail2ban_status("Status\n|- Number of jail:\t0\n`- Jail list:\t\n") == []
    jail = parse_jail_status("sshd", JAIL)
    assert (jail.currently_failed, jail.total_failed, jail.currently_banned, jail.total_banned, jail.banned) == (
        3, 57, 2, 9, ["203.0.113.7", "198.51.100.23"])
    with pytest.raises(ValueError, match="no 'Jail list:'"):
        parse_fail2ban_status("Server replied: pong\n")


def test_a_missing_fail2ban_client_is_unknown_with_the_fix(tmp_path):
    audit = probe(tmp_path, fail2ban_client=[str(tmp_path / "fail2ban-client")])
    with pytest.raises(FileNotFoundError, match=r"cannot be run on the box .*install fail2ban, set \[audit\] "
                                                r"fail2ban_client to its path, or \[audit\] fail2ban = false"):
        audit.fail2ban  # noqa: B018


def test_the_lab_client_says_what_fail2ban_client_says(tmp_path):
    """The stand-in, run as a program: running, a missing jail, a stopped server."""
    paths = LabPaths(tmp_path)
    lab_audit.write_client(paths)
    lab_audit.fail2ban_state(paths)
    audit = probe(tmp_path, fail2ban_client=[str(lab_audit.AuditPaths(paths).client)])
    assert audit.fail2ban.running and audit.fail2ban.jails == ["sshd", "ssh-tunnel"]
    assert audit.jail("sshd").banned == [lab_audit.BANNED] and audit.jail("nope") is None
    lab_audit.fail2ban_down(paths)
    del audit.fail2ban
    assert not audit.fail2ban.running and "Is fail2ban running?" in audit.fail2ban.said


# -- AUD-004, AUD-005: sshd -T


@needs_sshd
def test_sshd_effective_settings_come_from_sshd_itself(tmp_path):
    """Defaults and Include files applied: the config says nothing of x11forwarding, an included file
    allows passwords, the first value wins."""
    host_key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True, timeout=30)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "50-cloud.conf").write_text("PasswordAuthentication yes\n")
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {tmp_path}/conf.d/*.conf\nPasswordAuthentication no\nPermitRootLogin no\n"
                      "MACs hmac-sha2-256,hmac-sha1\n")
    audit = probe(tmp_path, sshd=lab_audit.sshd_command(), sshd_config=str(config), sshd_host_keys=[str(host_key)])
    assert audit.sshd_setting("passwordauthentication") == "yes"
    assert audit.sshd_setting("permitrootlogin") == "no"
    assert audit.sshd_setting("x11forwarding") == "no"  # OpenSSH's default
    assert audit.sshd_setting("macs") == "hmac-sha2-256,hmac-sha1"
    with pytest.raises(LookupError, match="sshd -T prints no 'protocol'"):
        audit.sshd_setting("protocol")


@needs_sshd
def test_an_sshd_config_that_is_not_there_is_unknown_naming_it(tmp_path):
    audit = probe(tmp_path, sshd=lab_audit.sshd_command(), sshd_config=str(tmp_path / "sshd_config"))
    with pytest.raises(OSError, match=r"sshd_config failed \(.*sshd_config: No such file or directory\)"):
        audit.sshd_settings  # noqa: B018


def test_audit_configuration_is_validated():
    assert Audit().sshd_settings["passwordauthentication"] == "no" and Audit().sshd_at_most == {"maxauthtries": 2}
    for bad in ({"tunnel_key_fingerprint": "AAAAC3NzaC1lZDI1NTE5"}, {"sshd_connection": "user trading"},
                {"sshd_settings": {"PasswordAuthentication": "no"}}, {"sshd_at_most": {"permitrootlogin": 1}},
                {"app_dir": "opt/trading-agent"}):
        with pytest.raises(ValidationError):
            Audit(**bad)


# -- AUD-006..009: files


def test_modes_and_owners_are_read_without_following_links(tmp_path):
    secret = tmp_path / ".env"
    secret.write_text("KEY=1\n")
    secret.chmod(0o640)
    (tmp_path / "link").symlink_to(secret)
    found = securityauditscan.file_modes([str(secret), str(tmp_path / "link"), str(tmp_path / "gone")])
    assert found[str(secret)]["mode"] == 0o640 and not found[str(secret)]["link"]
    assert found[str(secret)]["owner"] == __import__("pwd").getpwuid(os.getuid()).pw_name
    assert found[str(tmp_path / "link")]["link"]
    assert found[str(tmp_path / "gone")]["error"] == "FileNotFoundError"


def test_world_writable_files_are_counted_and_links_ignored(tmp_path):
    app = tmp_path / "app"
    (app / "config").mkdir(parents=True)
    for n in range(12):
        (app / "config" / f"f{n:02}").write_text("x")
        (app / "config" / f"f{n:02}").chmod(0o666)
    (app / "public").mkdir(mode=0o777)
    (app / "public").chmod(0o777)
    (app / "fine").write_text("x")
    (app / "tmp-link").symlink_to("/tmp")  # a link's mode is 777: not a finding, and not followed
    found = securityauditscan.world_writable(str(app), listed=3)
    assert found["count"] == 13 and len(found["first"]) == 3 and found["unreadable"] == []
    with pytest.raises(FileNotFoundError):
        securityauditscan.world_writable(str(tmp_path / "nowhere"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_a_directory_that_cannot_be_read_is_reported(tmp_path):
    (tmp_path / "closed").mkdir(mode=0o700)
    (tmp_path / "closed").chmod(0o000)
    try:
        assert securityauditscan.world_writable(str(tmp_path))["unreadable"] == [str(tmp_path / "closed")]
    finally:
        (tmp_path / "closed").chmod(0o700)


@needs_sshd
def test_the_fingerprint_is_ssh_keygens(tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "a b", "-f", str(key)], check=True,
                   timeout=30)
    listed = subprocess.run(["ssh-keygen", "-lf", str(key)], capture_output=True, text=True, check=True, timeout=30)
    assert parse_fingerprint(listed.stdout) == listed.stdout.split()[1]
    audit = probe(tmp_path, tunnel_key=str(key))
    assert audit.tunnel_key_fingerprint == listed.stdout.split()[1]
    (tmp_path / "other").mkdir()
    missing = probe(tmp_path / "other", tunnel_key=str(tmp_path / "gone"))
    with pytest.raises(OSError, match=r"ssh-keygen -lf .*gone failed .*set \[audit\] tunnel_key"):
        missing.tunnel_key_fingerprint  # noqa: B018


# -- the checks on the lab


@pytest.fixture
def healthy(healthy_lab):
    """The session's shared lab (tests/conftest.py), healthy and with no memory of earlier runs."""
    return healthy_lab


def run(config: Path, tmp_path: Path):
    return run_cadence(config, tmp_path / "reports", "-k", "test_weekly_security_audit", cadence="weekly")


def verdicts(done) -> dict[str, str]:
    return {result.name: result.properties.get("verdict") for result in done.results}


@pytest.mark.lab
@needs_sshd
def test_the_healthy_lab_passes_every_audit_check(healthy, tmp_path):
    done = run(healthy.config_path, tmp_path)
    ids = {result.check_id for result in done.results}
    assert ids == {f"AUD-00{n}" for n in range(1, 10)}, done.output
    assert set(verdicts(done).values()) == {"passed"}, done.output
    assert done.only("AUD-003", "[sshd]").properties["banned"] == "1"


# fault, check (and instance), what its message must say
FAULTS = [
    ("failed-logins", "AUD-001", "", "44 failed login line(s) in the last 7 day(s) in "),
    ("jail-missing", "AUD-003", "[ssh-tunnel]", "jail ssh-tunnel is not active; active jail(s): sshd"),
    ("sshd-weak", "AUD-004", "[passwordauthentication]", "sshd's effective passwordauthentication is yes, no expected"),
    ("sshd-weak", "AUD-004", "[permitrootlogin]", "sshd's effective permitrootlogin is yes, no expected"),
    ("env-world-readable", "AUD-006", ".env]", ".env has mode 644, 600 or closer expected (group/others may read)"),
    ("world-writable-file", "AUD-008", "", "1 world-writable file(s) or directory(ies) under "),
    ("tunnel-key-replaced", "AUD-009", "", "the tunnel key was replaced"),
]


@pytest.mark.lab
@needs_sshd
def test_each_fault_fails_its_check_with_what_is_wrong(healthy, tmp_path):
    """The faults touch different checks, so one run shows them all, and that nothing else fails."""
    for fault in sorted({fault for fault, *_ in FAULTS}):
        healthy.inject(fault)
    done = run(healthy.config_path, tmp_path)
    failing = set()
    for _, check, instance, said in FAULTS:
        result = done.only(check, instance)
        failing.add(result.name)
        assert result.properties["verdict"] == "failed" and said in result.message, result.message
    assert "most from: 203.0.113.7 (40)" in done.only("AUD-001").message
    assert "notes.txt" in done.only("AUD-008").message
    others = {name: verdict for name, verdict in verdicts(done).items() if name not in failing}
    assert set(others.values()) == {"passed"}, done.output


@pytest.mark.lab
@needs_sshd
def test_fail2ban_down_fails_and_its_jails_name_it_as_the_cause(healthy, tmp_path):
    healthy.inject("fail2ban-down")
    done = run(healthy.config_path, tmp_path)
    server = done.only("AUD-002")
    assert server.properties["verdict"] == "failed" and "Failed to access socket path: /var/run/fail2ban/" \
        "fail2ban.sock. Is fail2ban running?" in server.message, server.message
    for jail in ("[sshd]", "[ssh-tunnel]"):
        assert done.only("AUD-003", jail).properties.get("caused_by") == "AUD-002", done.output


@pytest.mark.lab
@needs_sshd
def test_what_cannot_be_read_is_unknown_and_no_fail2ban_skips(healthy, tmp_path):
    data = tomllib.loads(healthy.config_path.read_text())
    audit = data["audit"]
    del audit["tunnel_key_fingerprint"]
    audit.update(sshd_config=str(tmp_path / "no-sshd_config"), app_dir=str(tmp_path / "no-app"),
                 secret_files=[*audit["secret_files"], str(tmp_path / "no-secret")])
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(tomli_w.dumps(data))
    done = run(unknown, tmp_path)
    expected = {("AUD-009", ""): "[audit] tunnel_key_fingerprint is not set: set it to what `ssh-keygen -lf",
                ("AUD-004", "[passwordauthentication]"): "no-sshd_config",
                ("AUD-005", "[ciphers]"): "no-sshd_config",
                ("AUD-008", ""): "no-app does not exist: set [audit] app_dir",
                ("AUD-006", "no-secret]"): "no-secret does not exist: restore it, or remove it from [audit] secret_files"}
    for (check, instance), said in expected.items():
        result = done.only(check, instance)
        assert result.properties["verdict"] == "unknown" and said in result.message, (check, result.message)
    assert done.only("AUD-006", ".env]").properties["verdict"] == "passed"

    audit.update(fail2ban=False, fail2ban_client=[str(tmp_path / "no-client")])
    unknown.write_text(tomli_w.dumps(data))
    done = run(unknown, tmp_path)
    assert {done.only("AUD-002").outcome, done.only("AUD-003", "[sshd]").outcome} == {"skipped"}, done.output
    assert "[audit] fail2ban = false" in done.only("AUD-002").message
