"""Errors of configuration loading."""


class ConfigError(Exception):
    """A setting is missing, unknown or malformed; the message names where it came from."""
