"""supervisord for the lab: its configuration, starting it, and talking to it over its socket.

supervisord stands in for systemd: the suite restarts services with the same supervisorctl the
lab uses. The lab itself speaks XML-RPC over the unix socket (faster than spawning supervisorctl)
through a transport with a timeout, so a wedged supervisord cannot hang a test.
"""

from __future__ import annotations

import http.client
import shlex
import socket
import subprocess
import sys
import time
import xmlrpc.client

from lab.errors import LabError, LabNotUp
from lab.handlers import HANDLERS
from lab.handlers import command as handler_command
from lab.paths import REPO, LabPaths, Ports, venv_bin

PYTHON_PROGRAMS = {  # supervisor name -> module under lab/
    "trading-agent": "lab.agent",
    "trading-dashboard": "lab.dashboard",
    "ssh-tunnel": "lab.tunnel",
    "exchange-endpoint": "lab.exchange",
    "probe-target": "lab.probetarget",
}
PROGRAMS = ["postgresql", *PYTHON_PROGRAMS, *HANDLERS]  # always running (the error handlers: lab/handlers.py)
# started by a fault only (autostart=false); exposed-listener binds the lab's outside address (lab/pentest.py)
ON_DEMAND = {"unexpected-listener": "lab.unexpected", "exposed-listener": "lab.pentest"}
RPC_TIMEOUT = 30.0


def _q(value: str) -> str:
    """supervisord expands %(name)s in values: double every '%'."""
    return str(value).replace("%", "%%")


def _env(**values: str) -> str:
    for value in values.values():
        if '"' in value or "," in value:
            raise LabError(f"path {value!r} contains a quote or comma, which supervisord cannot pass")
    return ",".join(f'{key}="{_q(value)}"' for key, value in values.items())


def render_conf(paths: LabPaths, ports: Ports, postgres_command: list[str], postgres_user: str | None) -> str:
    logs = paths.supervisor_log_dir
    out = [
        "; Written by `python -m lab up`; edits are lost on the next up.",
        "[unix_http_server]",
        f"file={_q(paths.supervisor_sock)}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_q(logs / 'supervisord.log')}",
        "logfile_maxbytes=1MB",
        "logfile_backups=1",
        f"pidfile={_q(paths.supervisor_pid)}",
        f"childlogdir={_q(logs)}",
        f"directory={_q(REPO)}",
        "identifier=trading-lab",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_q(paths.supervisor_sock)}",
        "",
    ]

    def program(name: str, command: list[str], extra: list[str], autostart: bool = True) -> None:
        out.extend([
            f"[program:{name}]",
            "command=" + " ".join(_q(_shell_word(part)) for part in command),
            f"autostart={str(autostart).lower()}",
            "autorestart=true",
            "redirect_stderr=true",
            f"stdout_logfile={_q(logs / (name + '.log'))}",
            "stdout_logfile_maxbytes=1MB",
            "stdout_logfile_backups=1",
            *extra,
            "",
        ])

    user = [f"user={postgres_user}"] if postgres_user else []
    # directory=/: the postgres user may not be allowed into the repo (a clone under /root)
    program("postgresql", postgres_command, ["startsecs=1", "startretries=2", "stopsignal=INT",
                                             "stopwaitsecs=20", "priority=10", "directory=/", *user])
    env = _env(PYTHONPATH=str(REPO), LAB_DIR=str(paths.root), LAB_PORT_BASE=str(ports.base),
               PYTHONUNBUFFERED="1")
    for name, module in {**PYTHON_PROGRAMS, **ON_DEMAND}.items():
        command = [sys.executable, "-m", module, "--lab-dir", str(paths.root), "--port-base", str(ports.base)]
        # startsecs=1/startretries=1: a crash-looping program is FATAL within about 3 seconds
        program(name, command, ["startsecs=1", "startretries=1", "stopwaitsecs=5",
                                f"directory={_q(REPO)}", f"environment={env}", "priority=20"],
                autostart=name not in ON_DEMAND)
    for name in HANDLERS:  # no port, no python: a process whose own name is the handler's
        program(name, handler_command(paths.root, name), ["startsecs=1", "startretries=1", "stopwaitsecs=5",
                                                         "directory=/", "priority=30"])
    return "\n".join(out)


def _shell_word(part: str) -> str:
    """supervisord splits `command` with shlex: quote words that need it."""
    return shlex.quote(str(part))


# ---- talking to supervisord -------------------------------------------------------------------

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float):
        super().__init__()
        self._path, self._timeout = path, timeout

    def make_connection(self, host):  # noqa: ARG002 - the host is the socket
        return _UnixConnection(self._path, self._timeout)


class Supervisor:
    """The few supervisord calls the lab needs, each bounded by a timeout."""

    def __init__(self, paths: LabPaths, timeout: float = RPC_TIMEOUT):
        self.paths = paths
        self._proxy = xmlrpc.client.ServerProxy(
            "http://localhost", transport=_UnixTransport(str(paths.supervisor_sock), timeout))

    @property
    def rpc(self):
        return self._proxy.supervisor

    def alive(self) -> bool:
        try:
            return self.rpc.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return False

    def call(self, method: str, *args):
        """An RPC whose failure to connect means the lab is not up."""
        try:
            return getattr(self.rpc, method)(*args)
        except (ConnectionRefusedError, FileNotFoundError):
            raise LabNotUp(f"the lab is not up (no supervisord at {self.paths.supervisor_sock}); "
                           "run: python -m lab up") from None
        except TimeoutError:
            raise LabError(f"supervisord did not answer {method} within its timeout") from None
        except (OSError, http.client.HTTPException) as error:
            raise LabError(f"supervisord failed on {method}: {error}") from None

    def states(self) -> dict[str, str]:
        return {info["name"]: info["statename"] for info in self.call("getAllProcessInfo")}

    def info(self, name: str) -> dict:
        return self.call("getProcessInfo", name)

    def stop(self, name: str) -> None:
        try:
            self.call("stopProcess", name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def start(self, name: str, wait: bool = False) -> None:
        try:
            self.call("startProcess", name, wait)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.paths.supervisor_log_dir / f"{name}.log"
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {path})"
        return "\n".join(text.splitlines()[-lines:]) or f"(empty log {path})"

    def shutdown(self) -> None:
        self.call("shutdown")


def start_supervisord(paths: LabPaths, timeout: float = 15.0) -> None:
    """Start supervisord (it daemonizes itself) and wait until it answers on its socket."""
    paths.supervisor_sock.unlink(missing_ok=True)
    err_path = paths.supervisor_log_dir / "supervisord-start.err"
    with err_path.open("wb") as err:
        try:
            subprocess.run([venv_bin("supervisord"), "-c", str(paths.supervisor_conf)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                           timeout=timeout, check=False, cwd=str(REPO))
        except subprocess.TimeoutExpired:
            pass
        except OSError as error:
            raise LabError(f"cannot start supervisord: {error}") from None
    supervisor = Supervisor(paths, timeout=2.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.alive():
            return
        time.sleep(0.1)
    detail = err_path.read_text(errors="replace").strip()
    log = paths.supervisor_log_dir / "supervisord.log"
    if log.exists():
        detail += "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:])
    raise LabError(f"supervisord did not come up within {timeout:.0f}s:\n{detail}")
