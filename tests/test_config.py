"""The configuration file: the shipped example is valid, and every bad input is named, not traced."""

from __future__ import annotations

import subprocess
import sys

import pytest

from configuration import EXAMPLE, ConfigError, load, machine, resolve_path
from conftest import ROOT


def test_shipped_example_is_valid_and_matches_the_guide(monkeypatch):
    monkeypatch.setattr(machine, "account_uid", lambda name: 1000)  # as on the guide's box, which has `trading`
    settings = load(EXAMPLE)
    assert settings.remediation.mode == "plan"  # a copied example changes nothing until the operator says apply
    assert settings.services.critical() == ["ssh-tunnel", "trading-agent", "trading-dashboard", "postgresql"]
    assert (settings.resources.cpu.warning, settings.resources.cpu.critical) == (70, 85)
    assert (settings.resources.disk.warning, settings.resources.disk.critical) == (75, 85)
    assert {rule.name: rule.max_age_days for rule in settings.retention} == {
        "temp-files": 1, "app-logs": 7, "backups": 30}
    assert settings.api.base_url.endswith(":3001") and settings.dashboard.url.endswith(":3000")


@pytest.mark.parametrize("text, key, expected", [
    ("[resources.cpu]\nwarning = 90\ncritical = 85\n", "resources.cpu", "must not exceed critical"),
    ("[api]\ntimeout_seconds = -1\n", "api.timeout_seconds", "greater than 0"),
    ("[host]\nservice_manager = \"upstart\"\n", "host.service_manager", "'systemd' or 'supervisor'"),
    ("[tunnel]\nport = 70000\n", "tunnel.port", "less than or equal to 65535"),
    ("[remediation]\nmode = \"yolo\"\n", "remediation.mode", "'off', 'plan' or 'apply'"),
    ("[[retention]]\nname = \"x\"\ndir = \"tmp\"\npattern = \"*\"\nmax_age_days = 1\n", "retention.0", "absolute"),
    ("[api]\nbase_urll = \"http://x\"\n", "api.base_urll", "Extra inputs are not permitted"),
    ("[host]\nbackend = \"telnet://box\"\n", "host.backend", "should match pattern"),
    ("[[boxes]]\nname = \"a\"\n[boxes.api]\nbase_url = \"ftp://x\"\n", "boxes.0.api.base_url", "should match"),
    ("[[boxes]]\nname = \"a\"\n[[boxes]]\nname = \"a\"\n", "boxes.1", "used twice"),
    ("[[boxes]]\nhost = { backend = \"local://\" }\n", "boxes.0", "needs a name"),
    ("[[boxes]]\nname = \"a\"\n[boxes.alerts]\nfile = \"/x\"\n", "boxes.0 (a)", "alerts cannot differ per box"),
    # First contact, finding 11: a 60-minute window never holds 3 daily runs.
    ("[policy.budget]\nwindow_minutes = 60\n", "policy.budget", "replace it by window_runs = 5"),
    ("[policy.budget]\nwindow_runs = 0\n", "policy.budget.window_runs", "greater than or equal to 1"),
])
def test_bad_value_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message and key in message and expected in message, message


def test_a_secret_under_a_wrong_key_is_not_echoed(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[database]\npassword = "hunter2-canary"\n')
    with pytest.raises(ConfigError) as error:
        load(path)
    assert "database.password" in str(error.value) and "hunter2-canary" not in str(error.value)


def test_broken_toml_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[api\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load(path)


def test_missing_file_says_to_copy_the_example(tmp_path):
    with pytest.raises(ConfigError, match="does not exist. Copy .*maintenance.example.toml"):
        load(tmp_path / "nowhere.toml")


def test_no_file_given_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MAINTENANCE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="--maintenance-config=PATH or MAINTENANCE_CONFIG=PATH"):
        resolve_path(None)


def test_bad_configuration_stops_the_run_before_any_check_without_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[resources.disk]\nwarning = 95\ncritical = 85\n")
    completed = subprocess.run([sys.executable, "-m", "pytest", "-m", "daily", f"--maintenance-config={path}"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "resources.disk" in completed.stderr and str(path) in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout
    assert "passed" not in completed.stdout and "failed" not in completed.stdout


def test_each_box_is_the_file_with_its_own_tables_over_it(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[api]\ntimeout_seconds = 3\n'
                    '[[boxes]]\nname = "nuc-1"\nhost = { backend = "ssh://maint@nuc-1" }\n'
                    '[[boxes]]\nname = "nuc-2"\napi = { base_url = "http://127.0.0.1:3101" }\n')
    settings = load(path)
    one, two = settings.boxes()
    assert (one.host.name, one.host.backend, one.api.base_url) == ("nuc-1", "ssh://maint@nuc-1", "http://127.0.0.1:3001")
    assert (two.host.name, two.host.backend, two.api.base_url) == ("nuc-2", "local://", "http://127.0.0.1:3101")
    assert one.api.timeout_seconds == two.api.timeout_seconds == 3  # the file's value, under each box
    assert settings.box("nuc-2") is two


def test_without_boxes_the_file_is_the_one_box(tmp_path):
    path = tmp_path / "one.toml"
    path.write_text("[api]\ntimeout_seconds = 3\n")
    settings = load(path)
    assert settings.boxes() == (settings,) and settings.boxes()[0].host.name == "trading-box"


INI_INVENTORY = """\
# the operator's Ansible inventory
[trading]
nuc-1 ansible_host=10.0.0.11
nuc-2 ansible_host=10.0.0.12 ansible_port=2222 ansible_user=ops

[trading:vars]
ansible_user=trading-maint
ansible_ssh_private_key_file=~/.ssh/maint

[monitoring]
grafana ansible_host=10.0.0.20

[boxes:children]
trading
"""


def test_boxes_come_from_an_ansible_ini_inventory(tmp_path):
    (tmp_path / "hosts").write_text(INI_INVENTORY)
    path = tmp_path / "m.toml"
    path.write_text('[inventory]\nansible = "hosts"\ngroup = "boxes"\n')
    boxes = {box.host.name: box.host for box in load(path).boxes()}
    assert set(boxes) == {"nuc-1", "nuc-2"}  # the group's children, not the monitoring host
    assert boxes["nuc-1"].backend == "ssh://trading-maint@10.0.0.11"  # the group's user
    assert boxes["nuc-2"].backend == "ssh://ops@10.0.0.12:2222"  # the host's own user and port win
    assert str(boxes["nuc-1"].ssh_identity_file).endswith("/.ssh/maint")


def test_boxes_come_from_ansible_inventory_list_json(tmp_path):
    (tmp_path / "inventory.json").write_text(
        '{"_meta": {"hostvars": {"nuc-1": {"ansible_host": "10.0.0.11", "ansible_user": "m"}}},'
        ' "all": {"children": ["trading"]}, "trading": {"hosts": ["nuc-1"]}}')
    path = tmp_path / "m.toml"
    path.write_text('[inventory]\nansible = "inventory.json"\ngroup = "trading"\n')
    assert [box.host.backend for box in load(path).boxes()] == ["ssh://m@10.0.0.11"]


@pytest.mark.parametrize("inventory, expected", [
    (None, "cannot read the Ansible inventory"),
    ("[trading]\nnuc-1 ansible_host\n", "is not key=value"),
    ("[other]\nx\n", "no group 'trading'"),
])
def test_a_bad_inventory_is_named(tmp_path, inventory, expected):
    if inventory is not None:
        (tmp_path / "hosts").write_text(inventory)
    path = tmp_path / "m.toml"
    path.write_text('[inventory]\nansible = "hosts"\ngroup = "trading"\n')
    with pytest.raises(ConfigError) as error:
        load(path)
    assert "inventory.ansible" in str(error.value) and expected in str(error.value), str(error.value)


def test_urls_that_carry_secrets_never_appear_in_a_repr_cut_or_whole(tmp_path):
    """First contact, findings 8 and 10: a webhook's `?token=` reached the terminal, the run log and the
    spool; --showlocals printed the settings' repr cut at 240 characters, inside the heartbeat URL."""
    uuid = "5f2b9a8e-0c1d-4e7f-9a3b-6c8d2e1f0a4b"
    path = tmp_path / "m.toml"
    path.write_text(f'[heartbeat]\nurl = "https://hc-ping.com/{uuid}"\n'
                    '[alerts.webhook]\nurl = "https://bridge.example/hook?token=tok-98765-secret"\n'
                    'severities = ["critical"]\n')
    settings = load(path)
    text = repr(settings) + str(settings) + repr(settings.heartbeat) + repr(settings.alerts.webhook)
    for piece in (uuid, uuid[:12], "tok-98765-secret", "98765"):
        assert piece not in text, piece
    assert settings.heartbeat.address() == f"https://hc-ping.com/{uuid}"
    assert {f"/{uuid}", "tok-98765-secret", "token=tok-98765-secret"} <= set(settings.secrets())


def test_a_secret_url_that_is_not_http_is_refused_without_echoing_it(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[heartbeat]\nurl = "ftp://user:hunter2@x"\n')
    with pytest.raises(ConfigError) as error:
        load(path)
    assert "heartbeat.url" in str(error.value) and "hunter2" not in str(error.value)


def write(tmp_path, text: str):
    path = tmp_path / "maintenance.toml"
    path.write_text(text)
    return path


def test_a_file_that_does_not_set_the_mode_only_plans(tmp_path):
    """Issue 17, item 5: a file without [remediation] mode restarted four services."""
    assert load(write(tmp_path, "[api]\ntimeout_seconds = 3\n")).remediation.mode == "plan"


def test_a_rule_deletes_roots_files_only_when_it_says_so(tmp_path):
    rule = f'[[retention]]\nname = "x"\ndir = "{tmp_path}"\npattern = "*.tmp"\nmax_age_days = 1\nowners = ["root"]\n'
    with pytest.raises(ConfigError, match="allow_root_owned = true"):
        load(write(tmp_path, rule))
    assert load(write(tmp_path, rule + "allow_root_owned = true\n")).retention[0].owners == ["root"]


def test_a_users_directory_below_home_may_be_cleaned_but_not_home_itself(tmp_path):
    rule = '[services]\nuser = "nobody"\n[[retention]]\nname = "x"\ndir = "{dir}"\npattern = "*.tmp"\nmax_age_days = 1\n'
    assert load(write(tmp_path, rule.format(dir="/home/trading/exports"))).retention[0].dir.name == "exports"
    with pytest.raises(ConfigError, match="retention.0.dir.*holds whole trees"):
        load(write(tmp_path, rule.format(dir="/home")))


def test_free_text_may_hold_newlines_a_path_may_not(tmp_path):
    waiver = '[[waivers]]\ncheck = "X-1"\nreason = "{reason}"\nexpires = 2030-01-01\n'
    assert "\n" in load(write(tmp_path, waiver.format(reason="line one\\nline two"))).waivers[0].reason
    with pytest.raises(ConfigError, match="paths.log_dir.*U[+]000A"):
        load(write(tmp_path, '[paths]\nlog_dir = "/var/log/a\\nb"\n'))


def test_users_of_a_box_over_ssh_are_left_to_the_box(tmp_path):
    """Only the box knows its users: from a monitoring host, its user is not looked up here."""
    remote = '[host]\nbackend = "ssh://maint@nuc"\n[services]\nuser = "only-on-the-box"\n'
    assert load(write(tmp_path, remote)).services.user == "only-on-the-box"
    with pytest.raises(ConfigError, match="boxes.0 [(]a[)]: services.user: no user 'only-on-the-box'"):
        load(write(tmp_path, remote + '[[boxes]]\nname = "a"\nhost = { backend = "local://" }\n'))


def test_a_state_directory_too_deep_for_the_ssh_socket_is_refused_at_load_naming_the_key(tmp_path):
    """ssh would fail on every box as if it were down ("too long for Unix domain socket")."""
    deep = tmp_path / ("d" * (machine.SOCKET_PATH_MAX - machine.SSH_SOCKET_SUFFIX - len(str(tmp_path))))
    config = tmp_path / "c.toml"
    config.write_text(f'[host]\nbackend = "ssh://maint@127.0.0.1"\n[policy]\nstate_dir = "{deep}"\n')
    with pytest.raises(ConfigError, match="policy.state_dir: .* bytes long: the SSH connection's socket"):
        load(config)
    config.write_text(f'[host]\nbackend = "ssh://maint@127.0.0.1"\n[policy]\nstate_dir = "{deep.parent}"\n')
    assert load(config).policy.state_dir == deep.parent


def test_the_room_left_for_the_ssh_socket_is_what_the_socket_name_takes():
    from probes.host import CONTROL_NAME_LENGTH

    assert len("/ssh/") + CONTROL_NAME_LENGTH + 17 == machine.SSH_SOCKET_SUFFIX  # 17: ssh's own temporary suffix
    from lab.box.config import SSH_STATE_DIR_MAX  # the lab refuses a box directory too deep for it, by itself

    assert machine.SOCKET_PATH_MAX - machine.SSH_SOCKET_SUFFIX == SSH_STATE_DIR_MAX
