"""Plain TCP listeners: the network check's probe target on base+53, the unexpected port on base+77.

The probe target stands in for the host the operator's configuration names instead of the guide's
`ping 8.8.8.8` (a TCP connect is what the suite can make without raw sockets); the `network-down`
fault stops it. The unexpected listener runs only while the `unexpected-port` fault is on: a
process nobody installed, listening where nothing should. Both accept a connection and close it.
"""

from __future__ import annotations

import socketserver
import sys

from lab.httpbase import exit_on_sigterm, server_args


class Hangup(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        pass  # the server closes the connection: the connect itself is the answer


class Server(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 64


def serve(port: int, what: str, address: str = "127.0.0.1") -> None:
    exit_on_sigterm()
    with Server((address, port), Hangup) as server:
        print(f"{what}: listening on {address}:{port}", file=sys.stderr, flush=True)
        server.serve_forever(poll_interval=0.5)


def probe_target() -> None:
    _, ports = server_args("the network check's probe target (lab stand-in for the guide's 8.8.8.8)")
    serve(ports.probe_target, "probe-target")


def unexpected() -> None:
    _, ports = server_args("a listener on a port nothing should use (the unexpected-port fault)")
    serve(ports.unexpected, "unexpected-listener")
