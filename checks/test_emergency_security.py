"""Emergency 3: Security Breach Response, the detection part (the guide's detect-security-breach.sh).

Four indicators, each from [security]: a port listening that nobody allowed, an SSH key nobody
allowed, a critical file changed since its checksum was recorded, failed logins over a threshold.
Each starts the breach response (remediations/emergency.py): new entries stopped and a forensic
bundle at once; closing positions, stopping the services and locking the firewall (the SSH port and
the management addresses kept open) only when enabled and confirmed, by two runs or two indicators.
"""

import pytest

from core.listing import listed

pytestmark = pytest.mark.emergency



@pytest.mark.check("SEC-001", severity="critical",
                   why="a port nobody opened on purpose is a backdoor, or a service exposed by mistake")
@pytest.mark.remediate("emergency_response", kind="breach")
def test_no_unexpected_listening_port(security, settings):
    allowed = settings.security.allowed_ports
    unexpected = [listener for listener in security.listening if listener.port not in allowed]
    ports = sorted({listener.port for listener in unexpected})
    low, high = settings.security.port_range
    assert not unexpected, (
        f"{len(ports)} listening port(s) not allowed: {listed(ports)} (allowed: {listed(sorted(allowed)) or 'none'}; "
        f"watched {low}-{high}): {listed(unexpected)}")


@pytest.mark.check("SEC-002", severity="critical",
                   why="an SSH key nobody allowed is a way in that survives every password change")
@pytest.mark.remediate("emergency_response", kind="breach")
def test_only_allowed_ssh_keys(security, settings, authorized_keys_file):
    keys = security.keys(authorized_keys_file)
    unknown = [key for key in keys if key.fingerprint not in settings.security.allowed_keys]
    assert not unknown, (
        f"{len(unknown)} of {len(keys)} key(s) in {authorized_keys_file} not in [security] allowed_keys: "
        f"{listed(unknown)}")


@pytest.mark.check("SEC-003", severity="critical",
                   why="a changed .env, sshd_config or sudoers is how an intruder takes the exchange keys or stays in")
@pytest.mark.remediate("emergency_response", kind="breach")
def test_critical_file_unchanged(security, critical_file):
    recorded = security.recorded(critical_file)
    current = security.digest(critical_file)
    assert current == recorded, (
        f"{critical_file} changed since its checksum was recorded in {security.config.checksums_file}: sha256 "
        f"{current[:16]}..., recorded {recorded[:16]}...; modified {security.modified(critical_file)}. If the "
        f"change was intended, record again: {security.record_command}")


@pytest.mark.check("SEC-004", severity="critical",
                   why="a burst of failed logins is someone guessing their way in")
@pytest.mark.remediate("emergency_response", kind="breach")
def test_failed_logins_below_threshold(security, settings):
    config = settings.security
    found = security.failed_logins
    assert found.count <= config.failed_logins_max, (
        f"{found.count} failed login line(s) in the last {config.failed_logins_window_minutes:g} min in "
        f"{config.auth_log}, threshold {config.failed_logins_max} (over by {found.count - config.failed_logins_max}); "
        f"most from: {listed(f'{source} ({lines})' for source, lines in found.busiest())}")
