"""Writes $LAB_DIR/maintenance.toml: the example configuration's keys with the lab's values.

Hand-written TOML (no writer dependency): strings are JSON-escaped, which TOML basic strings
accept. Commands that run lab tools name the script's path, so they work from any directory.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

from lab import apt, files, hardware, pentest, security, securityaudit
from lab.paths import REPO, LabPaths, Ports, venv_bin


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table: a box's own tables under [[boxes]]
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def render(sections: list[tuple[str, dict]]) -> str:
    """[(header, keys)]: a header '[[retention]]' repeats, 'api.thresholds' nests."""
    out = ["# Written by `python -m lab up` for the lab; edits are lost on the next up.", ""]
    for header, keys in sections:
        out.append(header if header.startswith("[") else f"[{header}]")
        out.extend(f"{key} = {toml_value(value)}" for key, value in keys.items())
        out.append("")
    return "\n".join(out)


def lab_config(paths: LabPaths, ports: Ports, disk_paths: list[Path]) -> str:
    py = sys.executable
    user = pwd.getpwuid(os.getuid()).pw_name  # the lab's files are its user's
    lab_args = ["--lab-dir", str(paths.root), "--port-base", str(ports.base)]
    retention = [
        ("temp-files", paths.temp_dir, "trading-*", 1),
        ("app-logs", paths.app_log_dir, "*.log", 7),
        ("backups", paths.backup_dir, "emergency-*.tar.gz", 30),  # the backups' own kinds keep theirs
    ]
    sections = [
        ("host", {"backend": "local://", "service_manager": "supervisor",
                  "supervisorctl": [venv_bin("supervisorctl"), "-c", str(paths.supervisor_conf)]}),
        ("services", {"user": user,
                      "agent": "trading-agent", "dashboard": "trading-dashboard",
                      "tunnel": "ssh-tunnel", "database": "postgresql"}),
        ("resources", {"disk_paths": [str(p) for p in disk_paths], "cpu_sample_seconds": 0.5}),
        ("resources.cpu", {"warning": 70, "critical": 85}),
        ("resources.memory", {"warning": 80, "critical": 90}),
        ("resources.disk", {"warning": 75, "critical": 85}),
        ("paths", {"log_dir": paths.log_dir, "known_errors": paths.known_errors}),
        *[("[[retention]]", {"name": name, "dir": directory, "pattern": pattern, "max_age_days": age,
                             **root_owned(user)}) for name, directory, pattern, age in retention],
        ("logrotate", {"rotate_after_days": 1,
                       "command": [py, str(REPO / "lab" / "rotate.py"), str(paths.log_dir),
                                   "--after-days", "1"]}),
        ("trading", {"min_trades_today": 1}),
        ("api", {"base_url": f"http://127.0.0.1:{ports.api}", "timeout_seconds": 3.0}),
        ("api.thresholds", {"max_error_rate_per_hour": 10, "max_critical_errors": 0,
                            "min_overall_health": 80, "max_open_circuit_breakers": 0}),
        ("dashboard", {"url": f"http://127.0.0.1:{ports.dashboard}/", "timeout_seconds": 3.0}),
        ("tunnel", {"host": "127.0.0.1", "port": ports.tunnel, "timeout_seconds": 3.0}),
        ("exchange", {"url": f"https://127.0.0.1:{ports.tunnel}/api/v4/spot/currencies",
                      "host_header": "api.gateio.ws", "verify_tls": str(paths.ca_cert),
                      "timeout_seconds": 5.0}),
        ("database", {"host": "127.0.0.1", "port": ports.postgres, "dbname": "trading_agent",
                      "user": "postgres", "password_file": paths.db_password_file,
                      "connect_timeout_seconds": 5}),
        # The lab's indexes hold a few hundred rows: a bloated one (the fault index-bloat) is a megabyte.
        ("database.thresholds", {"min_index_size_mb": 0.5}),
        ("diagnostics", {
            "error_analysis": [py, str(REPO / "lab" / "diagnostics.py"), "error-analysis", *lab_args],
            "health_check": [py, str(REPO / "lab" / "diagnostics.py"), "health-check", *lab_args],
        }),
        ("emergency", {"probe_targets": [f"127.0.0.1:{ports.probe_target}"], "probe_timeout_seconds": 2.0,
                       "recovery_command": [py, str(REPO / "lab" / "diagnostics.py"), "system-recovery", *lab_args],
                       "backup_command": [py, str(REPO / "lab" / "diagnostics.py"), "emergency-backup", *lab_args],
                       "bundle_dir": paths.backup_dir, "bundle_log_dirs": [paths.log_dir, paths.app_log_dir]}),
        ("security", security_values(paths, ports)),
        ("audit", securityaudit.audit_values(paths)),
        *review_sections(paths, ports),
        *backup_sections(paths, ports),
        # The application checkout the update commands work on (the lab's tests make it a git checkout).
        ("application", {"dir": paths.opt_dir, "remote": "origin", "branch": "main"}),
        ("updates", apt.config_values(paths)),
        # The monthly benchmarks: a small file read in the lab's run directory (a disk there is the machine's).
        ("baselines", {"disk_scratch_dir": paths.run_dir, "disk_read_mb": 8, "api_requests": 5, "db_runs": 5}),
        *hardware.config_sections(paths, py),
        # The weekly review: a short disk I/O sample (the guide's iostat takes 5 s).
        ("weekly_review", {"strategies_file": files.strategies_file(paths), "io_path": paths.opt_dir,
                           "io_sample_seconds": 0.5}),
        ("remediation", {"mode": "apply", "timeout_seconds": 30}),
        ("alerts", {"file": paths.alerts_file, "spool_dir": paths.root / "maintenance" / "spool"}),
        ("policy", {"state_dir": paths.root / "maintenance" / "state"}),
        ("reports", {"dir": paths.root / "reports"}),  # beside the lab's own files, not in the code's reports/
    ]
    return render(sections)


def root_owned(user: str) -> dict:
    """A lab run as root has root's files to clean: its rules must say so (never implied, see RetentionRule)."""
    return {"allow_root_owned": True} if user == "root" else {}


def review_sections(paths: LabPaths, ports: Ports) -> list[tuple[str, dict]]:
    """[pentest], [certificates] and [rotation] on the lab. Its outside address is 127.0.0.2, where none of
    its servers listens (they bind 127.0.0.1): nothing may answer there, and no common port is tried (the
    machine's loopback is shared: only the lab's own ports are, from [security] and what listens)."""
    return [
        ("pentest", {"outside_address": pentest.OUTSIDE_ADDRESS, "reachable_ports": [], "scan_ports": [],
                     "connect_timeout_seconds": 1.0, "request_timeout_seconds": 3.0,
                     "protected": [{"method": "GET", "url": f"http://127.0.0.1:{ports.api}/api/config"},
                                   {"method": "GET", "url": f"http://127.0.0.1:{ports.dashboard}/admin"}]}),
        ("certificates", {"exchange": True, "files": [paths.ca_cert], "warning_days": 30, "critical_days": 7,
                          "timeout_seconds": 5.0}),
        ("rotation", {"max_age_days": 90, "warning_days": 80,
                      "secrets": [{"name": "exchange-api-key", "files": [paths.env_file]},
                                  {"name": "tunnel-key", "files": [paths.oracle_key]}]}),
    ]


def backup_sections(paths: LabPaths, ports: Ports) -> list[tuple[str, dict]]:
    """[backups] on the lab's /opt/trading-agent; pg_dump and pg_restore over TCP with a passfile."""
    client = ["env", f"PGPASSFILE={paths.pgpass}"]
    server = ["-h", "127.0.0.1", "-p", str(ports.postgres), "-U", "postgres"]
    return [
        ("backups", {"dir": paths.backup_dir, "app_dir": paths.opt_dir,
                     "excludes": ["node_modules", "./logs", "./backups"],
                     "files_that_matter": [".env", "config/", "keys/oracle_key"], "due_slack_hours": 6,
                     "max_share_of_disk_percent": 50, "pg_dump": [*client, "pg_dump", *server],
                     "pg_restore": [*client, "pg_restore", *server], "take_timeout_seconds": 600,
                     "verify_timeout_seconds": 300, "drill_timeout_seconds": 600}),
        ("backups.kinds.full", {"enabled": True, "every_days": 7, "keep_days": 30,
                                "stop_services": ["agent", "dashboard"]}),
        ("backups.kinds.incremental", {"enabled": True, "every_days": 1, "keep_days": 7, "stop_services": []}),
        ("backups.kinds.archive", {"enabled": True, "every_days": 28, "keep_days": 365, "stop_services": []}),
    ]


def security_values(paths: LabPaths, ports: Ports, extra_ports: tuple[int, ...] = ()) -> dict:
    """The breach indicators on the lab's own things: its ports (the machine's loopback is shared, so
    only the lab's range is watched), its trading user's keys, its critical files and auth log."""
    listening = getattr(ports, "by_unit", ports.by_program)()  # a box's sshd too
    return {"allowed_ports": sorted({*listening.values(), *extra_ports}),
            "port_range": [ports.base, ports.base + 999],
            "authorized_keys": [paths.authorized_keys], "allowed_keys": [security.fingerprint(security.KNOWN_KEY)],
            "critical_files": paths.critical_files, "checksums_file": paths.critical_baseline,
            "auth_log": paths.auth_log}


def write(paths: LabPaths, ports: Ports, disk_paths: list[Path]) -> None:
    """Atomic replace: a reader never sees half a file."""
    text = lab_config(paths, ports, disk_paths)
    tmp = paths.config.with_name(paths.config.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, paths.config)
