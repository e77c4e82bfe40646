"""The private internals of pytest, pytest-html and pytest-metadata that the reports rely on, and the lock.

The reports are written under hidden partial names and renamed when complete; for that the suite sets
pytest's and pytest-html's report paths through their option names in a tryfirst pytest_configure, adds
run facts through `pytest_metadata.plugin.metadata_key` and `LogXML.add_global_property`, and, in a trylast
pytest_sessionfinish, points `LogXML.logfile` (found with `_pytest.junitxml.xml_key`) and pytest-html's
report object's `_report_path` at the published files (see html_file below for when each file is written).
None of that is public API: pyproject.toml bounds the majors, and these tests say which package moved
what, with its version, before an upgrade of requirements.lock lands. No lab needed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import tomllib
import xml.etree.ElementTree as ET
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
# The extras the suite's tests need installed besides the runtime; `dev` (ruff, pip-tools) is left out.
TESTED_EXTRAS = ("lab", "test")


def installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions() -> str:
    return ", ".join(f"{name} {installed(name)}" for name in ("pytest", "pytest-html", "pytest-metadata"))


def moved(what: str) -> str:
    return (f"{what} — with {versions()} (Python {sys.version.split()[0]}); the suite's reports rely on it "
            "(see this file's docstring): adapt the report code or keep the bound in pyproject.toml")


def internal(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        pytest.fail(moved(f"{module} cannot be imported: {error}"))


# --- pytest ------------------------------------------------------------------------------------------

def test_junitxml_xml_key_is_a_stash_key():
    junitxml = internal("_pytest.junitxml")
    assert hasattr(junitxml, "xml_key"), moved("_pytest.junitxml.xml_key is gone")
    assert isinstance(junitxml.xml_key, pytest.StashKey), moved(
        f"_pytest.junitxml.xml_key is a {type(junitxml.xml_key).__name__}, not a pytest.StashKey")


def test_logxml_sets_logfile_in_init_and_takes_global_properties(tmp_path):
    LogXML = getattr(internal("_pytest.junitxml"), "LogXML", None)
    assert inspect.isclass(LogXML), moved("_pytest.junitxml.LogXML is gone")

    assert "self.logfile =" in inspect.getsource(LogXML.__init__), moved("LogXML.__init__ no longer sets self.logfile")
    target = tmp_path / "run.xml"
    try:
        xml = LogXML(str(target), None)
    except TypeError as error:
        pytest.fail(moved(f"LogXML(logfile, prefix) cannot be constructed any more: {error}"))
    assert "logfile" in vars(xml), moved("a LogXML object has no instance attribute logfile")
    assert Path(xml.logfile) == target, moved(f"LogXML.logfile is {xml.logfile!r}, not the path it was given")
    assert callable(getattr(xml, "add_global_property", None)), moved("LogXML.add_global_property is gone")
    assert vars(xml).get("suite_name") == "pytest", moved("LogXML no longer keeps suite_name (the run names it by cadence)")
    assert "self.suite_name" in inspect.getsource(LogXML.pytest_sessionfinish), moved(
        "LogXML.pytest_sessionfinish no longer writes self.suite_name")


# --- pytest-metadata ---------------------------------------------------------------------------------

def test_pytest_metadata_key_exists():
    plugin = internal("pytest_metadata.plugin")
    assert isinstance(getattr(plugin, "metadata_key", None), pytest.StashKey), moved(
        "pytest_metadata.plugin.metadata_key is gone or no longer a pytest.StashKey")


# --- pytest-html -------------------------------------------------------------------------------------

def test_pytest_html_template_has_what_the_report_style_hides_and_orders():
    """reports/report.css hides pytest-html's outcome counts (the maintenance summary counts verdicts)
    and shows the environment after the summary: the classes and ids it names must still exist."""
    template = (Path(internal("pytest_html").__file__).parent / "resources" / "index.jinja2").read_text()
    for needle in ('class="run-count"', 'class="filter"', 'class="filters"', 'id="environment-header"',
                   'id="environment"', 'id="results-table"', "additional_summary['prefix']"):
        assert needle in template, moved(f"pytest-html's report template no longer has {needle}")

def test_pytest_html_report_class_sets_report_path():
    basereport = internal("pytest_html.basereport")

    classes = [cls for cls in vars(basereport).values()
               if inspect.isclass(cls) and cls.__module__ == basereport.__name__
               and "self._report_path =" in inspect.getsource(cls)]
    assert classes, moved("no class in pytest_html.basereport sets self._report_path")


# --- all of it, the way the suite uses it, in a real pytest run ------------------------------------

INNER_CONFTEST = '''
import json
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key
from pytest_metadata.plugin import metadata_key

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):  # as reports.choose_report_paths: before junitxml and pytest-html configure
    config.option.htmlpath = str(HERE / "written.html")
    config.option.xmlpath = str(HERE / "written.xml")
    config.option.self_contained_html = True


def pytest_sessionstart(session):  # as reports.record_run_facts
    session.config.stash[metadata_key].update({"Canary fact": "metadata-canary"})
    session.config.stash[xml_key].add_global_property("canary_fact", "junit-canary")


def pytest_html_report_title(report):
    report.title = "title-canary"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):  # as reports.publish_reports: both files are written by now
    config = session.config
    xml = config.stash.get(xml_key, None)
    html = [plugin for plugin in config.pluginmanager.get_plugins() if hasattr(plugin, "_report_path")]
    facts = {
        "xml_key": type(xml).__name__,
        "logfile": getattr(xml, "logfile", None),
        "report_path_holders": [(type(plugin).__name__, str(plugin._report_path)) for plugin in html],
        "written_before_trylast": sorted(p.name for p in HERE.glob("written.*")),
    }
    (HERE / "facts.json").write_text(json.dumps(facts))
    if xml is not None:
        xml.logfile = str(HERE / "published.xml")
    for plugin in html:
        plugin._report_path = HERE / "published.html"
'''


@pytest.fixture
def report_run(pytester):
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_canary="def test_passes():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    facts_file = pytester.path / "facts.json"
    output = result.stdout.str() + result.stderr.str()
    assert facts_file.exists(), moved(f"the inner run's trylast pytest_sessionfinish did not run:\n{output}")
    return pytester.path, json.loads(facts_file.read_text()), output, result


def html_file(here: Path, facts: dict) -> Path:
    """pytest-html writes in a trylast pytest_sessionfinish of an object it registers at configure time, so
    after a trylast pytest_sessionfinish of a plugin loaded earlier (a conftest's, the suite's): its report
    lands where `_report_path` points by then. Either order works for the suite; each test names the file."""
    return here / ("written.html" if "written.html" in facts["written_before_trylast"] else "published.html")


def test_report_paths_are_set_through_option_names(report_run):
    here, facts, output, result = report_run
    assert result.ret == 0, output
    assert "written.xml" in facts["written_before_trylast"], moved(
        "config.option.xmlpath set in a tryfirst pytest_configure did not produce the JUnit file before a trylast "
        f"pytest_sessionfinish; files then: {facts['written_before_trylast']}\n{output}")
    assert html_file(here, facts).is_file(), moved(
        "config.option.htmlpath/self_contained_html set in a tryfirst pytest_configure produced no HTML report "
        f"(neither written.html before a trylast pytest_sessionfinish nor published.html after it)\n{output}")


def test_logfile_found_by_xml_key_redirects_the_printed_path(report_run):
    here, facts, output, _ = report_run
    assert facts["xml_key"] == "LogXML", moved(f"config.stash[xml_key] holds {facts['xml_key']}, not a LogXML")
    assert Path(facts["logfile"]) == here / "written.xml", moved(f"LogXML.logfile is {facts['logfile']!r}")
    assert f"generated xml file: {here / 'published.xml'}" in output, moved(
        f"setting LogXML.logfile after the run no longer changes the path pytest prints:\n{output}")
    properties = {p.get("name"): p.get("value") for p in ET.parse(here / "written.xml").getroot().iter("property")}
    assert properties.get("canary_fact") == "junit-canary", moved(
        f"LogXML.add_global_property at sessionstart is not in the JUnit file: {properties}")


def test_report_path_of_the_html_report_object_redirects_the_printed_path(report_run):
    here, facts, output, _ = report_run
    holders = facts["report_path_holders"]
    assert len(holders) == 1, moved(f"expected one registered plugin with _report_path, got {holders}")
    name, path = holders[0]
    assert Path(path) == here / "written.html", moved(f"{name}._report_path is {path!r}, not the --html path")
    assert f"Generated html report: {(here / 'published.html').as_uri()}" in output, moved(
        f"setting {name}._report_path after the run no longer changes the path pytest-html prints:\n{output}")


def test_metadata_and_title_reach_the_html_report(report_run):
    here, facts, _, _ = report_run
    text = html_file(here, facts).read_text()
    assert "metadata-canary" in text, moved("config.stash[metadata_key] updated at sessionstart is not in the HTML")
    assert "title-canary" in text, moved("pytest_html_report_title(report): report.title is not the HTML's title")


# --- pyproject.toml and requirements.lock ------------------------------------------------------------

def pins() -> dict[str, str]:
    """requirements.lock as {canonical name: version}; any line that is not name==version is an error."""
    found = {}
    for number, line in enumerate(LOCK.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"{LOCK.name}:{number}: {line!r} is not pinned as name==version (run make lock)"
        found[canonicalize_name(match[1])] = match[2]
    return found


def declared(extras: tuple[str, ...] | None = None) -> list[Requirement]:
    """pyproject.toml's dependencies, with the named optional groups (all of them for None)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    groups = project.get("optional-dependencies", {})
    names = groups if extras is None else extras
    return [Requirement(text) for text in [*project["dependencies"], *(t for g in names for t in groups[g])]]


def test_every_declared_dependency_is_pinned_in_the_lock_within_its_bounds():
    locked = pins()
    problems = []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{requirement} is pinned at {locked[name]}, outside its bounds")
    assert not problems, f"{LOCK.name} is out of date with {PYPROJECT.name} (run make lock): {problems}"


def runtime_closure() -> set[str]:
    """Every distribution the suite and its tests run on: the runtime, lab and test groups, transitively."""
    environment = default_environment()
    seen: set[tuple[str, str]] = set()  # (distribution, extra or "")
    queue = [(requirement, "") for requirement in declared(TESTED_EXTRAS)]
    while queue:
        requirement, extra = queue.pop()
        if requirement.marker and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        new = {(name, wanted) for wanted in ("", *requirement.extras)} - seen
        if not new:
            continue
        seen |= new
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # reported by the test as not installed
        queue += [(Requirement(text), wanted) for _, wanted in new for text in requires]
    return {name for name, _ in seen}


def test_installed_runtime_versions_equal_the_lock():
    locked = pins()
    closure = runtime_closure()
    problems = [f"{name}: installed {installed(name)}, locked {locked.get(name, '(not in the lock)')}"
                for name in sorted(closure) if installed(name) != locked.get(name)]
    assert closure >= {"pytest", "pytest-html", "pytest-metadata", "psycopg-binary"}, sorted(closure)
    assert not problems, f"this environment is not requirements.lock (run make setup): {problems}"
