"""Where everything lives under LAB_DIR and which port serves what.

One place for the layout, so the servers, the file generator and the config writer agree.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PORT_BASE = 23000


def default_lab_dir() -> Path:
    return Path(os.environ.get("LAB_DIR") or REPO / ".lab").expanduser().resolve()


def default_port_base() -> int:
    raw = os.environ.get("LAB_PORT_BASE", str(DEFAULT_PORT_BASE))
    try:
        return int(raw)
    except ValueError:
        from lab.errors import LabError

        raise LabError(f"LAB_PORT_BASE must be an integer, got {raw!r}") from None


def venv_bin(name: str) -> str:
    """A tool installed next to the running interpreter (supervisord, supervisorctl)."""
    return str(Path(sys.executable).parent / name)


@dataclass(frozen=True)
class Ports:
    """The guide's ports, shifted so that several labs (and the real box) can coexist."""

    base: int

    @property
    def dashboard(self) -> int:
        return self.base

    @property
    def api(self) -> int:
        return self.base + 1

    @property
    def postgres(self) -> int:
        return self.base + 432

    @property
    def tunnel(self) -> int:
        return self.base + 443

    @property
    def exchange(self) -> int:
        return self.base + 444

    @property
    def probe_target(self) -> int:
        """What the network check connects to (the operator's stand-in for the guide's 8.8.8.8)."""
        return self.base + 53

    @property
    def unexpected(self) -> int:
        """Where the unexpected-port fault listens; nothing does while the lab is healthy."""
        return self.base + 77

    @property
    def exposed(self) -> int:
        """Where the port-exposed fault listens, on the lab's outside address 127.0.0.2 (lab/pentest.py)."""
        return self.base + 88

    def by_program(self) -> dict[str, int]:
        """The programs that always run, and their ports (unexpected-listener runs only under its fault)."""
        return {
            "postgresql": self.postgres,
            "trading-agent": self.api,
            "trading-dashboard": self.dashboard,
            "ssh-tunnel": self.tunnel,
            "exchange-endpoint": self.exchange,
            "probe-target": self.probe_target,
        }

    def on_demand(self) -> dict[str, int]:
        """The programs only a fault starts, and their ports."""
        return {"unexpected-listener": self.unexpected}


class LabPaths:
    """The lab's stand-ins for /var/log/trading-agent, /opt/trading-agent, /tmp and friends."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.log_dir = self.root / "var" / "log" / "trading-agent"
        self.opt_dir = self.root / "opt" / "trading-agent"
        self.app_log_dir = self.opt_dir / "logs"
        self.backup_dir = self.opt_dir / "backups"
        self.config_dir = self.opt_dir / "config"
        self.scripts_dir = self.opt_dir / "scripts"
        self.known_errors = self.config_dir / "known-errors.txt"
        self.temp_dir = self.root / "tmp"
        self.run_dir = self.root / "run"
        self.faults_dir = self.root / "faults"
        self.tls_dir = self.root / "tls"
        self.secrets_dir = self.root / "secrets"
        self.disk = self.root / "disk"
        self.etc_dir = self.root / "etc"
        self.supervisor_conf = self.etc_dir / "supervisord.conf"
        self.supervisor_sock = self.run_dir / "supervisor.sock"
        self.supervisor_pid = self.run_dir / "supervisord.pid"
        self.supervisor_log_dir = self.run_dir / "supervisor"
        self.calls_file = self.run_dir / "agent-calls.jsonl"
        self.agent_state = self.run_dir / "agent-state.json"  # what the emergency POSTs changed
        self.agent_instance = self.run_dir / "trading-agent.instance"  # a token the agent draws at each start
        self.diagnostics_file = self.run_dir / "diagnostics.jsonl"
        self.alerts_file = self.run_dir / "alerts.jsonl"
        self.state_file = self.run_dir / "lab.json"
        self.db_dump = self.run_dir / "db-dump.dump"  # pg_dump's custom format; its time: when it started
        self.ca_cert = self.tls_dir / "ca.pem"
        self.ca_key = self.tls_dir / "ca-key.pem"  # the lab CA's key: cert-expiring re-issues the exchange's
        self.server_pem = self.tls_dir / "server.pem"
        self.db_password_file = self.secrets_dir / "db-password"
        self.pgpass = self.secrets_dir / "pgpass"  # libpq's password file, for [backups] pg_dump and pg_restore
        # security-breach indicators: sshd's log, the service user's keys, the files that must not change
        self.auth_log = self.root / "var" / "log" / "auth.log"
        self.authorized_keys = self.root / "home" / "trading" / ".ssh" / "authorized_keys"
        self.env_file = self.opt_dir / ".env"
        self.keys_dir = self.opt_dir / "keys"
        self.oracle_key = self.keys_dir / "oracle_key"  # the guide's key to the cloud VM (Recovery 2 chmods it)
        self.trading_config = self.config_dir / "trading-config.json"
        self.sshd_config_copy = self.etc_dir / "ssh" / "sshd_config"
        self.critical_manifest = self.run_dir / "critical-files.sha256"  # `sha256sum` lines of the healthy files
        # The same, each file by its absolute path as the lab's configuration names it: the suite's baseline
        # ([security] checksums_file), as `make record-checksums` writes it on a real box.
        self.critical_baseline = self.run_dir / "critical-files.baseline.sha256"
        self.config = self.root / "maintenance.toml"
        self.lock = self.root / ".lab.lock"

    def seen_by_suite(self) -> LabPaths:
        """This layout as the suite's configuration names it (a box's: as its own processes see it)."""
        return self

    @property
    def critical_files(self) -> list[Path]:
        """Files whose change is a breach indicator: the agent's secrets, its trading limits, sshd's settings."""
        return [self.env_file, self.trading_config, self.sshd_config_copy]

    def dirs(self) -> list[Path]:
        """Every directory `up` creates (the tmpfs mount point included)."""
        return [
            self.log_dir, self.app_log_dir, self.backup_dir, self.config_dir, self.scripts_dir,
            self.temp_dir, self.run_dir, self.faults_dir, self.tls_dir, self.secrets_dir,
            self.disk, self.etc_dir, self.supervisor_log_dir,
        ]

    def __repr__(self) -> str:
        return f"LabPaths({str(self.root)!r})"
