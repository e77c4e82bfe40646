"""What the probes read on a box, as plain functions of the standard library only.

The same function runs in the suite's own process when the box is this machine (`local://`), and
on the box's own `python3` over SSH otherwise (probes/host.py ships this module's source and
calls one function with JSON arguments): nothing is copied off the box to be read here, and both
ways give the same figures. So: no import outside the standard library (but the standard-library-only
modules of REMOTE_NEEDS, shipped with it), arguments and results JSON values only (lists, dicts, strings,
numbers), and no state between calls.
"""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import stat
import time

from core import rootfiles

REMOTE_NEEDS = ("core.rootfiles",)  # shipped with this module to the box (probes/host.py, Box.call)

DAY = 86400
DATED_LOG = re.compile(r"-\d{4}-\d{2}-\d{2}\.log$")


# -- files


def age_in_days(mtime: float, now: float) -> int:
    """Whole days since the last change, rounded down, as `find -mtime` counts them."""
    return int((now - mtime) // DAY)


def unrotated_logs(log_dir: str, after_days: int, now: float | None = None) -> list[str]:
    """Dated logs still uncompressed after the day they should have been rotated."""
    now = time.time() if now is None else now
    _must_be_a_directory(log_dir, "log directory")
    found = []
    for name in os.listdir(log_dir):
        path = os.path.join(log_dir, name)
        info = os.lstat(path)
        if DATED_LOG.search(name) and stat.S_ISREG(info.st_mode) and age_in_days(info.st_mtime, now) > after_days:
            found.append(path)
    return sorted(found)


def _must_be_a_directory(path: str, what: str) -> None:
    """A configured directory that is not there is never "nothing to find": the check could not look."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} {path} does not exist (or is not a directory)")


def is_file(path: str) -> bool:
    return os.path.isfile(path)


def is_file_in(path: str, what: str) -> bool:
    """Whether a file is there, in a directory that must be there."""
    _must_be_a_directory(os.path.dirname(path), what)
    return os.path.isfile(path)


def is_dir(path: str) -> bool:
    return os.path.isdir(path)


def newest_file(directory: str, patterns: list) -> dict | None:
    """The newest regular file directly in `directory` whose name matches one of `patterns`:
    {path, mtime}, or None when there is none."""
    _must_be_a_directory(directory, "backup directory")
    newest = None
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            continue
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and (newest is None or info.st_mtime > newest["mtime"]):
            newest = {"path": path, "mtime": info.st_mtime}
    return newest
def is_file_or_dir(path: str) -> bool:
    return os.path.isfile(path) or os.path.isdir(path)


# -- resources


def cpu_times() -> list[float]:
    """The first line of /proc/stat in seconds: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as stat_file:
        fields = stat_file.readline().split()[1:9]
    ticks = os.sysconf("SC_CLK_TCK")
    return [int(value) / ticks for value in fields]


def memory_percent() -> float:
    """Used over total, as `free` computes it: (total - available) / total."""
    values = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    return round(100.0 * (values["MemTotal"] - values["MemAvailable"]) / values["MemTotal"], 1)


def disk_percent(path: str) -> float:
    """Used share of the filesystem holding `path`, as `df` prints it (root's reserve left out)."""
    usage = os.statvfs(path)
    used = (usage.f_blocks - usage.f_bfree) * usage.f_frsize
    free = usage.f_bavail * usage.f_frsize
    return round(100.0 * used / (used + free), 1)


# -- endpoints


def http_post(url: str, timeout: float) -> dict:
    """One POST with an empty body (the agent's emergency calls), read as http_get reads."""
    return http_get(url, timeout, None, True, True, "POST")


def http_get(url: str, timeout: float, headers: dict | None = None, verify: bool | str = True,
             want_json: bool = False, method: str = "GET") -> dict:
    """One GET, no redirects followed: {status, seconds, problem, body}; problem None when healthy."""
    import json  # here, as ssl and urllib: a run that reads no endpoint does not import them
    import ssl
    import urllib.error
    import urllib.request

    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if verify is False:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # a redirect is an answer to report, not one to follow

    request = urllib.request.Request(url, headers=headers or {}, method=method,
                                     data=b"" if method == "POST" else None)
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    started = time.monotonic()
    reading = {"url": url, "status": None, "seconds": 0.0, "problem": None, "body": None}
    try:
        with opener.open(request, timeout=timeout) as response:
            reading["status"] = response.status
            data = response.read()
    except urllib.error.HTTPError as error:  # 3xx too, as redirects are not followed: an answer
        reading["status"] = error.code
        if error.code >= 400:
            reading["problem"] = f"HTTP {error.code}"
        elif want_json:
            reading["problem"] = f"HTTP {error.code}: a redirect, not the JSON asked for"
    except TimeoutError:
        reading["problem"] = f"no answer within {timeout:g}s"
    except (urllib.error.URLError, OSError) as error:
        reading["problem"] = _cause(error)
    else:
        if want_json:
            try:
                reading["body"] = json.loads(data)
            except ValueError as error:
                reading["problem"] = f"malformed JSON: {error}"
    reading["seconds"] = time.monotonic() - started
    return reading


def _cause(error: Exception) -> str:
    """The cause an operator can act on, in the words of the HTTP client's own messages."""
    import ssl

    reason = getattr(error, "reason", error)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "no answer"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "certificate verify failed"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    if isinstance(reason, socket.gaierror):
        return "name or service not known"
    return str(reason)[:200]


def tcp_connect(host: str, port: int, timeout: float) -> str | None:
    """None when the port accepts a connection, else what went wrong."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return f"{host}:{port}: {error.strerror or error}"


# -- the diagnostics bundle (remediations/bundle.py): read the tails here, write the archive there


def log_tails(directories: list, lines: int, never: list) -> dict:
    """The last `lines` lines of each plain file directly in the directories (not compressed ones),
    by path; a file named in `never` (the agent's .env) is never opened."""
    tails = {}
    for directory in directories:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name in never or name.endswith((".gz", ".xz", ".zip")) or not os.path.isfile(path) \
                    or os.path.islink(path):
                continue
            try:
                with open(path, "rb") as handle:
                    handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, handle.tell() - lines * 400))
                    text = handle.read().decode("utf-8", "replace")
            except OSError as error:
                tails[path] = f"(not read: {error.strerror})"
                continue
            tails[path] = "\n".join(text.splitlines()[-lines:])
    return tails


def write_chunk(path: str, data_b64: str, first: bool) -> int:
    """Append one base64 chunk to a new file (mode 600 from its first byte, made by the first chunk with
    O_EXCL; never through a link: core/rootfiles.py); its size."""
    import base64

    descriptor = rootfiles.create(path) if first else rootfiles.open_append(path)
    try:
        rootfiles.write_all(descriptor, base64.b64decode(data_b64))
        return os.fstat(descriptor).st_size
    finally:
        os.close(descriptor)


def rename(source: str, target: str) -> None:
    """Within one directory, reached without a link (core/rootfiles.py)."""
    rootfiles.rename(source, target)


def append_line(path: str, line: str) -> None:
    """One line at the end of a log of the box's (the guide's network-failures.log, in the agent's own log
    directory): written as that directory's owner, never by root through a link the owner planted."""
    rootfiles.append_as_owner(path, line.rstrip("\n") + "\n")
