"""The seqflow error family.

Every mistake a user can make (a missing file, a bad letter, an unknown config key, a damaged
checkpoint) raises a subclass of :class:`SeqflowError` with a one-line message that names the
file, line or key. The CLI prints that line and exits with code 2; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable


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


def listed(items: Iterable[object], limit: int = 8) -> str:
    """The first ``limit`` of ``items``, comma-separated, then how many more: a list in an
    error message stays one short line however long it is (a model with 10,000 labels)."""
    texts = [str(x) if len(str(x)) <= 40 else str(x)[:39] + "…" for x in items]
    more = f", ... ({len(texts) - limit} more)" if len(texts) > limit else ""
    return ", ".join(texts[:limit]) + more


def no_such(path: str | os.PathLike[str], noun: str = "file") -> str:
    """Why ``path`` cannot be found, in words: ``no such <noun>``, or what really stands in
    the way (a symbolic link loop, a broken link, a folder that cannot be entered)."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop (ELOOP): a link points, in the end, back to itself"
        if err.errno == errno.EACCES:
            return f"permission denied (a folder on the way to the {noun} cannot be entered)"
        if os.path.islink(path):
            return f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
    return f"no such {noun}"
