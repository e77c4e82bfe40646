"""The trading dashboard on base+0: the page the guide's `curl -f http://localhost:3000` fetches."""

from __future__ import annotations

from urllib.parse import urlsplit

from lab import pentest
from lab.httpbase import Handler, crashloop_check, serve, server_args
from lab.switches import Switches

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>AI Crypto Trading Agent</title></head>
<body><h1>AI Crypto Trading Agent</h1><p>Status: trading. Open positions: 2.</p></body></html>
"""


ADMIN = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Administration</title></head>
<body><h1>Administration</h1><p>Risk per trade: 1.0 %. <a href="/admin/keys">API keys</a></p></body></html>
"""


class DashboardHandler(Handler):
    paths = None  # set in main()

    def do_GET(self):  # noqa: N802
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            return self.send_body(200, PAGE, "text/html; charset=utf-8")
        if path in pentest.DASHBOARD_PROTECTED:
            if not pentest.authorized(self.headers, self.paths, Switches(self.paths.faults_dir)):
                return self.send_body(401, b"admin token required\n", "text/plain")
            return self.send_body(200, ADMIN, "text/html; charset=utf-8")
        return self.send_body(404, b"not found\n", "text/plain")

    do_HEAD = do_GET


def main() -> None:
    paths, ports = server_args("the trading dashboard (lab stand-in)")
    crashloop_check(paths, "trading-dashboard")
    DashboardHandler.paths = paths
    serve(DashboardHandler, ports.dashboard)


if __name__ == "__main__":
    main()
