"""The box's faults: the lab's catalogue, with services broken the way they break under systemd.

Switch and file faults are the lab's own (the servers read BOX_DIR/faults, the files are in
BOX_DIR); `service-down` is `systemctl stop` (network-down and tunnel-far-end-down too: they stop
probe-target and exchange-endpoint), `killed` is `systemctl kill -s KILL` (the unit's Restart=
brings it back), `crashloop` makes the unit exit at every start until systemd gives up (failed,
Result=start-limit-hit), `unexpected-port` is `systemctl start unexpected-listener` (a unit
box.target does not want), and `disk-full` fills the box's /srv, a 64 MiB tmpfs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from lab import faults as lab_faults
from lab import tmpfs
from lab.box.namespaces import wait_until
from lab.errors import FaultError, LabError
from lab.faults import Fault
from lab.paths import LabPaths
from lab.switches import Switches, file_name

CRASHLOOP_TIMEOUT = 20.0

# The penetration faults that act on the lab's own programs and files (lab/pentest.py): not on a box.
LAB_ONLY = {"exposed", "certificate", "stale"}
KILLABLE = ["trading-agent", "trading-dashboard", "ssh-tunnel", "postgresql", "exchange-endpoint", "probe-target"]


def _catalogue() -> dict[str, Fault]:
    catalogue = {}
    for name, fault in lab_faults.FAULTS.items():
        if fault.kind in LAB_ONLY:
            continue
        if fault.kind in ("service-down", "listener"):
            fault = replace(fault, description=fault.description.replace("supervisorctl", "systemctl"))
        elif fault.kind == "crashloop":
            fault = replace(fault, description=f"{fault.program} exits at every start until systemd gives up "
                                               "(failed, Result=start-limit-hit)")
        elif fault.kind == "disk":
            fault = replace(fault, description="the box's disk /srv (a 64 MiB tmpfs) is 92% full")
        elif fault.kind == "frozen":
            fault = replace(fault, description="SIGSTOP to every process of postgresql.service (systemctl kill "
                                               "-s STOP): the unit stays active, nothing answers",
                            still_on=None)
        catalogue[name] = fault
    for unit in KILLABLE:
        catalogue[f"killed:{unit}"] = Fault(f"killed:{unit}", f"{unit} is killed with SIGKILL "
                                            "(systemctl kill -s KILL; Restart= brings it back)", "killed", unit)
    return catalogue


FAULTS = _catalogue()
ALIASES = dict(lab_faults.ALIASES)
# left on until cleared (a switch file)
PERSISTENT = {"switch", "file", "service-down", "crashloop", "disk", "listener", "database", "frozen"}


def resolve(name: str) -> Fault:
    fault = FAULTS.get(ALIASES.get(name, name))
    if fault is None:
        raise FaultError(f"unknown fault {name!r}; valid names: {', '.join([*FAULTS, *ALIASES])}")
    return fault


def from_switch_file(name: str) -> str | None:
    return {file_name(fault): fault for fault in FAULTS}.get(name)


class Target(Protocol):
    """What injecting a fault needs of a box (lab.box.core.Box is one), so this module needs no Box."""

    paths: LabPaths
    switches: Switches

    def systemctl(self, *args: str, timeout: float = 60): ...
    def unit_states(self, units) -> dict[str, dict[str, str]]: ...
    def journal(self, unit: str, lines: int = 20) -> str: ...
    def journal_cursor(self) -> str: ...
    def start_limit_hit(self, unit: str, cursor: str | None = None) -> bool: ...
    def ensure_running(self, units) -> None: ...
    def wait_ready(self, units) -> None: ...
    def rewrite_files(self) -> None: ...
    def disk_path(self, pid: int | None = None): ...
    def cluster(self): ...


def inject(box: Target, fault: Fault) -> None:
    if fault.kind in PERSISTENT:
        box.switches.set(fault.name, bound_to=lab_faults.binding(box.paths, fault))
    if fault.kind == "service-down":
        _systemctl_ok(box, "stop", f"{fault.program}.service")
    elif fault.kind == "listener":
        _systemctl_ok(box, "start", f"{fault.program}.service")
        box.wait_ready([fault.program])
    elif fault.kind == "killed":
        _kill(box, fault.program)
    elif fault.kind == "crashloop":
        _crashloop(box, fault.program)
    elif fault.kind == "file":
        fault.breaks_files(box.paths)
    elif fault.kind == "disk":
        tmpfs.fill(box.disk_path())
    elif fault.kind == "database":
        fault.breaks_db(box.cluster())
    elif fault.kind == "frozen":
        _systemctl_ok(box, "kill", "--signal=STOP", "postgresql.service")


def clear(box: Target, fault: Fault) -> None:
    """Undo one fault (reset-failed and start for the units' faults)."""
    box.switches.unset(fault.name)
    if fault.kind in ("service-down", "crashloop", "killed"):
        box.ensure_running([fault.program])
    elif fault.kind == "listener":
        _systemctl_ok(box, "stop", f"{fault.program}.service")
    elif fault.kind == "file":
        box.rewrite_files()
    elif fault.kind == "disk":
        tmpfs.unfill(box.disk_path())
    elif fault.kind == "frozen":
        _systemctl_ok(box, "kill", "--signal=CONT", "postgresql.service")
    elif fault.kind == "database":
        box.cluster().seed()


def _systemctl_ok(box: Target, *args: str) -> None:
    result = box.systemctl(*args)
    if result.returncode != 0:
        raise LabError(f"systemctl {' '.join(args)} failed in the box: {(result.stderr or result.stdout).strip()}")


def _kill(box: Target, unit: str) -> None:
    """SIGKILL to the unit's processes; returns once its main process is gone (Restart= does the rest)."""
    before = box.unit_states([unit])[unit]
    if before.get("ActiveState") != "active":
        raise FaultError(f"{unit} is {before.get('ActiveState')}, not active: nothing to kill")
    _systemctl_ok(box, "kill", "--signal=KILL", f"{unit}.service")
    if not wait_until(lambda: box.unit_states([unit])[unit].get("MainPID") != before["MainPID"], 10):
        raise LabError(f"{unit} still runs as pid {before['MainPID']} after SIGKILL")


def _crashloop(box: Target, unit: str) -> None:
    """Restart the unit with its crashloop switch on; returns once systemd gives up at the start limit."""
    cursor = box.journal_cursor()
    box.systemctl("reset-failed", f"{unit}.service")
    box.systemctl("restart", "--no-block", f"{unit}.service")
    if not wait_until(lambda: box.start_limit_hit(unit, cursor), CRASHLOOP_TIMEOUT, 0.2):
        raise LabError(f"{unit} did not reach its start limit within {CRASHLOOP_TIMEOUT:.0f}s: "
                       f"{box.unit_states([unit])[unit]}\n{box.journal(unit)}")
