"""The Lab: bring the stand-in host up and down, break it on purpose, and heal it.

The suite's tests hold one Lab and call `clear()` between tests, so clearing a healthy lab is
kept cheap: it only restarts what is not running and rewrites small files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import xmlrpc.client
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from lab import agentstate, backups, configfile, dbfaults, faults, files, handlers, pentest, processes, tls, tmpfs
from lab.errors import FaultError, LabError, LabNotUp
from lab.paths import LabPaths, Ports, default_lab_dir, default_port_base
from lab.postgres import Cluster, pg_root_for
from lab.supervise import ON_DEMAND, PROGRAMS, Supervisor, render_conf, start_supervisord
from lab.switches import Switches

READY_TIMEOUT = 30.0
LOCK_TIMEOUT = 180.0
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes
DUMP_EVERY_SECONDS = 12 * 3600


class Lab:
    def __init__(self, lab_dir: Path | str | None = None, port_base: int | None = None,
                 log: Callable[[str], None] | None = None):
        self.lab_dir = Path(lab_dir).expanduser().resolve() if lab_dir else default_lab_dir()
        self.ports = Ports(int(port_base) if port_base is not None else default_port_base())
        self.paths = LabPaths(self.lab_dir)
        self.config_path = self.paths.config
        self.switches = Switches(self.paths.faults_dir)
        self.supervisor = Supervisor(self.paths)
        self._log = log or (lambda message: None)
        self._lock: FileLock | None = None
        self._cluster: Cluster | None = None

    @classmethod
    def from_env(cls, log: Callable[[str], None] | None = None) -> Lab:
        """LAB_DIR and LAB_PORT_BASE, with the defaults <repo>/.lab and 23000."""
        return cls(default_lab_dir(), default_port_base(), log=log)

    def __repr__(self) -> str:
        return f"Lab({str(self.lab_dir)!r}, port_base={self.ports.base})"

    # ---- state kept between commands ------------------------------------------------------

    @contextmanager
    def _locked(self):
        """One lab operation at a time, across processes (xdist workers share a lab)."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)  # again after a purge
        if self._lock is None:
            self._lock = FileLock(str(self.paths.lock), timeout=LOCK_TIMEOUT)
        try:
            self._lock.acquire()
        except Timeout:
            raise LabError(f"another lab command has held {self.paths.lock} for "
                           f"{LOCK_TIMEOUT:.0f}s; is an `up` stuck?") from None
        try:
            yield
        finally:
            self._lock.release()

    def _state(self) -> dict:
        try:
            return json.loads(self.paths.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_state(self, **values) -> None:
        state = {**self._state(), **values}
        self.paths.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def cluster(self) -> Cluster:
        if self._cluster is None:
            root = self._state().get("pg_root")
            self._cluster = Cluster(self.paths, self.ports, Path(root) if root else pg_root_for(self.lab_dir))
        return self._cluster

    def disk_paths(self) -> list[Path]:
        return [self.paths.disk] if tmpfs.is_mounted(self.paths.disk) else [self.lab_dir]

    # ---- up / down ------------------------------------------------------------------------

    def is_up(self) -> bool:
        return self.supervisor.alive()

    def up(self) -> str:
        """Start the lab, or return a running one to healthy; returns a short summary."""
        started = time.monotonic()
        with self._locked():
            if self.is_up():
                running = self._state().get("port_base")
                if running is not None and running != self.ports.base:
                    raise LabError(f"the lab in {self.lab_dir} is running with port base {running}, "
                                   f"not {self.ports.base}; run: python -m lab down")
                self._log("lab already up: clearing faults")
                self.clear()
            else:
                self._start()
        return self.summary(time.monotonic() - started)

    def _start(self) -> None:
        paths = self.paths
        for directory in paths.dirs():
            directory.mkdir(parents=True, exist_ok=True)
        paths.secrets_dir.chmod(0o700)
        self._check_socket_paths()
        ended = processes.stop_orphans(self.lab_dir, self.cluster().root)
        if ended:
            self._log(f"ended {ended} process(es) left by a supervisord that died")
        processes.check_ports_free(self.ports)
        mounted, why = tmpfs.mount(paths.disk)
        self._log(f"tmpfs mounted at {paths.disk}" if mounted else f"no tmpfs ({why})")
        try:
            self._start_mounted()
        except BaseException:
            self._stop_supervisord()  # a failed up leaves nothing running
            tmpfs.unmount(paths.disk)
            raise

    def _start_mounted(self) -> None:
        paths = self.paths
        pentest.restore_certificate(paths)  # a cert-expiring fault left in place by a lab stopped under it
        tls.ensure_certs(paths)
        cluster = self.cluster()
        self._write_state(port_base=self.ports.base, pg_root=str(cluster.root))
        if cluster.ensure():
            self._log(f"initdb: new cluster in {cluster.data}")
        backups.write_pgpass(paths, self.ports.postgres, cluster.password())
        for name in self.switches.names_on():
            (paths.faults_dir / name).unlink(missing_ok=True)
        if tmpfs.is_mounted(paths.disk):
            tmpfs.unfill(paths.disk)
        handlers.ensure_links(paths.root)
        paths.supervisor_conf.write_text(
            render_conf(paths, self.ports, cluster.command(), cluster.os_user))
        self._log("starting supervisord")
        start_supervisord(paths)
        self._wait_ready(PROGRAMS)
        self._log("seeding the database")
        cluster.create_database()
        cluster.seed()
        cluster.dump(paths.db_dump)
        agentstate.reset(paths.agent_state)
        self._write_env()
        files.regenerate(paths)
        configfile.write(paths, self.ports, self.disk_paths())

    def _write_env(self) -> None:
        """/opt/trading-agent/.env, one of the critical files: the same bytes at every up and clear."""
        p = self.ports
        text = "\n".join([
            "# The trading agent's environment (the lab's; written by `python -m lab up`).",
            "NODE_ENV=production",
            f"PORT={p.api}",
            f"DASHBOARD_PORT={p.dashboard}",
            f"EXCHANGE_TUNNEL=127.0.0.1:{p.tunnel}",
            f"DATABASE_URL=postgresql://postgres@127.0.0.1:{p.postgres}/trading_agent",
            f"TRADING_DB_PASSWORD={self.db_password()}",
            f"{pentest.TOKEN_KEY}={pentest.admin_token(self.paths)}",  # the dashboard's and the API's admin pages
            "",
        ])
        fd = os.open(self.paths.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(self.paths.env_file, 0o600)

    def _check_socket_paths(self) -> None:
        for sock in (self.paths.supervisor_sock, self.cluster().socket_dir / f".s.PGSQL.{self.ports.postgres}"):
            if len(str(sock)) > MAX_SOCKET_PATH:
                raise LabError(f"socket path {sock} is too long for a unix socket; use a shorter LAB_DIR")

    def down(self, purge: bool = False) -> str:
        """Stop every program and supervisord, unmount the tmpfs; purge deletes LAB_DIR."""
        if not self.lab_dir.exists():
            return f"lab in {self.lab_dir}: nothing to do"
        pg_root = self.cluster().root
        with self._locked():
            stopped = self._stop_supervisord()
            leftovers = processes.stop_orphans(self.lab_dir, pg_root)
            error = tmpfs.unmount(self.paths.disk)
            if error:
                raise LabError(f"cannot unmount {self.paths.disk}: {error}")
            if purge:
                shutil.rmtree(self.lab_dir, ignore_errors=True)
                if pg_root != self.lab_dir / "pg":
                    shutil.rmtree(pg_root, ignore_errors=True)
                self._cluster = None
        what = "stopped" if stopped else "was not running"
        extra = f"; ended {leftovers} leftover process(es)" if leftovers else ""
        return f"lab in {self.lab_dir} {what}{extra}" + ("; purged" if purge else "")

    def _stop_supervisord(self) -> bool:
        pid = processes.read_pid(self.paths.supervisor_pid)
        if not self.is_up():
            return False
        children = processes.children(pid)
        try:
            # stopping all at once first: supervisord's own shutdown stops one program per second
            self.supervisor.call("stopAllProcesses", True)
            self.supervisor.shutdown()
        except (LabError, OSError, xmlrpc.client.Error):
            pass
        processes.wait_gone([p for p in [pid, *children] if p], timeout=30, what="lab processes")
        self.paths.supervisor_sock.unlink(missing_ok=True)
        return True

    # ---- programs -------------------------------------------------------------------------

    def program_state(self, name: str) -> str:
        try:
            return self.supervisor.info(name)["statename"]
        except xmlrpc.client.Fault as fault:
            if "BAD_NAME" in fault.faultString:
                raise LabError(f"no program {name!r}; programs: {', '.join(PROGRAMS)}") from None
            raise

    def wait_state(self, name: str, states: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.program_state(name)
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise LabError(f"{name} is {state}, not {' or '.join(sorted(states))}, after "
                               f"{timeout:.0f}s:\n{self.supervisor.log_tail(name)}")
            time.sleep(0.1)

    def ensure_running(self, names: list[str] | tuple[str, ...] = PROGRAMS) -> None:
        """Start whichever of these programs is not RUNNING and wait until their ports answer."""
        states = self.supervisor.states()
        for name in names:
            state = states.get(name)
            if state == "BACKOFF":
                self.supervisor.stop(name)
            if state not in ("RUNNING", "STARTING"):
                self.supervisor.start(name, wait=False)
        self._wait_ready(names)

    def _wait_ready(self, names, timeout: float = READY_TIMEOUT) -> None:
        ports = {**self.ports.by_program(), **self.ports.on_demand()}
        deadline = time.monotonic() + timeout
        while True:
            states = self.supervisor.states()
            fatal = [n for n in names if states.get(n) == "FATAL"]
            waiting = [n for n in names if states.get(n) != "RUNNING" or (n in ports and not _port_open(ports[n]))]
            if not waiting:
                return
            if fatal or time.monotonic() > deadline:
                failed = fatal or waiting
                tails = "\n".join(f"--- {n} ({states.get(n)}, port {ports.get(n, 'none')}), end of its log:\n"
                                  f"{self.supervisor.log_tail(n)}" for n in failed)
                raise LabError(f"did not come up within {timeout:.0f}s: {', '.join(failed)}\n{tails}"
                               if not fatal else f"failed to start: {', '.join(fatal)}\n{tails}")
            time.sleep(0.1)

    # ---- faults ---------------------------------------------------------------------------

    def fault_names(self) -> list[str]:
        """Every fault name (aliases not included)."""
        return list(faults.FAULTS)

    def available_faults(self) -> list[str]:
        """The faults this lab can inject (disk-full needs the tmpfs, so root)."""
        return [name for name, fault in faults.FAULTS.items() if not faults.unavailable(self, fault)]

    def active_faults(self) -> list[str]:
        """Injected and still in effect: a stopped program the suite restarted, files it cleaned up,
        are not a fault any more (`mended_faults` lists those)."""
        injected = sorted(n for n in map(faults.from_switch_file, self.switches.names_on()) if n)
        return [name for name in injected if not self._mended(name)]

    def mended_faults(self) -> list[str]:
        injected = sorted(n for n in map(faults.from_switch_file, self.switches.names_on()) if n)
        return [name for name in injected if self._mended(name)]

    def _mended(self, name: str) -> bool:
        fault = faults.FAULTS[name]
        return fault.still_on is not None and self.is_up() and not fault.still_on(self)

    def inject(self, name: str) -> None:
        fault = faults.resolve(name)
        why = faults.unavailable(self, fault)
        if why:
            raise FaultError(f"fault {fault.name} is not available: {why}")
        with self._locked():
            self._require_up()
            faults.inject(self, fault)

    def clear(self, name: str | None = None) -> None:
        """Clear one fault, or (None) all of them and return the lab to fully healthy."""
        fault = faults.resolve(name) if name is not None else None
        with self._locked():
            self._require_up()
            if fault is not None:
                faults.clear(self, fault)
                if fault.kind == "file":
                    self._rewrite_files()
                return
            for switch in self.switches.names_on():
                (self.paths.faults_dir / switch).unlink(missing_ok=True)
            if tmpfs.is_mounted(self.paths.disk):
                tmpfs.unfill(self.paths.disk)
            for program in ON_DEMAND:
                self.supervisor.stop(program)
            dbfaults.thaw(faults.postgres_pids(self))  # a frozen postgres looks RUNNING to supervisord
            if pentest.restore_certificate(self.paths):  # cert-expiring
                pentest.restart_exchange(self)
            self.ensure_running()
            agentstate.reset(self.paths.agent_state)
            self._write_env()
            self.cluster().drop_other_databases()
            self.cluster().create_database()  # after a restore test renamed it away
            self.cluster().seed()
            self._dump_if_stale()
            self._rewrite_files()
            configfile.write(self.paths, self.ports, self.disk_paths())

    def _dump_if_stale(self) -> None:
        """A lab left up for days keeps a recent backup: the dump its backups are made of is renewed daily."""
        started = backups.dump_time(self.paths)
        if started is None or time.time() - started > DUMP_EVERY_SECONDS:
            self.cluster().dump(self.paths.db_dump)

    def _rewrite_files(self) -> None:
        """Healthy files, then the file faults that are still on."""
        now = datetime.now().astimezone()
        files.regenerate(self.paths, now)
        for active in self.active_faults():
            fault = faults.FAULTS[active]
            if fault.kind == "file":
                fault.breaks_files(self.paths, now)

    def _require_up(self) -> None:
        if not self.is_up():
            raise LabNotUp(f"the lab in {self.lab_dir} is not up; run: python -m lab up")

    # ---- what the agent saw ---------------------------------------------------------------

    def calls(self) -> list[dict]:
        """Requests the agent API received: {"method", "path", "time"} (and "query" if any)."""
        try:
            lines = self.paths.calls_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        calls = []
        for line in lines:
            with contextlib.suppress(ValueError):  # a line being written right now
                calls.append(json.loads(line))
        return calls

    def clear_calls(self) -> None:
        self.paths.calls_file.parent.mkdir(parents=True, exist_ok=True)
        self.paths.calls_file.write_text("")

    # ---- database -------------------------------------------------------------------------

    def db_password(self) -> str:
        return self.paths.db_password_file.read_text().strip()

    def db_conninfo(self) -> dict:
        return {"host": "127.0.0.1", "port": self.ports.postgres, "dbname": "trading_agent",
                "user": "postgres", "password": self.db_password()}

    # ---- reporting ------------------------------------------------------------------------

    def status(self) -> dict:
        up = self.is_up()
        return {
            "lab_dir": str(self.lab_dir),
            "port_base": self.ports.base,
            "up": up,
            "programs": self.supervisor.states() if up else {},
            "faults": self.active_faults(),
            "mended": self.mended_faults() if up else [],
            "tmpfs": tmpfs.is_mounted(self.paths.disk),
            "config": str(self.config_path),
        }

    def summary(self, seconds: float | None = None) -> str:
        p = self.ports
        took = f" in {seconds:.1f}s" if seconds is not None else ""
        disk = str(self.paths.disk) if tmpfs.is_mounted(self.paths.disk) else "none (disk-full unavailable)"
        return "\n".join([
            f"lab up{took}: {self.lab_dir}",
            f"  dashboard  http://127.0.0.1:{p.dashboard}/",
            f"  agent API  http://127.0.0.1:{p.api}/api/health",
            f"  tunnel     127.0.0.1:{p.tunnel} -> exchange https://127.0.0.1:{p.exchange}",
            f"  postgres   127.0.0.1:{p.postgres} db trading_agent (password in {self.paths.db_password_file})",
            f"  probe      127.0.0.1:{p.probe_target} (the network check's target)",
            f"  tmpfs      {disk}",
            f"  config     {self.config_path}",
        ])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
