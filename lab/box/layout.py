"""Where a box keeps its parts (BOX_DIR) and where they appear inside it (the guide's paths).

BOX_DIR holds everything a box owns, in the lab's layout (so lab.files, lab.sample and the lab's
servers work on it unchanged) plus the box's own parts under BOX_DIR/box. Inside the box, the
guide's paths (/opt/trading-agent, /var/log/trading-agent, /tmp, ...) are bind mounts of these.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.paths import REPO, LabPaths, Ports
from lab.postgres import PG_BIN

DEFAULT_PORT_BASE = 28000  # the lab uses 23000, the suite's tests 26000
MAINT_USER = "trading-maint"
EMERGENCY_BUNDLES = "emergency"  # the maintenance user's directory in the backups area
SERVICE_USER = "trading"  # the guide's service user ([services] user of the shipped example); owns no process yet
OVERLAID_ETC = ("passwd", "group", "shadow", "gshadow", "hosts", "hostname")  # the box's own, over the machine's
HOSTNAME = "trading-box"
UNITS = ["postgresql", "trading-agent", "trading-dashboard", "ssh-tunnel", "exchange-endpoint", "probe-target", "ssh"]
PYTHON_UNITS = {  # unit -> the lab's server module it runs
    "trading-agent": "lab.agent",
    "trading-dashboard": "lab.dashboard",
    "ssh-tunnel": "lab.tunnel",
    "exchange-endpoint": "lab.exchange",
    "probe-target": "lab.probetarget",
}
ON_DEMAND_UNITS = {"unexpected-listener": "lab.unexpected"}  # not wanted by box.target: a fault starts it


def default_box_dir() -> Path:
    return Path(os.environ.get("BOX_DIR") or REPO / ".box").expanduser().resolve()


def default_port_base() -> int:
    raw = os.environ.get("BOX_PORT_BASE", str(DEFAULT_PORT_BASE))
    try:
        return int(raw)
    except ValueError:
        raise LabError(f"BOX_PORT_BASE must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class BoxPorts(Ports):
    """The lab's ports plus the box's sshd on base+22."""

    @property
    def ssh(self) -> int:
        return self.base + 22

    def by_unit(self) -> dict[str, int]:
        return {**self.by_program(), "ssh": self.ssh}


class Guide:
    """The guide's paths, as the box's own processes see them."""

    opt_dir = Path("/opt/trading-agent")
    log_dir = Path("/var/log/trading-agent")
    known_errors = opt_dir / "config" / "known-errors.txt"
    app_log_dir = opt_dir / "logs"
    backup_dir = opt_dir / "backups"
    env_file = opt_dir / ".env"
    temp_dir = Path("/tmp")
    alerts_file = Path("/var/log/trading-maintenance/alerts.jsonl")  # root's, as the example
    disk = Path("/srv")  # the box's small data disk (tmpfs), what disk-full fills
    pg_version = PG_BIN.parent.name  # "15" for /usr/lib/postgresql/15/bin
    pg_data = Path("/var/lib/postgresql") / pg_version / "main"
    pg_socket_dir = Path("/run/postgresql")
    stable_box_dir = Path("/run/trading-box")  # BOX_DIR inside the box, whatever hides its own path


class BoxPaths(LabPaths):
    """The lab's layout under BOX_DIR, and the box's own parts under BOX_DIR/box."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.box = self.root / "box"
        self.boot_script = self.box / "boot.sh"
        self.systemd_dir = self.box / "systemd"  # copied into the box's /etc/systemd (a tmpfs)
        self.overlay_dir = self.box / "etc"  # files bind-mounted over the box's /etc/...
        self.sudoers_dir = self.overlay_dir / "sudoers.d"
        self.machine_id = self.box / "machine-id"
        self.console_log = self.box / "console.log"
        self.box_state = self.box / "state.json"
        self.stage_file = self.box / "mounted"  # boot.sh: the mounts are in place
        self.go_file = self.box / "go"  # the launcher: checked, systemd may start
        self.var_log = self.root / "var" / "log"
        self.var_tmp = self.root / "var" / "tmp"
        self.ssh_dir = self.root / "ssh"
        self.sshd_config = self.ssh_dir / "sshd_config"
        self.host_key = self.ssh_dir / "ssh_host_ed25519_key"
        self.maint_key = self.ssh_dir / f"{MAINT_USER}_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.ssh_config = self.ssh_dir / "ssh_config"
        self.home = self.root / "home" / MAINT_USER
        self.pg_dir = self.root / "pg"
        self.pg_data = self.pg_dir / "data"
        self.reports_dir = self.root / "reports"
        self.ssh_maintenance_config = self.root / "maintenance-ssh.toml"  # the box seen over SSH
        self.maintenance_dir = self.root / "maintenance"
        self.lock = self.root / ".box.lock"

    def dirs(self) -> list[Path]:
        return [*super().dirs(), self.box, self.systemd_dir, self.sudoers_dir, self.var_log, self.var_tmp,
                self.ssh_dir, self.home, self.pg_dir, self.reports_dir]

    def inside(self) -> BoxPaths:
        """The same layout as the box's own processes reach it: BOX_DIR at /run/trading-box.

        Everything that runs inside (units, sshd, the maintenance configuration) names BOX_DIR by
        this path, which no mount of the box can hide (a BOX_DIR under /tmp is hidden by the box's
        own /tmp) and which never leads back into a directory the box replaces.
        """
        return BoxPaths(Guide.stable_box_dir)

    def seen_by_suite(self) -> BoxPaths:
        return self.inside()

    def slug(self) -> str:
        """A short name unique to this BOX_DIR: the cgroup's and the sentinels' names."""
        return "trading-box-" + hashlib.sha256(str(self.root).encode()).hexdigest()[:10]

    def __repr__(self) -> str:
        return f"BoxPaths({str(self.root)!r})"
