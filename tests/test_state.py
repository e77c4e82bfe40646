"""decision/state.py: a state file that cannot be read never stops monitoring. It is set aside for a human
(0600), the run starts from empty state, says so once in its summary and in one alert, and checks as usual."""

from __future__ import annotations

import json
import re
import stat

import pytest
from test_plugin import CONFTEST, INI

from conftest import ROOT, read_alerts
from decision.state import StateStore

DAMAGED = {
    "truncated": b'{"checks": {"SVC-001[trading-agent]": {"verdicts": [[1, "pas',
    "not UTF-8": b'{"checks": {"\xff\xfe": {}}}',
    "not an object": b'[1, 2, 3]',
    "records not objects": b'{"checks": {"SVC-001": "passed"}}',
}


@pytest.mark.parametrize("data", DAMAGED.values(), ids=DAMAGED.keys())
def test_an_unreadable_state_file_is_set_aside_0600_and_the_state_starts_empty(tmp_path, data):
    (tmp_path / "state.json").write_bytes(data)
    (tmp_path / "state.json").chmod(0o644)
    store = StateStore(tmp_path)
    said = store.recover()
    [aside] = tmp_path.glob("state.json.corrupt-*")
    assert re.fullmatch(r"state\.json\.corrupt-\d{8}T\d{6}\.\d{6}Z", aside.name)
    assert aside.read_bytes() == data and stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert f"{tmp_path / 'state.json'} could not be read" in said and aside.name in said
    assert store.load() == {} and store.recover() is None  # said once: nothing left to set aside


def test_a_state_damaged_during_a_run_is_set_aside_by_the_next_change_never_raised(tmp_path):
    store = StateStore(tmp_path)
    with store.record("SVC-001") as record:
        record.add_verdict(1.0, "passed")
    (tmp_path / "state.json").write_bytes(b'{"checks": ')
    assert store.load() == {}
    with store.record("SVC-001") as record:
        record.add_verdict(2.0, "failed")
    assert [v for _, v in store.read("SVC-001").verdicts] == ["failed"]
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1


def test_a_truncated_state_file_leaves_the_run_checking_reporting_and_alerting(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_bytes(DAMAGED["truncated"])
    config = tmp_path / "maintenance.toml"
    config.write_text(f'[remediation]\nmode = "off"\n[reports]\ndir = "{tmp_path}/reports"\n'
                      f'[policy]\nstate_dir = "{state}"\n'
                      f'[alerts]\nfile = "{tmp_path}/alerts.jsonl"\nspool_dir = "{tmp_path}/spool"\n')
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile('''
        import pytest

        @pytest.mark.daily
        @pytest.mark.check("X-001", severity="warning", why="w")
        def test_fine(): pass
    ''')
    result = pytester.runpytest_subprocess(f"--maintenance-config={config}", "-m", "daily")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["NOTE: */state/state.json could not be read (not JSON: *): kept as "
                                 "state.json.corrupt-*; this run started from empty state*"])
    assert len([line for line in result.stdout.lines if line.startswith("NOTE: ")]) == 1
    alerts = [alert for alert in read_alerts(tmp_path / "alerts.jsonl") if alert["check_id"] == "STATE"]
    assert len(alerts) == 1 and "state.json.corrupt-" in alerts[0]["message"], alerts
    assert len(list(state.glob("state.json.corrupt-*"))) == 1
    remembered = json.loads((state / "state.json").read_text())["checks"]
    assert [verdict for _, verdict in remembered["X-001"]["verdicts"]] == ["passed"], remembered  # from empty
    assert len(list((tmp_path / "reports").glob("daily-*.html"))) == 1
