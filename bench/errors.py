"""The one error a user's bad input raises: a config key (or data, or folder) the harness cannot run with. Its message
is one line; the command line prints it and exits 1, before any compute is spent."""


class ConfigError(ValueError):
    """A config key has a value the harness cannot run with."""
