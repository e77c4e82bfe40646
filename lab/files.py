"""The host's files in the guide's formats: dated logs, known errors, app logs, temp files, backups
(and, through lab.security, sshd's log, the authorized keys and the critical files).

`regenerate` wipes what the lab owns and writes the healthy state; the `*_fault` functions below
break one thing each. Healthy means: dated logs older than one full day are gzip-compressed, no
file is past its retention, today's trading log has trades and today's error log only known codes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from datetime import date, datetime, timedelta
from pathlib import Path

from lab import apt, backups, hardware, sample, security, securityaudit
from lab.paths import LabPaths

LOG_DAYS = 11  # today and the ten days before
ROTATE_AFTER_DAYS = 1
DATED_LOG = re.compile(r"^(trading|error)-(\d{4}-\d{2}-\d{2})\.log(\.gz)?$")


def _write(path: Path, data: str | bytes, mtime: datetime | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def _clear_dir(directory: Path, keep=lambda p: False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if (entry.is_file() or entry.is_symlink()) and not keep(entry):
            entry.unlink()


# ---- dated logs (/var/log/trading-agent) ------------------------------------------------------

def trading_log(day: date, now: datetime, with_trades: bool = True) -> str:
    lines: list[tuple[datetime, str]] = []
    for beat in sample.heartbeats_for_day(day, now):
        lines.append((beat, "INFO HEARTBEAT agent=alive open_positions=2 latency_ms=41"))
    for t in sample.trades_for_day(day, now):
        confidence = 0.6 + (t.number % 37) / 100
        lines.append((t.at, f"INFO SIGNAL pair={t.pair} action={t.side} confidence={confidence:.2f}"))
        if with_trades:
            lines.append((t.at, f"INFO TRADE_EXECUTED id={t.id} pair={t.pair} side={t.side} "
                                f"qty={t.qty:.4f} price={t.price:.2f}"))
            lines.append((t.at, f"INFO PROFIT id={t.id} pair={t.pair} {t.profit:.2f}"))
    lines.sort(key=lambda item: item[0])  # stable: signal, trade, profit stay in order
    return "".join(f"{sample.stamp(at)} {text}\n" for at, text in lines)


def error_log(day: date, now: datetime) -> str:
    return "".join(f"{sample.stamp(e.at)} {e.level} {e.code} {e.message}\n"
                   for e in sample.errors_for_day(day, now))


def _log_mtime(day: date, now: datetime) -> datetime:
    return now if day >= now.date() else sample.day_end(day)


def write_dated_log(log_dir: Path, kind: str, day: date, now: datetime, compressed: bool) -> Path:
    text = trading_log(day, now) if kind == "trading" else error_log(day, now)
    mtime = _log_mtime(day, now)
    plain = log_dir / f"{kind}-{day.isoformat()}.log"
    gz = plain.with_name(plain.name + ".gz")
    for stale in (plain, gz):
        stale.unlink(missing_ok=True)
    if compressed:
        _write(gz, gzip.compress(text.encode(), mtime=int(mtime.timestamp())), mtime)
        return gz
    _write(plain, text, mtime)
    return plain


def write_dated_logs(log_dir: Path, now: datetime) -> None:
    _clear_dir(log_dir, keep=lambda p: not DATED_LOG.match(p.name))
    for age in range(LOG_DAYS):
        day = now.date() - timedelta(days=age)
        for kind in ("trading", "error"):
            write_dated_log(log_dir, kind, day, now, compressed=age > ROTATE_AFTER_DAYS)


# ---- /opt/trading-agent -----------------------------------------------------------------------

def write_config_dir(paths: LabPaths) -> None:
    _write(paths.known_errors, "".join(f"{code}\n" for code in sorted(sample.KNOWN_ERRORS)))
    thresholds = {"cpu": {"warning": 70, "critical": 85}, "memory": {"warning": 80, "critical": 90},
                  "disk": {"warning": 75, "critical": 85}}
    _write(paths.config_dir / "monitoring-thresholds.json", json.dumps(thresholds, indent=2) + "\n")
    trading = {"exchange": "gateio", "pairs": [p for p, _, _ in sample.PAIRS],
               "maxPositionUsdt": 500, "riskPerTradePct": 1.0}
    _write(paths.trading_config, json.dumps(trading, indent=2) + "\n")
    write_strategies(paths)
    script = "#!/bin/sh\n# Lab stand-in: the maintenance suite does this job.\nexit 0\n"
    _write(paths.scripts_dir / "daily-maintenance.sh", script)
    os.chmod(paths.scripts_dir / "daily-maintenance.sh", 0o755)
    backups.write_keys(paths)


def strategies_file(paths: LabPaths) -> Path:
    """The agent's strategies (the guide's config/strategies.json)."""
    return paths.config_dir / "strategies.json"


def write_strategies(paths: LabPaths, strategies: list[dict] | None = None) -> None:
    strategies = sample.STRATEGIES if strategies is None else strategies
    _write(strategies_file(paths), json.dumps({"strategies": strategies}, indent=2) + "\n")


def write_app_logs(paths: LabPaths, now: datetime) -> None:
    _clear_dir(paths.app_log_dir)
    for name, age in (("trading-agent.log", timedelta(0)), ("dashboard.log", timedelta(days=2)),
                      ("error-handler.log", timedelta(days=6))):
        at = now - age
        _write(paths.app_log_dir / name, f"{sample.stamp(at)} INFO {name} opened\n", at)


def write_temp_files(paths: LabPaths, now: datetime) -> None:
    _clear_dir(paths.temp_dir)
    _write(paths.temp_dir / "trading-session.tmp", "session=active\n", now)
    _write(paths.temp_dir / "trading-cache.json", "{}\n", now - timedelta(hours=6))
    # old, but not ours: the guide's pattern trading-* must not catch it
    _write(paths.temp_dir / "other-app.tmp", "not the agent's\n", now - timedelta(days=5))


def config_tarball(paths: LabPaths) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(paths.config_dir, arcname="opt/trading-agent/config")
    return buffer.getvalue()


def write_backups(paths: LabPaths, now: datetime) -> None:
    _clear_dir(paths.backup_dir)
    backups.write_healthy(paths, now)


def regenerate(paths: LabPaths, now: datetime | None = None) -> None:
    """Write every file of the healthy host, replacing whatever a test or a fault left."""
    now = now or datetime.now().astimezone()
    write_config_dir(paths)
    write_dated_logs(paths.log_dir, now)
    write_app_logs(paths, now)
    write_temp_files(paths, now)
    write_backups(paths, now)
    security.regenerate(paths, now)
    securityaudit.regenerate(paths, now)
    apt.regenerate(paths, now)
    hardware.regenerate(paths, now)


# ---- file faults ------------------------------------------------------------------------------

def no_trades_today(paths: LabPaths, now: datetime | None = None) -> None:
    """Today's trading log keeps its heartbeats and signals but loses every trade."""
    now = now or datetime.now().astimezone()
    path = paths.log_dir / f"trading-{now.date().isoformat()}.log"
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = trading_log(now.date(), now)
    kept = [line for line in text.splitlines(keepends=True)
            if "TRADE_EXECUTED" not in line and "PROFIT" not in line]
    _write(path, "".join(kept), now)


def new_error_code(paths: LabPaths, now: datetime | None = None) -> None:
    now = now or datetime.now().astimezone()
    path = paths.log_dir / f"error-{now.date().isoformat()}.log"
    code = sample.NEW_ERROR_CODE
    lines = [f"{sample.stamp(now - timedelta(seconds=s))} ERROR {code} unexpected settlement state "
             f"from exchange\n" for s in (90, 30)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        log.writelines(lines)
    os.utime(path, (now.timestamp(), now.timestamp()))


def past_retention(paths: LabPaths, now: datetime | None = None) -> list[tuple[Path, int]]:
    """The files the files-past-retention fault plants, with their ages in days."""
    now = now or datetime.now().astimezone()
    return [(directory / name, age) for directory, name, age in (
        (paths.temp_dir, "trading-export-4711.csv", 3),
        (paths.temp_dir, "trading-orderbook.tmp", 4),
        (paths.app_log_dir, f"agent-{(now - timedelta(days=9)).date().isoformat()}.log", 9),
        (paths.app_log_dir, f"dashboard-{(now - timedelta(days=12)).date().isoformat()}.log", 12),
        # Named by their day only: the names must be the same whenever in the day they are listed again.
        (paths.backup_dir, f"emergency-diagnostics-{(now - timedelta(days=32)):%Y%m%d}-030000.tar.gz", 32),
        (paths.backup_dir, f"emergency-diagnostics-{(now - timedelta(days=39)):%Y%m%d}-030000.tar.gz", 39),
    )]


def unrotated_days(paths: LabPaths, now: datetime | None = None) -> list[Path]:
    """The plain dated logs the logs-unrotated fault leaves."""
    now = now or datetime.now().astimezone()
    return [paths.log_dir / f"{kind}-{(now.date() - timedelta(days=age)).isoformat()}.log"
            for age in (3, 4, 5) for kind in ("trading", "error")]


def files_past_retention(paths: LabPaths, now: datetime | None = None) -> None:
    now = now or datetime.now().astimezone()
    for path, age in past_retention(paths, now):
        directory, name = path.parent, path.name
        at = now - timedelta(days=age)
        data = config_tarball(paths) if name.endswith(".tar.gz") else f"{sample.stamp(at)} old\n"
        _write(directory / name, data, at)


def logs_unrotated(paths: LabPaths, now: datetime | None = None) -> None:
    """The dated logs of 3 to 5 days ago stay plain, as if logrotate had not run."""
    now = now or datetime.now().astimezone()
    for age in (3, 4, 5):
        day = now.date() - timedelta(days=age)
        for kind in ("trading", "error"):
            write_dated_log(paths.log_dir, kind, day, now, compressed=False)


# ---- the weekly review's faults ---------------------------------------------------------------

def strategy_weights_off(paths: LabPaths, now: datetime | None = None) -> None:
    """The first enabled strategy's weight lowered by 0.15: the enabled weights add up to 0.85."""
    strategies = [dict(strategy) for strategy in sample.STRATEGIES]
    first = next(strategy for strategy in strategies if strategy["enabled"])
    first["weight"] = round(first["weight"] - 0.15, 2)
    write_strategies(paths, strategies)


def strategy_zero_weight(paths: LabPaths, now: datetime | None = None) -> None:
    """The disabled strategy enabled with its weight 0: the weights still add up to 1."""
    write_strategies(paths, [{**strategy, "enabled": True} for strategy in sample.STRATEGIES])


def strategies_malformed(paths: LabPaths, now: datetime | None = None) -> None:
    """The strategies file cut in the middle, as an editor's crash or a full disk leaves it."""
    path = strategies_file(paths)
    text = json.dumps({"strategies": sample.STRATEGIES}, indent=2)
    _write(path, text[: len(text) // 2])


def missing_day(now: datetime | None = None) -> date:
    """The day the logs-missing-day fault deletes: three days ago (rotated by then)."""
    now = now or datetime.now().astimezone()
    return now.date() - timedelta(days=3)


def logs_missing_day(paths: LabPaths, now: datetime | None = None) -> None:
    """Both dated logs of three days ago gone, plain and rotated: a day the agent did not log."""
    day = missing_day(now).isoformat()
    for kind in ("trading", "error"):
        for name in (f"{kind}-{day}.log", f"{kind}-{day}.log.gz"):
            (paths.log_dir / name).unlink(missing_ok=True)
