"""Shared pieces of the suite's own tests: the lab, and running a cadence against it as cron would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The session's lab, one per pytest-xdist worker, each on its own ports: `make test` runs the lab tests on two
# workers, each module on one of them (--dist loadfile), so a module's own lab or box is never started twice.
FIRST_LAB_PORT_BASE = int(os.environ.get("TEST_LAB_PORT_BASE", "26000"))
SECOND_LAB_PORT_BASE = int(os.environ.get("TEST_LAB_PORT_BASE_2", "20500"))  # clear of every other test's ports
SHARED_LAB_PORT_BASES = (FIRST_LAB_PORT_BASE, SECOND_LAB_PORT_BASE)


def shared_lab_port_base(worker: str = os.environ.get("PYTEST_XDIST_WORKER", "gw0")) -> int:
    index = int(worker.removeprefix("gw") or 0)
    if index >= len(SHARED_LAB_PORT_BASES):
        raise pytest.UsageError(f"the lab tests run on at most {len(SHARED_LAB_PORT_BASES)} workers (each its own "
                                f"lab's ports); worker {worker} has none: use -n {len(SHARED_LAB_PORT_BASES)} or fewer")
    return SHARED_LAB_PORT_BASES[index]


TEST_PORT_BASE = shared_lab_port_base()


@dataclass
class CheckResult:
    name: str
    outcome: str  # passed, failed, error, skipped (as JUnit says)
    properties: dict = field(default_factory=dict)
    message: str = ""

    @property
    def check_id(self) -> str:
        return self.properties.get("check_id", "")


@dataclass
class CadenceRun:
    """What the operator sees after a run: exit status, output, reports and alerts."""

    returncode: int
    output: str
    html: Path | None
    junit: Path | None
    results: list[CheckResult]
    alerts: list[dict]

    def findings(self) -> dict[str, list[CheckResult]]:
        by_id: dict[str, list[CheckResult]] = {}
        for result in self.results:
            if result.properties.get("verdict") in ("failed", "unknown"):
                by_id.setdefault(result.check_id, []).append(result)
        return by_id

    def only(self, check_id: str, param: str = "") -> CheckResult:
        matches = [r for r in self.results if r.check_id == check_id and param in r.name]
        assert len(matches) == 1, f"expected one {check_id}[{param}], got {[m.name for m in matches]}\n{self.output}"
        return matches[0]


def read_junit(path: Path) -> list[CheckResult]:
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome, message = ("failed" if tag == "failure" else tag), element.get("message", "")
        results.append(CheckResult(case.get("name"), outcome, properties, message))
    return results


def run_cadence(config_path: Path, reports_dir: Path, *args: str, cadence: str = "daily",
                env: dict | None = None) -> CadenceRun:
    """A subprocess run of pytest in the project, exactly as cron or `make daily` runs it."""
    alerts_file = alerts_path(config_path)
    before = alerts_file.stat().st_size if alerts_file.exists() else 0
    reports_dir.mkdir(parents=True, exist_ok=True)
    existing = set(reports_dir.iterdir())
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", cadence, f"--maintenance-config={config_path}",
         f"--reports-dir={reports_dir}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )
    new = sorted(set(reports_dir.iterdir()) - existing)
    html = next((p for p in new if p.suffix == ".html"), None)
    junit = next((p for p in new if p.suffix == ".xml"), None)
    return CadenceRun(completed.returncode, completed.stdout + completed.stderr, html, junit,
                      read_junit(junit) if junit else [], read_alerts(alerts_file, before))


def read_alerts(path: Path, offset: int = 0) -> list[dict]:
    """Every alert in the file channel from `offset` on, with digests opened into their items."""
    if not path.exists():
        return []
    with path.open() as handle:
        handle.seek(offset)
        records = [json.loads(line) for line in handle if line.strip()]
    return [item for record in records
            for item in (record["items"] if record["kind"] == "digest" else [record])]


def alerts_path(config_path: Path) -> Path:
    import tomllib

    return Path(tomllib.loads(config_path.read_text())["alerts"]["file"])


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """One real lab for the session, on its own ports, returned to healthy before each use."""
    from lab import Lab

    instance = Lab(tmp_path_factory.mktemp("lab"), TEST_PORT_BASE)
    instance.up()
    yield instance
    instance.down(purge=True)


@pytest.fixture(scope="session")
def lab_config(lab, tmp_path_factory) -> Path:
    """The lab's configuration with the CPU thresholds at 100%.

    CPU is a reading of the real machine, which the lab does not control: on a busy CI machine it
    would fail checks that are about something else. test_cpu_over_threshold_is_found uses the
    lab's own file, with the guide's thresholds, under a real load it creates.
    """
    text = lab.config_path.read_text()
    relaxed = re.sub(r"(\[resources\.cpu\]\s*warning\s*=\s*)[\d.]+(\s*critical\s*=\s*)[\d.]+", r"\g<1>100\g<2>100", text)
    assert relaxed != text, "the lab's config no longer has a [resources.cpu] table as expected"
    path = tmp_path_factory.mktemp("config") / "maintenance.toml"
    path.write_text(relaxed)
    return path


@pytest.fixture
def healthy_lab(lab):
    """The lab with no fault, and the suite with no memory of earlier runs (state, spool)."""
    lab.clear()
    shutil.rmtree(lab.paths.root / "maintenance", ignore_errors=True)
    yield lab
    lab.clear()


def merged(base: dict, changes: dict) -> dict:
    result = dict(base)
    for key, value in changes.items():
        result[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return result


def config_with(base: Path, destination: Path, changes: dict) -> Path:
    """A copy of a configuration file with some tables changed (deep merge), for one test."""
    import tomllib

    import tomli_w

    data = merged(tomllib.loads(base.read_text()), changes)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(tomli_w.dumps(data))
    return destination


@pytest.fixture
def daily(healthy_lab, lab_config, tmp_path):
    """Run the daily cadence against the lab; extra pytest arguments pass through."""
    return lambda *args, **kwargs: run_cadence(lab_config, tmp_path / "reports", *args, **kwargs)


def pytest_collection_modifyitems(items):
    """A test that uses the lab (directly or through another fixture) is marked `lab`, whether or not
    its module says so: `make test-fast` (-m "not lab") must never start one."""
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
