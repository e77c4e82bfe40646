"""Real servers on 127.0.0.1 for the alert delivery tests, on ephemeral ports.

- ScriptedHTTPServer stands in for the Telegram Bot API or a webhook receiver: each request gets
  the next scripted reply (then the default one) and is recorded.
- SMTPServer is aiosmtpd requiring STARTTLS and AUTH (PLAIN/LOGIN), with a trustme certificate,
  recording what it accepted; DATA replies can be scripted too.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# -- HTTP


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict = field(default_factory=lambda: {"ok": True, "result": {}})
    hang: float = 0.0  # seconds to wait before closing without an answer


def ok() -> Reply:
    return Reply()


def status(code: int, description: str = "") -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description or f"error {code}"})


def rate_limited(retry_after: int) -> Reply:
    return Reply(429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                       "parameters": {"retry_after": retry_after}})


def hang(seconds: float) -> Reply:
    return Reply(hang=seconds)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class ScriptedHTTPServer:
    def __init__(self, on_request: Callable[[Request], None] | None = None):
        self.requests: list[Request] = []
        self.default = ok()
        self.on_request = on_request
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # releases hanging handlers at stop
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reply(self, *replies: Reply) -> ScriptedHTTPServer:
        with self._lock:
            self._script.extend(replies)
        return self

    def start(self) -> ScriptedHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            reply = self._script.popleft() if self._script else self.default
        if self.on_request:
            self.on_request(request)
        return reply


def _handler_for(owner: ScriptedHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reply = owner._next(Request("POST", self.path, dict(self.headers), body))
            if reply.hang:
                owner._stopping.wait(reply.hang)
                self.close_connection = True
                return
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args) -> None:  # quiet: the tests read `requests`
            pass

    return Handler


def refused_port() -> socket.socket:
    """A socket bound but not listening: connecting to its port is refused, and nobody else gets it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


# -- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    login: str | None
    tls: bool
    message: EmailMessage


class _EphemeralPortController(Controller):
    """aiosmtpd's Controller checks readiness by connecting to self.port; with port 0 that is the
    port the OS chose, read from the listening socket."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SMTPServer:
    def __init__(self, user: str, password: str):
        self.credentials = (user.encode(), password.encode())
        self.received: list[ReceivedMail] = []
        self.data_replies: deque[str] = deque()  # e.g. "451 4.3.0 try later", used before accepting
        self.ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.controller = _EphemeralPortController(
            self, hostname="127.0.0.1", port=0, server_hostname="localhost", tls_context=context,
            require_starttls=True, auth_required=True, auth_require_tls=True, authenticator=self._authenticate)

    @property
    def port(self) -> int:
        return self.controller.port

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == self.credentials
        return AuthResult(success=good, handled=False, auth_data=auth_data if good else None)

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        self.received.append(ReceivedMail(
            envelope.mail_from, list(envelope.rcpt_tos),
            session.auth_data.login.decode() if session.authenticated and session.auth_data else None,
            session.ssl is not None, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"
