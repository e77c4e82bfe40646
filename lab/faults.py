"""The fault catalogue: each name, what it breaks, and how to inject and clear it.

Every injected fault leaves its switch file in $LAB_DIR/faults (that is what `active_faults`
lists); switches alone are enough for the API and exchange faults, the others also act on
supervisord, the files or the tmpfs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lab import (
    agentstate,
    apt,
    backups,
    dbfaults,
    files,
    handlers,
    hardware,
    pentest,
    sample,
    security,
    securityaudit,
    tmpfs,
)
from lab.errors import FaultError
from lab.paths import LabPaths
from lab.supervise import Supervisor
from lab.switches import Switches, file_name


class Target(Protocol):
    """What injecting a fault needs of a lab (lab.core.Lab is one), so this catalogue needs no Lab."""

    paths: LabPaths
    switches: Switches
    supervisor: Supervisor

    def wait_state(self, name: str, states: set[str], timeout: float) -> str: ...

    def ensure_running(self, names: list[str] | tuple[str, ...]) -> None: ...

    def cluster(self): ...


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    kind: str  # switch | service-down | crashloop | file | disk | listener | database | frozen | exposed | certificate
    program: str | None = None
    breaks_files: Callable | None = None
    breaks_db: Callable | None = None  # database: what it does to the lab's database (a lab.postgres.Cluster)
    # For a fault something can mend (a restart, a clean-up): is its damage still there? None: it
    # lasts until cleared (a switch the lab's servers read, a log line the agent wrote).
    still_on: Callable | None = None
    per_run: bool = False  # a switch for the agent's current run only: restarting the agent mends it


def _catalogue() -> list[Fault]:
    faults = [
        Fault(f"service-down:{p}", f"{p} is stopped (supervisorctl stop)", "service-down", p,
              still_on=_not_running(p))
        for p in ("trading-agent", "trading-dashboard", "ssh-tunnel", "postgresql")
    ]
    faults += [
        Fault(f"crashloop:{p}", f"{p} exits at every start (BACKOFF, then FATAL)", "crashloop", p,
              still_on=_not_running(p))
        for p in ("trading-agent", "trading-dashboard")
    ]
    switch = [
        ("api-500", "every agent API GET answers 500 with a JSON error"),
        ("api-hang", "agent API GETs hang for 30 s (the client's timeout must cut them)"),
        ("api-slow", "agent API GETs answer after 2 s, healthy"),
        ("api-malformed", "agent API GETs answer 200 with broken JSON"),
        ("error-rate-high", "errorRate 25.0 per hour (threshold 10)"),
        ("error-storm", "errorRate 75.0 per hour (error storm: above 50)"),
        ("critical-errors", "criticalErrors 3"),
        ("circuit-breakers-open", "2 circuit breakers open"),
        ("circuit-breaker-cascade", "5 circuit breakers open (cascade: more than 3)"),
        ("health-low", "overallHealth 65"),
        ("health-critical", "overallHealth 40"),
        ("recovery-rate-low", "autoRecoverySuccessRate 55.0 (threshold 70)"),
        ("error-patterns-high", "7 active error patterns (threshold 5)"),
        ("exchange-down", "the exchange endpoint answers 503 to everything"),
        ("close-hang", "POST close-all-positions hangs 30 s, then answers 504; nothing is closed"),
        ("close-fails", "POST close-all-positions answers 500; the positions stay open"),
        ("shutdown-fails", "POST emergency/shutdown answers 500; the agent goes on trading"),
        ("error-handler-broken", "agent GETs of /api/errors/* answer 503, /api/health still 200; "
                                 "a restart does not help"),
    ]
    faults += [Fault(name, text, "switch") for name, text in switch]
    faults += [
        Fault("error-handler-down", "agent GETs of /api/errors/* answer 503, /api/health still 200, "
              "until the agent restarts", "switch", per_run=True, still_on=_same_agent_run("error-handler-down")),
        Fault("network-down", "the network probe target on base+53 is stopped (supervisorctl stop probe-target): "
              "connections to it are refused",
              "service-down", "probe-target", still_on=_not_running("probe-target")),
        Fault("tunnel-far-end-down", "the exchange endpoint is stopped (supervisorctl stop exchange-endpoint): "
              "the tunnel's local end accepts, then closes with nothing behind it", "service-down", "exchange-endpoint",
              still_on=_not_running("exchange-endpoint")),
        Fault("unexpected-port", "a process nobody installed listens on base+77 "
              "(supervisorctl start unexpected-listener)",
              "listener", "unexpected-listener", still_on=_running("unexpected-listener")),
        Fault("failed-logins", f"auth.log: {security.FAILED_LOGINS} failed SSH passwords from "
              f"{security.ATTACKER_IP} within the last hour", "file", breaks_files=security.failed_logins),
        Fault("unknown-ssh-key", "the service user's authorized_keys gains a key nobody knows", "file",
              breaks_files=security.unknown_ssh_key, still_on=lambda lab: security.unknown_key_present(lab.paths)),
        Fault("critical-file-changed", "the sshd_config copy now allows root and password logins", "file",
              breaks_files=security.critical_file_changed,
              still_on=lambda lab: security.critical_file_still_changed(lab.paths)),
    ]
    faults += [
        Fault("no-trades-today", "today's trading log has no TRADE_EXECUTED/PROFIT lines", "file",
              breaks_files=files.no_trades_today),
        Fault("new-error-code", f"today's error log has a code not in known-errors.txt "
              f"({sample.NEW_ERROR_CODE})", "file", breaks_files=files.new_error_code),
        Fault("files-past-retention", "temp files, app logs and backups past their retention", "file",
              breaks_files=files.files_past_retention,
              still_on=lambda lab: any(path.exists() for path, _ in files.past_retention(lab.paths))),
        Fault("logs-unrotated", "dated logs of 3-5 days ago left uncompressed", "file",
              breaks_files=files.logs_unrotated,
              still_on=lambda lab: any(path.exists() for path in files.unrotated_days(lab.paths))),
        Fault("disk-full", "the lab disk (tmpfs) is 92% full", "disk"),
    ]
    database = [
        ("dead-tuples", "trades: autovacuum off for it, 5000 dead rows (orders written and removed again)",
         dbfaults.dead_tuples, dbfaults.has_dead_tuples),
        ("stale-statistics", "logs: autovacuum off for it, 3000 rows written since its last ANALYZE",
         dbfaults.stale_statistics, dbfaults.has_stale_statistics),
        ("index-bloat", "trades: 60000 rows written and deleted again, its indexes left at over 1 MB for ~600 rows",
         dbfaults.index_bloat, dbfaults.has_bloated_index),
        ("rows-past-retention", "trades older than 90 days and logs older than 30 in the database",
         dbfaults.rows_past_retention, dbfaults.has_rows_past_retention),
    ]
    faults += [Fault(name, text, "database", breaks_db=breaks, still_on=_in_database(check))
               for name, text, breaks, check in database]
    faults += [Fault("postgres-frozen", "SIGSTOP to the postmaster and all its processes: its service looks running, "
                     "its port accepts connections, nothing answers", "frozen", "postgresql",
                     still_on=lambda lab: dbfaults.frozen(postgres_pids(lab)))]
    faults += [
        Fault("backup-missing", "no full backup this week: the newest full set is 7 days and an hour old", "file",
              breaks_files=backups.backup_missing, still_on=lambda lab: backups.full_missing(lab.paths)),
        Fault("dump-truncated", "the newest full backup's dump cut to half after its checksum was written", "file",
              breaks_files=backups.dump_truncated, still_on=_newest_full_damaged),
        Fault("dump-killed", "the newest full backup's dump is what a pg_dump killed half-way leaves, checksummed "
              "as if whole", "file", breaks_files=backups.dump_killed, still_on=_newest_full_damaged),
        Fault("dump-zero", "the newest full backup's dump is empty (0 bytes), checksummed", "file",
              breaks_files=backups.dump_zero, still_on=_newest_full_damaged),
        Fault("checksum-mismatch", "the newest full backup's dump no longer matches its .sha256", "file",
              breaks_files=backups.checksum_mismatch, still_on=_newest_full_damaged),
        Fault("tarball-corrupt", "the newest full tarball's gzip stream damaged in its middle, checksummed as if whole",
              "file", breaks_files=backups.tarball_corrupt, still_on=_newest_full_damaged),
        Fault("backups-past-retention", "a full set 40 days old (kept 30) and an incremental 10 days old (kept 7)",
              "file", breaks_files=backups.backups_past_retention,
              still_on=lambda lab: backups.past_retention_left(lab.paths)),
    ]
    faults += [  # the weekly security audit (lab/securityaudit.py)
        Fault("fail2ban-down", "fail2ban-client cannot reach its server (Failed to access socket path ... "
              "Is fail2ban running?)", "file", breaks_files=securityaudit.fail2ban_down),
        Fault("jail-missing", "Fail2Ban runs without its ssh-tunnel jail", "file",
              breaks_files=securityaudit.jail_missing),
        Fault("sshd-weak", "the sshd_config copy allows password and root logins", "file",
              breaks_files=security.critical_file_changed,
              still_on=lambda lab: security.critical_file_still_changed(lab.paths)),
        Fault("env-world-readable", "the .env is mode 644 (chmod 644)", "file",
              breaks_files=securityaudit.env_world_readable),
        Fault("world-writable-file", "config/notes.txt under the application directory is mode 666", "file",
              breaks_files=securityaudit.world_writable_file),
        Fault("tunnel-key-replaced", "the tunnel's key is a new key, not the one whose fingerprint is configured",
              "file", breaks_files=securityaudit.tunnel_key_replaced),
    ]
    faults += [  # package updates (lab/apt.py): the lab's own apt repositories, dpkg status, npm stand-in
        Fault("security-updates-pending", f"a newer security version of {apt.SECURITY_FIX[0]} "
              f"({apt.SECURITY_FIX[1]}, Debian-Security bookworm-security) than the installed one", "file",
              breaks_files=apt.security_updates_pending, still_on=lambda lab: apt.security_fix_missing(lab.paths)),
        Fault("updates-pending", "newer ordinary versions (bookworm-updates) of "
              + ", ".join(f"{name} ({version})" for name, version, _ in apt.ORDINARY), "file",
              breaks_files=apt.updates_pending),
        Fault("reboot-required", f"the reboot flag is set, for {', '.join(apt.REBOOT_PACKAGES)}", "file",
              breaks_files=apt.reboot_required),
        Fault("npm-vulnerable", "the recorded npm audit report has "
              + ", ".join(f"{name} ({level})" for name, level in apt.VULNERABLE.items()), "file",
              breaks_files=apt.npm_vulnerable),
    ]
    # The monthly penetration check and the quarterly security review (lab/pentest.py).
    faults += [
        Fault("port-exposed", f"a service answers on the lab's outside address {pentest.OUTSIDE_ADDRESS}, port "
              "base+88 (supervisorctl start exposed-listener)", "exposed", "exposed-listener",
              still_on=_running("exposed-listener")),
        Fault("auth-bypass", "the dashboard's GET /admin and the agent's GET /api/config answer 200 without the "
              "admin token", "switch"),
        Fault("cert-expiring", f"the exchange's certificate re-issued to expire in {pentest.EXPIRING_IN_DAYS} days, "
              "the exchange endpoint restarted", "certificate", "exchange-endpoint"),
        Fault("secrets-stale", f"the .env last modified {pentest.STALE_DAYS} days ago (no rotation attested)",
              "stale", still_on=lambda lab: pentest.secrets_still_stale(lab.paths)),
    ]
    # The monthly review and error handling (lab/handlers.py, lab/agent.py's performance metrics).
    faults += [
        Fault("handler-stopped", f"the error handler {handlers.STOPPED_BY_FAULT} is stopped (supervisorctl stop)",
              "service-down", handlers.STOPPED_BY_FAULT, still_on=_not_running(handlers.STOPPED_BY_FAULT)),
        Fault("error-handling-slow", "the agent's /api/errors/performance-metrics responseTime is 50 times its "
              "healthy one (avgMs 1925)", "switch"),
    ]
    # Hardware, monitoring and the manual tasks (lab/hardware.py; issue 12).
    faults += [
        Fault("disk-failing", f"{hardware.SATA}'s recorded smartctl output: overall health FAILED, 1104 reallocated "
              "and 24 pending sectors, 88 % worn, 71 °C", "file", breaks_files=hardware.disk_failing),
        Fault("thresholds-differ", "monitoring-thresholds.json says cpu warning 80 and disk critical 90 "
              "(the suite's [resources]: 70 and 85)", "file", breaks_files=hardware.thresholds_differ),
        Fault("exchange-slow", f"the exchange endpoint answers after {hardware.SLOW_EXCHANGE_SECONDS * 1000:.0f} ms "
              "(network latency warning 500, critical 1000)", "switch"),
        Fault("task-overdue", f"{hardware.OVERDUE_TASK} last attested {hardware.OVERDUE_DAYS} days ago by alice "
              "(monthly)", "file", breaks_files=hardware.task_overdue),
    ]
    faults += [  # the weekly review (lab/files.py)
        Fault("strategy-weights-off", "strategies.json: the enabled strategies' weights add up to 0.85", "file",
              breaks_files=files.strategy_weights_off),
        Fault("strategy-zero-weight", "strategies.json: the disabled strategy enabled with weight 0", "file",
              breaks_files=files.strategy_zero_weight),
        Fault("strategies-malformed", "strategies.json cut in the middle: no longer JSON", "file",
              breaks_files=files.strategies_malformed),
        Fault("logs-missing-day", "the trading and error logs of 3 days ago deleted (plain and rotated)", "file",
              breaks_files=files.logs_missing_day),
    ]
    return faults


def _in_database(check: Callable) -> Callable:
    return lambda lab: check(lab.cluster())


def postgres_pids(lab: Target) -> list[int]:
    """The lab's postmaster (supervisord's program) and its processes."""
    return dbfaults.postgres_pids(lab.supervisor.info("postgresql").get("pid"))


def _newest_full_damaged(lab) -> bool:
    """Mended when a new full backup was taken (and the damaged one set aside)."""
    return backups.still_the_lab_full(lab.paths)


def _not_running(program: str) -> Callable:
    return lambda lab: lab.supervisor.states().get(program) != "RUNNING"


def _running(program: str) -> Callable:
    return lambda lab: lab.supervisor.states().get(program) == "RUNNING"


def _same_agent_run(name: str) -> Callable:
    return lambda lab: lab.switches.bound_to(name) == agentstate.current_instance(lab.paths.agent_instance)


def binding(paths: LabPaths, fault: Fault) -> str | None:
    """The agent run a per-run switch is set for: the one running now."""
    return agentstate.current_instance(paths.agent_instance) if fault.per_run else None


FAULTS: dict[str, Fault] = {fault.name: fault for fault in _catalogue()}
ALIASES = {"dashboard-down": "service-down:trading-dashboard", "tunnel-down": "service-down:ssh-tunnel"}
_BY_FILE = {file_name(name): name for name in FAULTS}


def resolve(name: str) -> Fault:
    fault = FAULTS.get(ALIASES.get(name, name))
    if fault is None:
        valid = ", ".join([*FAULTS, *ALIASES])
        raise FaultError(f"unknown fault {name!r}; valid names: {valid}")
    return fault


def from_switch_file(name: str) -> str | None:
    return _BY_FILE.get(name)


def unavailable(lab: Target, fault: Fault) -> str | None:
    """Why this fault cannot be injected here, or None."""
    if fault.kind == "disk" and not tmpfs.is_mounted(lab.paths.disk):
        return f"disk-full needs the lab's tmpfs at {lab.paths.disk}, which is not mounted (mounting needs root)"
    return None


def inject(lab: Target, fault: Fault) -> None:
    lab.switches.set(fault.name, bound_to=binding(lab.paths, fault))
    if fault.kind == "service-down":
        lab.supervisor.stop(fault.program)
    elif fault.kind == "listener":
        lab.ensure_running([fault.program])
    elif fault.kind == "crashloop":
        lab.supervisor.stop(fault.program)
        lab.supervisor.start(fault.program, wait=False)
        # Until supervisord gives up (FATAL): between its retries the program is STARTING again, which no
        # reader may take for a failure.
        lab.wait_state(fault.program, {"FATAL"}, timeout=60)
    elif fault.kind == "file":
        fault.breaks_files(lab.paths)
    elif fault.kind == "disk":
        tmpfs.fill(lab.paths.disk)
    elif fault.kind == "database":
        fault.breaks_db(lab.cluster())
    elif fault.kind == "frozen":
        dbfaults.freeze(postgres_pids(lab))
    elif fault.kind == "exposed":
        pentest.start_exposed(lab)
    elif fault.kind == "certificate":
        pentest.issue_expiring_certificate(lab.paths)
        pentest.restart_exchange(lab)
    elif fault.kind == "stale":
        pentest.stale_secrets(lab.paths)


def clear(lab: Target, fault: Fault) -> None:
    """Undo one fault; the caller regenerates files when a file fault was cleared."""
    lab.switches.unset(fault.name)
    if fault.kind in ("service-down", "crashloop"):
        lab.ensure_running([fault.program])
    elif fault.kind in ("listener", "exposed"):
        lab.supervisor.stop(fault.program)
    elif fault.kind == "certificate":
        if pentest.restore_certificate(lab.paths):
            pentest.restart_exchange(lab)
    elif fault.kind == "stale":
        pentest.freshen_secrets(lab.paths)
    elif fault.kind == "disk":
        tmpfs.unfill(lab.paths.disk)
    elif fault.kind == "frozen":
        dbfaults.thaw(postgres_pids(lab))
    elif fault.kind == "database":
        lab.cluster().seed()  # the healthy database, autovacuum on again
