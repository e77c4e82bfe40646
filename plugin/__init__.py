"""The pytest glue: loads the configuration and the probes, reads each check's identity, strings a
result through its stages (plugin/flow.py), and feeds the alerts, the tally and both reports.

Loaded by the top-level conftest.py. It knows the stages only through their public functions; its
own extension points are in plugin/hookspecs.py. Only the controller locks, alerts and writes files
(`hasattr(config, "workerinput")` is true on xdist workers).
"""

from __future__ import annotations

import sys
import uuid

import pytest
from filelock import FileLock, Timeout

import configuration
from alerts import heartbeat
from alerts.dispatch import Alerter, state_set_aside_alert, waiting_alert
from configuration import Settings, machine, secretsfile
from core import clock, ledger, rootfiles
from core.atomic import remove_stale_temporaries
from core.redact import Redactor
from core.redact import install as install_redaction
from core.text import LONG_LIMIT, LONG_TAIL, shown
from core.vocabulary import Cadence, ExitStatus, LedgerKind, Mode, Prop, RunFact, Verdict, exit_words
from decision.finding import finding_from
from decision.incidents import IncidentStore
from decision.state import StateStore
from plugin import flow, hookspecs
from plugin.identity import IDENTITY, IdentityError, check_unique_ids, in_dependency_order, read_identity
from probes.host import end_run, join_run, prove_boxes
from remediations import load_all
from reports import files, html, index, junit
from reports import summary as summary_module
from reports.tally import Tally

pytest_plugins = ["plugin.fixtures"]  # the probes, as the checks' fixtures

SETTINGS = pytest.StashKey[Settings]()
MODE = pytest.StashKey[Mode]()
REDACTOR = pytest.StashKey[Redactor]()
PARAMETERS = pytest.StashKey[dict[str, list]]()
RUN = pytest.StashKey["Run"]()
RUN_ID = pytest.StashKey[str]()  # this run's, the same on the controller and every xdist worker


class Run:
    """What the controller holds for the whole run: the cadence lock, the alerts, the tally.
    Registered as a plugin on the controller only, so it sees every check's report once."""

    def __init__(self, config: pytest.Config, settings: Settings):
        self.boxes = [box.host.name for box in selected_boxes(config)]  # first: a wrong name is refused, unwritten
        self.cadence = cadence_of(config)
        self.settings = settings
        self.started = clock.now()
        self.run_id = config.stash[RUN_ID]
        self.lock = None
        self.report_paths = None
        self.state_note = None  # the state file could not be read and was set aside: said in the summary and alerted
        self.reports_dir = files.reports_directory(config, config.option.reports_dir or settings.reports.dir)
        if not config.option.collectonly:  # a listing of checks is no run: nothing to lock, record or write
            self.lock = hold_cadence_lock(state_dir(config, settings), self.cadence)
            remove_stale_temporaries(state_dir(config, settings))  # left by a run killed mid-write
            self.state_note = StateStore(state_dir(config, settings)).recover()
            self.report_paths = files.choose_report_paths(config, self.reports_dir, self.cadence,
                                                          settings.reports.shared_mode, settings.reports.shared_group)
            config.pluginmanager.register(
                html.HtmlTitle(f"Trading box maintenance: {self.report_paths[0].stem}"), "maintenance-title")
            html.add_style(config)
        self.alerter = Alerter(settings, f"{self.cadence} run")  # a digest names its box(es) itself
        self.tally = Tally()
        self.heading = f"{self.cadence} run on {', '.join(self.boxes)}, remediation mode {config.stash[MODE]}"

    def incidents(self, config: pytest.Config) -> IncidentStore:
        return IncidentStore(state_dir(config, self.settings))

    def remind(self, config: pytest.Config) -> None:
        """An emergency response that holds trading is said again every repeat interval, until resumed."""
        interval = self.settings.policy.repeat_interval_minutes * 60
        for incident in self.incidents(config).due_reminders(self.boxes, clock.now(), interval):
            self.alerter.send(waiting_alert(incident))

    def summary(self, config: pytest.Config) -> summary_module.Summary:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        broken = [report for report in (terminal.stats.get("error", []) if terminal else [])
                  if getattr(report, "when", "collect") == "collect"]
        waiting = self.incidents(config).waiting(self.boxes)
        return summary_module.summarize(self.heading, self.tally, self.alerter,
                                 [f"{report.nodeid or report.fspath}: {last_error_line(report)}" for report in broken],
                                 [f"{alert.box}: {alert.title}: {alert.message}"
                                  for alert in map(waiting_alert, waiting)],
                                 [self.state_note] if self.state_note else [])

    def record(self, exit_status: int) -> dict | None:
        """The run's line in the ledger (core/ledger.py), once both reports are published: its times,
        exit status, verdict counts and each report's SHA-256. A run that wrote no report records nothing;
        a line that cannot be written is said on stderr, never raised: the run is over and its status stands."""
        if self.report_paths is None:
            return None
        reports = {kind: files.report_entry(self.reports_dir, path)
                   for kind, path in zip(("html", "xml"), self.report_paths, strict=True) if path.is_file()}
        if not reports:
            return None
        ended = clock.now()
        try:
            return ledger.append(self.reports_dir, LedgerKind.RUN, {
                "run_id": self.run_id, "cadence": str(self.cadence),
                "boxes": self.boxes,
                "started": ledger.iso(self.started), "ended": ledger.iso(ended),
                "duration_s": round(ended - self.started, 3), "exit_status": int(exit_status),
                "exit_words": exit_words(int(exit_status)),
                "counts": {str(verdict): self.tally.counts[verdict] for verdict in Verdict}, "reports": reports})
        except (OSError, Timeout, ledger.LedgerError) as error:
            print(f"maintenance: this run is not in the ledger {ledger.ledger_path(self.reports_dir)}: {error}",
                  file=sys.stderr)
            return None

    def reindex(self) -> None:
        """The run index, the history pages, the trends and the Prometheus textfile brought up to date with the
        ledger (reports/index.py). Like the ledger's line, a failure is said and leaves the run's status alone:
        `make reindex` makes them again from the ledger and the reports."""
        try:
            index.after_run(self.reports_dir, self.settings)
        except Exception as error:  # noqa: BLE001 - a ledger line edited by hand included: the run's status stands
            print(f"maintenance: the run index in {self.reports_dir} is not up to date ({error}): make reindex "
                  f"CONFIG={self.settings.source}", file=sys.stderr)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """As each check's verdict arrives (from an xdist worker too): count it, alert on it."""
        if report.when == "teardown":
            return
        properties = dict(report.user_properties)
        if Prop.VERDICT in properties:
            self.tally.observe(report.nodeid, properties)
        self.alerter.observe(properties, report.nodeid.split("::")[-1])


def last_error_line(report) -> str:
    """A collection error's own words (`E   ImportError: ...`), without pytest's traceback."""
    lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return (errors[-1] if errors else lines[-1] if lines else "could not be collected")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("maintenance", "trading box maintenance")
    group.addoption("--maintenance-config", metavar="PATH",
                    help=f"the configuration file (default: ${configuration.ENV_VAR})")
    group.addoption("--remediation", choices=tuple(Mode),
                    help="override [remediation] mode: off, plan (dry run) or apply")
    group.addoption("--reports-dir", metavar="DIR", help="override [reports] dir")
    group.addoption("--maintenance-box", metavar="NAME",
                    help="only this box of the configuration's: the other boxes' checks are not collected "
                         "(`make update-* BOX=NAME` verifies the box it updated with its own checks)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.version:
        return
    try:
        settings = configuration.load(configuration.resolve_path(config.option.maintenance_config))
    except configuration.ConfigError as error:
        raise pytest.UsageError(f"bad configuration: {error}") from None
    try:  # before anything reads a secret: `sudo make daily` and cron have no shell's variables
        secretsfile.use(settings.schedule.secrets_file)
    except secretsfile.SecretsRefused as error:
        raise pytest.UsageError(f"bad configuration: {settings.source}: {error}") from None
    config.add_cleanup(secretsfile.forget)
    config.stash[SETTINGS] = settings
    config.stash[MODE] = Mode(config.option.remediation or settings.remediation.mode)
    config.stash[REDACTOR] = redactor = Redactor(settings.secrets())
    worker = getattr(config, "workerinput", None)
    config.stash[RUN_ID] = worker["maintenance_run"] if worker else uuid.uuid4().hex
    join_run(config.stash[RUN_ID], owner=worker is None)  # its own SSH connections and marks (probes/host.py)
    config.add_cleanup(install_redaction(redactor))  # every log record, in every process
    if not hasattr(config, "workerinput"):
        unwritable = None if config.option.collectonly else machine.unwritable_state_dir(state_dir(config, settings))
        if unwritable:  # said before the run writes anything (its cadence lock is the first)
            raise pytest.UsageError(f"bad configuration: {settings.source}: 1 bad value(s):\n"
                                    f"  policy.state_dir: {unwritable}")
        try:
            config.stash[RUN] = run = Run(config, settings)
        except rootfiles.RefusedFile as error:  # another user could redirect what root writes there
            raise pytest.UsageError(str(error)) from None
        except OSError as error:  # the state or reports directory: say which, and what to do
            raise pytest.UsageError(
                f"cannot write {error.filename}: {error.strerror}. The suite keeps its state in [policy] "
                f"state_dir and its reports in [reports] dir: make them writable by this user, or run as "
                f"the user who owns them.") from None
        config.pluginmanager.register(run, "maintenance-run")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist, on the controller: each worker learns the run it is part of."""
    node.workerinput["maintenance_run"] = node.config.stash[RUN_ID]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Checks were selected and will run: probes start what should overlap them (the CPU sample)."""
    config = session.config
    if session.items and not config.option.collectonly:
        config.hook.pytest_maintenance_run_started(config=config, settings=config.stash[SETTINGS])


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    run = config.stash.get(RUN, None)
    if run is None:
        return
    if not config.option.collectonly:  # each box's connection proved, fresh, before any check trusts it
        prove_boxes(selected_boxes(config))  # --maintenance-box: the others are not this run's to touch
    facts = {RunFact.MODE: config.stash[MODE], RunFact.CADENCE: run.cadence,
             RunFact.CONFIGURATION: str(run.settings.source)}
    html.record_run_facts(config, facts)
    junit.record_run_facts(config, facts, suite_name=f"maintenance-{run.cadence}")
    heartbeat.ping(run.settings.heartbeat.address(), "/start", run.settings.heartbeat.timeout_seconds)
    run.alerter.flush_spool()
    if run.state_note:
        run.alerter.send(state_set_aside_alert(run.state_note))


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Around every other plugin's session end: the exit status is set before junitxml and
    pytest-html write their reports, the reports are renamed into place after they wrote them, and then
    the run's line goes into the ledger and the run index is brought up to date."""
    run = session.config.stash.get(RUN, None)
    if run is not None and run.tally.seen == 0 and not session.testsfailed and run.report_paths is not None:
        # No check was selected: nothing ran, so nothing is reported, pinged or alerted about it.
        files.discard_reports(session.config)
        run.report_paths = None
        try:
            return (yield)
        finally:
            files.remove_partials(session.config)
    if run is not None:
        run.remind(session.config)
        run.alerter.finish()
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = run.tally.status(run.alerter.undelivered)
        healthy = session.exitstatus in (ExitStatus.ALL_PASSED, ExitStatus.ALL_FIXED)
        heartbeat.ping(run.settings.heartbeat.address(), "" if healthy else "/fail",
                       run.settings.heartbeat.timeout_seconds)
    try:
        return (yield)
    finally:
        files.publish_reports(session.config)
        if run is not None and run.record(session.exitstatus) is not None:
            run.reindex()


def pytest_unconfigure(config: pytest.Config) -> None:
    end_run()  # no SSH connection outlives the run that opened it (on the controller; workers leave it)
    run = config.stash.get(RUN, None)
    if run is not None and run.lock is not None:
        run.lock.release()


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    return [f"maintenance: config {settings.source}, cadence {cadence_of(config)}, "
            f"remediation mode {config.stash[MODE]}"]


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    """The settings of the box a check looks at: with [[boxes]], each box is a parameter of every check."""
    return box_settings(request.config, getattr(request, "param", None))


def box_settings(config: pytest.Config, name: str | None) -> Settings:
    return config.stash[SETTINGS].box(name) if name else selected_boxes(config)[0]


def box_of_item(item: pytest.Item) -> str:
    name = getattr(getattr(item, "callspec", None), "params", {}).get("settings")
    return name or selected_boxes(item.config)[0].host.name


def selected_boxes(config: pytest.Config) -> tuple[Settings, ...]:
    """The boxes this run looks at: every box of the configuration, or the one `--maintenance-box` names."""
    settings, name = config.stash[SETTINGS], config.option.maintenance_box
    boxes = settings.boxes()
    if name is None:
        return boxes
    chosen = tuple(box for box in boxes if box.host.name == name)
    if not chosen:
        raise pytest.UsageError(f"--maintenance-box {name}: {settings.source} has no box of that name; its boxes: "
                                f"{', '.join(box.host.name for box in boxes)}")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each box of a fleet, then the parameters that come from the configuration
    (hookspecs.pytest_maintenance_parameters)."""
    fleet = len(metafunc.config.stash[SETTINGS].boxes()) > 1  # one box chosen of several keeps its ids (state keys)
    if fleet and "settings" in metafunc.fixturenames:
        boxes = [box.host.name for box in selected_boxes(metafunc.config)]
        metafunc.parametrize("settings", boxes, indirect=True, scope="session")
    for argname, values in configured_parameters(metafunc.config).items():
        if argname in metafunc.fixturenames:
            # Nothing configured (no [[retention]] rule): one skipped instance that says so, not a
            # check that silently vanishes.
            metafunc.parametrize(argname, values or [pytest.param(None, id="none-configured", marks=pytest.mark.skip(
                reason=f"no {argname} in the configuration: nothing to check"))])


def configured_parameters(config: pytest.Config) -> dict[str, list]:
    if PARAMETERS not in config.stash:
        merged: dict[str, list] = {}
        for given in config.hook.pytest_maintenance_parameters(settings=config.stash[SETTINGS]):
            twice = set(merged) & set(given)
            if twice:
                raise pytest.UsageError(f"check parameter(s) {', '.join(sorted(twice))} given by two probe modules")
            merged.update(given)
        config.stash[PARAMETERS] = merged
    return config.stash[PARAMETERS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    fleet = len(config.stash[SETTINGS].boxes()) > 1
    try:
        known = load_all()
        for item in items:
            identity = read_identity(item)
            if identity.remediation and identity.remediation.name not in known:
                raise IdentityError(f"{item.nodeid}: remediate({identity.remediation.name!r}) names no registered "
                                    f"remediation; known: {', '.join(sorted(known))}")
            item.stash[IDENTITY] = identity
            item.user_properties.extend((str(name), str(value)) for name, value in identity.properties())
            item.user_properties.append((str(Prop.BOX), box_of_item(item)))
            if fleet:  # `-n auto --dist loadgroup` keeps each box's checks on one worker
                item.add_marker(pytest.mark.xdist_group(box_of_item(item)))
        check_unique_ids(items)
        items[:] = in_dependency_order(items, box_of_item)
    except IdentityError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    identity = item.stash.get(IDENTITY, None)
    if identity is not None and report.when != "teardown" and (report.when != "setup" or not report.passed):
        settings = item.config.stash[SETTINGS]  # the finding goes on the report and the item (JUnit's teardown)
        flow.settle(item, report, call, flow.Scope(settings, box_settings(item.config, box_of_item(item)),
                    item.config.stash[MODE], state_dir(item.config, settings), item.config.stash[RUN_ID]))
    # Every report, teardown included: JUnit writes the captured output of all phases from the teardown one.
    redactor = item.config.stash[REDACTOR]
    finalise_report(report, redactor)
    # JUnit's properties come from the teardown report, made from the item's own list
    item.user_properties[:] = shown_properties(item.user_properties, redactor)
    return report


def finalise_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """What a check's report carries to the terminal, the controller and both reports, made safe once,
    here, for every writer: secrets masked (core/redact.py), then text from outside shown as text and cut
    (core/text.py): a figure or a finding's message at 4 KB, a traceback, a captured output or an
    attachment at 32 KB, so no escape sequence reaches a terminal and no log line swells a report."""
    report.sections = [(title, shown(content, LONG_LIMIT, LONG_TAIL, redactor.text))
                       for title, content in report.sections]
    report.longrepr = shown_longrepr(report.longrepr, redactor)
    report.user_properties = shown_properties(report.user_properties, redactor)
    # pytest-html attachments (the remediation's output, see html.attach) are written as they are
    report.extras = [{**extra, "content": shown(extra["content"], LONG_LIMIT, LONG_TAIL, redactor.text)}
                     if isinstance(extra.get("content"), str) else extra for extra in getattr(report, "extras", [])]


def shown_properties(properties: list[tuple[str, object]], redactor: Redactor) -> list[tuple[str, str]]:
    """Plain strings (xdist serializes properties and knows no enum), each at most 4 KB."""
    return [(name, shown(str(value), redact=redactor.text)) for name, value in properties]


def shown_longrepr(longrepr, redactor: Redactor):
    """A skip's reason, or a failure's traceback, as it may be shown; pytest's own when it already is."""
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        path, line, reason = longrepr
        return path, line, shown(str(reason), redact=redactor.text)
    text = str(longrepr)
    safe = shown(text, LONG_LIMIT, LONG_TAIL, redactor.text)
    if safe == text:  # keeps pytest's colours and its crash line
        return longrepr
    crash = getattr(longrepr, "reprcrash", None)
    return ShownTraceback(safe, None if crash is None else ShownCrash(
        str(crash.path), crash.lineno, shown(str(crash.message), redact=redactor.text)))


class ShownCrash:
    """Where a check failed and why, in one line: pytest's short summary and JUnit's failure message."""

    def __init__(self, path: str, lineno: int, message: str):
        self.path, self.lineno, self.message = path, lineno, message

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"

    def toterminal(self, terminal) -> None:
        terminal.line(str(self))


class ShownTraceback:
    """A traceback that held a secret, a control character or more than 32 KB, as text made safe.
    pytest prints anything with `toterminal`, reads `reprcrash` when there is one, and xdist sends str()."""

    def __init__(self, text: str, crash: ShownCrash | None):
        self.text = text
        if crash is not None:  # pytest looks for the attribute: absent, not None, when there is no crash line
            self.reprcrash = crash

    def __str__(self) -> str:
        return self.text

    def toterminal(self, terminal) -> None:
        for line in self.text.splitlines():
            terminal.line(line, red=line.startswith("E "), bold=line.startswith("E "))


def pytest_html_results_table_header(cells: list[str]) -> None:
    html.header(cells)


def pytest_html_results_table_row(report, cells: list[str]) -> None:
    html.row(report, cells)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """The operator's verdicts (passed, fixed, failed, unknown, waived, skipped) in pytest's progress and
    its final count, instead of its own outcomes: a fixed finding is not shown as FAILED."""
    found = finding_from(getattr(report, "user_properties", ()))  # collection reports have none
    if found is not None and report.when in ("setup", "call"):
        return found.verdict.value, VERDICT_LETTERS[found.verdict], found.verdict.upper()
    return None


VERDICT_LETTERS = {Verdict.PASSED: ".", Verdict.FIXED: "f", Verdict.FAILED: "F", Verdict.UNKNOWN: "?",
                   Verdict.WAIVED: "w", Verdict.SKIPPED: "s"}


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session) -> None:
    run = session.config.stash.get(RUN, None)
    if run is not None and run.report_paths is not None:
        prefix.extend(summary_module.as_html(run.summary(session.config)))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is not None and run.report_paths is not None:
        summary_module.write_terminal(terminalreporter, run.summary(config), run.report_paths)
    elif run is not None and not config.option.collectonly:
        terminalreporter.write_sep("-", "maintenance summary")
        terminalreporter.write_line(f"no checks for cadence {run.cadence}: nothing was checked and no report "
                                    f"written (exit status {pytest.ExitCode.NO_TESTS_COLLECTED:d})")


def cadence_of(config: pytest.Config) -> str:
    """The cadence named by -m, or 'custom' for any other selection ('all' for none)."""
    expression = (config.option.markexpr or "").strip()
    if expression in tuple(Cadence):
        return expression
    return "all" if not expression else "custom"


def state_dir(config: pytest.Config, settings: Settings):
    directory = settings.policy.state_dir
    return directory if directory.is_absolute() else config.rootpath / directory


def hold_cadence_lock(directory, cadence: str) -> FileLock:
    """An overlapping run of the same cadence leaves at once, touching nothing."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory / f"{cadence}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        pytest.exit(f"another {cadence} run holds {lock.lock_file}: this run checks nothing",
                    returncode=ExitStatus.LOCKED_OUT)
    return lock
