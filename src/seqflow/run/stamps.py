"""The fingerprint of a run's data: recorded with every checkpoint, checked by ``--resume``.

A stamp is the token cache's :func:`~seqflow.data.cache.source_stamp` of each data file
(size, ``mtime_ns`` and a hash of the size and the first and last MiB): a resumed run that
would silently train on edited data is refused instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from seqflow.data.cache import EDGE_BYTES, source_stamp
from seqflow.errors import InvalidInputError


def data_stamps(source: str) -> list[dict[str, Any]]:
    """Stamps of the data files of ``source`` (as :func:`~seqflow.run.data_source` records
    it): one for a file, one per file of a folder of libraries or a comma list; none for
    standard input (``-``)."""
    path = Path(source)
    if source == "-":
        files: list[Path] = []
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    elif path.exists() or "," not in source:
        files = [path]
    else:
        files = [Path(part).resolve() for part in source.split(",") if part]
    return [source_stamp(file) for file in files if file.is_file()]


def check_data_unchanged(recorded: Any, source: str, run_dir: Path) -> None:
    """Refuse data that differ from the stamps a checkpoint ``recorded`` (None: a run saved
    before stamps, not checked) with an :class:`InvalidInputError` naming the file and what
    changed (its size, its first or last MiB, its modification time where the hash does not
    cover the whole file)."""
    if not isinstance(recorded, list):
        return
    now = data_stamps(source)
    if len(now) != len(recorded):
        raise InvalidInputError(
            f"{source}: {len(now)} data files where the run recorded {len(recorded)}; "
            f"{_ALLOW} (seqflow fit --resume {run_dir} --allow-changed-data)"
        )
    for old, new in zip(recorded, now, strict=True):
        change = _change(old, new)
        if change:
            raise InvalidInputError(
                f"{new['path']}: changed since the run recorded it ({change}); {_ALLOW}"
            )


_ALLOW = "to train on it as it is now, resume with --allow-changed-data"


def _change(old: Any, new: dict[str, Any]) -> str | None:
    """What differs between a recorded stamp and the file's stamp now, or None."""
    old = old if isinstance(old, dict) else {}
    if old.get("size") != new["size"]:
        return f"size {old.get('size')} -> {new['size']} bytes"
    if old.get("fingerprint") != new["fingerprint"]:
        return "content of its first or last MiB"
    if old.get("mtime_ns") != new["mtime_ns"] and new["size"] > 2 * EDGE_BYTES:
        return f"modified {_when(old.get('mtime_ns'))} -> {_when(new['mtime_ns'])}"
    return None


def _when(ns: Any) -> str:
    if not isinstance(ns, int):
        return "?"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
