"""Manual Weekly 2: Security Audit, made a weekly check (the guide's security-audit.sh, its grep of
auth.log and its `fail2ban-client status`).

Every finding here is for the operator: none is remediated, each alerts. The guide's
`grep "Failed password" /var/log/auth.log | tail -20` shows twenty lines of any age from one file: here
the week's failed logins are counted over the log and its rotations, with the busiest sources. Its
`fail2ban-client status ssh-tunnel` is one jail of [audit] fail2ban_jails. sshd is judged by what it
would really do (`sshd -T`: Include files and defaults applied), against dev-sec's ssh-baseline. The
listening ports are not audited again here: SEC-001 compares them with [security] allowed_ports every
5 minutes.
"""

import pytest

from core.listing import listed

pytestmark = pytest.mark.weekly



@pytest.mark.check("AUD-001", severity="warning",
                   why="a week of guessed passwords shows who is trying, and whether Fail2Ban keeps up")
def test_failed_logins_of_the_week(audit, settings):
    config = settings.audit
    found = audit.failed_logins
    assert found.count <= config.failed_logins_max, (
        f"{found.count} failed login line(s) in the last {config.failed_logins_window_days:g} day(s) in "
        f"{listed(found.files, 5)}, threshold {config.failed_logins_max} (over by "
        f"{found.count - config.failed_logins_max}); most from: "
        f"{listed((f'{source} ({lines})' for source, lines in found.busiest(5)), 5)}")


def _fail2ban_expected(settings):
    if not settings.audit.fail2ban:
        pytest.skip("[audit] fail2ban = false: this box has no Fail2Ban on purpose")


@pytest.mark.check("AUD-002", severity="critical",
                   why="without Fail2Ban nothing stops a password guesser but the passwords")
def test_fail2ban_is_running(audit, settings):
    _fail2ban_expected(settings)
    fail2ban = audit.fail2ban
    assert fail2ban.running, f"Fail2Ban's server does not answer: {fail2ban.said}"


@pytest.mark.check("AUD-003", severity="critical",
                   why="a jail that is not active bans nobody from the service it should guard",
                   depends_on="AUD-002")
def test_fail2ban_jail_is_active(audit, settings, fail2ban_jail, record_property):
    _fail2ban_expected(settings)
    fail2ban = audit.fail2ban
    assert fail2ban.running, f"Fail2Ban's server does not answer: {fail2ban.said}"
    assert fail2ban_jail in fail2ban.jails, (
        f"jail {fail2ban_jail} is not active; active jail(s): {listed(fail2ban.jails, 5) or 'none'}")
    jail = audit.jail(fail2ban_jail)
    assert jail is not None, f"jail {fail2ban_jail} is listed but fail2ban-client status {fail2ban_jail} says " \
                             "it does not exist"
    record_property("banned", jail.currently_banned)
    record_property("banned_total", jail.total_banned)
    record_property("failed_total", jail.total_failed)


@pytest.mark.check("AUD-004", severity="critical",
                   why="sshd's effective settings decide who gets a shell: a password or root login is the "
                       "usual way in")
def test_sshd_setting(audit, settings, sshd_keyword):
    config = settings.audit
    value = audit.sshd_setting(sshd_keyword)
    if sshd_keyword in config.sshd_at_most:
        most = config.sshd_at_most[sshd_keyword]
        assert value.isdigit() and int(value) <= most, (
            f"sshd's effective {sshd_keyword} is {value}, at most {most} expected "
            f"(from {config.sshd_config}, as `sshd -T` reads it)")
    else:
        expected = config.sshd_settings[sshd_keyword]
        assert value.lower() == expected.lower(), (
            f"sshd's effective {sshd_keyword} is {value}, {expected} expected "
            f"(from {config.sshd_config}, as `sshd -T` reads it)")


@pytest.mark.check("AUD-005", severity="warning",
                   why="a weak cipher, MAC or key exchange lets a patient listener read or forge the session")
def test_sshd_algorithms(audit, settings, sshd_algorithm_kind):
    allowed = settings.audit.sshd_algorithms[sshd_algorithm_kind]
    offered = audit.sshd_setting(sshd_algorithm_kind).split(",")
    outside = [name for name in offered if name not in allowed]
    assert not outside, (
        f"sshd offers {len(outside)} of {len(offered)} {sshd_algorithm_kind} outside [audit] "
        f"sshd_algorithms.{sshd_algorithm_kind}: {listed(outside, 10)}")


@pytest.mark.check("AUD-006", severity="critical",
                   why="a secret anyone on the box can read is the exchange keys or the way to the cloud VM")
def test_secret_file_mode(audit, secret_file):
    facts = audit.mode(secret_file)
    assert not facts["link"], f"{secret_file} is a symbolic link: a secret must be the file itself"
    extra = facts["mode"] & 0o077
    assert not extra, (f"{secret_file} has mode {facts['mode']:03o}, 600 or closer expected (group/others "
                       f"may {_may(extra)}): chmod 600 {secret_file}")


def _may(bits: int) -> str:
    words = [word for bit, word in ((0o044, "read"), (0o022, "write"), (0o011, "execute")) if bits & bit]
    return " and ".join(words)


@pytest.mark.check("AUD-007", severity="warning",
                   why="a secret owned by another user can be changed or read by that user")
def test_secret_file_owner(audit, settings, secret_file):
    facts = audit.mode(secret_file)
    user = settings.services.user
    assert facts["owner"] == user, (f"{secret_file} is owned by {facts['owner']}, not [services] user {user}: "
                                    f"chown {user} {secret_file}")


@pytest.mark.check("AUD-008", severity="warning",
                   why="a world-writable file in the application is code or configuration anyone can change")
def test_no_world_writable_file_in_app_dir(audit, settings):
    found = audit.world_writable
    top = settings.audit.app_dir
    assert found["count"] == 0, (f"{found['count']} world-writable file(s) or directory(ies) under {top}: "
                                 f"{listed(found['first'], 5)} (chmod o-w)")
    if found["unreadable"]:  # nothing found where it could look: not a pass
        raise PermissionError(f"{len(found['unreadable'])} directory(ies) under {top} could not be read: "
                              f"{listed(found['unreadable'], 5)}: run the weekly checks as root")


@pytest.mark.check("AUD-009", severity="critical",
                   why="a tunnel key that changed is someone else's key: the exchange traffic goes their way")
def test_tunnel_key_is_the_known_one(audit, settings):
    config = settings.audit
    if config.tunnel_key_fingerprint is None:
        raise LookupError(f"[audit] tunnel_key_fingerprint is not set: set it to what `ssh-keygen -lf "
                          f"{config.tunnel_key}` prints (SHA256:...) once the key is known good")
    current = audit.tunnel_key_fingerprint
    assert current == config.tunnel_key_fingerprint, (
        f"{config.tunnel_key} is now {current}, [audit] tunnel_key_fingerprint says {config.tunnel_key_fingerprint}: "
        f"the tunnel key was replaced")
