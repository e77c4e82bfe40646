"""BOX_DIR/maintenance.toml: the lab's configuration with the guide's paths as the box sees them, and systemd.

It starts from the lab's own file (lab.configfile), so a key the lab's file gains the box's gains
too; only what differs in a box is replaced. Every path is as the box sees it: the guide's
(/var/log/trading-agent, /opt/trading-agent, /tmp, /srv) and BOX_DIR's own files (the database
password, the CA, the suite's state) under /run/trading-box, so the file is for runs inside the box:
`python -m lab box exec -- .venv/bin/python -m pytest -m daily --maintenance-config=/run/trading-box/maintenance.toml`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib

from lab import configfile
from lab.box.layout import EMERGENCY_BUNDLES, HOSTNAME, BoxPaths, BoxPorts, Guide
from lab.errors import LabError
from lab.paths import REPO

# The longest state directory the suite takes for a run over SSH (configuration/machine.py: its SSH socket goes
# in it, and a unix socket's path holds 107 bytes).
SSH_STATE_DIR_MAX = 79
SERVICES = {"agent": "trading-agent", "dashboard": "trading-dashboard", "tunnel": "ssh-tunnel",
            "database": "postgresql"}


def logrotate_command() -> list[str]:
    """The lab's stand-in of `logrotate -f /etc/logrotate.d/trading-agent`, on the guide's log directory."""
    return [sys.executable, str(REPO / "lab" / "rotate.py"), str(Guide.log_dir), "--after-days", "1"]


def box_values(paths: BoxPaths) -> dict:
    return {
        "host": {"backend": "local://", "service_manager": "systemd"},
        "services": dict(SERVICES),
        "resources": {"disk_paths": [str(Guide.disk)]},
        "paths": {"log_dir": str(Guide.log_dir), "known_errors": str(Guide.known_errors)},
        "retention": [
            {"name": "temp-files", "dir": str(Guide.temp_dir), "pattern": "trading-*", "max_age_days": 1},
            {"name": "app-logs", "dir": str(Guide.app_log_dir), "pattern": "*.log", "max_age_days": 7},
            {"name": "backups", "dir": str(Guide.backup_dir), "pattern": "emergency-*.tar.gz", "max_age_days": 30},
        ],
        "backups": {"dir": str(Guide.backup_dir), "app_dir": str(Guide.opt_dir)},
        "application": {"dir": str(Guide.opt_dir)},  # the checkout the update commands work on
        "weekly_review": {"strategies_file": str(Guide.opt_dir / "config" / "strategies.json"),
                          "io_path": str(Guide.opt_dir)},
        "logrotate": {"command": logrotate_command()},
        "alerts": {"file": str(Guide.alerts_file)},
        "reports": {"dir": str(paths.reports_dir)},  # the repository is read-only inside the box
    }


def _merge(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _sections(data: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """A parsed TOML document as lab.configfile.render's [(header, keys)], tables after their keys."""
    out = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            scalars = {k: v for k, v in value.items() if not isinstance(v, dict) and not _is_table_list(v)}
            out.append((name, scalars))
            out += _sections({k: v for k, v in value.items() if k not in scalars}, f"{name}.")
        elif _is_table_list(value):
            out += [(f"[[{name}]]", item) for item in value]
    return out


def _is_table_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


DIAGNOSTICS = ("diagnostics.py", "paths.py")  # the lab's tools the box has as its own (standard library only)


def install_tools(paths: BoxPaths) -> None:
    """The guide's diagnostic tools in the box's /opt/trading-agent/scripts, run by the box's python3:
    the maintenance user runs them over SSH and cannot reach the repository's virtualenv."""
    target = paths.scripts_dir / "lab"
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text("")
    for name in DIAGNOSTICS:
        shutil.copyfile(REPO / "lab" / name, target / name)


def diagnostics(ports: BoxPorts, which: str | None = None) -> dict | list[str]:
    """The [diagnostics] commands, or the one command `which` (the emergency's system-recovery)."""
    tool = str(Guide.opt_dir / "scripts" / "lab" / "diagnostics.py")
    where = ["--lab-dir", "/", "--port-base", str(ports.base)]  # the guide's paths, as the box sees them
    if which is not None:
        return ["python3", tool, which, *where]
    return {"error_analysis": ["python3", tool, "error-analysis", *where],
            "health_check": ["python3", tool, "health-check", *where]}


def box_config(paths: BoxPaths, ports: BoxPorts) -> str:
    name = box_name(paths)
    paths = paths.inside()
    lab = tomllib.loads(configfile.lab_config(paths, ports, [Guide.disk]))
    lab.get("host", {}).pop("supervisorctl", None)
    data = _merge(lab, box_values(paths))
    data["retention"] = [{**rule, **configfile.root_owned(data["services"]["user"])} for rule in data["retention"]]
    data["host"]["name"] = name
    data["diagnostics"] = diagnostics(ports)
    data["emergency"] = {**data["emergency"], "recovery_command": diagnostics(ports, "system-recovery"),
                         "backup_command": diagnostics(ports, "emergency-backup"),
                         "bundle_dir": str(Guide.backup_dir), "bundle_log_dirs": [str(Guide.log_dir),
                                                                                  str(Guide.app_log_dir)]}
    text = configfile.render(_sections(data))
    return text.replace("# Written by `python -m lab up` for the lab",
                        "# Written by `python -m lab box up` for the box (paths as seen inside it)", 1)


def box_name(paths: BoxPaths) -> str:
    """The box's name in reports and alerts: its directory's ("box" for .box, "box-2" for fleet/box-2)."""
    return paths.root.name.lstrip(".") or "box"


def ssh_config(paths: BoxPaths, ports: BoxPorts) -> str:
    """The same box seen from the machine, over its sshd as the maintenance user: every probe and
    remediation goes through SSH (the readers on the box's python3, restarts through sudo); what the
    run itself writes (alerts, spool, state, reports) stays on the machine, under BOX_DIR/outside."""
    data = tomllib.loads(box_config(paths, ports))
    outside = paths.root / "outside"
    data["host"] = {"name": box_name(paths), "backend": f"ssh://{HOSTNAME}", "ssh_config": str(paths.ssh_config),
                    "known_hosts": str(paths.known_hosts), "service_manager": "systemd", "sudo": True}
    data["database"]["password_file"] = str(paths.db_password_file)
    data["alerts"] = {"file": str(outside / "alerts.jsonl"), "spool_dir": str(outside / "spool")}
    data["policy"] = {**data.get("policy", {}), "state_dir": str(outside / "state")}
    if len(os.fsencode(data["policy"]["state_dir"])) > SSH_STATE_DIR_MAX:
        raise LabError(f"the box's directory {paths.root} is too deep: the SSH sockets of the run from the machine "
                       f"live in {outside / 'state'}, which may be at most {SSH_STATE_DIR_MAX} bytes; choose a "
                       f"shorter BOX_DIR")
    data["reports"] = {"dir": str(outside / "reports")}
    data["emergency"]["bundle_dir"] = str(Guide.backup_dir / EMERGENCY_BUNDLES)  # the maintenance user may write it
    text = configfile.render(_sections(data))
    return text.replace("# Written by `python -m lab up` for the lab",
                        "# Written by `python -m lab box up` for the box seen from the machine over SSH", 1)


def write(paths: BoxPaths, ports: BoxPorts) -> None:
    """Atomic replace: a reader never sees half a file."""
    for path, text in ((paths.config, box_config(paths, ports)),
                       (paths.ssh_maintenance_config, ssh_config(paths, ports))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
