"""Probes: plain Python that reads a box and returns data. They never assert (checks do) and need no pytest.

One module per resource, its probe class taking the box (probes/host.py's `Box`, local or over SSH) and the
settings; the operator commands and the remediations use them as the checks do. A module whose configuration
lists the instances to check (services, rules, tables) says so in `parameters(settings)`. `probes/remote/`
holds the readers that run on the box's own python3: the standard library, and the `core` modules they
declare in REMOTE_NEEDS, only. The pytest plugin hands probes to checks as fixtures (plugin/fixtures.py).
"""

from __future__ import annotations

import importlib
import pkgutil


def probe_modules() -> list[str]:
    return [f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)
            if not module.name.startswith("_") and not module.ispkg]


def parameters(settings) -> dict[str, list]:
    """Every probe's configured instances, by the check argument they parametrize ("service": [...])."""
    found: dict[str, list] = {}
    for name in probe_modules():
        declared = getattr(importlib.import_module(name), "parameters", None)
        for argument, values in (declared(settings) if declared else {}).items():
            if argument in found:
                raise ValueError(f"check parameter {argument!r} is given by two probe modules (one is {name})")
            found[argument] = values
    return found
