"""The Box: a stand-in of the trading host with a real systemd as PID 1 of its own namespaces.

    box = Box("/path/to/dir", 28000); box.up()
    box.run(["systemctl", "is-active", "trading-agent"])      # a CompletedProcess, run inside the box
    box.inject("crashloop:trading-agent"); box.clear(); box.down()

The box shares the machine's kernel, network (its servers listen on 127.0.0.1) and, read-only, its
root filesystem; everything it writes is in BOX_DIR or in its own tmpfs mounts, which end with it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from lab import agentstate, backups, files, processes, tls, tmpfs
from lab.box import access, boot, config, namespaces, preflight, shutdown
from lab.box import faults as box_faults
from lab.box.layout import (
    MAINT_USER,
    ON_DEMAND_UNITS,
    UNITS,
    BoxPaths,
    BoxPorts,
    Guide,
    default_box_dir,
    default_port_base,
)
from lab.box.namespaces import Cgroup
from lab.box.units import write_tree
from lab.errors import LabError, LabNotUp
from lab.postgres import SUPERUSER, Cluster
from lab.switches import Switches

LOCK_TIMEOUT = 180.0
BOOT_TIMEOUT = 60.0  # systemd: starting -> running
READY_TIMEOUT = 60.0  # every unit active and its port answering
STOP_TIMEOUT = 40.0  # poweroff: every unit stopped, PID 1 gone
START_LIMIT_MESSAGE = "Start request repeated too quickly"  # systemd's words when it gives up
BOX_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "HOME": "/root", "TERM": "dumb", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}


class Box:
    def __init__(self, box_dir: Path | str | None = None, port_base: int | None = None,
                 log: Callable[[str], None] | None = None):
        self.box_dir = Path(box_dir).expanduser().resolve() if box_dir else default_box_dir()
        self.ports = BoxPorts(int(port_base) if port_base is not None else default_port_base())
        self.paths = BoxPaths(self.box_dir)
        self.config_path = self.paths.config
        self.switches = Switches(self.paths.faults_dir)
        self.cgroup = Cgroup.for_box(self.paths.slug()) if _cgroup2() else None
        self._log = log or (lambda message: None)
        self._lock: FileLock | None = None
        self._unshare: subprocess.Popen | None = None

    @classmethod
    def from_env(cls, log: Callable[[str], None] | None = None) -> Box:
        """BOX_DIR and BOX_PORT_BASE, with the defaults <repo>/.box and 28000."""
        return cls(default_box_dir(), default_port_base(), log=log)

    @staticmethod
    def unavailable() -> str | None:
        """Why this process cannot run a box (not root, unshare refused, a package missing), or None."""
        return preflight.unavailable()

    def __repr__(self) -> str:
        return f"Box({str(self.box_dir)!r}, port_base={self.ports.base})"

    # ---- state ----------------------------------------------------------------------------

    @contextmanager
    def _locked(self):
        """One box operation at a time, across processes."""
        self.box_dir.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = FileLock(str(self.paths.lock), timeout=LOCK_TIMEOUT)
        try:
            self._lock.acquire()
        except Timeout:
            raise LabError(f"another box command has held {self.paths.lock} for {LOCK_TIMEOUT:.0f}s") from None
        try:
            yield
        finally:
            self._lock.release()

    def record(self) -> dict:
        """What `up` recorded: PID 1 on the machine, its start time, namespaces and cgroup."""
        try:
            return json.loads(self.paths.box_state.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def pid1(self) -> int | None:
        """The box's PID 1 as the machine numbers it, checked to still be that process; None when down."""
        if self.cgroup is None:
            return None
        return namespaces.check_pid1(self.record(), self.cgroup)

    def is_up(self) -> bool:
        return self.pid1() is not None

    def _require_up(self) -> int:
        pid = self.pid1()
        if pid is None:
            raise LabNotUp(f"the box in {self.box_dir} is not up; run: python -m lab box up")
        return pid

    # ---- running things inside ------------------------------------------------------------

    def command(self, args: list[str], user: str | None = None) -> list[str]:
        """The machine's command line that runs `args` inside the box (nsenter), as root or `user`."""
        pid = self._require_up()
        argv = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-p", "-C", "--"]
        if user is not None:
            argv += ["runuser", "-u", user, "--"]
        return argv + [str(a) for a in args]

    def run(self, args: list[str], user: str | None = None, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command inside the box and capture its output (text); never raises on its exit status."""
        argv = self.command(args, user)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=BOX_ENV, input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise LabError(f"{' '.join(map(str, args))} did not finish within {timeout:.0f}s in the box") from error

    def systemctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.run(["systemctl", *args], timeout=timeout)

    def inside_path(self, path: Path | str) -> Path:
        """A path under BOX_DIR as the box's own processes reach it (under /run/trading-box)."""
        return Guide.stable_box_dir / Path(path).resolve().relative_to(self.box_dir)

    def ssh_argv(self, *command: str) -> list[str]:
        """ssh as the maintenance user with the box's key: ssh_argv("systemctl", "is-active", "trading-agent")."""
        return access.ssh_argv(self.paths, self.ports, *command)

    def system_state(self) -> str:
        return self.systemctl("is-system-running").stdout.strip() or "unknown"

    def unit_states(self, units: list[str] | tuple[str, ...] = UNITS) -> dict[str, dict[str, str]]:
        """ActiveState, SubState, Result, NRestarts, MainPID of each unit, from one `systemctl show`."""
        props = "Id,ActiveState,SubState,Result,NRestarts,MainPID"
        result = self.systemctl("show", f"--property={props}", *(f"{u}.service" for u in units))
        states, current = {}, {}
        for line in [*result.stdout.splitlines(), ""]:
            if not line.strip():
                if current.get("Id"):
                    states[current["Id"].removesuffix(".service")] = current
                current = {}
                continue
            key, _, value = line.partition("=")
            current[key] = value
        return states

    def journal(self, unit: str, lines: int = 20) -> str:
        return self.run(["journalctl", "--no-pager", "-q", "-u", unit, "-n", str(lines)]).stdout.strip()

    # ---- up / down ------------------------------------------------------------------------

    def up(self) -> str:
        """Boot the box, or return a running one to healthy; returns a short summary."""
        started = time.monotonic()
        preflight.check()
        with self._locked():
            if self.is_up():
                running = self.record().get("port_base")
                if running is not None and running != self.ports.base:
                    raise LabError(f"the box in {self.box_dir} is running with port base {running}, "
                                   f"not {self.ports.base}; run: python -m lab box down")
                self._log("box already up: clearing faults")
                self._clear_all()
            else:
                self._start()
        return self.summary(time.monotonic() - started)

    def _start(self) -> None:
        ended = self._end_leftovers()
        if ended:
            self._log(f"ended {ended} process(es) left by a box that died")
        self._prepare()
        _check_ports_free(self.ports)
        self._log("booting: new namespaces, the box's mounts, then systemd")
        try:
            record, self._unshare = boot.launch(self.paths, self._log)
            record["port_base"] = self.ports.base
            self.paths.box_state.write_text(json.dumps(record, indent=2) + "\n")
            state = self.wait_running()
            self._log(f"systemd is {state}; waiting for the units and their ports")
            self.wait_ready()
            access.install_helpers(self.paths, self.run)
            self._log("seeding the database")
            cluster = self.cluster()
            cluster.create_database()
            cluster.seed()
            cluster.dump(self.paths.db_dump)
            agentstate.reset(self.paths.agent_state)
            files.regenerate(self.paths)
            config.write(self.paths, self.ports)
        except BaseException:
            try:
                self._teardown()  # a failed up leaves nothing running
            except LabError as error:
                self._log(f"after the failed up: {error}")
            raise

    def _prepare(self) -> None:
        """Everything the box reads, in BOX_DIR, before it boots."""
        paths = self.paths
        for directory in paths.dirs():
            directory.mkdir(parents=True, exist_ok=True)
        for directory, mode in ((paths.temp_dir, 0o1777), (paths.var_tmp, 0o1777), (paths.secrets_dir, 0o700),
                                (paths.box, 0o755), (paths.var_log, 0o755)):
            os.chmod(directory, mode)
        for name in self.switches.names_on():
            (paths.faults_dir / name).unlink(missing_ok=True)
        tls.ensure_certs(paths)
        self._prepare_database()
        if not paths.machine_id.exists():
            paths.machine_id.write_text(uuid.uuid4().hex + "\n")
        config.install_tools(paths)
        config.write(paths, self.ports)  # the sudo rules are made from the configuration seen over SSH
        access.prepare(paths, self.ports)
        write_tree(paths, self.ports)
        boot.write(paths)
        self._write_env()
        files.regenerate(paths)
        paths.console_log.write_text("")

    def _prepare_database(self) -> None:
        """A data directory for the box's PostgreSQL (owned by postgres) and its password; initdb runs inside."""
        paths = self.paths
        owner = pwd.getpwnam(SUPERUSER)
        if not ((paths.pg_data / "PG_VERSION").exists() and paths.db_password_file.exists()):
            shutil.rmtree(paths.pg_data, ignore_errors=True)
            fd = os.open(paths.db_password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        backups.write_pgpass(paths, self.ports.postgres, paths.db_password_file.read_text().strip())
        paths.pg_data.mkdir(parents=True, exist_ok=True)
        os.chown(paths.pg_data, owner.pw_uid, owner.pw_gid)
        os.chmod(paths.pg_data, 0o700)

    def _write_env(self) -> None:
        """/opt/trading-agent/.env as the guide has it: the agent's settings, the database password."""
        p = self.ports
        text = "\n".join([
            "# The trading agent's environment (the box's; written by `python -m lab box up`).",
            "NODE_ENV=production",
            f"PORT={p.api}",
            f"DASHBOARD_PORT={p.dashboard}",
            f"EXCHANGE_TUNNEL=127.0.0.1:{p.tunnel}",
            f"DATABASE_URL=postgresql://{SUPERUSER}@127.0.0.1:{p.postgres}/trading_agent",
            f"TRADING_DB_PASSWORD={self.paths.db_password_file.read_text().strip()}",
            "",
        ])
        fd = os.open(self.paths.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(self.paths.env_file, 0o600)

    def wait_running(self, timeout: float = BOOT_TIMEOUT) -> str:
        """Until systemd says running, or degraded (the reason is logged); returns which.

        `offline` is what systemctl says while systemd does not answer yet, early in the boot: it ends the wait
        only once the box's PID 1 is gone. `stopping` and `maintenance` end it at once."""
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            state = self.system_state()
            if state == "running":
                return state
            if state == "degraded":
                self._log(f"systemd is degraded:\n{self.failed_units()}")
                return state
            if state in ("stopping", "maintenance") or (state == "offline" and not self.is_up()):
                break
            time.sleep(0.1)
        raise LabError(f"systemd in the box is {state!r}, not running, after {timeout:.0f}s:\n"
                       f"{self.systemctl('list-jobs', '--no-legend').stdout}{self.failed_units()}")

    def failed_units(self) -> str:
        return self.systemctl("--failed", "--no-legend", "--plain").stdout.strip()

    def wait_ready(self, units: list[str] | tuple[str, ...] = UNITS, timeout: float = READY_TIMEOUT) -> None:
        """Until each unit is active and its port answers on 127.0.0.1; a failed unit fails at once."""
        ports = {**self.ports.by_unit(), **self.ports.on_demand()}
        deadline = time.monotonic() + timeout
        while True:
            states = self.unit_states(units)
            waiting = [u for u in units if states.get(u, {}).get("ActiveState") != "active" or not _answers(ports[u])]
            if not waiting:
                return
            # failed: one we wait for, or what it needs (postgresql-initdb); nothing else of the box can fail
            broken = {line.split()[0].removesuffix(".service") for line in self.failed_units().splitlines()}
            failed = [u for u in waiting if u in broken] + sorted(b for b in broken if b not in UNITS)
            if failed or time.monotonic() > deadline:
                bad = failed or waiting
                tails = "\n".join(f"--- {u} ({states.get(u, {}).get('ActiveState', 'failed')}/"
                                  f"{states.get(u, {}).get('SubState', '-')}, port {ports.get(u, '-')}), its journal:\n"
                                  f"{self.journal(u, 15)}" for u in bad)
                what = "failed" if failed else f"did not come up within {timeout:.0f}s"
                raise LabError(f"{what}: {', '.join(bad)}\n{tails}")
            time.sleep(0.2)

    def down(self) -> str:
        """Power the box off (systemd stops every unit), end whatever is left, and check nothing remains."""
        if not self.box_dir.exists():
            return f"box in {self.box_dir}: nothing to do"
        started = time.monotonic()
        with self._locked():
            was_up = self.is_up()
            detail = self._teardown()
        took = time.monotonic() - started
        return f"box in {self.box_dir} " + (f"stopped in {took:.1f}s" if was_up else "was not running") + detail

    def _teardown(self) -> str:
        record = self.record()
        pid = self.pid1()
        if pid is not None and not shutdown.power_off(pid, STOP_TIMEOUT):
            self._log(f"the box's systemd did not power off within {STOP_TIMEOUT:.0f}s: killing it")
        forced = self._end_leftovers(record)
        if self._unshare is not None:
            with suppress(subprocess.TimeoutExpired):
                self._unshare.wait(timeout=10)  # reap it: it ends with the box's PID 1
            self._unshare = None
        problems = shutdown.what_remains(record, self.cgroup, self.box_dir) if self.cgroup is not None else []
        for sentinel in boot.sentinels(self.paths):
            if not sentinel.exists() and record:
                problems.append(f"the machine's {sentinel} was removed while the box ran")
            sentinel.unlink(missing_ok=True)
        for stale in (self.paths.box_state, self.paths.stage_file, self.paths.go_file):
            stale.unlink(missing_ok=True)
        if problems:
            raise LabError("the box did not end cleanly: " + "; ".join(problems))
        return f"; ended {forced} leftover process(es)" if forced else ""

    def _end_leftovers(self, record: dict | None = None) -> int:
        if self.cgroup is None:
            return 0
        return shutdown.end_leftovers(self.record() if record is None else record, self.cgroup)

    # ---- faults ---------------------------------------------------------------------------

    def active_faults(self) -> list[str]:
        return sorted(n for n in map(box_faults.from_switch_file, self.switches.names_on()) if n)

    def inject(self, name: str) -> None:
        fault = box_faults.resolve(name)
        with self._locked():
            self._require_up()
            box_faults.inject(self, fault)

    def journal_cursor(self) -> str:
        """Where the box's journal ends now (for `journalctl --after-cursor`)."""
        out = self.run(["journalctl", "--no-pager", "-q", "-n", "0", "--show-cursor"]).stdout
        return out.strip().rpartition("cursor: ")[2]

    def start_limit_hit(self, unit: str, cursor: str | None = None) -> bool:
        """The unit is failed and systemd refused to start it again: its start limit was hit.

        systemd 252 keeps the result of the last crash (Result=exit-code) when the start limit stops
        Restart=; Result=start-limit-hit shows only when the refused start follows a clean stop. What
        always tells is ActiveState=failed and the journal's "Start request repeated too quickly".
        """
        state = self.unit_states([unit])[unit]
        if state.get("ActiveState") != "failed":
            return False
        if state.get("Result") == "start-limit-hit":
            return True
        args = ["journalctl", "--no-pager", "-q", "-o", "cat", "-u", f"{unit}.service"]
        if cursor:
            args.append(f"--after-cursor={cursor}")
        return START_LIMIT_MESSAGE in self.run(args).stdout

    def clear(self, name: str | None = None) -> None:
        """Clear one fault, or (None) all of them and return the box to fully healthy."""
        fault = box_faults.resolve(name) if name is not None else None
        with self._locked():
            self._require_up()
            if fault is None:
                self._clear_all()
            else:
                box_faults.clear(self, fault)

    def _clear_all(self) -> None:
        pid = self._require_up()
        for switch in self.switches.names_on():
            (self.paths.faults_dir / switch).unlink(missing_ok=True)
        tmpfs.unfill(self.disk_path(pid))
        self.systemctl("stop", *(f"{u}.service" for u in ON_DEMAND_UNITS))
        self.systemctl("kill", "--signal=CONT", "postgresql.service")  # a frozen one is still "active"
        self.ensure_running(UNITS)
        agentstate.reset(self.paths.agent_state)
        self.rewrite_files()
        self.cluster().seed()
        config.write(self.paths, self.ports)

    def ensure_running(self, units: list[str] | tuple[str, ...]) -> None:
        """reset-failed (which also resets the start limit) and start whatever is not active."""
        names = [f"{u}.service" for u in units]
        self.systemctl("reset-failed", *names)
        states = self.unit_states(units)
        stopped = [f"{u}.service" for u in units if states.get(u, {}).get("ActiveState") not in ("active",)]
        if stopped:
            self.systemctl("start", "--no-block", *stopped)
        self.wait_ready(units)

    def rewrite_files(self) -> None:
        """Healthy files, then the file faults that are still on."""
        now = datetime.now().astimezone()
        files.regenerate(self.paths, now)
        for active in self.active_faults():
            fault = box_faults.FAULTS[active]
            if fault.kind == "file":
                fault.breaks_files(self.paths, now)

    def disk_path(self, pid: int | None = None) -> Path:
        """The box's /srv as the machine reaches it (through /proc/PID/root)."""
        pid = pid or self._require_up()
        return Path(f"/proc/{pid}/root") / Guide.disk.relative_to("/")

    # ---- database -------------------------------------------------------------------------

    def cluster(self) -> Cluster:
        """The lab's Cluster, for what goes over TCP (create, seed, dump); its files are the box's."""
        return Cluster(self.paths, self.ports, self.paths.pg_dir)

    def db_conninfo(self) -> dict:
        return {"host": "127.0.0.1", "port": self.ports.postgres, "dbname": "trading_agent",
                "user": SUPERUSER, "password": self.paths.db_password_file.read_text().strip()}

    # ---- reporting ------------------------------------------------------------------------

    def status(self) -> dict:
        up = self.is_up()
        units = {}
        if up:
            ports = self.ports.by_unit()
            for name, state in self.unit_states().items():
                units[name] = {"state": f"{state.get('ActiveState')}/{state.get('SubState')}",
                               "result": state.get("Result"), "restarts": state.get("NRestarts"),
                               "port": ports[name], "answers": _answers(ports[name])}
        return {"box_dir": str(self.box_dir), "port_base": self.ports.base, "up": up,
                "pid1": self.pid1(), "system": self.system_state() if up else "down", "units": units,
                "failed": self.failed_units() if up else "", "faults": self.active_faults(),
                "config": str(self.config_path)}

    def summary(self, seconds: float | None = None) -> str:
        p = self.ports
        took = f" in {seconds:.1f}s" if seconds is not None else ""
        return "\n".join([
            f"box up{took}: {self.box_dir} (systemd is PID 1 of its namespaces; machine pid {self.pid1()})",
            f"  dashboard  http://127.0.0.1:{p.dashboard}/",
            f"  agent API  http://127.0.0.1:{p.api}/api/health",
            f"  tunnel     127.0.0.1:{p.tunnel} -> exchange https://127.0.0.1:{p.exchange}",
            f"  postgres   127.0.0.1:{p.postgres} db trading_agent (password in {self.paths.db_password_file})",
            f"  probe      127.0.0.1:{p.probe_target} (the network check's target)",
            f"  ssh        ssh -F {self.paths.ssh_config} trading-box   ({MAINT_USER}@127.0.0.1:{p.ssh})",
            "  inside     python -m lab box exec -- systemctl status trading-agent",
            f"  config     {self.config_path}  (paths as seen inside the box, where it is "
            f"{self.inside_path(self.config_path)})",
        ])


def _cgroup2() -> bool:
    try:
        namespaces.cgroup2_root()
        return True
    except LabError:
        return False


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _check_ports_free(ports: BoxPorts) -> None:
    busy = [f"port {port} ({unit}) is in use{processes.port_owner(port)}"
            for unit, port in {**ports.by_unit(), **ports.on_demand()}.items() if _answers(port)]
    if busy:
        raise LabError("cannot start the box: " + "; ".join(busy) + ". Stop what uses them "
                       "(python -m lab box down for an old box) or choose another BOX_PORT_BASE.")
