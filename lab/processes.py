"""Process and port housekeeping: who holds a port, waiting for the lab's processes to end.

Only processes the lab started are ever signalled: supervisord by its pidfile, its children by
pid, and leftovers of a killed supervisord recognised by the lab paths on their command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import psutil

from lab.errors import LabError
from lab.paths import Ports


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def children(pid: int | None) -> list[int]:
    if not pid:
        return []
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(pids: list[int], timeout: float, what: str) -> None:
    """Wait for the processes to exit; SIGKILL the stragglers, then fail if any survive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    survivors = [pid for pid in pids if _alive(pid)]
    if survivors:
        raise LabError(f"{what} did not end within {timeout:.0f}s: pids {survivors}")


def stop_orphans(lab_dir: Path, pg_root: Path) -> int:
    """End the lab's programs left running by a supervisord that was killed; returns how many."""
    marks = (f"--lab-dir {lab_dir}", f"-D {pg_root}/data", f"{lab_dir}/etc/supervisord.conf",
             f"{lab_dir}/bin/")  # the error handlers (lab/handlers.py)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] != os.getpid() and any(mark in cmdline for mark in marks):
            found.append(proc.info["pid"])
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if found:
        wait_gone(found, timeout=15, what="leftover lab processes")
    return len(found)


def port_owner(port: int) -> str:
    try:
        for conn in psutil.net_connections("inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f" by pid {conn.pid} ({' '.join(proc.cmdline())[:120]})"
    except psutil.Error:
        pass
    return ""


def check_ports_free(ports: Ports) -> None:
    busy = []
    for program, port in {**ports.by_program(), **ports.on_demand()}.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"port {port} ({program}) is in use{port_owner(port)}")
    if busy:
        raise LabError("cannot start the lab: " + "; ".join(busy)
                       + ". Stop what uses them (python -m lab down for an old lab) or choose "
                         "another LAB_PORT_BASE.")
