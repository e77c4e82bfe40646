"""Monthly 3: Security Penetration Testing (the guide's security-penetration-test.sh and
ssl-certificate-check.sh), run safely against the suite's own box.

From outside, only what should answer answers: each port of [pentest]'s scan list gets one TCP
connect at the box's outside address, and the administrative endpoints refuse a request without
credentials. The certificates in use are read for their expiry, at a warning and a critical level
(the quarterly review's "Update SSL certificates" is this check, monthly: a quarter is too long a
look-ahead for a certificate of 90 days). Findings are for the operator: the guide's
update-security-config.sh is an operator's change, and no remediation runs.
"""

import pytest

from core.listing import listed

pytestmark = pytest.mark.monthly



@pytest.mark.check("PEN-001", severity="critical",
                   why="a port answering from outside is a service exposed to every scanner on the network")
def test_only_expected_ports_reachable_from_outside(pentest, settings):
    config = settings.pentest
    if config.outside_address is None:
        pytest.skip("[pentest] outside_address is not set: set it to the address others reach the box at")
    exposure = pentest.exposure
    answering, expected = exposure.answering(), sorted(config.reachable_ports)
    unexpected = [port for port in answering if port not in expected]
    silent = [port for port in expected if port not in answering]
    why_silent = ", ".join(f"{port} ({exposure.states[port]})" for port in silent)
    assert not unexpected and not silent, (
        f"at {exposure.address} ({len(exposure.states)} port(s) tried): "
        + "; ".join(part for part in (
            f"{len(unexpected)} port(s) answer that should not: {listed(unexpected) or 'none'}" if unexpected else "",
            f"expected but not answering: {why_silent}" if silent else "") if part)
        + f" (expected to answer: {listed(expected) or 'none'}, [pentest] reachable_ports)")


@pytest.mark.check("PEN-002", severity="critical",
                   why="an administrative endpoint that serves anyone lets anyone change how the agent trades")
def test_admin_endpoint_refuses_without_credentials(pentest, settings, protected_endpoint):
    endpoint = next(e for e in settings.pentest.protected if str(e) == protected_endpoint)
    answer = pentest.answer(endpoint)
    if answer.status is None:  # no HTTP answer: nothing is known about its protection
        raise ConnectionError(f"{endpoint}: no answer ({answer.problem}): cannot tell whether it is protected")
    refused = settings.pentest.refused_statuses
    if not 200 <= answer.status < 300 and answer.status not in refused:
        raise LookupError(f"{endpoint} answered {answer.status} without credentials, neither a success nor a refusal "
                          f"({listed(refused) or 'none'}): fix the url in [pentest] protected, or add the status to "
                          "refused_statuses if that is how it refuses (a redirect to a login page: 302)")
    assert answer.status in refused, (
        f"{endpoint} answered {answer.status} without credentials: it serves anyone who can reach it "
        f"(expected {listed(refused) or 'none'})")


@pytest.mark.parametrize("level", ["warning", "critical"])
@pytest.mark.check("TLS-001", why="an expired certificate cuts the agent off from the exchange, or the operator "
                                  "off from the box")
def test_certificate_not_expiring(certificates, settings, certificate, level):
    limit = getattr(settings.certificates, f"{level}_days")
    found = certificates.read(certificate)
    days = found.days_left()
    when = f"expired {-days:.1f} days ago" if days < 0 else f"expires in {days:.1f} days"
    assert days > limit, (
        f"{found} {when} ({found.expires}); {level} threshold {limit} days (short by {limit - days:.1f} days): "
        "renew it")

