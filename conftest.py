"""Loads the maintenance plugin (plugin/), which loads the probes (probes/) and glues checks to
remediations, alerts and reports."""

pytest_plugins = ["plugin"]
