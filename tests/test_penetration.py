"""The monthly penetration check (PEN-001, PEN-002, TLS-001) and the quarterly review (KEY-001) end to
end: run as cron runs them, against the session's shared lab (tests/conftest.py).

The lab's outside address is 127.0.0.2 (loopback, where none of its servers listens); its dashboard
and agent require the admin token of its .env on GET /admin and GET /api/config; its exchange presents
a certificate of the lab's CA. Each fault breaks one of them: port-exposed (a listener on
127.0.0.2:base+88), auth-bypass, cert-expiring (re-issued to expire in 3 days), secrets-stale (the
.env 120 days old).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from trail_helpers import acts, head_seq

from conftest import ROOT, TEST_PORT_BASE, config_with, run_cadence
from core.vocabulary import LedgerKind
from lab import pentest

pytestmark = pytest.mark.lab

PORT_BASE = TEST_PORT_BASE  # the shared lab's
CHECKS = {"monthly": "penetration", "quarterly": "security_review"}  # -k: this part's checks of each cadence


@pytest.fixture
def healthy(healthy_lab):
    """The session's shared lab (tests/conftest.py), healthy and with no memory of earlier runs."""
    return healthy_lab


def run(lab, tmp_path, cadence, config=None):
    return run_cadence(config or lab.config_path, tmp_path / "reports", "-k", CHECKS[cadence], cadence=cadence)


def verdicts(done) -> dict[str, str]:
    return {result.name: result.properties.get("verdict") for result in done.results}


def test_a_healthy_lab_passes_both_cadences(healthy, tmp_path):
    ran = {}
    for cadence in CHECKS:
        done = run(healthy, tmp_path, cadence)
        assert done.results and set(verdicts(done).values()) == {"passed"}, done.output
        ran[cadence] = {result.check_id for result in done.results}
    assert ran == {"monthly": {"PEN-001", "PEN-002", "TLS-001"}, "quarterly": {"KEY-001"}}


@pytest.mark.parametrize(("fault", "cadence", "check", "instances", "message"), [
    ("port-exposed", "monthly", "PEN-001", 1, f"1 port(s) answer that should not: {PORT_BASE + 88} "
                                              "(expected to answer: none"),
    ("auth-bypass", "monthly", "PEN-002", 2, "answered 200 without credentials: it serves anyone"),
    ("cert-expiring", "monthly", "TLS-001", 2, "certificate of api.gateio.ws at 127.0.0.1:"),
    ("secrets-stale", "quarterly", "KEY-001", 2, "exchange-api-key last rotated 120 days ago"),
], ids=["port-exposed", "auth-bypass", "cert-expiring", "secrets-stale"])  # the same on every xdist worker
def test_each_fault_fails_its_check_with_what_is_wrong(healthy, tmp_path, fault, cadence, check, instances, message):
    healthy.inject(fault)
    done = run(healthy, tmp_path, cadence)
    findings = done.findings()
    assert sorted(findings) == [check], done.output
    assert len(findings[check]) == instances
    for result in findings[check]:
        assert result.properties["verdict"] == "failed" and message in result.message, result.message
    if check in ("TLS-001", "KEY-001"):  # one finding at each level, each with its severity
        assert {r.properties["severity"] for r in findings[check]} == {"warning", "critical"}
    if fault == "cert-expiring":
        assert re.search(r"expires in 2\.\d|expires in 3\.0", findings[check][0].message)
    healthy.clear(fault)  # one fault cleared alone puts the healthy part back
    assert not pentest.expiring_certificate_in_place(healthy.paths)
    assert time.time() - healthy.paths.env_file.stat().st_mtime < 3600


def test_an_endpoint_that_does_not_answer_is_unknown_and_an_unset_address_is_skipped(healthy, tmp_path):
    healthy.inject("tunnel-far-end-down")  # the exchange endpoint stopped: the tunnel accepts, then closes
    healthy.inject("service-down:trading-agent")
    text = re.sub(r"(?m)^outside_address = .*\n", "", healthy.config_path.read_text())
    config = tmp_path / "no-address.toml"
    config.write_text(text)
    done = run(healthy, tmp_path, "monthly", config)
    by_name = verdicts(done)
    assert by_name["test_only_expected_ports_reachable_from_outside"] == "skipped", done.output
    agent = f"test_admin_endpoint_refuses_without_credentials[GET http://127.0.0.1:{PORT_BASE + 1}/api/config]"
    assert by_name[agent] == "unknown"
    assert "no answer (connection refused): cannot tell whether it is protected" in done.only("PEN-002", "api/config").message
    exchange = [r for r in done.results if r.check_id == "TLS-001" and "exchange" in r.name]
    assert {r.properties["verdict"] for r in exchange} == {"unknown"}
    assert "cannot read the certificate of api.gateio.ws at 127.0.0.1:" in exchange[0].message


def test_an_expected_port_that_does_not_answer_fails_and_passes_once_it_does(healthy, tmp_path):
    config = config_with(healthy.config_path, tmp_path / "expects.toml", {"pentest": {"reachable_ports": [PORT_BASE + 88]}})
    silent = run(healthy, tmp_path, "monthly", config)
    assert f"expected but not answering: {PORT_BASE + 88} (closed)" in silent.only("PEN-001").message
    healthy.inject("port-exposed")
    assert verdicts(run(healthy, tmp_path, "monthly", config))["test_only_expected_ports_reachable_from_outside"] \
        == "passed"


def test_an_attested_rotation_passes_the_review_and_is_audited(healthy, tmp_path):
    healthy.inject("secrets-stale")
    trail = healthy.paths.root / "reports"  # the lab's [reports] dir: where its ledger is
    before = head_seq(trail)
    attested = subprocess.run([sys.executable, "-m", "commands", "attest", "--config", str(healthy.config_path),
                               "--what", "exchange-api-key", "--who", "alice"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    assert attested.returncode == 0, attested.stderr
    done = run(healthy, tmp_path, "quarterly")
    assert set(verdicts(done).values()) == {"passed"}, done.output
    audit = acts(trail, LedgerKind.ATTEST, after=before)
    assert [(a["action"], a["secret"], a["who"]) for a in audit] == [("attest-rotation", "exchange-api-key", "alice")]
