"""The box the checks look at, and the only way probes and remediations reach it.

A `Box` wraps a testinfra host (local, or SSH with a reused connection) and offers two things:
`run(argv)`, a command as an argument list with a timeout (and sudo where the configuration asks),
and `call(reader, *args)`, one function of a reader module in probes/remote/ (standard library only): in this
process when the box is this machine, on the box's own python3 over SSH otherwise. So a log is scanned where it
lies and only the figures travel.

What crosses to the box ends here as one of three things, decided once for every probe: a reading (the
command ran: its exit status and output are what it said, a fault included), or `CouldNotRead` with its cause
for what never ran: ssh's exit 255 and its words (host key, authentication, refused, reset, timed out), `sudo -n`
refusing the exact command, a reader's PermissionError or its time running out. Only a reading can fail a check
or start a remediation. The first time ssh itself fails, the box is marked unreachable for the rest of the run
(a file per box in the state directory, seen by every xdist worker): no more SSH attempts, every later use of
it raises the same CouldNotRead at once. A run proves each box's connection before it trusts it, opens its own
master connection (never a previous run's) and closes it as it ends.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib
import inspect
import json
import math
import shlex
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import testinfra

from configuration import Settings
from core import rootfiles
from core.atomic import write_atomically
from core.rootfiles import RefusedFile
from core.safepath import UnsafePath
from core.unread import CouldNotRead
from core.vocabulary import Unread

TIMED_OUT = 124  # coreutils timeout's exit status
SSH_FAILED = 255  # ssh's own failure: the command never ran, or its answer never came back


class NotApplicable(Exception):
    """What the check reads does not exist on this box (no systemd journal): the check skips, saying why."""


class ReaderFailed(Exception):
    """A reader raised on the box; the message is the box's own."""


class Unreadable(CouldNotRead, PermissionError):
    """CouldNotRead(PERMISSION) that is also a PermissionError: a probe written to word a refusal its own way
    (which file, which user) still catches it."""

    def __reduce__(self):
        return Unreadable, (self.cause, self.what, self.detail, self.fix, self.box)


# ---- what never ran, and why: ssh's and sudo's own words, first match wins

SSH_WORDS = (
    (Unread.HOST_KEY, ("host key verification failed", "remote host identification has changed",
                       "host key for", "no matching host key")),
    (Unread.AUTHENTICATION, ("permission denied (", "permission denied, please try again",
                             "too many authentication failures", "no more authentication methods", "load key")),
    (Unread.TIMEOUT, ("connection timed out", "operation timed out", "timed out during banner exchange",
                      "not responding")),
    (Unread.TRANSPORT, ("connection refused", "connection reset", "no route to host", "network is unreachable",
                        "connection closed", "closed by remote host", "kex_exchange_identification",
                        "could not resolve hostname", "broken pipe", "control socket connect")),
)
SUDO_REFUSALS = ("sudo: a password is required", "is not allowed to execute", "sudo: a terminal is required",
                 "is not in the sudoers file", "sudo: sorry, you must have a tty")


def ssh_cause(said: str) -> tuple[Unread, str]:
    """Why ssh exited 255, from its words, and the line that says it. Words it has no rule for are still its
    own failure: the transport, in its own words."""
    lines = [line.strip() for line in (said or "").splitlines() if line.strip()]
    for cause, words in SSH_WORDS:
        for line in lines:
            if any(word in line.lower() for word in words):
                return cause, line[:300]
    return Unread.TRANSPORT, (lines[-1][:300] if lines else "ssh exited 255 and said nothing")


def says_gone(said: str) -> bool:
    """ssh's words say the connection itself is gone or does not answer (not that sshd refused a request)."""
    return any(word in (said or "").lower() for cause, words in SSH_WORDS if cause in (Unread.TRANSPORT, Unread.TIMEOUT)
               for word in words)


def sudo_refusal(status: int, said: str) -> str | None:
    """sudo's line refusing a command run through `sudo -n` (no rule for exactly it, or one that asks for a
    password), or None when sudo let it run: then its status and output are the command's own."""
    if status == 0:
        return None
    for line in (said or "").splitlines():
        if line.startswith(("sudo:", "Sorry, user")) and any(word in line for word in SUDO_REFUSALS):
            return line.strip()[:300]
    return None


def ssh_fix(cause: Unread, box: str, connect_timeout: float, said: str = "") -> str:
    """What the operator does about each way ssh fails; every one leaves the box unreachable for the run."""
    if "too long for unix domain socket" in said.lower():
        return "unreachable for the rest of this run: the SSH control socket's path is too long: a shorter [policy] " \
               "state_dir"
    return "unreachable for the rest of this run: " + {
        Unread.HOST_KEY: f"compare the box's host key with what its console shows, then trust it: make trust-box "
                         f"BOX={box} CONFIG=...",
        Unread.AUTHENTICATION: "put the maintenance user's public key in its authorized_keys on the box, or point "
                               "[host] ssh_identity_file at the key that is there",
        Unread.TIMEOUT: f"the box did not answer within {connect_timeout:g}s ([host] connect_timeout_seconds): is it "
                        f"on, and its sshd running and not stopped?",
    }.get(cause, "is the box on and its sshd listening where [host] backend says? Then run again")


@dataclass
class Box:
    name: str
    host: object  # testinfra.host.Host
    python: str
    sudo: bool
    timeout: float
    state_dir: Path | None = None  # where the run's marks of boxes that stopped answering go (none: this process)
    connect_timeout: float = 10.0

    @property
    def local(self) -> bool:
        return self.host.backend.NAME == "local"

    def run(self, argv: list[str], *, privileged: bool = False, timeout: float | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
        """An argument list (quoted by testinfra), bounded by `timeout`; through `sudo -n` when it
        changes the box and the configuration says the user needs it. `input` goes to the command's
        standard input (the firewall lock's ruleset for `nft -f -`): what root reads then comes from the
        suite, never from a file another user could have changed. The output is text decoded with
        replacement: a file name that is not UTF-8 (`trading-\\xff`) is shown as U+FFFD, never raised on.

        What ran comes back, whatever its status (124: it ran out of time); what never ran raises CouldNotRead:
        ssh failed (the box is then unreachable for the run), or sudo refused this exact command."""
        self.refuse_if_unreachable()
        seconds = timeout or self.timeout
        through_sudo = privileged and self.sudo
        prefix = ["timeout", "-k", "5", f"{seconds:g}"] + (["sudo", "-n"] if through_sudo else [])
        words = [*prefix, *argv]
        if input is not None:
            done = self._run_with_input(argv, words, input.encode(), seconds)
        else:
            try:
                result = self.host.run(" ".join(["%s"] * len(words)), *words)
            except Exception as error:  # testinfra raises on a connection it could not make (ssh's exit 255)
                if self.local:
                    raise
                raise self._unanswered(shlex.join(argv), _ssh_said(error)) from None
            done = _completed(argv, result.rc, result.stdout_bytes, result.stderr_bytes, seconds)
        refused = sudo_refusal(done.returncode, done.stderr) if through_sudo else None
        if refused:
            raise CouldNotRead(Unread.SUDO_REFUSED, f"`sudo -n {shlex.join(argv)}`", refused,
                               "add the sudo rule `make sudoers` prints for it", self.name)
        return done

    def _run_with_input(self, argv: list[str], words: list[str], data: bytes, seconds: float
                        ) -> subprocess.CompletedProcess:
        """testinfra's backends give a command no standard input, so this one runs without them: here as the
        argument list itself, over SSH through the run's master connection (the remote shell gets it quoted)."""
        command = words if self.local else [*_ssh_command_argv(self.host.backend), shlex.join(words)]
        try:  # the remote `timeout` ends the command; this bounds ssh itself too
            done = subprocess.run(command, input=data, capture_output=True, timeout=seconds + 15)
        except subprocess.TimeoutExpired:
            if not self.local:  # the remote `timeout` would have ended the command: ssh itself hung
                raise self._unanswered(shlex.join(argv), f"no answer from ssh within {seconds + 15:g}s: "
                                                         f"connection timed out") from None
            return subprocess.CompletedProcess(argv, TIMED_OUT, "", f"timed out after {seconds:g}s")
        except OSError as error:
            return subprocess.CompletedProcess(argv, 127, "", f"{command[0]}: {error.strerror or error}")
        if done.returncode == SSH_FAILED and not self.local:
            raise self._unanswered(shlex.join(argv), _text(done.stderr))
        return _completed(argv, done.returncode, done.stdout, done.stderr, seconds)

    def call(self, reader, *args):
        """`reader(*args)` on the box; its result as JSON values. A reader that may not read what it reads
        raises Unreadable (CouldNotRead and PermissionError), one that ran out of time CouldNotRead(TIMEOUT);
        ReaderFailed is left for a reader's own failure."""
        self.refuse_if_unreachable()
        what = f"{reader.__name__} ({reader.__module__})"
        if self.local:
            try:
                return reader(*args)
            except PermissionError as error:
                raise self._unreadable(what, str(error)) from None
        program = remote_program(reader)
        # -I -S: the standard library only, no site-packages, no user paths: faster and nothing of the box's
        try:
            result = self.host.run(f"timeout -k 5 {self.timeout:g} %s -I -S -c %s %s", self.python, program,
                                   json.dumps(args))
        except Exception as error:  # testinfra raises when ssh itself failed (exit 255): no answer at all
            raise self._unanswered(what, _ssh_said(error)) from None
        if result.rc == TIMED_OUT:
            raise CouldNotRead(Unread.TIMEOUT, what, f"no answer within {self.timeout:g}s",
                               "find what keeps it slow on the box, or raise [remediation] timeout_seconds", self.name)
        if result.rc != 0:
            raise ReaderFailed(f"box {self.name}: {self.python} failed (exit {result.rc}): "
                               f"{_last_line(result.stderr or result.stdout)}")
        answer = json.loads(result.stdout)
        if "error" in answer:
            if answer["error"] == "PermissionError":
                raise self._unreadable(what, answer["message"])
            kind = _ERRORS.get(answer["error"], ReaderFailed)
            raise kind(answer["message"])
        return answer["value"]

    def forward(self, local_socket: str, host: str, port: int, *, cancel: bool = False) -> str | None:
        """Over SSH: a unix socket here whose connections reach host:port as the box sees them (its own
        loopback), through the run's master connection (`ssh -O forward -L`; `cancel=True`: `-O cancel`).
        Nothing listens on a port of this machine, and the socket is in the suite's 0700 state directory.
        None when done, else ssh's words (the box's sshd refused it); a box that does not answer raises
        CouldNotRead, as every other use of it does."""
        verb = "cancel" if cancel else "forward"
        if cancel and self.unreachable() is not None:
            return f"box {self.name} unreachable: its forward ended with its connection"
        if not cancel:
            self.run(["true"], timeout=min(self.timeout, 15))  # the master is up (again, after ControlPersist)
        argv = [*_ssh_master_argv(self.host.backend), "-O", verb, "-L", f"{local_socket}:{host}:{port}",
                self.host.backend.host.name]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=min(self.timeout, 15),
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if cancel:
                return f"ssh -O {verb} did not answer"
            raise self._unanswered(f"ssh -O {verb}", "the master connection did not answer: timed out") from None
        if done.returncode == 0:
            return None
        said = _last_line(done.stderr or done.stdout) or f"exit {done.returncode}"
        if not cancel and says_gone(said):
            raise self._unanswered(f"ssh -O {verb}", said)  # the master went away: the box stopped answering
        return said

    def answers(self) -> None:
        """A trivial command through the run's connection, or the reason there is none (CouldNotRead, the
        box then marked unreachable for the run). The first time in a run it makes that connection, bounded
        here too: a hung sshd costs one connect timeout, never more."""
        self.refuse_if_unreachable()
        if self.local:
            return
        bound = self.connect_timeout + 5
        command = [*_ssh_command_argv(self.host.backend), "true"]
        try:
            done = subprocess.run(command, capture_output=True, timeout=bound, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise self._unanswered("a trivial command (true)", f"no answer within {bound:g}s: connection timed "
                                                               f"out") from None
        if done.returncode != 0:
            raise self._unanswered("a trivial command (true)", _text(done.stderr) or f"exit {done.returncode}")

    def reachable(self) -> str | None:
        """None when the box answers a trivial command, else why not."""
        try:
            self.answers()
        except CouldNotRead as error:
            return str(error)
        return None

    # ---- a box that stopped answering, for the rest of the run

    def unreachable(self) -> CouldNotRead | None:
        """Why this box stopped answering earlier in this run, in this process or another of it, or None."""
        if self.local:
            return None
        key = (RUN.id, self.name)
        if key not in _MARKS and self.state_dir is not None:
            found = _read_mark(mark_path(self.state_dir, self.name))
            if found is not None:
                _MARKS[key] = found
        return _MARKS.get(key)

    def refuse_if_unreachable(self) -> None:
        """The stored reason, raised at once: no SSH attempt on a box that stopped answering in this run."""
        error = self.unreachable()
        if error is not None:
            raise error

    def _unanswered(self, what: str, said: str) -> CouldNotRead:
        """ssh failed: the cause from its words; the box marked unreachable for the run (the first one stays)."""
        cause, line = ssh_cause(said)
        error = CouldNotRead(cause, what, line, ssh_fix(cause, self.name, self.connect_timeout, line), self.name)
        return self._mark(error)

    def _mark(self, error: CouldNotRead) -> CouldNotRead:
        earlier = self.unreachable()
        if earlier is not None:
            return earlier
        _MARKS[(RUN.id, self.name)] = error
        if self.state_dir is not None:
            try:
                rootfiles.ensure_directory(self.state_dir / MARKS_DIR, 0o700)
                write_atomically(mark_path(self.state_dir, self.name), json.dumps({
                    "run": RUN.id, "box": self.name, "cause": str(error.cause), "what": error.what,
                    "detail": error.detail, "fix": error.fix, "at": time.time()}))
            except OSError:  # this process still knows; the others find it out once each, as this one did
                pass
        return error

    def _unreadable(self, what: str, said: str) -> Unreadable:
        return Unreadable(Unread.PERMISSION, what, said, "let the user the suite reads as (over SSH, the maintenance "
                          "user) read it: its group or an ACL, or a sudo rule for the reading", self.name)


def remote_program(reader) -> str:
    """The program `python3 -I -S -c` runs on the box: the reader's module and what it declares in
    REMOTE_NEEDS (standard-library-only modules of the suite, theirs too), each defined from its source under its
    own name (stub parent packages), so `from core import rootfiles` works there as here; then the call."""
    return _modules_program(reader.__module__) + _CALL.format(module=reader.__module__, name=reader.__name__)


@functools.cache
def _modules_program(name: str) -> str:
    return _DEFINE + "".join(f"_define({module.__name__!r}, {inspect.getsource(module)!r})\n"
                             for module in shipped_modules(sys.modules[name]))


def shipped_modules(module, seen: tuple = ()) -> list:
    """`module` last, after everything its REMOTE_NEEDS name (theirs first, each once)."""
    ordered: list = []
    for name in getattr(module, "REMOTE_NEEDS", ()):
        needed = importlib.import_module(name)
        if needed.__name__ in seen:
            raise ImportError(f"{module.__name__} and {name} need each other: nothing can be shipped first")
        ordered += [m for m in shipped_modules(needed, (*seen, module.__name__)) if m not in ordered]
    return [*ordered, module]


_DEFINE = """
import json as _json, sys as _sys, types as _types


def _define(name, source):
    parts = name.split(".")
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        if package not in _sys.modules:
            _sys.modules[package] = _types.ModuleType(package)
            _sys.modules[package].__path__ = []
    module = _sys.modules[name] = _types.ModuleType(name)
    exec(compile(source, "<" + name + ">", "exec"), module.__dict__)
    if len(parts) > 1:
        setattr(_sys.modules[".".join(parts[:-1])], parts[-1], module)
    return module

"""
_CALL = """
try:
    _value = getattr(_sys.modules[{module!r}], {name!r})(*_json.loads(_sys.argv[1]))
except Exception as _error:
    _sys.stdout.write(_json.dumps({{"error": type(_error).__name__, "message": str(_error)}}))
else:
    _sys.stdout.write(_json.dumps({{"value": _value}}, default=list))
"""
_ERRORS = {"FileNotFoundError": FileNotFoundError, "PermissionError": PermissionError,
           "NotADirectoryError": NotADirectoryError, "IsADirectoryError": IsADirectoryError,
           "UnsafePath": UnsafePath, "RefusedFile": RefusedFile}


def _ssh_said(error: Exception) -> str:
    """testinfra's ssh backend raises RuntimeError(CommandResult) when ssh exits 255: ssh's own words."""
    failed = error.args[0] if error.args and hasattr(error.args[0], "stderr_bytes") else None
    return _text(failed.stderr_bytes).strip() if failed is not None else f"{type(error).__name__}: {error}"


def _text(output: bytes | str) -> str:
    """A command's output as text, whatever bytes it held: what is not UTF-8 becomes U+FFFD."""
    return output if isinstance(output, str) else output.decode("utf-8", errors="replace")


def _completed(argv: list[str], status: int, stdout: bytes, stderr: bytes, seconds: float
               ) -> subprocess.CompletedProcess:
    said = _text(stderr) + (f"timed out after {seconds:g}s" if status == TIMED_OUT else "")
    return subprocess.CompletedProcess(argv, status, _text(stdout), said)


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


CONTROL_PERSIST_SECONDS = 60  # an idle master ends by itself after this; the run that opened it ends it sooner
CONTROL_NAME_LENGTH = 6  # hex: runs that overlap on one state directory are a handful
ALIVE_PROBES = 3  # ServerAliveCountMax: unanswered keep-alives before ssh gives the connection up


def control_name(box: str) -> str:
    """The run's master socket for `box`: its own for each run and box, and short (a unix socket's path has at
    most 107 bytes, and ssh adds 17 while it makes one)."""
    return hashlib.sha256(f"{RUN.id} {box}".encode()).hexdigest()[:CONTROL_NAME_LENGTH]


def connect_seconds(settings: Settings) -> int:
    """[host] connect_timeout_seconds as ssh takes it (whole seconds, at least one)."""
    return max(1, math.ceil(settings.host.connect_timeout_seconds))


def alive_options(seconds: int) -> list[str]:
    """Keep-alives that give a connection up within the connect timeout: a box that stops answering
    mid-run (powered off, its sshd stopped with SIGSTOP) costs that one budget, not a hang."""
    return ["-o", f"ServerAliveInterval={max(1, seconds // ALIVE_PROBES)}", "-o", f"ServerAliveCountMax={ALIVE_PROBES}"]


def ssh_options(settings: Settings) -> dict:
    """testinfra's SSH options from [host]: one master connection per box (OpenSSH ControlMaster),
    its socket in the suite's state directory, reused by every command of the run."""
    if not settings.host.backend.startswith("ssh://"):
        return {}
    sockets = Path(settings.policy.state_dir).absolute() / "ssh"
    sockets.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The run's own master: a connection opened by an earlier run is never trusted (its sshd may be gone).
    options = {"timeout": connect_seconds(settings), "controlpersist": CONTROL_PERSIST_SECONDS,
               "controlpath": str(sockets / control_name(settings.host.name))}
    if settings.host.ssh_identity_file:
        options["ssh_identity_file"] = str(settings.host.ssh_identity_file)
    if settings.host.ssh_config:
        options["ssh_config"] = str(settings.host.ssh_config)
    # The box's host keys are those `make trust-box` wrote, and only those; first on the line, so that no
    # ssh_config can loosen it (ssh takes an option's first value).
    trusted = _ssh_path(settings.host.known_hosts_file(settings.policy.state_dir))
    options["ssh_extra_args"] = shlex.join(["-o", f"UserKnownHostsFile={trusted}", "-o", "StrictHostKeyChecking=yes",
                                            *settings.host.ssh_extra_args])
    options["ssh_extra_args"] += " " + shlex.join(alive_options(connect_seconds(settings)))  # after the operator's
    return options


def _ssh_path(path: Path) -> str:
    """A path as ssh reads it in an option: its `%` tokens escaped, double-quoted when it holds a space."""
    text = str(path).replace("%", "%%")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def ssh_destination_options(backend) -> list[str]:
    """The options that decide where ssh goes and as whom, as testinfra's SSH backend gives them (the extra
    arguments with their known_hosts, the ssh_config, the user, the port): what `ssh -G` needs to say the same."""
    argv = shlex.split(backend.ssh_extra_args or "")
    if backend.ssh_config:
        argv += ["-F", backend.ssh_config]
    if backend.host.user:
        argv += ["-o", f"User={backend.host.user}"]
    if backend.host.port:
        argv += ["-o", f"Port={backend.host.port}"]
    return argv


def _ssh_master_argv(backend) -> list[str]:
    """`ssh` with the options testinfra's SSH backend gives its commands (probes/host.py's ssh_options):
    the same user, port, key, ssh_config and control socket, so `-O` talks to the run's master."""
    argv = ["ssh", *ssh_destination_options(backend)]
    if backend.ssh_identity_file:
        argv += ["-i", backend.ssh_identity_file]
    if backend.controlpath and "controlpath" not in (backend.ssh_extra_args or "").lower():
        argv += ["-o", f"ControlPath={backend.controlpath}"]
    return argv


def _ssh_command_argv(backend) -> list[str]:
    """`ssh ... HOST`, to which a command string is added: the options testinfra's SSH backend runs its
    commands with (the master connection made or reused, its persistence, the connect timeout)."""
    argv, extra = _ssh_master_argv(backend), (backend.ssh_extra_args or "").lower()
    if "connecttimeout" not in extra:
        argv += ["-o", f"ConnectTimeout={backend.timeout}"]
    if backend.controlpersist and "controlmaster" not in extra:
        argv += ["-o", "ControlMaster=auto", "-o", f"ControlPersist={backend.controlpersist}s"]
    return [*argv, backend.host.name]


def box_of(settings: Settings) -> Box:
    """testinfra keeps one host per spec and options: checks and remediations of a run share its connection."""
    host = testinfra.get_host(settings.host.backend, **ssh_options(settings))
    found = Box(name=settings.host.name, host=host, python=settings.host.python, sudo=settings.host.sudo,
                timeout=settings.remediation.timeout_seconds, state_dir=Path(settings.policy.state_dir).absolute(),
                connect_timeout=connect_seconds(settings))
    if not found.local:
        _OPENED.setdefault(host.backend.controlpath, found)
    return found


class Shell:
    """testinfra's `run(command, *args)` for probes that write a command line (the service managers), with the
    box's classification: ssh's failure raises CouldNotRead and marks the box, a box marked raises at once."""

    def __init__(self, box: Box):
        self.box = box

    @property
    def backend(self):
        return self.box.host.backend

    def run(self, command: str, *args: str):
        self.box.refuse_if_unreachable()
        try:
            return self.box.host.run(command, *args)
        except Exception as error:  # testinfra raises when ssh itself failed (exit 255)
            if self.box.local:
                raise
            raise self.box._unanswered(command.split()[0] if command.strip() else "a command",
                                       _ssh_said(error)) from None


def host_of(settings: Settings) -> Shell:
    return Shell(box_of(settings))


# ---- the run this process works for: its marks, its connections


@dataclass
class RunScope:
    id: str  # the same on the controller and every xdist worker
    owner: bool  # this process opened the run's connections and ends them (not an xdist worker)


RUN = RunScope(uuid.uuid4().hex, True)  # a command that runs alone (make checksums) is a run of its own
MARKS_DIR = "unreachable"
STALE_MARK_SECONDS = 86400
_MARKS: dict[tuple[str, str], CouldNotRead] = {}  # (run, box) -> why it stopped answering
_OPENED: dict[str, Box] = {}  # control path -> the box whose master it is


def join_run(run_id: str, *, owner: bool) -> None:
    """The plugin says which run this process works for (the controller owns it, xdist workers take part)."""
    RUN.id, RUN.owner = run_id, owner


def mark_path(state_dir: Path, box: str) -> Path:
    return Path(state_dir) / MARKS_DIR / f"{box}-{RUN.id}.json"


def _read_mark(path: Path) -> CouldNotRead | None:
    try:
        raw = json.loads(path.read_text())
        return CouldNotRead(Unread(raw["cause"]), raw["what"], raw["detail"], raw["fix"], raw["box"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet (the usual case), or not ours to read
        return None


def prove_boxes(boxes: list[Settings]) -> dict[str, CouldNotRead]:
    """At a run's start: each box reached over SSH answers a trivial command through this run's own new
    connection, or is marked unreachable for the run, all at once (a fleet's dead boxes cost one connect timeout
    together). {box: why} for the boxes that did not answer."""
    remote = [found for found in map(box_of, boxes) if not found.local]
    if not remote:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(remote))) as pool:
        said = dict(zip([found.name for found in remote], pool.map(_proof, remote), strict=True))
    return {name: error for name, error in said.items() if error is not None}


def _proof(found: Box) -> CouldNotRead | None:
    try:
        found.answers()
    except CouldNotRead as error:
        return error
    return None


def end_run() -> None:
    """As the run ends, in the process that owns it: its master connections closed (`ssh -O exit`), so none
    outlives the run that opened it, and its marks removed (with those a killed run left a day ago)."""
    if not RUN.owner:
        return
    for path, found in list(_OPENED.items()):
        if Path(path).exists():
            backend = found.host.backend
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run([*_ssh_master_argv(backend), "-O", "exit", backend.host.name], capture_output=True,
                               timeout=10, stdin=subprocess.DEVNULL)
        if found.state_dir is not None:
            _remove_marks(found.state_dir, found.name)
    _OPENED.clear()


def _remove_marks(state_dir: Path, box: str) -> None:
    try:
        mark_path(state_dir, box).unlink(missing_ok=True)
        for stale in (Path(state_dir) / MARKS_DIR).glob("*.json"):
            if time.time() - stale.lstat().st_mtime > STALE_MARK_SECONDS:
                stale.unlink(missing_ok=True)
    except OSError:
        pass


atexit.register(end_run)
