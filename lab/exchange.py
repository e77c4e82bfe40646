"""Gate.io's public endpoint on base+444, over TLS with the lab CA's certificate for api.gateio.ws.

It answers only for the Host the guide sends (`-H "Host: api.gateio.ws"`), like a virtual host
behind the cloud VM; the `exchange-down` switch makes it answer 503 to everything, `exchange-slow`
answers every GET 0.7 s late (the network latency check).
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import time
from urllib.parse import urlsplit

from lab.hardware import SLOW_EXCHANGE_SECONDS as SLOW_SECONDS
from lab.httpbase import Handler, Server, serve, server_args
from lab.switches import Switches

HOST = "api.gateio.ws"
CURRENCIES = [
    {"currency": "BTC", "name": "Bitcoin", "delisted": False, "withdraw_disabled": False,
     "withdraw_delayed": False, "deposit_disabled": False, "trade_disabled": False, "chain": "BTC"},
    {"currency": "ETH", "name": "Ethereum", "delisted": False, "withdraw_disabled": False,
     "withdraw_delayed": False, "deposit_disabled": False, "trade_disabled": False, "chain": "ETH"},
    {"currency": "USDT", "name": "Tether", "delisted": False, "withdraw_disabled": False,
     "withdraw_delayed": False, "deposit_disabled": False, "trade_disabled": False, "chain": "ETH"},
    {"currency": "SOL", "name": "Solana", "delisted": False, "withdraw_disabled": False,
     "withdraw_delayed": False, "deposit_disabled": False, "trade_disabled": False, "chain": "SOL"},
    {"currency": "GT", "name": "GateToken", "delisted": False, "withdraw_disabled": False,
     "withdraw_delayed": True, "deposit_disabled": False, "trade_disabled": False, "chain": "GTEVM"},
]


class ExchangeHandler(Handler):
    paths = None  # set in main()

    def do_GET(self):  # noqa: N802
        if Switches(self.paths.faults_dir).on("exchange-slow"):
            time.sleep(SLOW_SECONDS)
        if Switches(self.paths.faults_dir).on("exchange-down"):
            return self.send_json(503, {"label": "SERVICE_UNAVAILABLE", "message": "exchange unavailable"})
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip().lower()
        if host != HOST:
            return self.send_json(421, {"label": "MISDIRECTED_REQUEST", "message": f"no site for {host!r}"})
        if urlsplit(self.path).path == "/api/v4/spot/currencies":
            return self.send_json(200, CURRENCIES)
        return self.send_json(404, {"label": "NOT_FOUND", "message": "unknown endpoint"})

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        if Switches(self.paths.faults_dir).on("exchange-down"):
            return self.send_json(503, {"label": "SERVICE_UNAVAILABLE", "message": "exchange unavailable"})
        return self.send_json(405, {"label": "METHOD_NOT_ALLOWED", "message": "read-only lab endpoint"})


class TLSServer(Server):
    """Wraps each connection in its handler thread, so a client that never handshakes blocks
    only its own thread, not the accept loop."""

    context: ssl.SSLContext

    def finish_request(self, request, client_address):
        request.settimeout(15)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            print(f"{client_address[0]} TLS handshake failed: {error}", file=sys.stderr)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


def main() -> None:
    paths, ports = server_args("Gate.io's spot API (lab stand-in)")
    ExchangeHandler.paths = paths
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(paths.server_pem))
    TLSServer.context = context
    serve(ExchangeHandler, ports.exchange, TLSServer)


if __name__ == "__main__":
    main()
