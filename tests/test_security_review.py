"""The readers and settings of the penetration check and the security review, without the lab.

Certificates are made by trustme (a real CA, real X.509) and served by a real TLS server on loopback;
the DER reader's dates are compared with the cryptography package's. Rotation ages are read from real
files' modification times and from attestations written by `python -m commands attest`. The ports are
tried on real sockets (127.0.0.2 is loopback: a listener bound there answers only there).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomli_w
import trustme
from cryptography import x509
from trail_helpers import acts

from configuration import ConfigError, load
from conftest import ROOT
from core.vocabulary import LedgerKind
from probes.certificates import CertificateProbe, targets
from probes.host import Box, box_of
from probes.pentest import CLOSED, OPEN, port_states
from probes.remote import pentestscan
from probes.rotation import RotationProbe, attestations_path

UTC = datetime.UTC


def write_config(tmp_path: Path, **tables) -> Path:
    """A configuration whose every path is in tmp_path, with these tables."""
    path = tmp_path / "maintenance.toml"
    path.write_text(tomli_w.dumps({
        "policy": {"state_dir": str(tmp_path / "state")},
        "alerts": {"file": str(tmp_path / "alerts.jsonl"), "spool_dir": str(tmp_path / "spool"), "fallback": ["file"]},
        "reports": {"dir": str(tmp_path / "reports")},
        **tables,
    }))
    return path


class ShippedBox(Box):
    """This machine reached the way an SSH box is: the reader module's source run by `python3 -I -S`."""

    @property
    def local(self) -> bool:
        return False


def leaf(ca: trustme.CA, **dates) -> trustme.LeafCert:
    return ca.issue_cert("api.gateio.ws", common_name="api.gateio.ws", **dates)


def not_after_of(pem: bytes) -> float:
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()


# -- certificates


@pytest.mark.parametrize("not_after", [datetime.datetime(2026, 12, 1, 12, 30, 5, tzinfo=UTC),  # UTCTime
                                       datetime.datetime(2051, 3, 4, 5, 6, 7, tzinfo=UTC)])  # GeneralizedTime
def test_the_der_reader_reads_expiry_and_names_as_cryptography_does(not_after):
    ca = trustme.CA(organization_name="Test CA")
    pem = leaf(ca, not_after=not_after).cert_chain_pems[0].bytes()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    facts = pentestscan.certificate_facts(der)
    assert facts["not_after"] == not_after_of(pem) == not_after.timestamp()
    assert facts["subject"] == "api.gateio.ws"
    assert facts["not_before"] < facts["not_after"]


def test_a_certificate_file_is_read_and_a_bad_one_is_named_as_data(tmp_path):
    ca = trustme.CA()
    good = tmp_path / "chain.pem"
    leaf(ca).private_key_and_cert_chain_pem.write_to_path(str(good))  # key first: the first certificate counts
    (tmp_path / "key-only.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    found = pentestscan.file_certificates([str(good), str(tmp_path / "key-only.pem"), str(tmp_path / "gone.pem")])
    assert found[str(good)]["subject"] == "api.gateio.ws"
    assert "holds no PEM certificate" in found[str(tmp_path / "key-only.pem")]["message"]
    assert found[str(tmp_path / "gone.pem")]["error"] == "FileNotFoundError"


@pytest.fixture
def tls_server():
    """A real TLS server on loopback presenting a certificate that expired yesterday; yields its port."""
    ca = trustme.CA()
    now = datetime.datetime.now(UTC)
    cert = leaf(ca, not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], not_after_of(cert.cert_chain_pems[0].bytes())
    stop.set()
    thread.join(5)
    server.close()


def test_an_expired_endpoint_certificate_is_read_not_refused(tls_server, tmp_path):
    """Read without verification: an expired certificate is the finding, not a reason for UNKNOWN."""
    port, expiry = tls_server
    config = write_config(tmp_path, certificates={"exchange": False, "endpoints": [
        {"address": f"127.0.0.1:{port}", "server_name": "api.gateio.ws"},
        {"address": "127.0.0.1:1"}]})  # nothing listens on port 1
    settings = load(config)
    assert targets(settings) == [f"endpoint 127.0.0.1:{port}", "endpoint 127.0.0.1:1"]
    local = box_of(settings)
    for box in (local, ShippedBox(local.name, local.host, sys.executable, False, 30)):
        probe = CertificateProbe(box, settings)
        found = probe.read(f"endpoint 127.0.0.1:{port}")
        assert found.not_after == expiry and found.days_left() < 0
        assert str(found) == f"certificate of api.gateio.ws at 127.0.0.1:{port} (CN api.gateio.ws)"
        with pytest.raises(ConnectionError, match="cannot read the certificate of 127.0.0.1 at 127.0.0.1:1"):
            probe.read("endpoint 127.0.0.1:1")


def test_the_exchange_is_read_through_its_url_with_the_host_header_as_server_name(tls_server, tmp_path):
    port, expiry = tls_server
    settings = load(write_config(tmp_path, exchange={"url": f"https://127.0.0.1:{port}/api/v4/spot/currencies"}))
    assert targets(settings) == ["exchange"]
    found = CertificateProbe(box_of(settings), settings).read("exchange")
    assert found.where == f"api.gateio.ws at 127.0.0.1:{port}" and found.not_after == expiry
    plain = load(write_config(tmp_path, exchange={"url": "http://127.0.0.1:8080/"}))
    assert targets(plain) == []  # no TLS: nothing to read


# -- rotation


def rotation_config(tmp_path, files) -> Path:
    return write_config(tmp_path, rotation={"secrets": [{"name": "exchange-api-key", "files": [str(f) for f in files]},
                                                        {"name": "nothing-to-read"}]})


def attest(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "commands", "attest", "--config", str(config), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_newest_of_file_change_and_attestation_counts(tmp_path):
    env, key = tmp_path / ".env", tmp_path / "oracle_key"
    for path, days in ((env, 120), (key, 100)):
        path.write_text("x\n")
        then = time.time() - days * 86400
        os.utime(path, (then, then))
    config = rotation_config(tmp_path, [env, key])
    settings = load(config)
    last = RotationProbe(box_of(settings), settings).last("exchange-api-key")
    assert last.evidence == f"{key} modified" and round(last.age_days(time.time())) == 100

    rotated = (datetime.datetime.now(UTC) - datetime.timedelta(days=10)).date().isoformat()
    done = attest(config, "--what", "exchange-api-key", "--who", "alice", "--when", rotated)
    assert done.returncode == 0, done.stderr
    last = RotationProbe(box_of(settings), settings).last("exchange-api-key")
    assert last.evidence == "attested by alice" and last.date == rotated
    audit = acts(tmp_path / "reports", LedgerKind.ATTEST)
    assert audit[-1] | {"at": 0} == {"at": 0, "action": "attest-rotation", "box": "trading-box",
                                     "secret": "exchange-api-key", "who": "alice", "rotated": f"{rotated}T00:00:00+00:00"}
    recorded = json.loads(attestations_path(settings).read_text())
    assert recorded["trading-box"]["exchange-api-key"]["who"] == "alice"

    os.utime(env)  # rewritten now: newer than the attestation
    assert RotationProbe(box_of(settings), settings).last("exchange-api-key").evidence == f"{env} modified"


def test_attest_refuses_an_unknown_secret_and_a_date_to_come_and_writes_nothing(tmp_path):
    config = rotation_config(tmp_path, [])
    unknown = attest(config, "--what", "exchange-api-kee", "--who", "alice")
    assert unknown.returncode == 2 and "no secret 'exchange-api-kee' in [rotation] secrets; known: exchange-api-key" \
        in unknown.stderr
    future = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    later = attest(config, "--what", "exchange-api-key", "--who", "alice", "--when", future)
    assert later.returncode == 2 and "is in the future" in later.stderr
    assert not (tmp_path / "state").exists()


def test_a_secret_that_cannot_be_read_is_named_never_passed(tmp_path):
    settings = load(rotation_config(tmp_path, [tmp_path / "gone.env"]))
    local = box_of(settings)
    for box in (local, ShippedBox(local.name, local.host, sys.executable, False, 30)):
        probe = RotationProbe(box, settings)
        with pytest.raises(OSError, match=f"exchange-api-key: {tmp_path / 'gone.env'} cannot be read"):
            probe.last("exchange-api-key")
        with pytest.raises(LookupError, match="no rotation attested: attest the last one: make attest-rotation "
                                              "WHAT=nothing-to-read"):
            probe.last("nothing-to-read")


# -- ports


def test_a_listener_on_the_outside_address_answers_there_only():
    with socket.create_server(("127.0.0.2", 0)) as server:
        port = server.getsockname()[1]
        assert port_states("127.0.0.2", [port], 1.0) == {port: OPEN}
        assert port_states("127.0.0.1", [port], 1.0) == {port: CLOSED}


# -- configuration


@pytest.mark.parametrize(("tables", "expected"), [
    ({"pentest": {"protected": [{"method": "POST", "url": "http://127.0.0.1:3001/api/emergency/shutdown"}]}},
     "pentest.protected.0.method"),
    ({"pentest": {"refused_statuses": [401, 200]}}, "a 2xx answer is the endpoint serving the request"),
    ({"pentest": {"outside_address": "nuc lan"}}, "is neither an IP address nor a host name"),
    ({"certificates": {"warning_days": 5, "critical_days": 7}}, "critical_days (7) must not exceed warning_days (5)"),
    ({"rotation": {"warning_days": 100}}, "warning_days (100) must not exceed max_age_days (90)"),
    ({"rotation": {"secrets": [{"name": "a"}, {"name": "a"}]}}, "a name is listed twice"),
    ({"certificates": {"files": ["relative.pem"]}}, "must be an absolute path"),
])
def test_a_bad_review_value_is_named(tmp_path, tables, expected):
    with pytest.raises(ConfigError, match=None) as raised:
        load(write_config(tmp_path, **tables))
    assert expected in str(raised.value)


def test_the_defaults_are_the_guides_box():
    from configuration import Settings

    settings = Settings()
    assert settings.pentest.reachable_ports == [22] and settings.pentest.outside_address is None
    assert {22, 3000, 3001, 5432}.issubset(settings.pentest.ports_to_try([], []))
    assert [s.name for s in settings.rotation.secrets] == ["exchange-api-key", "tunnel-key"]
    assert (settings.certificates.warning_days, settings.certificates.critical_days) == (30, 7)
    assert (settings.rotation.warning_days, settings.rotation.max_age_days) == (80, 90)
