"""A private CA and a server certificate for api.gateio.ws, so the exchange check verifies TLS.

The suite trusts $LAB_DIR/tls/ca.pem (config: exchange.verify_tls), as the real box trusts the
public CAs; the certificate also names localhost and 127.0.0.1, the tunnel's local end.
"""

from __future__ import annotations

import os

from lab.paths import LabPaths

NAMES = ("api.gateio.ws", "localhost", "127.0.0.1")


def ensure_certs(paths: LabPaths) -> None:
    if paths.ca_cert.exists() and paths.server_pem.exists() and paths.ca_key.exists():
        return
    import trustme

    paths.tls_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Trading Lab CA")
    server = ca.issue_cert(*NAMES)
    ca.cert_pem.write_to_path(str(paths.ca_cert))
    ca.private_key_pem.write_to_path(str(paths.ca_key))
    os.chmod(paths.ca_key, 0o600)
    server.private_key_and_cert_chain_pem.write_to_path(str(paths.server_pem))
    os.chmod(paths.server_pem, 0o600)
