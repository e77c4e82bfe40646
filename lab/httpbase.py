"""Shared plumbing of the lab's small HTTP servers: JSON replies, quiet errors, a serve loop.

Servers read their fault switches on every request (lab.switches), so nothing here holds state.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lab.paths import LabPaths, Ports
from lab.switches import Switches


def server_args(description: str) -> tuple[LabPaths, Ports]:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lab-dir", required=True, type=Path)
    parser.add_argument("--port-base", required=True, type=int)
    args = parser.parse_args()
    return LabPaths(args.lab_dir), Ports(args.port_base)


def crashloop_check(paths: LabPaths, program: str) -> None:
    """Exit at once while the crashloop switch is on: a service that dies after every restart."""
    if Switches(paths.faults_dir).on(f"crashloop:{program}"):
        print(f"{program}: fatal: crashloop switch is on, exiting", file=sys.stderr, flush=True)
        sys.exit(1)


class Handler(BaseHTTPRequestHandler):
    server_version = "TradingLab/1.0"
    timeout = 15  # a client that stalls mid-request does not pin a thread forever

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout cut a hanging request)

    def send_json(self, status: int, payload) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json")

    def drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # a parallel suite run must not meet a full accept queue


def exit_on_sigterm() -> None:
    """supervisorctl stop sends SIGTERM: leave cleanly (exit status 0) instead of being killed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def serve(handler: type[Handler], port: int, server_class: type[Server] = Server) -> None:
    exit_on_sigterm()
    server = server_class(("127.0.0.1", port), handler)
    print(f"listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
