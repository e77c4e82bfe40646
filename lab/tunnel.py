"""The SSH tunnel's local end on base+443: a plain TCP forwarder to the exchange on base+444.

It stands in for `ssh -L 8443:api.gateio.ws:443 cloud-vm`: the guide's checks only see a local
port that carries TLS through to the exchange. One thread per connection pumps both directions
with select; half-closes are passed on, and any socket error just ends that connection.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import sys

from lab.httpbase import exit_on_sigterm, server_args

CONNECT_TIMEOUT = 5.0
IDLE_TIMEOUT = 120.0
SEND_TIMEOUT = 30.0


class Forward(socketserver.BaseRequestHandler):
    target: tuple[str, int]

    def handle(self) -> None:
        client = self.request
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        except OSError as error:
            print(f"upstream {self.target[1]} unreachable: {error}", file=sys.stderr, flush=True)
            return
        try:
            pump(client, upstream)
        finally:
            upstream.close()


def pump(a: socket.socket, b: socket.socket) -> None:
    peer = {a: b, b: a}
    open_reads = {a, b}
    with selectors.DefaultSelector() as selector:
        for sock in (a, b):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while open_reads:
            events = selector.select(IDLE_TIMEOUT)
            if not events:
                return  # idle too long
            for key, _ in events:
                source = key.fileobj
                try:
                    data = source.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                if not data:  # EOF: pass the half-close on, stop reading this side
                    selector.unregister(source)
                    open_reads.discard(source)
                    try:
                        peer[source].shutdown(socket.SHUT_WR)
                    except OSError:
                        return
                    continue
                target = peer[source]
                try:
                    target.settimeout(SEND_TIMEOUT)  # blocking send, bounded
                    target.sendall(data)
                    target.setblocking(False)
                except OSError:
                    return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main() -> None:
    _, ports = server_args("the SSH tunnel's local end (lab stand-in)")
    Forward.target = ("127.0.0.1", ports.exchange)
    exit_on_sigterm()
    with Server(("127.0.0.1", ports.tunnel), Forward) as server:
        print(f"forwarding 127.0.0.1:{ports.tunnel} -> 127.0.0.1:{ports.exchange}", file=sys.stderr, flush=True)
        server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
