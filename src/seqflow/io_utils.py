"""Atomic file writes (a temporary file beside the target, then ``os.replace``), and the
checksummed safetensors files of checkpoints and oracles.

A reader never sees a half-written file, and a failure (an exception, Ctrl-C) leaves the target
as it was: the temporary file is removed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from seqflow._version import __version__
from seqflow.errors import CheckpointError, InvalidInputError

CHECKSUM_KEY = "checksum"
"""Metadata key of the tensors' checksum in every safetensors file seqflow writes."""


_TEMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder`` and its subfolders
    (names as :func:`atomic_path` makes them); returns what was removed.

    Only call it on a folder no other process is writing to (``fit --resume`` does, on its
    own run folder).
    """
    removed: list[Path] = []
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_file() and _TEMP_PATTERN.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    A target that exists but is not a regular file (``/dev/null``, ``/dev/stdout``, a named
    pipe) is yielded as it is: renaming over it would replace the device or pipe with a file.

    Raises:
        InvalidInputError: ``path`` is a folder, its folder is missing, or it is not writable.
    """
    target = Path(path)
    if target.exists() and not target.is_dir() and not target.is_file():
        yield target
        return
    if target.is_dir():
        raise InvalidInputError(f"{target}: is a folder, cannot write a file there")
    if not target.parent.is_dir():
        raise InvalidInputError(f"{target}: folder {str(target.parent)!r} does not exist")
    while True:  # an empty, hidden temporary file beside the target (umask applies)
        temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
        except PermissionError:
            raise InvalidInputError(f"{target}: permission denied") from None
    try:
        yield temp
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | Path, *, encoding: str = "utf-8") -> Iterator[TextIO]:
    """Yield a text handle whose content atomically becomes ``path`` when the block ends.

    Newlines are written as ``\\n`` on every platform.
    """
    with atomic_path(path) as temp, open(temp, "w", encoding=encoding, newline="\n") as handle:
        yield handle


@contextmanager
def open_output(path: str | Path | None) -> Iterator[TextIO]:
    """Yield a text handle for an output the user named: ``None`` or ``-`` is standard output, a
    name ending in ``.gz`` is gzip (empty name and mtime 0 in its header: the same text gives
    the same bytes), anything else plain text; files are written atomically
    (:func:`atomic_path`)."""
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    if not str(path).endswith(".gz"):
        with atomic_write(path) as handle:
            yield handle
        return
    with (
        atomic_path(path) as temp,
        open(temp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as handle,
    ):
        yield handle


def save_tensors(
    tensors: dict[str, Any], path: str | Path, metadata: dict[str, str], *,
    make_folder: bool = False,
) -> None:  # fmt: skip
    """Write a safetensors file atomically, with the umask's permissions (``save_file`` alone
    would make it 0600), and the tensors' checksum in the metadata. Tensors sharing memory are
    copied first (safetensors refuses them); ``make_folder`` creates a missing parent folder.
    """
    target = Path(path)
    if make_folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    plain: dict[str, Any] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        v = value.detach().contiguous().cpu()
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        plain[key] = v.clone() if ptr in seen else v
        seen.add(ptr)
    metadata = {**metadata, CHECKSUM_KEY: tensor_checksum(plain)}
    with atomic_path(target) as tmp:
        mode = stat.S_IMODE(tmp.stat().st_mode)
        save_file(plain, tmp, metadata)
        tmp.chmod(mode)


def tensor_checksum(tensors: dict[str, Any]) -> str:
    """``blake2b-128:<hex>`` of every tensor's name, dtype, shape and bytes, in name order: the
    safetensors format checks only its header, this catches a flipped byte or a spliced file."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        value = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
        if value.numel():
            digest.update(value.reshape(-1).view(torch.uint8).numpy().data)
    return f"blake2b-128:{digest.hexdigest()}"


def read_tensors(path: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The tensors and header metadata of the safetensors file of a ``kind`` (e.g.
    ``checkpoint``), its checksum verified; :class:`CheckpointError` when the file is missing,
    unreadable or damaged."""
    source = str(path)
    if not Path(path).is_file():
        raise CheckpointError(f"{source}: no such {kind} file")
    try:
        with safe_open(source, framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{source}: not a readable safetensors file ({first})") from None
    recorded = (metadata or {}).get(CHECKSUM_KEY)  # files older than checksums carry none
    if recorded is not None and recorded != tensor_checksum(tensors):
        raise CheckpointError(
            f"{source}: checksum mismatch: the file is damaged or was altered after it was written"
        )
    return tensors, metadata


def check_format(
    meta: dict[str, str] | None, source: str, *, fmt: str, newest: int, kind: str
) -> dict[str, str]:
    """Header metadata ``meta``, checked to have ``format`` ``fmt`` and a ``format_version``;
    :class:`CheckpointError` when it is another file (``kind`` names what was expected, e.g.
    ``seqflow checkpoint``), has no valid version, or is newer than ``newest``."""
    if not meta or meta.get("format") != fmt:
        raise CheckpointError(f"{source}: not a {kind} (no {fmt} metadata)")
    noun = kind.removeprefix("seqflow ")
    try:
        version = int(meta["format_version"])
    except (KeyError, ValueError):
        raise CheckpointError(f"{source}: {noun} has no valid format_version") from None
    if version > newest:
        raise CheckpointError(
            f"{source}: {noun} format {version} is newer than this seqflow ({__version__} "
            f"reads format <= {newest}); upgrade seqflow"
        )
    return meta
