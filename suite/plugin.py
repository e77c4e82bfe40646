"""The glue between a failing check, its remediation, its alerts and the report.

Loaded by the top-level conftest.py. Configuration is loaded once in `pytest_configure`; each
check's identity is read at collection; a failure is classified (FAILED when the check's assertion
fails, UNKNOWN when the check could not look) and, if FAILED, remediated and re-checked; the
controller turns the outcome into alerts and the reports record all of it.
"""

from __future__ import annotations

import pytest
from filelock import FileLock

from alerts.redact import Redactor
from alerts.redact import install as install_redaction
from remediations import load_all
from suite import config as config_file
from suite import reporting
from suite.alerting import Alerter
from suite.identity import IDENTITY, IdentityError, check_unique_ids, read_identity
from suite.run import Tally, hold_cadence_lock
from suite.settle import settle, state_dir

SETTINGS = pytest.StashKey[config_file.Settings]()
MODE = pytest.StashKey[str]()
LOCK = pytest.StashKey[FileLock]()
REDACTOR = pytest.StashKey[Redactor]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("maintenance", "trading box maintenance")
    group.addoption("--maintenance-config", metavar="PATH",
                    help=f"the configuration file (default: ${config_file.ENV_VAR})")
    group.addoption("--remediation", choices=("off", "plan", "apply"),
                    help="override [remediation] mode: off, plan (dry run) or apply")
    group.addoption("--reports-dir", metavar="DIR", help="override [reports] dir")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.version:
        return
    try:
        settings = config_file.load(config_file.resolve_path(config.option.maintenance_config))
    except config_file.ConfigError as error:
        raise pytest.UsageError(f"bad configuration: {error}") from None
    config.stash[SETTINGS] = settings
    config.stash[MODE] = config.option.remediation or settings.remediation.mode
    config.stash[REDACTOR] = redactor = Redactor(settings.secrets())
    config.add_cleanup(install_redaction(redactor))  # every log record, in every process
    if not hasattr(config, "workerinput"):  # only the controller locks, reports and alerts
        config.stash[LOCK] = hold_cadence_lock(state_dir(config, settings), reporting.cadence_of(config))
        reporting.choose_report_paths(config, config.option.reports_dir or settings.reports.dir)
        alerter = Alerter(settings, f"{reporting.cadence_of(config)} run")
        config.pluginmanager.register(alerter, "maintenance-alerter")
        config.pluginmanager.register(Tally(alerter, settings.heartbeat.url, settings.heartbeat.timeout_seconds),
                                      "maintenance-tally")


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not hasattr(config, "workerinput"):
        reporting.record_run_facts(config, {
            "Remediation mode": config.stash[MODE],
            "Cadence": reporting.cadence_of(config),
            "Configuration": str(config.stash[SETTINGS].source),
        })


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        reporting.publish_reports(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    lock = config.stash.get(LOCK, None)
    if lock is not None:
        lock.release()


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    return [f"maintenance: config {settings.source}, cadence {reporting.cadence_of(config)}, "
            f"remediation mode {config.stash[MODE]}"]


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> config_file.Settings:
    return pytestconfig.stash[SETTINGS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parameters that come from the configuration, so checks never list services or paths."""
    settings = metafunc.config.stash[SETTINGS]
    inputs = {
        "service": settings.services.critical(),
        "disk_path": settings.resources.disk_paths,
        "retention_rule": [rule.name for rule in settings.retention],
    }
    for argname, values in inputs.items():
        if argname in metafunc.fixturenames:
            metafunc.parametrize(argname, values)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        known = load_all()
        for item in items:
            identity = read_identity(item)
            if identity.remediation and identity.remediation.name not in known:
                raise IdentityError(f"{item.nodeid}: remediate({identity.remediation.name!r}) names no registered "
                                    f"remediation; known: {', '.join(sorted(known))}")
            item.stash[IDENTITY] = identity
            item.user_properties.extend(identity.properties())
        check_unique_ids(items)
    except IdentityError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    identity = item.stash.get(IDENTITY, None)
    if identity is not None and report.when != "teardown" and (report.when != "setup" or report.failed):
        def record(name: str, value: str) -> None:
            """On the report for the HTML row, and on the item so that JUnit's teardown report has it too."""
            report.user_properties.append((name, value))
            item.user_properties.append((name, value))

        settle(item, report, call, identity, item.config.stash[SETTINGS], item.config.stash[MODE], record)
    # Every report, teardown included: JUnit writes the captured output of all phases from the teardown one.
    redactor = item.config.stash[REDACTOR]
    redact_report(report, redactor)
    if redactor:  # JUnit's properties come from the teardown report, made from the item's own list
        item.user_properties[:] = [(name, redactor.text(value)) for name, value in item.user_properties]
    return report


def redact_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """Captured output and tracebacks reach the HTML and JUnit reports: mask secrets before they do."""
    if not redactor:
        return
    report.sections = [(title, redactor.text(content)) for title, content in report.sections]
    if report.longrepr is not None:
        text = str(report.longrepr)
        if redactor.text(text) != text:
            report.longrepr = redactor.text(text)
    report.user_properties = [(name, redactor.text(value)) for name, value in report.user_properties]
    # pytest-html attachments (the remediation's output, see reporting.attach) are written as they are
    report.extras = [{**extra, "content": redactor.text(extra["content"])} if isinstance(extra.get("content"), str)
                     else extra for extra in getattr(report, "extras", [])]


def pytest_html_results_table_header(cells: list[str]) -> None:
    reporting.html_header(cells)


def pytest_html_results_table_row(report, cells: list[str]) -> None:
    reporting.html_row(report, cells)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    tally = config.pluginmanager.get_plugin("maintenance-tally")
    if tally is not None:
        reporting.summarize(terminalreporter, config, tally, tally.alerter)
