"""What the breach indicators read on a box, as plain functions of the standard library only.

Like probes/remote/readers.py, this module is shipped whole to the box's `python3 -I -S` over SSH (or
called in the suite's process for `local://`), one function per call, JSON in and out, and must run
on Python 3.8: no import outside the standard library, no state between calls.

- listening TCP sockets, from /proc/net/tcp and tcp6 (no `ss`), with the process that holds each;
- the fingerprints of the keys in authorized_keys files, as `ssh-keygen -lf` prints them;
- the sha256 of files, the baseline in sha256sum's format, and its recording;
- the failed logins of an auth log within a time window (and of its rotations, for a week's window).

A file that one call reads among several (a key file, a critical file) gives its error as data,
{"error": kind, "message": ...}, so that one missing file does not hide the others.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import gzip
import hashlib
import os
import re
import socket
import struct
import tempfile
import time

# -- listening ports

LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN
TCP_TABLES = ["/proc/net/tcp", "/proc/net/tcp6"]


def listening_ports(low: int, high: int, tables: list | None = None) -> list:
    """Every TCP socket in LISTEN state with its port in [low, high]: {port, address, owner}, by port.
    /proc/net/tcp6 is absent when IPv6 is off; /proc/net/tcp must be there."""
    found = []
    for table in tables or TCP_TABLES:
        try:
            with open(table) as handle:
                lines = handle.read().splitlines()[1:]
        except FileNotFoundError:
            if table.endswith("6"):
                continue
            raise FileNotFoundError(f"{table} does not exist: not a Linux /proc, cannot list listening ports") from None
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            address, _, port_hex = fields[1].partition(":")
            port = int(port_hex, 16)
            if low <= port <= high:
                found.append({"port": port, "address": _address(address), "inode": fields[9]})
    owners = socket_owners([entry["inode"] for entry in found])
    for entry in found:
        entry["owner"] = owners.get(entry.pop("inode"))
    return sorted(found, key=lambda entry: (entry["port"], entry["address"]))


def _address(text: str) -> str:
    """The kernel prints each 32-bit word of the address in the host's byte order."""
    words = [struct.pack("=I", int(text[i:i + 8], 16)) for i in range(0, len(text), 8)]
    raw = b"".join(words)
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def socket_owners(inodes: list) -> dict:
    """{inode: "name[pid]"} for the sockets whose process this user may see (/proc/PID/fd)."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes if inode != "0"}
    owners = {}
    if not wanted:
        return owners
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        directory = f"/proc/{pid}/fd"
        try:
            descriptors = os.listdir(directory)
        except OSError:  # another user's process, or gone
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(f"{directory}/{descriptor}")
            except OSError:
                continue
            if target in wanted and wanted[target] not in owners:
                owners[wanted[target]] = f"{_process_name(pid)}[{pid}]"
        if len(owners) == len(wanted):
            break
    return owners


def _process_name(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


# -- authorized keys


def authorized_keys(paths: list) -> dict:
    """{path: {"keys": [{line, type, fingerprint, comment}]}} or {path: {"error", "message"}}.
    A line that is not a key sshd would read gets fingerprint None and a `problem`."""
    return {path: _guarded(_keys_in, path) for path in paths}


def _keys_in(path: str) -> dict:
    keys = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.decode("utf-8", "replace").strip()
            if not line or line.startswith("#"):
                continue
            key = parse_key_line(line)
            if key is None:
                keys.append({"line": number, "type": None, "fingerprint": None, "comment": "",
                             "problem": "not a public key this check can read: " + line[:60]})
            else:
                keys.append({"line": number, **key})
    return {"keys": keys}


def parse_key_line(line: str) -> dict | None:
    """One authorized_keys line: [options] type base64 [comment], as sshd reads it. The options are
    one word, quotes allowed (`command="a b",no-pty`); a key is told from options by its blob, which
    names its own type."""
    first, rest = _first_word(line)
    words = rest.split(None, 2)
    if words and _blob(first, words[0]) is not None:
        return _key(first, words[0], " ".join(words[1:]))
    if len(words) >= 2 and _blob(words[0], words[1]) is not None:
        return _key(words[0], words[1], words[2] if len(words) > 2 else "")
    return None


def _first_word(line: str) -> tuple:
    """The first word, where a blank inside double quotes (escaped quotes allowed) does not end it."""
    quoted, index = False, 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quoted and index + 1 < len(line):
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            break
        index += 1
    return line[:index], line[index:].strip()


def _blob(kind: str, text: str) -> bytes | None:
    """The key's bytes, when `text` is base64 whose first field (a length-prefixed string) is `kind`."""
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) < 4:
        return None
    length = struct.unpack(">I", blob[:4])[0]
    return blob if blob[4:4 + length] == kind.encode() else None


def _key(kind: str, text: str, comment: str) -> dict:
    return {"type": kind, "fingerprint": fingerprint(base64.b64decode(text)), "comment": comment.strip()}


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint: the key blob's digest in base64 without its padding."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# -- checksums


def file_digests(paths: list, baseline: str) -> dict:
    """{"files": {path: {sha256, mtime} or {error, message}}, "baseline": {"recorded": {path: sha256}}
    or {error, message}}: the files as they are and as recorded, in one call."""
    return {"files": {path: _guarded(_digest_of, path) for path in paths},
            "baseline": _guarded(_recorded_in, baseline)}


def _digest_of(path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        mtime = os.fstat(handle.fileno()).st_mtime
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "mtime": mtime}


SUM_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{64}) [ *](.+)$")


def _recorded_in(baseline: str) -> dict:
    """sha256sum's lines, `HEX  PATH` (a leading backslash escapes \\n and \\\\ in the path)."""
    recorded = {}
    with open(baseline, encoding="utf-8", errors="replace") as handle:
        for line in handle.read().splitlines():
            match = SUM_LINE.match(line)
            if match:
                name = match.group(3)
                if match.group(1):
                    name = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)
                recorded[name] = match.group(2).lower()
    return {"recorded": recorded}


def record_checksums(paths: list, baseline: str) -> list:
    """Write `baseline` (sha256sum's format, mode 600, wholly old or wholly new) with the sha256 of
    every path; a path that cannot be read writes nothing. [[path, sha256], ...]."""
    lines, recorded = [], []
    for path in paths:
        digest = _digest_of(path)["sha256"]  # FileNotFoundError, PermissionError: named by the caller
        lines.append(f"{digest}  {path}\n")
        recorded.append([path, digest])
    directory = os.path.dirname(baseline) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(baseline) + ".",
                                             suffix=".tmp")  # mkstemp: mode 600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, baseline)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    folder = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return recorded


# -- failed logins

MONTHS = {name: number for number, name in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
SYSLOG_STAMP = re.compile(rb"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) ")
ISO_STAMP = re.compile(rb"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)? ")
SOURCE = re.compile(rb"(?:\bfrom |\brhost=)([^\s;]+)")
FUTURE_SLACK = 600  # a line stamped later than now by more than this is last year's (syslog has no year)
SEEK_ABOVE = 1 << 20  # a bigger log is entered by bisection at the window's start, not read whole
SEEK_MARGIN = 300  # lines of several writers are not strictly in order: start this much earlier


def line_time(line: bytes, now: float) -> float | None:
    """The line's time in seconds since the epoch: a traditional syslog stamp (`Mar  5 14:02:01`,
    local time, no year: this year, or last year when that would put it in the future) or RFC 3339."""
    match = SYSLOG_STAMP.match(line)
    if match:
        month = MONTHS.get(match.group(1).decode())
        if month is None:
            return None
        year = time.localtime(now).tm_year
        fields = [int(group) for group in match.groups()[1:]]
        stamp = time.mktime((year, month, fields[0], *fields[1:], 0, 0, -1))
        if stamp > now + FUTURE_SLACK:  # December's lines read in January
            stamp = time.mktime((year - 1, month, fields[0], *fields[1:], 0, 0, -1))
        return stamp
    match = ISO_STAMP.match(line)
    if match:
        fields = [int(group) for group in match.groups()[:6]]
        zone = (match.group(7) or b"").decode()
        if not zone:
            return time.mktime((*fields, 0, 0, -1))
        stamp = calendar.timegm((*fields, 0, 0, 0))
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            stamp -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return stamp
    return None


def failed_logins(log: str, window_seconds: float, patterns: list, now: float | None = None) -> dict:
    """Lines of `log` (and of `log`.1 when it changed within the window: rotation) holding one of
    `patterns`, stamped within the last `window_seconds`: {count, sources: {address: lines}, files}."""
    now = time.time() if now is None else now
    since = now - window_seconds
    wanted = [pattern.encode() for pattern in patterns]
    found = {"count": 0, "sources": {}, "files": []}
    rotated = log + ".1"
    candidates = [rotated] if os.path.isfile(rotated) and os.stat(rotated).st_mtime >= since else []
    for path in [*candidates, log]:
        with open(path, "rb") as handle:
            _enter_window(handle, since, now)
            _count_failed(handle, path, since, now, wanted, found)
    return found


def failed_logins_rotated(log: str, window_seconds: float, patterns: list, now: float | None = None) -> dict:
    """As failed_logins, over a window that may reach past one rotation: `log`, then logrotate's
    `log`.1, `log`.2.gz, `log`.3.gz ... (or uncompressed), each read while it was written to within
    the window (a rotation's mtime is its last line: older ones hold nothing newer)."""
    now = time.time() if now is None else now
    since = now - window_seconds
    wanted = [pattern.encode() for pattern in patterns]
    found = {"count": 0, "sources": {}, "files": []}
    with open(log, "rb") as handle:  # the log itself must be there: FileNotFoundError names it
        _enter_window(handle, since, now)
        _count_failed(handle, log, since, now, wanted, found)
    number = 1
    while True:
        path = next((p for p in (f"{log}.{number}", f"{log}.{number}.gz") if os.path.isfile(p)), None)
        if path is None or os.stat(path).st_mtime < since:
            break
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                _count_failed(handle, path, since, now, wanted, found)
        else:
            with open(path, "rb") as handle:
                _enter_window(handle, since, now)
                _count_failed(handle, path, since, now, wanted, found)
        number += 1
    return found


def _count_failed(handle, path: str, since: float, now: float, wanted: list, found: dict) -> None:
    """Add the lines of `handle` that hold a pattern and are stamped within [since, now] to `found`."""
    found["files"].append(path)
    sources = found["sources"]
    for line in handle:
        if not any(pattern in line for pattern in wanted):
            continue
        stamp = line_time(line, now)
        if stamp is None or not since <= stamp <= now + FUTURE_SLACK:
            continue
        found["count"] += 1
        source = SOURCE.search(line)
        name = source.group(1).decode("ascii", "replace") if source else "unknown"
        sources[name] = sources.get(name, 0) + 1


def _enter_window(handle, since: float, now: float) -> None:
    """Leave `handle` at the start of a line at or before the first line of the window."""
    size = os.fstat(handle.fileno()).st_size
    if size <= SEEK_ABOVE:
        return
    low, high = 0, size
    while high - low > (64 << 10):
        middle = (low + high) // 2
        handle.seek(middle)
        handle.readline()  # the rest of a cut line
        stamp = None
        for _ in range(32):
            line = handle.readline()
            if not line:
                break
            stamp = line_time(line, now)
            if stamp is not None:
                break
        if stamp is not None and stamp < since - SEEK_MARGIN:
            low = middle
        else:
            high = middle
    handle.seek(low)
    if low:
        handle.readline()


def _guarded(read, path: str) -> dict:
    """A file's reading, or why it could not be read, as data."""
    try:
        return read(path)
    except OSError as error:
        return {"error": type(error).__name__, "message": error.strerror or str(error)}
