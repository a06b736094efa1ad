"""The seqflow error family.

Every mistake a user can make (a missing file, a bad letter, an unknown config key, a damaged
checkpoint) raises a subclass of :class:`SeqflowError` with a one-line message that names the
file, line or key. The CLI prints that line and exits with code 2; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations


class SeqflowError(Exception):
    """Base class of all user-facing seqflow errors (exit code 2 in the CLI)."""

    exit_code = 2


class InvalidInputError(SeqflowError):
    """A data file or a command-line value cannot be used as given."""


class ConfigError(SeqflowError):
    """A preset, config file or ``--set`` override is unknown or malformed."""


class CheckpointError(SeqflowError):
    """A checkpoint or run folder is missing, damaged or incompatible."""


class ExportError(SeqflowError):
    """An export did not reproduce its model (the check before it is written failed)."""


class OutputError(SeqflowError, OSError):
    """A file or standard output cannot be written (read-only or full disk, no permission,
    a closed stream); also an ``OSError``, so code that catches those still does."""
