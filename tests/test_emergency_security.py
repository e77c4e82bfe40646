"""The security-breach indicators (SEC-001..004) and `commands checksums`, without the lab.

The readers are tried on real things of this machine: a socket the test listens on, keys made by
ssh-keygen (fixed keys when it is not installed), files changed after their baseline was recorded,
auth logs with lines inside and outside the window. The checks themselves run as cron runs them
(`python -m pytest -m emergency -k test_emergency_security`), on a configuration whose every path
is in tmp and whose port_range holds only the test's own port.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from configuration import ConfigError, load
from conftest import ROOT, run_cadence
from probes.host import Box, box_of
from probes.remote import securityscan
from probes.security import SecurityProbe

# Made once with ssh-keygen, for a machine without it; their fingerprints as `ssh-keygen -lf` printed them.
FIXED_KEYS = [
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC6NPltq8vDQvWGSjOwesEQBlSjl+F1x/PQqbp7sBcOm fixed-ed25519",
     "SHA256:52RDJueTDZhFJlk5KkweHj7gEZ+tofwX+VT7HWigAf8"),
    ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIEmlQENG38a1maFubhBkrIROlDqKRpOtUQayiy"
     "/zAQV7aonZ/939UEnufguvwLwrOeFFpVDQfK9MEYrb9+KsOI= fixed-ecdsa", "SHA256:E5qQ6cylLpYQqyUyqaJjp4240d4hAfTvoP0OIGIMLMA"),
    ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDX+S7w2s8vFOkCGL+U7xzdhyN4F+Tug1rJy7B6C/e3QDAoMdlp1hq64vR+7nRwT3it9HBXsmXXZT"
     "fqlGHufrA7Kl1B+iwaxPx2bYjhfH6MA8lfxjgije/eQj4YLGcwdGpm+TZk75noOlnQ0XLVzHulZ738nEomefAlipk0RTnDDQ== fixed-rsa",
     "SHA256:UtoBELeJ7YmEV8tKNJPwegi/O8kZnY/axDq7ud2xyuo"),
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass
class Key:
    line: str  # as in a .pub file: type, base64, comment
    fingerprint: str  # as ssh-keygen -lf prints it


@pytest.fixture
def keys(tmp_path) -> list[Key]:
    """An ed25519, an ECDSA and an RSA key: fresh from ssh-keygen, or the fixed ones."""
    if not shutil.which("ssh-keygen"):
        return [Key(line, fingerprint) for line, fingerprint in FIXED_KEYS]
    made = []
    for kind, bits in (("ed25519", None), ("ecdsa", "256"), ("rsa", "2048")):
        path = tmp_path / f"id_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *(["-b", bits] if bits else []), "-N", "", "-C",
                        f"{kind}@test", "-f", str(path)], check=True)
        listed = subprocess.run(["ssh-keygen", "-lf", f"{path}.pub"], check=True, capture_output=True, text=True)
        made.append(Key(Path(f"{path}.pub").read_text().strip(), listed.stdout.split()[1]))
    return made


def syslog_stamp(when: float) -> str:
    """A traditional syslog stamp in local time, as rsyslog writes auth.log: `Mar  5 14:02:01`."""
    local = time.localtime(when)
    return f"{MONTHS[local.tm_mon - 1]} {local.tm_mday:2d} {time.strftime('%H:%M:%S', local)}"


def auth_lines(when: float, count: int, source: str, kind: str = "password") -> list[str]:
    words = {"password": f"sshd[4242]: Failed password for root from {source} port 50022 ssh2",
             "invalid": f"sshd[4242]: Invalid user admin from {source} port 50022",
             "pam": f"sshd[4242]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
                    f"ruser= rhost={source}  user=root"}
    return [f"{syslog_stamp(when + index)} trading-box {words[kind]}" for index in range(count)]


def write_config(tmp_path: Path, **security) -> Path:
    """A configuration whose every path is in tmp_path, with these [security] keys."""
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"), "fallback": ["file"]},
        "reports": {"dir": str(tmp_path / "reports")},
        "security": {"checksums_file": str(tmp_path / "critical-files.sha256"), **security},
    }))
    return path


def probe(config: Path) -> SecurityProbe:
    settings = load(config)
    return SecurityProbe(box_of(settings), settings)


def checksums(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "commands", "checksums", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def listener():
    """A real listening TCP socket on loopback; its port is the only one the tests watch."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


# -- SEC-001: listening ports


def test_a_listening_socket_is_found_with_its_process_and_a_connection_is_not(listener):
    with socket.create_connection(("127.0.0.1", listener)):  # an established socket on the same port
        found = securityscan.listening_ports(listener, listener)
    assert [(entry["port"], entry["address"]) for entry in found] == [(listener, "127.0.0.1")]
    assert found[0]["owner"].endswith(f"[{os.getpid()}]")
    assert all(entry["port"] != listener for entry in securityscan.listening_ports(listener + 1, 65535))


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
def test_an_ipv6_listener_is_read_from_tcp6():
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError as error:
        pytest.skip(f"cannot listen on ::1: {error}")
    with server:
        port = server.getsockname()[1]
        assert [(e["port"], e["address"]) for e in securityscan.listening_ports(port, port)] == [(port, "::1")]


@pytest.mark.skipif(sys.byteorder != "little", reason="the table below is what a little-endian kernel prints")
def test_proc_net_tables_are_parsed_for_listen_state_and_addresses(tmp_path):
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    rest = " 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    (tmp_path / "tcp").write_text(
        header + "   0: 0100007F:1F90 00000000:0000 0A" + rest.format(inode=0)  # 127.0.0.1:8080 LISTEN
        + "   1: 00000000:115C 00000000:0000 0A" + rest.format(inode=0)  # 0.0.0.0:4444 LISTEN
        + "   2: 0100007F:1F90 0100007F:D431 01" + rest.format(inode=0))  # established: not listening
    (tmp_path / "tcp6").write_text(
        header + "   0: 00000000000000000000000001000000:7A69 00000000000000000000000000000000:0000 0A"
        + rest.format(inode=0)  # [::1]:31337
        + "   1: 0000000000000000FFFF00000100007F:0016 00000000000000000000000000000000:0000 0A"
        + rest.format(inode=0)  # [::ffff:127.0.0.1]:22
        + "   2: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 06"
        + rest.format(inode=0))  # TIME_WAIT
    tables = [str(tmp_path / "tcp"), str(tmp_path / "tcp6")]
    found = [(e["port"], e["address"], e["owner"]) for e in securityscan.listening_ports(1, 65535, tables)]
    assert found == [(22, "::ffff:127.0.0.1", None), (4444, "0.0.0.0", None), (8080, "127.0.0.1", None),
                     (31337, "::1", None)]
    assert [e["port"] for e in securityscan.listening_ports(4000, 9000, tables)] == [4444, 8080]
    assert securityscan.listening_ports(1, 65535, [str(tmp_path / "tcp"), str(tmp_path / "gone6")])  # no IPv6: fine
    with pytest.raises(FileNotFoundError, match="gone does not exist"):
        securityscan.listening_ports(1, 65535, [str(tmp_path / "gone")])


# -- SEC-002: authorized keys


def test_fingerprints_are_those_ssh_keygen_prints(keys, tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text("# the admins\n\n" + "\n".join(key.line for key in keys) + "\n")
    found = securityscan.authorized_keys([str(path)])[str(path)]["keys"]
    assert [k["fingerprint"] for k in found] == [key.fingerprint for key in keys]
    assert [k["line"] for k in found] == [3, 4, 5]
    assert [k["comment"] for k in found] == [key.line.split(None, 2)[2] for key in keys]


@pytest.mark.parametrize("options", [
    'no-pty',
    'command="echo hello world",no-port-forwarding',
    'from="10.0.0.1,192.168.1.0/24",command="echo \\"quoted words\\" here"',
    'cert-authority,principals="alice bob"',
    'restrict,environment="A=b c"',
])
def test_options_before_the_key_type_are_skipped(keys, tmp_path, options):
    path = tmp_path / "authorized_keys"
    path.write_text(f"{options} {keys[0].line}\n")
    [found] = securityscan.authorized_keys([str(path)])[str(path)]["keys"]
    assert (found["fingerprint"], found["type"]) == (keys[0].fingerprint, keys[0].line.split()[0])


def test_a_line_that_is_no_key_is_reported_not_skipped(keys, tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text(f"{keys[0].line}\nssh-ed25519 not-base64!! mallory\n")
    found = securityscan.authorized_keys([str(path)])[str(path)]["keys"]
    assert found[1]["fingerprint"] is None and found[1]["line"] == 2 and "not a public key" in found[1]["problem"]


# -- SEC-003: checksums


def test_record_writes_sha256sum_format_mode_600_and_nothing_when_a_file_is_missing(tmp_path):
    first, second = tmp_path / "a.env", tmp_path / "with space.conf"
    first.write_text("KEY=1\n")
    second.write_text("PermitRootLogin no\n")
    baseline = tmp_path / "state" / "critical-files.sha256"
    securityscan.record_checksums([str(first), str(second)], str(baseline))
    assert oct(baseline.stat().st_mode & 0o777) == "0o600"
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert baseline.read_text().splitlines()[0] == f"{digest}  {first}"
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", "--quiet", str(baseline)], capture_output=True).returncode == 0
    before = baseline.read_text()
    with pytest.raises(FileNotFoundError):
        securityscan.record_checksums([str(first), str(tmp_path / "gone")], str(baseline))
    assert baseline.read_text() == before
    assert [p.name for p in baseline.parent.iterdir()] == [baseline.name]  # no temporary left behind


# -- SEC-004: failed logins


def test_a_syslog_stamp_without_year_takes_this_year_or_last_across_new_year():
    new_year = time.mktime((2027, 1, 1, 0, 10, 0, 0, 0, -1))
    assert securityscan.line_time(b"Dec 31 23:55:00 box sshd[1]: x", new_year) == time.mktime(
        (2026, 12, 31, 23, 55, 0, 0, 0, -1))
    assert securityscan.line_time(b"Jan  1 00:05:00 box sshd[1]: x", new_year) == time.mktime(
        (2027, 1, 1, 0, 5, 0, 0, 0, -1))
    summer = time.mktime((2026, 7, 1, 12, 0, 0, 0, 0, -1))
    assert securityscan.line_time(b"Jun 30 23:00:00 box x", summer) == time.mktime((2026, 6, 30, 23, 0, 0, 0, 0, -1))
    utc_nine = calendar.timegm((2026, 11, 26, 9, 0, 0, 0, 0, 0))
    assert securityscan.line_time(b"2026-11-26T10:00:00.123456+01:00 box sshd[1]: x", 0) == utc_nine
    assert securityscan.line_time(b"2026-11-26T09:00:00Z box x", 0) == utc_nine
    assert securityscan.line_time(b"not a stamp", 0) is None


def test_failed_logins_count_only_the_window_across_new_year_and_the_rotated_log(tmp_path):
    now = time.mktime((2027, 1, 1, 0, 10, 0, 0, 0, -1))
    log = tmp_path / "auth.log"
    rotated = tmp_path / "auth.log.1"
    rotated.write_text("\n".join(auth_lines(now - 7200, 5, "192.0.2.9")  # before the window
                                 + auth_lines(now - 1500, 4, "203.0.113.5", "invalid")) + "\n")  # Dec 31 23:45
    os.utime(rotated, (now - 1400, now - 1400))
    log.write_text("\n".join(auth_lines(now - 300, 3, "203.0.113.5")
                             + auth_lines(now - 200, 2, "198.51.100.7", "pam")
                             + [f"{syslog_stamp(now - 100)} box sshd[1]: Accepted publickey for root from 10.0.0.2"])
                   + "\n")
    found = securityscan.failed_logins(str(log), 3600, ["Failed password", "Invalid user", "authentication failure"],
                                       now)
    assert found["count"] == 9
    assert found["sources"] == {"203.0.113.5": 7, "198.51.100.7": 2}
    assert found["files"] == [str(rotated), str(log)]
    os.utime(rotated, (now - 7200, now - 7200))  # rotated before the window began: not read
    assert securityscan.failed_logins(str(log), 3600, ["Failed password"], now)["count"] == 3


def test_a_big_log_is_entered_at_the_window_and_counts_as_a_whole_read(tmp_path, monkeypatch):
    now = time.time()
    log = tmp_path / "auth.log"
    lines, expected = [], 0
    for second in range(-20 * 3600, 0, 2):  # 36 000 lines over 20 hours, every 7th a failure
        failure = (second // 2) % 7 == 0
        expected += failure and second >= -3600
        text = "Failed password for root from 192.0.2.1 port 1 ssh2" if failure else "session opened for user x"
        lines.append(f"{syslog_stamp(now + second)} box sshd[7]: {text}")
    log.write_text("\n".join(lines) + "\n")
    assert log.stat().st_size > securityscan.SEEK_ABOVE
    entered = securityscan.failed_logins(str(log), 3600, ["Failed password"], now)["count"]
    monkeypatch.setattr(securityscan, "SEEK_ABOVE", 1 << 40)
    assert entered == securityscan.failed_logins(str(log), 3600, ["Failed password"], now)["count"] == expected


# -- the probe: what could not be read is UNKNOWN, named, with what to do


def test_what_is_missing_is_named_with_its_fix(tmp_path):
    present = tmp_path / "sshd_config"
    present.write_text("PermitRootLogin no\n")
    config = write_config(tmp_path, authorized_keys=[str(tmp_path / "no-such-keys")],
                          critical_files=[str(present), str(tmp_path / "gone.env")],
                          auth_log=str(tmp_path / "no-auth.log"))
    security = probe(config)
    with pytest.raises(FileNotFoundError, match=f"authorized_keys file {tmp_path}/no-such-keys does not exist: create "
                                                "it, or remove it from \\[security\\] authorized_keys"):
        security.keys(str(tmp_path / "no-such-keys"))
    with pytest.raises(FileNotFoundError, match=f"checksum baseline {tmp_path}/critical-files.sha256 does not exist: "
                                                f"record it .*make record-checksums CONFIG={config}"):
        security.recorded(str(present))
    with pytest.raises(FileNotFoundError, match=f"auth log {tmp_path}/no-auth.log does not exist: point \\[security\\] "
                                                "auth_log"):
        security.failed_logins  # noqa: B018
    securityscan.record_checksums([str(present)], str(tmp_path / "critical-files.sha256"))
    security = probe(config)
    with pytest.raises(LookupError, match=f"{tmp_path}/gone.env is not in the checksum baseline .* record it again"):
        security.recorded(str(tmp_path / "gone.env"))
    with pytest.raises(FileNotFoundError, match=f"critical file {tmp_path}/gone.env does not exist: restore it, or"):
        security.digest(str(tmp_path / "gone.env"))
    assert security.digest(str(present)) == security.recorded(str(present))


def test_a_file_this_user_cannot_read_is_named_with_the_fix(tmp_path):
    """Root reads every file: the probe reads as nobody, in a child process."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    keys = tmp_path / "authorized_keys"
    keys.write_text(FIXED_KEYS[0][0] + "\n")
    keys.chmod(0o600)
    config = write_config(tmp_path, authorized_keys=[str(keys)])
    code = ("import os, sys; from pathlib import Path\n"
            "from configuration import load; from probes.host import box_of; from probes.security import SecurityProbe\n"
            "settings = load(Path(sys.argv[1])); probe = SecurityProbe(box_of(settings), settings)\n"
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "try:\n    probe.keys(sys.argv[2])\n"
            "except PermissionError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code, str(config), str(keys)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == (f"authorized_keys file {keys} cannot be read (permission denied): run the "
                                   "emergency checks as root, or as a user who may read it (over SSH: the "
                                   "maintenance user with read access to it)"), done.stderr


class ShippedBox(Box):
    """This machine reached the way an SSH box is: the reader module's source run by `python3 -I -S`."""

    @property
    def local(self) -> bool:
        return False


def test_the_readers_run_shipped_to_a_box_python(tmp_path, keys, listener):
    (tmp_path / "authorized_keys").write_text(keys[0].line + "\n")
    (tmp_path / "sshd_config").write_text("PermitRootLogin no\n")
    (tmp_path / "auth.log").write_text("\n".join(auth_lines(time.time() - 60, 2, "203.0.113.5")) + "\n")
    config = write_config(tmp_path, port_range=[listener, listener], authorized_keys=[str(tmp_path / "authorized_keys"),
                                                                                      str(tmp_path / "gone")],
                          critical_files=[str(tmp_path / "sshd_config")], auth_log=str(tmp_path / "auth.log"))
    settings = load(config)
    local = box_of(settings)
    shipped = ShippedBox(local.name, local.host, sys.executable, False, 30)
    security = SecurityProbe(shipped, settings)
    assert [(entry.port, entry.address) for entry in security.listening] == [(listener, "127.0.0.1")]
    assert [key.fingerprint for key in security.keys(str(tmp_path / "authorized_keys"))] == [keys[0].fingerprint]
    with pytest.raises(FileNotFoundError, match="does not exist: create it"):
        security.keys(str(tmp_path / "gone"))
    assert security.failed_logins.count == 2
    baseline = str(settings.security.checksums_file)
    assert shipped.call(securityscan.record_checksums, [str(tmp_path / "sshd_config")], baseline)[0][0] == str(
        tmp_path / "sshd_config")
    assert security.digest(str(tmp_path / "sshd_config")) == SecurityProbe(shipped, settings).recorded(
        str(tmp_path / "sshd_config"))
    with pytest.raises(FileNotFoundError, match="auth log .*missing.log does not exist"):
        SecurityProbe(shipped, load(write_config(tmp_path, auth_log=str(tmp_path / "missing.log")))).failed_logins  # noqa: B018


# -- the configuration


@pytest.mark.parametrize("text, key, expected", [
    ("[security]\nport_range = [9000, 8000]\n", "security", "must not exceed the second"),
    ("[security]\nallowed_ports = [0]\n", "security.allowed_ports.0", "greater than or equal to 1"),
    ("[security]\nallowed_keys = [\"ssh-ed25519 AAAAC3Nz\"]\n", "security.allowed_keys.0", "ssh-keygen -lf"),
    ("[security]\ncritical_files = [\"etc/sudoers\"]\n", "security.critical_files.0", "absolute path"),
    ("[security]\nfailed_logins_window_minutes = 0\n", "security.failed_logins_window_minutes", "greater than 0"),
    ("[security]\ncritical_files = [\"/etc/a\", \"/etc/a\"]\n", "security", "lists a path twice"),
])
def test_a_bad_security_value_is_named(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load(path)
    assert key in str(error.value) and expected in str(error.value), str(error.value)


# -- the checks, run as cron runs them


@pytest.fixture
def box_files(tmp_path, keys):
    """Key files, critical files and their recorded baseline, an auth log: a box's, in tmp."""
    (tmp_path / "root_keys").write_text(keys[0].line + "\n")
    (tmp_path / "trading_keys").write_text(f'no-pty {keys[1].line}\n{keys[2].line}\n')
    for name, text in (("env", "GATEIO_API_KEY=k\n"), ("sshd_config", "PasswordAuthentication no\n")):
        (tmp_path / name).write_text(text)
    return tmp_path


def emergency(config: Path, tmp_path: Path):
    return run_cadence(config, tmp_path / "reports", "-k", "test_emergency_security", cadence="emergency")


def base_security(tmp_path: Path, listener: int, keys: list[Key], log: str) -> dict:
    return {"allowed_ports": [listener], "port_range": [listener, listener],
            "authorized_keys": [str(tmp_path / "root_keys"), str(tmp_path / "trading_keys")],
            "allowed_keys": [key.fingerprint for key in keys],
            "critical_files": [str(tmp_path / "env"), str(tmp_path / "sshd_config")],
            "auth_log": str(tmp_path / log), "failed_logins_max": 10, "failed_logins_window_minutes": 60}


def test_a_clean_box_passes_every_indicator(box_files, keys, listener):
    tmp_path, now = box_files, time.time()
    (tmp_path / "auth.log").write_text("\n".join(auth_lines(now - 3 * 3600, 30, "192.0.2.1")  # hours ago
                                                 + auth_lines(now - 600, 3, "203.0.113.5")) + "\n")
    config = write_config(tmp_path, **base_security(tmp_path, listener, keys, "auth.log"))
    recorded = checksums("record", "--config", str(config))
    assert recorded.returncode == 0, recorded.stderr
    run = emergency(config, tmp_path)
    verdicts = {(r.check_id, r.name): r.properties["verdict"] for r in run.results}
    assert sorted(verdicts.values()) == ["passed"] * 6 and run.returncode == 0, run.output
    assert {check for check, _ in verdicts} == {"SEC-001", "SEC-002", "SEC-003", "SEC-004"}


def test_every_indicator_fires_on_its_planted_condition(box_files, keys, listener):
    tmp_path, now = box_files, time.time()
    config = write_config(tmp_path, **{**base_security(tmp_path, listener, keys, "auth.log"), "allowed_ports": [22],
                                       "allowed_keys": [keys[0].fingerprint, keys[2].fingerprint]})
    assert checksums("record", "--config", str(config)).returncode == 0
    (tmp_path / "env").write_text("GATEIO_API_KEY=stolen\n")  # changed after the baseline
    (tmp_path / "auth.log").write_text("\n".join(auth_lines(now - 3 * 3600, 30, "192.0.2.1")
                                                 + auth_lines(now - 900, 8, "203.0.113.5")
                                                 + auth_lines(now - 600, 4, "198.51.100.7", "invalid")) + "\n")
    run = emergency(config, tmp_path)
    assert run.returncode == 11, run.output  # failures remain
    ports = run.only("SEC-001")
    assert ports.properties["verdict"] == "failed"
    assert ports.properties["problem"].startswith(f"1 listening port(s) not allowed: {listener} (allowed: 22; "
                                                  f"watched {listener}-{listener}): {listener} on 127.0.0.1 by ")
    assert run.only("SEC-002", "root_keys").properties["verdict"] == "passed"
    planted = run.only("SEC-002", "trading_keys").properties
    assert planted["verdict"] == "failed" and planted["problem"] == (
        f"1 of 2 key(s) in {tmp_path}/trading_keys not in [security] allowed_keys: {keys[1].fingerprint} "
        f"({keys[1].line.split()[0]} '{keys[1].line.split()[2]}', line 1)")
    changed = run.only("SEC-003", "/env]").properties
    assert changed["verdict"] == "failed" and changed["problem"].startswith(
        f"{tmp_path}/env changed since its checksum was recorded in {tmp_path}/critical-files.sha256: sha256 ")
    assert f"record again: make record-checksums CONFIG={config}" in changed["problem"]
    assert run.only("SEC-003", "sshd_config").properties["verdict"] == "passed"
    logins = run.only("SEC-004").properties
    assert logins["verdict"] == "failed" and logins["problem"] == (
        f"12 failed login line(s) in the last 60 min in {tmp_path}/auth.log, threshold 10 (over by 2); "
        "most from: 203.0.113.5 (8), 198.51.100.7 (4)")
    for result in run.results:
        assert result.properties["severity"] == "critical" and result.properties["cadence"] == "emergency"
        # Each starts the breach response; here no agent answers (its pause fails, said) and every later step
        # is off (held back); after three failed responses the budget of what they act on says a human is needed.
        assert result.properties["remediation"] == "emergency_response"
        outcome = result.properties.get("remediation_outcome", "") + result.properties.get("policy", "")
        assert result.properties["verdict"] == "passed" or "held back" in outcome or \
            "trading spent: 3 remediation(s)" in outcome, outcome
    assert "backdoor" in ports.properties["why"] and "guessing" in logins["why"]
    alerted = {alert["check_id"] for alert in run.alerts if alert.get("kind") == "problem"}
    assert alerted == {"SEC-001", "SEC-002", "SEC-003", "SEC-004"}


def test_missing_files_and_baseline_are_unknown_never_a_pass(box_files, keys, listener):
    tmp_path = box_files
    config = write_config(tmp_path, **{**base_security(tmp_path, listener, keys, "no-auth.log"),
                                       "authorized_keys": [str(tmp_path / "root_keys"), str(tmp_path / "no-keys")]})
    run = emergency(config, tmp_path)
    assert run.returncode == 12, run.output  # could not check
    verdicts = {r.name.split("::")[-1]: r.properties["verdict"] for r in run.results}
    assert sorted(verdicts.values()) == ["passed", "passed", "unknown", "unknown", "unknown", "unknown"], verdicts
    assert run.only("SEC-002", "no-keys").properties["problem"] == (
        f"could not check: FileNotFoundError: authorized_keys file {tmp_path}/no-keys does not exist: create it, "
        "or remove it from [security] authorized_keys")
    assert (f"checksum baseline {tmp_path}/critical-files.sha256 does not exist: record it once the critical files "
            f"are known good: make record-checksums CONFIG={config}") in run.only("SEC-003", "/env]").properties["problem"]
    assert f"auth log {tmp_path}/no-auth.log does not exist" in run.only("SEC-004").properties["problem"]


# -- make record-checksums


def test_record_and_show_on_the_box_the_configuration_names(tmp_path):
    (tmp_path / "env").write_text("A=1\n")
    config = write_config(tmp_path, critical_files=[str(tmp_path / "env")])
    baseline = tmp_path / "critical-files.sha256"
    shown = checksums("show", "--config", str(config))
    assert shown.returncode == 1 and "no baseline at" in shown.stdout and "make record-checksums" in shown.stdout
    recorded = checksums("record", "--config", str(config))
    digest = hashlib.sha256(b"A=1\n").hexdigest()
    assert recorded.returncode == 0 and recorded.stdout == (
        f"trading-box: recorded 1 file(s) in {baseline} (mode 600):\n  {digest}  {tmp_path}/env\n")
    assert baseline.read_text() == f"{digest}  {tmp_path}/env\n" and oct(baseline.stat().st_mode & 0o777) == "0o600"
    assert checksums("show", "--config", str(config)).stdout.splitlines()[1].split() == ["unchanged", f"{tmp_path}/env"]
    (tmp_path / "env").write_text("A=2\n")
    shown = checksums("show", "--config", str(config))
    assert shown.returncode == 1 and shown.stdout.splitlines()[1].split() == ["CHANGED", f"{tmp_path}/env"]


def test_record_refuses_a_missing_file_and_keeps_the_old_baseline(tmp_path):
    (tmp_path / "env").write_text("A=1\n")
    config = write_config(tmp_path, critical_files=[str(tmp_path / "env")])
    assert checksums("record", "--config", str(config)).returncode == 0
    before = (tmp_path / "critical-files.sha256").read_text()
    config = write_config(tmp_path, critical_files=[str(tmp_path / "env"), str(tmp_path / "gone")])
    refused = checksums("record", "--config", str(config))
    assert refused.returncode == 1 and (tmp_path / "critical-files.sha256").read_text() == before
    assert refused.stderr.startswith("trading-box: nothing recorded: ") and f"{tmp_path}/gone" in refused.stderr
    assert "remove it from [security] critical_files" in refused.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[security]\nport_range = [2, 1]\n")
    assert checksums("record", "--config", str(bad)).returncode == 4
    assert checksums("record", "--config", str(config), "--box", "nuc-9").returncode == 4
