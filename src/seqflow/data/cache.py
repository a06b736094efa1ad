"""A tokenised on-disk cache of sequence files, opened again as memory maps.

A read :class:`SequenceTable` is stored as ``.npy`` arrays plus a JSON manifest in
``<root>/<file name>-<key>/`` (the key hashes the file's absolute path and the reader options).
The next read maps the arrays (``np.load(mmap_mode="c")``): nothing is tokenised or copied, pages
are file backed, and copy-on-write keeps the tensors writable. An entry is used only when the
cache format, seqflow version, options and the file's size, ``mtime_ns`` and fingerprint all
match; else, or when it is damaged (a logged warning, never an error), it is rebuilt in a
temporary folder and published with ``os.replace``, so no reader sees half an entry.

``cache`` settings: ``auto`` (the default) caches files of at least :data:`AUTO_MIN_BYTES` in
``.seqflow-cache/`` beside the file, or in the user cache folder when that one is not writable;
``on`` does the same for any size; ``off`` never caches; anything else is a folder to cache in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqflow._version import __version__
from seqflow.data.alphabet import Alphabet
from seqflow.data.readers import read_sequences
from seqflow.data.table import DuplicateIdWarning, ReadReport, RecordIds, SequenceTable

CACHE_FORMAT = 1
"""Layout version of an entry; bump it when the arrays or the manifest change meaning."""
AUTO_MIN_BYTES = 64 * 2**20
"""Smallest file that ``cache="auto"`` caches: below it reading takes about a second."""
FOLDER = ".seqflow-cache"
MANIFEST = "manifest.json"
EDGE_BYTES = 2**20
"""Bytes read from each end of the file for its fingerprint."""
_REQUIRED = ("tokens", "lengths", "record_index", "ids_data", "ids_ends")
_OPTIONAL = ("labels", "values", "signal", "splits")
_READER = inspect.signature(read_sequences)

log = logging.getLogger(__name__)


def source_stamp(path: Path) -> dict[str, Any]:
    """What identifies the content of the regular file ``path`` without reading all of it: its
    size, ``mtime_ns`` and a BLAKE2b fingerprint of the size and the first and last MiB (an edit
    of the middle that keeps the size and restores the mtime on purpose is not caught)."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        digest = hashlib.blake2b(str(info.st_size).encode(), digest_size=16)
        digest.update(handle.read(EDGE_BYTES))
        if info.st_size > EDGE_BYTES:
            handle.seek(max(EDGE_BYTES, info.st_size - EDGE_BYTES))
            digest.update(handle.read(EDGE_BYTES))
    return {
        "path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns,
        "fingerprint": digest.hexdigest(),
    }  # fmt: skip


def cache_roots(setting: str, path: str | Path) -> list[Path]:
    """Folders where ``path``'s entries are looked for, in order; empty: do not cache (always
    so for standard input, pipes and other non-regular files)."""
    if str(path) == "-" or setting == "off":
        return []
    try:
        info = os.stat(path)
    except OSError:
        return []  # the reader names the problem
    if not stat.S_ISREG(info.st_mode):
        return []
    if setting in ("auto", "on"):
        if setting == "auto" and info.st_size < AUTO_MIN_BYTES:
            return []
        user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqflow"
        return [Path(path).absolute().parent / FOLDER, user]
    return [Path(setting).expanduser()]


def read_cached(
    path: str | Path,
    *,
    cache: str = "auto",
    check: Callable[[SequenceTable], None] | None = None,
    **options: Any,
) -> SequenceTable:
    """:func:`~seqflow.data.read_sequences` through the cache: tokenise once, then memory-map.

    Args:
        path: the data file (``"-"``, pipes and non-regular files are read without a cache).
        cache: ``auto``, ``on``, ``off`` or a folder (see the module docstring).
        check: called with a fresh read before it is cached; what it raises keeps the table
            out of the cache (``fit``'s memory guard).
        options: the keyword arguments of :func:`~seqflow.data.read_sequences`.

    Returns:
        the table a fresh read returns, tensors backed by the cache's memory maps when cached;
        a :class:`DuplicateIdWarning` of the first read is repeated on every read.
    """
    roots = cache_roots(cache, path)
    if not roots:
        return read_sequences(path, **options)
    source = Path(path).resolve()
    stamp = source_stamp(source)
    bound = _READER.bind_partial(**options)
    bound.apply_defaults()
    wanted = dict(bound.arguments)  # every reader option, its default filled in
    if wanted["on_invalid"] != "replace":
        wanted["seed"] = None  # only the replace policy draws
    digest = json.dumps({"path": str(source), "options": wanted}, sort_keys=True).encode()
    name = f"{source.name[:64]}-{hashlib.blake2b(digest, digest_size=8).hexdigest()}"
    expect = {"format": CACHE_FORMAT, "seqflow": __version__, "options": wanted, "source": stamp}
    for root in roots:
        table = _open(root / name, expect, str(path))
        if table is not None:
            log.info("%s: read from the cache %s", path, root / name)
            return table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = read_sequences(path, **options)
    for w in caught:
        warnings.warn(w.message, stacklevel=2)
    if check is not None:
        check(table)
    if source_stamp(source) != stamp:
        log.info("%s: changed while it was read; not cached", path)
        return table
    duplicates = [str(w.message) for w in caught if issubclass(w.category, DuplicateIdWarning)]
    arrays = _arrays(table)
    manifest = {
        **expect, "alphabet": table.alphabet.to_dict(), "label_names": list(table.label_names),
        "report": dataclasses.asdict(table.report), "warnings": duplicates,
        "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in arrays.items()},
    }  # fmt: skip
    for i, root in enumerate(roots):
        try:
            entry = _store(root, name, arrays, manifest)
        except OSError as err:
            level = logging.INFO if i + 1 < len(roots) else logging.WARNING
            log.log(level, "%s: cannot write a cache in %s (%s)", path, root, err)
            continue
        log.info("%s: cached in %s", path, entry)
        return _open(entry, expect, str(path), replay=False) or table
    return table


def _arrays(table: SequenceTable) -> dict[str, np.ndarray]:
    """The table's arrays by file name (numpy views of its tensors, not copies)."""
    ids_data, ids_ends = table.ids.arrays()  # type: ignore[attr-defined]  # RecordIds
    tensors = {key: getattr(table, key) for key in (*_REQUIRED[:3], *_OPTIONAL)}
    arrays = {key: tensor.numpy() for key, tensor in tensors.items() if tensor is not None}
    return {**arrays, "ids_data": ids_data, "ids_ends": ids_ends}


def _store(root: Path, name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Write the entry in a temporary folder beside ``root / name``, then publish it."""
    root.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    target = root / name
    try:
        for key, array in arrays.items():
            with open(temp / f"{key}.npy", "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                os.fsync(handle.fileno())
        with open(temp / MANIFEST, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def _publish(temp: Path, target: Path) -> None:
    """Move ``temp`` to ``target``; a stale ``target`` is moved aside first. If another process
    publishes the same entry in between, its entry is kept (it was built from the same file)."""
    try:
        os.replace(temp, target)
        return
    except OSError:
        if not target.exists():
            raise
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    try:
        os.replace(target, old / "entry")
        os.replace(temp, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _open(
    entry: Path, expect: dict[str, Any], source: str, *, replay: bool = True
) -> SequenceTable | None:
    """The table of ``entry``, or None when it is missing, stale (log) or damaged (warning);
    with ``replay``, the duplicate-id warning of the first read is warned again."""
    if not entry.is_dir():
        return None
    try:
        with open(entry / MANIFEST, encoding="utf-8") as handle:
            manifest = json.load(handle)
        if not isinstance(manifest, dict):
            raise ValueError("the manifest is not a JSON object")
        stale = [key for key, value in expect.items() if manifest.get(key) != value]
        if stale:
            log.info("%s: cache entry %s is out of date (%s); rebuilding", source, entry, stale)
            return None
        table = _table(entry, manifest, source)
        repeated = [DuplicateIdWarning(str(message)) for message in manifest["warnings"]]
    except Exception as err:  # whatever is wrong with an entry, rebuilding it is the answer
        log.warning("%s: cache entry %s is damaged (%s); rebuilding it", source, entry, err)
        return None
    for warning in repeated if replay else ():
        warnings.warn(warning, stacklevel=3)
    return table


def _table(entry: Path, manifest: dict[str, Any], source: str) -> SequenceTable:
    specs = manifest["arrays"]
    if not set(_REQUIRED) <= set(specs) <= {*_REQUIRED, *_OPTIONAL}:
        raise ValueError(f"the manifest lists the arrays {sorted(specs)}")
    arrays: dict[str, Any] = {}
    for key, spec in specs.items():
        array = np.load(entry / f"{key}.npy", mmap_mode="c", allow_pickle=False)
        if array.dtype.str != spec["dtype"] or list(array.shape) != spec["shape"]:
            raise ValueError(f"{key}.npy is {array.dtype.str} {list(array.shape)}, not {spec}")
        arrays[key] = array
    ids = RecordIds(arrays.pop("ids_data"), arrays.pop("ids_ends"))
    tensors: dict[str, Any] = dict.fromkeys(_OPTIONAL)
    tensors.update((key, torch.from_numpy(array)) for key, array in arrays.items())
    return SequenceTable(
        ids=ids, alphabet=Alphabet.from_dict(manifest["alphabet"]), source=source,
        label_names=tuple(manifest["label_names"]), report=ReadReport(**manifest["report"]),
        **tensors,
    )  # fmt: skip
