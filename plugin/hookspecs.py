"""The suite's own extension points: probe modules implement these to join a run.

Names start with `pytest_` (pytest ignores other names on a plugin); registered by the glue in
`pytest_addhooks`.
"""

from __future__ import annotations

import pytest

from configuration import Settings


def pytest_maintenance_parameters(settings: Settings) -> dict[str, list]:
    """Values of check parameters that come from the configuration, by argument name.

    A probe module returns e.g. {"service": settings.services.critical()}: every check that takes
    a `service` argument is then parametrized with the configured services. A name given by two
    modules is an error.
    """


def pytest_maintenance_run_started(config: pytest.Config, settings: Settings) -> None:
    """Checks were collected and are about to run: start what should overlap them (the CPU sample),
    on the controller and on each xdist worker. Not called when nothing was selected."""
