"""The one configuration file: its schema, and loading it with errors an operator can act on."""

from configuration.schema import ENV_VAR, EXAMPLE, ConfigError, Settings, describe, load, resolve_path

__all__ = ["ENV_VAR", "EXAMPLE", "ConfigError", "Settings", "describe", "load", "resolve_path"]
