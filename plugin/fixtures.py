"""The probes, handed to the checks as pytest fixtures: the one place where probes meet pytest.

Each fixture builds a probe of probes/ for the check's box (`settings` is that box's, in a fleet) or takes it
from the run's cache, so that checks, remediations and the re-check after a remediation share one reading.
A check names the fixture; the probe behind it is plain Python (testinfra's modules and its plugin, apart).
"""

from __future__ import annotations

import pytest

from configuration import Settings
from probes import parameters
from probes.backups import BackupProbe
from probes.baselines import BaselineStore, baselines_path
from probes.benchmarks import Benchmarks
from probes.cache import ProbeCache
from probes.certificates import CertificateProbe
from probes.database import Database
from probes.endpoints import AgentApi, connect_target, connect_tunnel, read_dashboard, read_exchange
from probes.errors import ErrorAnalysis, ErrorHandlers, ErrorReview
from probes.files import FileProbe
from probes.hardware import HardwareProbe
from probes.host import Box, box_of
from probes.logs import DailyLogs, WeekLogs
from probes.monitoring import MonitoringProbe
from probes.pentest import PentestProbe
from probes.resources import ResourceProbe, start_cpu_samples
from probes.restoredb import drill
from probes.rotation import RotationProbe
from probes.security import SecurityProbe
from probes.securityaudit import AuditProbe
from probes.services import ServiceManager, service_manager
from probes.strategies import StrategyFile, read_strategy_file
from probes.system import SystemReadings, SystemReview
from probes.tasks import TaskProbe
from probes.updates import UpdatesProbe

CACHE = pytest.StashKey[ProbeCache]()


def probe_cache(config: pytest.Config) -> ProbeCache:
    """The run's one cache of probes, per process (each xdist worker has its own), closed when the run ends."""
    if CACHE not in config.stash:
        config.stash[CACHE] = cache = ProbeCache()
        config.add_cleanup(cache.close)
    return config.stash[CACHE]


def services_of(config: pytest.Config, settings: Settings) -> ServiceManager:
    """The box's service manager: the checks' fixture and the remediations take the same one."""
    return probe_cache(config).get("services", settings.host.name, lambda: service_manager(settings))


def database_of(config: pytest.Config, settings: Settings) -> Database:
    """The run's one database connection per box, closed when the run ends."""
    return probe_cache(config).get("database", settings.host.name, lambda: Database(settings, box_of(settings)))


# ---- the run's hooks


def pytest_maintenance_parameters(settings: Settings) -> dict[str, list]:
    try:
        return parameters(settings)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_maintenance_run_started(config: pytest.Config, settings: Settings) -> None:
    """The CPU sample of each box starts with the run, so its interval passes while the other checks work."""
    for name, probe in start_cpu_samples(settings).items():
        probe_cache(config).put("resources", name, probe)


# ---- the box


@pytest.fixture(scope="session")
def box(settings: Settings) -> Box:
    """The box, once it answered: if it does not, every check of it fails here, cached by pytest for
    the session, so the checks are UNKNOWN at once and one "box unreachable" alert tells it."""
    found = box_of(settings)
    found.answers()
    return found


@pytest.fixture(autouse=True)
def _box_still_answers(request: pytest.FixtureRequest) -> None:
    """A check of a box that stopped answering earlier in this run is UNKNOWN at once with that reason, even
    when what it asserts on was read before (a probe keeps the service states it read for every service)."""
    if "box" in request.fixturenames:
        request.getfixturevalue("box").refuse_if_unreachable()


@pytest.fixture(scope="session")
def host(box: Box):
    """Overrides pytest-testinfra's fixture: the backend comes from the configuration file."""
    return box.host


# ---- one fixture per probe; `box` first, so a box that does not answer is UNKNOWN before anything is asked


@pytest.fixture(scope="session")
def services(pytestconfig, box: Box, settings: Settings) -> ServiceManager:
    return services_of(pytestconfig, settings)


@pytest.fixture(scope="session")
def database(pytestconfig, box: Box, settings: Settings) -> Database:
    return database_of(pytestconfig, settings)


@pytest.fixture(scope="session")
def resources(pytestconfig, box: Box, settings: Settings) -> ResourceProbe:
    return probe_cache(pytestconfig).get("resources", settings.host.name,
                                          lambda: ResourceProbe(box, settings.resources.cpu_sample_seconds))


@pytest.fixture(scope="session")
def agent_api(box: Box, settings: Settings) -> AgentApi:
    return AgentApi(box, settings.api.base_url, settings.api.timeout_seconds)


@pytest.fixture
def dashboard(box: Box, settings: Settings):
    """Reads the dashboard each time it is called, so a re-check after a restart sees the new state."""
    return lambda: read_dashboard(box, settings)


@pytest.fixture
def tunnel(box: Box, settings: Settings):
    return lambda: connect_tunnel(box, settings)


@pytest.fixture
def probe(box: Box, settings: Settings):
    """TCP reachability of one `[emergency] probe_targets` entry (HOST:PORT): None, or what went wrong."""
    return lambda target: connect_target(box, settings, target)


@pytest.fixture
def exchange(box: Box, settings: Settings):
    return lambda: read_exchange(box, settings)


@pytest.fixture
def daily_logs(box: Box, settings: Settings) -> DailyLogs:
    return DailyLogs(box, settings.paths.log_dir, settings.paths.known_errors)


@pytest.fixture
def files(box: Box, settings: Settings) -> FileProbe:
    return FileProbe(box, settings)


@pytest.fixture
def backups(box: Box, settings: Settings) -> BackupProbe:
    return BackupProbe(box, settings)


@pytest.fixture
def restore_drill(box: Box, settings: Settings):
    """drill(dump, taken_at) for the check that runs it."""
    return lambda dump, taken_at: drill(box, settings, dump, taken_at)


@pytest.fixture(scope="session")
def baselines(settings: Settings) -> BaselineStore:
    return BaselineStore(baselines_path(settings))


@pytest.fixture(scope="session")
def certificates(box: Box, settings: Settings) -> CertificateProbe:
    return CertificateProbe(box, settings)


@pytest.fixture(scope="session")
def hardware(box: Box, settings: Settings) -> HardwareProbe:
    return HardwareProbe(box, settings)


@pytest.fixture(scope="session")
def monitoring(box: Box, settings: Settings) -> MonitoringProbe:
    return MonitoringProbe(box, settings)


@pytest.fixture(scope="session")
def security(box: Box, settings: Settings) -> SecurityProbe:
    """One probe per box and run: its readings are shared by the instances of each check."""
    return SecurityProbe(box, settings)


@pytest.fixture(scope="session")
def pentest(box: Box, settings: Settings, security: SecurityProbe) -> PentestProbe:
    """One probe per box and run: the ports are tried once, whatever asks for them."""
    return PentestProbe(box, settings, security)


@pytest.fixture(scope="session")
def audit(box: Box, settings: Settings) -> AuditProbe:
    """One probe per box and run: its readings are shared by the instances of each check."""
    return AuditProbe(box, settings)


@pytest.fixture(scope="session")
def rotation(box: Box, settings: Settings) -> RotationProbe:
    return RotationProbe(box, settings)


@pytest.fixture(scope="session")
def tasks(settings: Settings) -> TaskProbe:
    return TaskProbe(settings)


@pytest.fixture(scope="session")
def updates(box: Box, settings: Settings) -> UpdatesProbe:
    """One probe per box and run: apt is asked once for every update check."""
    return UpdatesProbe(box, settings)


@pytest.fixture(scope="session")
def system_review(box: Box, settings: Settings) -> SystemReview:
    return SystemReview(box, settings)


@pytest.fixture(scope="session")
def error_analysis(box: Box, settings: Settings) -> ErrorAnalysis:
    return ErrorAnalysis(box, settings)


@pytest.fixture(scope="session")
def error_handlers(box: Box, settings: Settings, services: ServiceManager) -> ErrorHandlers:
    return ErrorHandlers(box, list(settings.error_handling.handlers), services)


@pytest.fixture(scope="session")
def benchmarks(box: Box, settings: Settings) -> Benchmarks:
    return Benchmarks(box, settings)


@pytest.fixture(scope="session")
def weekly_logs(box: Box, settings: Settings) -> WeekLogs:
    return WeekLogs(box, settings.paths.log_dir, settings.weekly_review)


@pytest.fixture
def strategy_file(box: Box, settings: Settings) -> StrategyFile:
    return read_strategy_file(box, settings)


@pytest.fixture
def system_readings(box: Box, settings: Settings) -> SystemReadings:
    return SystemReadings(box, settings.weekly_review)


@pytest.fixture
def error_review(agent_api: AgentApi) -> ErrorReview:
    return ErrorReview(agent_api)
