"""The lab itself: up, faults that really break things, clear, down — against a real lab."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from lab import Lab, files

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
PORT_BASE = int(os.environ.get("TEST_LAB_SELF_PORT_BASE", "24000"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    instance = Lab(tmp_path_factory.mktemp("lab"), PORT_BASE)
    instance.up()
    yield instance
    instance.down(purge=True)


@pytest.fixture
def healthy(lab):
    lab.clear()
    yield lab
    lab.clear()


def api(lab, path, timeout=3.0):
    return requests.get(f"http://127.0.0.1:{lab.ports.api}{path}", timeout=timeout)


def exchange(lab, host="api.gateio.ws"):
    return requests.get(f"https://127.0.0.1:{lab.ports.tunnel}/api/v4/spot/currencies",
                        headers={"Host": host}, verify=str(lab.paths.ca_cert), timeout=5)


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def run_cli(lab, *args):
    env = {**os.environ, "LAB_DIR": str(lab.lab_dir), "LAB_PORT_BASE": str(lab.ports.base)}
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_every_program_runs_and_listens(healthy):
    states = {name: healthy.program_state(name) for name in healthy.ports.by_program()}
    assert states == dict.fromkeys(states, "RUNNING")
    assert all(accepts(port) for port in healthy.ports.by_program().values())


def test_healthy_readings(healthy):
    assert api(healthy, "/api/health").json()["overallHealth"] == 96
    dashboard = api(healthy, "/api/errors/dashboard").json()
    assert dashboard["errorMetrics"]["errorRate"] == 2.5
    assert dashboard["recoveryMetrics"]["circuitBreakersOpen"] == 0
    assert requests.get(f"http://127.0.0.1:{healthy.ports.dashboard}/", timeout=3).status_code == 200
    currencies = exchange(healthy).json()
    assert {"currency": "BTC"}.items() <= currencies[0].items()
    assert exchange(healthy, host="example.org").status_code == 421


def test_config_is_valid_and_points_at_the_lab(healthy):
    text = healthy.config_path.read_text()
    config = tomllib.loads(text)
    example_text = (ROOT / "config" / "maintenance.example.toml").read_text()
    example = tomllib.loads(example_text)
    commented = set(re.findall(r"^# ?(\w+) = ", example_text, re.M))  # keys the example shows unset
    for section, keys in config.items():
        if isinstance(keys, dict):
            allowed = set(example.get(section, {})) | {"password_file"} | commented
            assert set(keys) <= allowed, f"[{section}] has keys the example does not: {set(keys) - allowed}"
    assert config["api"]["base_url"] == f"http://127.0.0.1:{healthy.ports.api}"
    assert config["database"]["port"] == healthy.ports.postgres
    assert Path(config["exchange"]["verify_tls"]) == healthy.paths.ca_cert
    suite_config = pytest.importorskip("configuration")
    suite_config.load(healthy.config_path)


def test_agent_records_calls(healthy):
    healthy.clear_calls()
    requests.post(f"http://127.0.0.1:{healthy.ports.api}/api/errors/emergency-mode/enable", timeout=3)
    api(healthy, "/api/health")
    calls = [(c["method"], c["path"]) for c in healthy.calls()]
    assert calls == [("POST", "/api/errors/emergency-mode/enable"), ("GET", "/api/health")]


def test_api_faults_act_at_once_and_clear(healthy):
    healthy.inject("api-500")
    assert api(healthy, "/api/health").status_code == 500
    healthy.inject("error-storm")
    assert healthy.active_faults() == ["api-500", "error-storm"]
    healthy.clear("api-500")
    assert api(healthy, "/api/errors/dashboard").json()["errorMetrics"]["errorRate"] == 75.0
    healthy.inject("api-hang")
    with pytest.raises(requests.Timeout):
        api(healthy, "/api/health", timeout=1)
    healthy.clear()
    assert healthy.active_faults() == []
    assert api(healthy, "/api/errors/dashboard").json()["errorMetrics"]["errorRate"] == 2.5


def test_service_down_then_clear(healthy):
    healthy.inject("dashboard-down")
    assert healthy.program_state("trading-dashboard") == "STOPPED"
    assert not accepts(healthy.ports.dashboard)
    assert healthy.active_faults() == ["service-down:trading-dashboard"]
    healthy.clear()
    assert healthy.program_state("trading-dashboard") == "RUNNING"
    assert accepts(healthy.ports.dashboard)


def test_crashloop_keeps_the_program_down_until_cleared(healthy):
    healthy.inject("crashloop:trading-agent")
    assert healthy.wait_state("trading-agent", {"FATAL"}, timeout=10) == "FATAL"
    healthy.clear("crashloop:trading-agent")
    assert healthy.program_state("trading-agent") == "RUNNING"
    assert api(healthy, "/api/health").status_code == 200


def test_exchange_down(healthy):
    healthy.inject("exchange-down")
    assert exchange(healthy).status_code == 503


def test_healthy_files_follow_the_guide(healthy):
    paths, today = healthy.paths, date.today()
    trading = (paths.log_dir / f"trading-{today.isoformat()}.log").read_text()
    assert trading.count("TRADE_EXECUTED") >= 5
    profit = sum(float(line.split()[-1]) for line in trading.splitlines() if "PROFIT" in line)
    assert profit != 0
    old = today - timedelta(days=2)
    assert (paths.log_dir / f"error-{old.isoformat()}.log.gz").exists()
    assert not (paths.log_dir / f"error-{old.isoformat()}.log").exists()
    codes = paths.known_errors.read_text().split()
    assert codes == sorted(codes) and "SE999" not in codes
    assert len(list(paths.backup_dir.glob("full-*.tar.gz"))) == 3 and len(list(paths.backup_dir.glob("full-*.dump"))) == 3
    assert len(list(paths.backup_dir.glob("*.sha256"))) == 2 * len(list(paths.backup_dir.glob("*.tar.gz")))


def test_file_faults_break_and_clear_restores(healthy):
    paths, today = healthy.paths, date.today().isoformat()
    trading_log = paths.log_dir / f"trading-{today}.log"
    healthy.inject("no-trades-today")
    healthy.inject("new-error-code")
    healthy.inject("logs-unrotated")
    healthy.inject("files-past-retention")
    assert "TRADE_EXECUTED" not in trading_log.read_text()
    assert "SE999" in (paths.log_dir / f"error-{today}.log").read_text()
    three_days_ago = (date.today() - timedelta(days=3)).isoformat()
    assert (paths.log_dir / f"trading-{three_days_ago}.log").exists()
    month_ago = time.time() - 31 * 86400
    assert any(p.stat().st_mtime < month_ago for p in paths.backup_dir.glob("*.tar.gz"))
    healthy.clear("new-error-code")  # the other file faults stay
    assert "SE999" not in (paths.log_dir / f"error-{today}.log").read_text()
    assert "TRADE_EXECUTED" not in trading_log.read_text()
    healthy.clear()
    assert "TRADE_EXECUTED" in trading_log.read_text()
    assert not (paths.log_dir / f"trading-{three_days_ago}.log").exists()
    assert gzip.decompress((paths.log_dir / f"trading-{three_days_ago}.log.gz").read_bytes())
    assert not any(p.stat().st_mtime < month_ago for p in paths.backup_dir.glob("*.tar.gz"))


def test_rotate_tool_compresses_unrotated_logs(healthy):
    healthy.inject("logs-unrotated")
    config = tomllib.loads(healthy.config_path.read_text())
    subprocess.run(config["logrotate"]["command"], cwd="/", check=True, timeout=30, capture_output=True)
    stale = [p.name for p in healthy.paths.log_dir.glob("*.log")
             if date.fromisoformat(p.stem.split("-", 1)[1]) < date.today() - timedelta(days=1)]
    assert stale == []


def test_diagnostics_run_from_anywhere_and_record(healthy):
    config = tomllib.loads(healthy.config_path.read_text())
    result = subprocess.run(config["diagnostics"]["health_check"], cwd="/", timeout=30,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "96" in result.stdout
    records = healthy.paths.diagnostics_file.read_text().splitlines()
    assert json.loads(records[-1])["tool"] == "health-check"


def test_database_holds_rows_past_retention_only_under_their_fault(healthy):
    import psycopg

    def past_retention() -> tuple[int, int]:
        with psycopg.connect(**healthy.db_conninfo(), connect_timeout=5) as conn:
            return tuple(conn.execute(
                "SELECT (SELECT count(*) FROM trades WHERE created_at < now() - interval '90 days'), "
                "(SELECT count(*) FROM logs WHERE created_at < now() - interval '30 days')").fetchone())

    assert past_retention() == (0, 0)
    healthy.inject("rows-past-retention")
    trades, logs = past_retention()
    assert trades > 0 and logs > 0
    healthy.clear("rows-past-retention")
    assert past_retention() == (0, 0)


def test_disk_full(healthy):
    if "disk-full" not in healthy.available_faults():
        with pytest.raises(Exception, match="not available"):
            healthy.inject("disk-full")
        return
    healthy.inject("disk-full")
    usage = os.statvfs(healthy.paths.disk)
    assert 1 - usage.f_bavail / usage.f_blocks > 0.85
    healthy.clear("disk-full")
    usage = os.statvfs(healthy.paths.disk)
    assert 1 - usage.f_bavail / usage.f_blocks < 0.10


def test_clear_of_a_healthy_lab_is_fast(healthy):
    started = time.monotonic()
    healthy.clear()
    assert time.monotonic() - started < 2.0


def test_cli_unknown_fault_exits_2_with_the_valid_names(lab):
    result = run_cli(lab, "fault", "inject", "no-such-fault")
    assert result.returncode == 2
    assert "unknown fault 'no-such-fault'" in result.stderr and "api-500" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_status_and_config_path(lab):
    status = run_cli(lab, "status")
    assert status.returncode == 0 and "trading-agent" in status.stdout
    assert run_cli(lab, "config-path").stdout.strip() == str(lab.config_path)


def test_up_when_up_returns_to_healthy(lab):
    lab.inject("health-critical")
    lab.inject("service-down:ssh-tunnel")
    lab.up()
    assert lab.active_faults() == []
    assert lab.program_state("ssh-tunnel") == "RUNNING"


def test_down_stops_everything_and_up_brings_it_back(lab):
    lab.down()
    assert not lab.is_up()
    assert not any(accepts(port) for port in lab.ports.by_program().values())
    assert not os.path.ismount(lab.paths.disk)
    result = run_cli(lab, "fault", "inject", "api-500")
    assert result.returncode != 0 and "not up" in result.stderr and "Traceback" not in result.stderr
    lab.up()
    assert api(lab, "/api/health").status_code == 200


def test_a_fault_something_mended_is_no_longer_listed_as_active(healthy):
    """First contact, finding 16: `lab status` listed faults the suite had already fixed."""
    healthy.inject("service-down:trading-dashboard")
    healthy.inject("files-past-retention")
    healthy.inject("error-rate-high")
    assert {"service-down:trading-dashboard", "files-past-retention"} <= set(healthy.active_faults())
    healthy.supervisor.start("trading-dashboard", wait=True)  # what the suite's restart does
    for path, _ in files.past_retention(healthy.paths):  # what the suite's clean-up does
        path.unlink()
    assert healthy.active_faults() == ["error-rate-high"]  # a switch lasts until cleared
    assert healthy.mended_faults() == ["files-past-retention", "service-down:trading-dashboard"]
