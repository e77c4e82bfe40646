"""`make trust-box CONFIG=PATH BOX=name [FINGERPRINT=SHA256:...]`: the box's host keys, trusted once a human
has compared them.

    python -m commands trustbox --config PATH [--box NAME] [--fingerprint SHA256:...]

The suite reaches a box over SSH with StrictHostKeyChecking=yes against its own known_hosts ([host] known_hosts,
by default known_hosts in [policy] state_dir) and nothing else (probes/host.py): a box whose key nobody
compared could be anybody's, and every reading taken from it and every sudo command sent to it would be
theirs. This fetches the keys the box shows (`ssh-keyscan`), prints each one's SHA256 fingerprint (`ssh-keygen
-lf`) and writes them only when
- `--fingerprint` names one of them: that key alone is written. It is the one the operator compared; another
  key fetched in the same breath could be a stranger's, and ssh would then accept the stranger's kind of key;
- or, on a terminal, the operator answers `y`: every key shown is written.
Otherwise nothing is written, and the status is 4. Keys already trusted, exactly, need no answer (status 0).

What the box says of itself, to compare with (on its console, not over the network being judged):
    for key in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$key"; done

The file keeps other boxes' lines and @revoked lines; this box's earlier keys are replaced, and named as they
go (a reinstalled box has new keys; a key that changed for no reason is a reason to stop). Mode 0644: host keys
are public, and the schedule's run user must read them; written as root writes every file (core/rootfiles.py).
Status 12 when the box showed no key (not reached, or no sshd there).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import testinfra

from commands import cli
from configuration import Settings
from core import rootfiles
from core.text import printable
from core.vocabulary import ExitStatus
from probes.host import ssh_destination_options, ssh_options

KNOWN_HOSTS_MODE = 0o644  # public keys; the run's user (RUN_USER) must read them, nobody but root change them
DEFAULT_PORT = 22
KEY_TYPE = re.compile(r"[a-z0-9][a-z0-9@.-]*")
KEY_BLOB = re.compile(r"[A-Za-z0-9+/]+={0,2}")
HASHED = "|1|"  # a known_hosts name hashed by `ssh-keygen -H` (HashKnownHosts): |1|salt|HMAC-SHA1(salt, name)


class NotTrusted(Exception):
    """Nothing was written; the message says why and what to do. `status`: the command's exit status."""

    def __init__(self, message: str, status: int = ExitStatus.BAD_CONFIGURATION):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    """Where ssh connects for a box (its ssh_config applied), and the name ssh looks its keys up by."""

    host: str
    port: int
    known_as: str  # `host`, `[host]:port`, or the HostKeyAlias


@dataclass(frozen=True)
class HostKey:
    line: str  # as known_hosts holds it: `name type base64`
    fingerprint: str  # SHA256:...
    kind: str  # ED25519, ECDSA, RSA

    def described(self) -> str:
        return f"{self.fingerprint} ({self.kind})"


def endpoint(settings: Settings) -> Endpoint:
    """The host and port ssh would connect to with the suite's own options (`ssh -G`: the ssh_config's HostName,
    Port and HostKeyAlias applied), as the run itself will."""
    if not settings.host.backend.startswith("ssh://"):
        raise NotTrusted(f"box {settings.host.name} is reached as {settings.host.backend}, not over SSH: it has no "
                         f"host key to trust")
    backend = testinfra.get_host(settings.host.backend, **ssh_options(settings)).backend
    said = _run(["ssh", "-G", *ssh_destination_options(backend), backend.host.name], "ssh -G")
    effective = dict(line.split(" ", 1) for line in said.splitlines() if " " in line)
    for hop in ("proxyjump", "proxycommand"):
        if hop in effective:
            raise NotTrusted(f"box {settings.host.name} is reached through {hop} {effective[hop]}: ssh-keyscan cannot "
                             f"follow it; add the box's key line to {known_hosts(settings)} by hand, after comparing "
                             f"its fingerprint")
    host, port = effective["hostname"], int(effective["port"])
    alias = effective.get("hostkeyalias")
    return Endpoint(host, port, alias or (host if port == DEFAULT_PORT else f"[{host}]:{port}"))


def known_hosts(settings: Settings) -> Path:
    return settings.host.known_hosts_file(settings.policy.state_dir)


def fetch(where: Endpoint, timeout: float) -> list[str]:
    """The box's host keys as known_hosts lines under the name ssh looks them up by; only well-formed lines
    (a key type, base64), so nothing the network sent reaches the terminal or the file otherwise."""
    argv = ["ssh-keyscan", "-T", str(max(1, round(timeout))), "-p", str(where.port), where.host]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout * 4 + 10, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        done = None
    except FileNotFoundError:
        raise NotTrusted("ssh-keyscan is not installed (Debian: apt-get install openssh-client)") from None
    lines = []
    for line in (done.stdout.decode("ascii", "replace") if done else "").splitlines():
        fields = line.split()
        if len(fields) == 3 and not line.startswith("#") and KEY_TYPE.fullmatch(fields[1]) \
                and KEY_BLOB.fullmatch(fields[2]):
            key = f"{where.known_as} {fields[1]} {fields[2]}"
            lines += [key] if key not in lines else []
    if not lines:
        said = printable((done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]) if done else ""
        raise NotTrusted(f"no host key from {where.host} port {where.port} within {timeout:g}s"
                         f"{': ' + said if said else ''}: is the box up and its sshd listening there? Nothing written",
                         ExitStatus.COULD_NOT_CHECK)
    return lines


def fingerprinted(line: str) -> HostKey:
    """`ssh-keygen -E sha256 -lf -` of one line: `256 SHA256:... NAME (ED25519)`."""
    said = _run(["ssh-keygen", "-E", "sha256", "-lf", "-"], "ssh-keygen -lf", line + "\n").split()
    if len(said) < 3 or not said[1].startswith("SHA256:"):
        raise NotTrusted(f"ssh-keygen could not read the key {line.split()[1]}: nothing written")
    return HostKey(line, said[1], said[-1].strip("()"))


def _described(line: str) -> str:
    """An earlier line of the file as its fingerprint, or as its key type when ssh-keygen cannot read it."""
    try:
        return fingerprinted(line).described()
    except NotTrusted:
        return f"a {printable(line.split()[1])} key ssh-keygen cannot read"


def _run(argv: list[str], what: str, data: str | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=data,
                              stdin=None if data is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise NotTrusted(f"{argv[0]} is not installed (Debian: apt-get install openssh-client)") from None
    if done.returncode != 0:
        detail = printable((done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1])
        raise NotTrusted(f"{what} failed: {detail}")
    return done.stdout


def names_of(line: str) -> list[str]:
    """The host names a known_hosts line is for (hashed ones as written); none for a marker (@revoked) line."""
    fields = line.split()
    if len(fields) < 3 or line.lstrip().startswith(("#", "@")):
        return []
    return fields[0].split(",")


def is_for(line: str, name: str) -> bool:
    for written in names_of(line):
        if written.startswith(HASHED):
            salt, _, digest = written[len(HASHED):].partition("|")
            try:
                mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            except ValueError:
                continue
            if hmac.compare_digest(base64.b64encode(mac).decode(), digest):
                return True
        elif written == name:
            return True
    return False


def read_lines(path: Path) -> list[str]:
    """The file's lines; none when it is not there yet. Read without following a link."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise NotTrusted(f"cannot read {path}: {error.strerror}; remove it, or name another file in [host] "
                         f"known_hosts") from None
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


def chosen_keys(keys: list[HostKey], fingerprint: str | None, ask) -> list[HostKey]:
    """The keys the operator vouched for: the one `fingerprint` names, or all of them on a `y`."""
    if fingerprint is not None:
        wanted = fingerprint.strip()
        wanted = wanted if wanted.startswith("SHA256:") else f"SHA256:{wanted.rstrip('=')}"
        matching = [key for key in keys if key.fingerprint == wanted]
        if not matching:
            raise NotTrusted(f"FINGERPRINT {printable(fingerprint)} is none of the keys the box showed "
                             f"({', '.join(key.described() for key in keys)}): nothing written. A box that shows "
                             f"another key than its own is someone else until you know why (reinstalled, or "
                             f"someone between you and it); give the SHA256 fingerprint the box prints on its console")
        return matching
    if not sys.stdin.isatty():
        raise NotTrusted("nothing written: no terminal to confirm on. Compare a fingerprint above with what the box "
                         "prints on its console (for key in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$key\"; "
                         "done) and run again with FINGERPRINT=SHA256:...")
    if not ask():
        raise NotTrusted("nothing written: not confirmed")
    return keys


def ask_on_terminal(question: str):
    def ask() -> bool:
        print(question, end=" ", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")
    return ask


def trust(settings: Settings, fingerprint: str | None) -> str:
    """Fetch, show, confirm, write. Returns what was done; raises NotTrusted when nothing was written."""
    where = endpoint(settings)
    path = known_hosts(settings)
    keys = [fingerprinted(line) for line in fetch(where, settings.host.connect_timeout_seconds)]
    print(f"box {settings.host.name} ({where.known_as}) shows {len(keys)} host key(s):")
    for key in keys:
        print(f"  {key.described()}")
    lines = read_lines(path)
    earlier = [line for line in lines if is_for(line, where.known_as)]
    if sorted(earlier) == sorted(key.line for key in keys) and fingerprint is None:
        return f"already trusted in {path}: nothing changed"
    ask = ask_on_terminal(f"Trust {'this key' if len(keys) == 1 else f'these {len(keys)} keys'} of box "
                          f"{settings.host.name} and write {'it' if len(keys) == 1 else 'them'} to {path}? [y/N]")
    trusted = chosen_keys(keys, fingerprint, ask)
    gone = [_described(line) for line in earlier if line not in {key.line for key in trusted}]
    kept = [line for line in lines if line not in earlier]
    header = [] if kept else ["# The boxes' host keys the maintenance suite trusts: written by `make trust-box`."]
    rootfiles.replace(path, "\n".join([*header, *kept, *(key.line for key in trusted)]) + "\n", KNOWN_HOSTS_MODE)
    said = [f"trusted: {', '.join(key.described() for key in trusted)}, written to {path} (mode "
            f"{KNOWN_HOSTS_MODE:04o})"]
    said += [f"no longer trusted: {described}" for described in gone]
    return "\n".join(said)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fingerprint", help="SHA256:... of the one key to trust, as the box prints it")


def run(call: cli.Call) -> int:
    box = call.one_box()
    try:
        print(trust(box, call.args.fingerprint))
    except NotTrusted as error:
        print(f"box {box.host.name}: {error}", file=sys.stderr)
        return error.status
    except (OSError, LookupError) as error:  # rootfiles' refusal names the file and the directory
        print(f"box {box.host.name}: nothing written: {error}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    return 0


VERB = cli.Verb(
    "trustbox", "a box's SSH host keys, trusted once compared (make trust-box)",
    __doc__, arguments, run, boxes=cli.Boxes.ONE)
