"""Loads the maintenance plugin and the probes every check may use."""

pytest_plugins = [
    "suite.plugin",
    "fixtures.host",
    "fixtures.resources",
    "fixtures.endpoints",
    "fixtures.logs",
    "fixtures.files",
]
