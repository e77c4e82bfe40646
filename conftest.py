"""Loads the probes every check may use and the maintenance plugin that glues checks to remediations,
alerts and reports. Probes first: the plugin imports some of them, and pytest must load them itself."""

pytest_plugins = [
    "fixtures.host",
    "fixtures.resources",
    "fixtures.endpoints",
    "fixtures.logs",
    "fixtures.files",
    "suite.plugin",
]
