"""Atomic file writes (a temporary file beside the target, then ``os.replace``) and the
checksummed safetensors files of checkpoints and oracles.

A reader never sees a half-written file; a failure (an exception, Ctrl-C) removes the temporary
file and turns an OS error into one :class:`OutputError` line naming the file. A writer killed
outright (``kill -9``) leaves its temporary file, which the next write into that folder removes
(the name carries the writer's PID). Of seqflow, it imports only ``errors`` and ``_version``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import secrets
import socket
import stat
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from seqflow._version import __version__
from seqflow.errors import CheckpointError, InvalidInputError, OutputError, no_such

CHECKSUM_KEY = "checksum"
"""Metadata key of the checksum of tensors and metadata (``blake2b-128+metadata:``; older
formats: ``blake2b-128:``, of the tensors alone) in every safetensors file seqflow writes."""
_SCHEME = "blake2b-128+metadata:"


def _temp_beside(target: Path, made: list[Path]) -> None:
    """Create an empty temporary file ``.NAME.PID-HOST-RANDOM.tmp`` beside ``target`` (after
    removing dead writers' ones there), its path appended to ``made`` *before* it is created,
    so that a signal right after the creation cannot leave it behind."""
    if target.is_dir():
        raise InvalidInputError(f"{target}: is a folder, cannot write a file there")
    folder = target.parent
    if not folder.is_dir():
        raise InvalidInputError(f"{target}: folder {str(folder)!r} does not exist")
    remove_stale_temps(folder, recursive=False)
    while True:
        made.append(folder / f".{target.name}.{os.getpid()}-{_HOST}-{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(made[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return
        except FileExistsError:
            made.pop()
        except OSError as error:
            made.pop()
            raise OutputError(f"cannot write {target}: {os_cause(error)}") from None


_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()
_TEMP_PATTERN = re.compile(r"^\..+\.(?:(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{6})-)?[0-9a-f]{8}\.tmp$")


def remove_stale_temps(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Delete and return the temporary files in ``folder`` (and its subfolders when
    ``recursive``) of writers of this host no longer alive, or of older seqflow versions."""
    removed: list[Path] = []
    root = Path(folder)  # not a folder: globs find nothing
    for path in root.rglob(".*.tmp") if recursive else root.glob(".*.tmp"):
        found = _TEMP_PATTERN.match(path.name)
        if found and path.is_file() and _writer_is_dead(found["pid"], found["host"]):
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a read-only folder: the write that follows says so
                continue
            removed.append(path)
    return removed


def _writer_is_dead(pid: str | None, host: str | None) -> bool:
    """Whether the writer a temporary file names is gone (an unnamed one is; one on another
    host, or where processes cannot be probed, counts as alive)."""
    if pid is None:
        return True
    if host != _HOST or os.name != "posix":
        return False
    try:
        os.kill(int(pid), 0)
    except OSError as error:  # EPERM: alive, another user's
        return isinstance(error, ProcessLookupError)
    return False


def os_cause(error: BaseException) -> str:
    """The cause of an OS error in words, e.g. ``read-only file system`` (safetensors' errors
    carry the OS error as text: ``... No space left on device (os error 28)``)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    code = re.search(r"\(os error ([0-9]+)\)", str(error))
    if code:
        return os_cause(OSError(int(code[1]), os.strerror(int(code[1]))))
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@contextmanager
def reporting_writes(name: str | Path, *paths: Path) -> Iterator[None]:
    """Turn an OS error while writing ``name`` into one :class:`OutputError` line, ``cannot
    write NAME: CAUSE``; errors naming another file than ``name`` or ``paths``, those already
    reported, and broken pipes (the reader left: see the CLI) pass through."""
    try:
        yield
    except (BrokenPipeError, OutputError):
        raise
    except (OSError, SafetensorError) as error:
        other = getattr(error, "filename", None)
        if other is not None and str(other) not in {str(name), *map(str, paths)}:
            raise
        raise OutputError(f"cannot write {name}: {os_cause(error)}") from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    A target that exists but is not a regular file (``/dev/null``, a named pipe) is yielded as
    it is: renaming over it would replace the device or pipe with a file.

    Raises:
        InvalidInputError: ``path`` is a folder or its folder is missing.
        OutputError: the file cannot be written (``cannot write PATH: CAUSE``).
    """
    target = Path(path)
    if target.exists() and not target.is_dir() and not target.is_file():
        with reporting_writes(target):
            yield target
        return
    made: list[Path] = []
    try:
        _temp_beside(target, made)
        (temp,) = made
        with reporting_writes(target, temp):
            yield temp
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(temp, target)
    except BaseException:
        for temp in made:
            temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | Path) -> Iterator[TextIO]:
    """Yield a UTF-8 text handle (``\\n`` newlines) whose content atomically becomes ``path``."""
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8", newline="\n") as handle:
        yield handle


@contextmanager
def open_output(path: str | Path | None) -> Iterator[TextIO]:
    """Yield a UTF-8 text handle for an output the user named: ``None`` or ``-`` is standard
    output, a name ending in ``.gz`` is gzip (empty name and mtime 0 in its header: the same text
    gives the same bytes), anything else plain text; files are written atomically."""
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_path(path) as temp, open(temp, "wb") as raw:
        gz = str(path).endswith(".gz")
        binary = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if gz else raw
        with binary, io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as handle:
            yield handle


def save_tensors(
    tensors: dict[str, Any], path: str | Path, metadata: dict[str, str], *,
    make_folder: bool = False,
) -> None:  # fmt: skip
    """Write a safetensors file atomically, with the umask's permissions (``save_file`` alone
    would make it 0600), its checksum added to ``metadata``; tensors sharing memory are copied.

    Args:
        tensors: name -> tensor (any device; written from CPU copies).
        metadata: string metadata for the header.
        make_folder: create a missing parent folder (else :class:`InvalidInputError`).
    """
    target = Path(path)
    if make_folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    plain: dict[str, Any] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        tensor = value.detach().contiguous().cpu()
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else -1
        plain[key] = tensor.clone() if pointer in seen else tensor
        seen.add(pointer)
    metadata = {**metadata, CHECKSUM_KEY: file_checksum(plain, metadata)}
    with atomic_path(target) as tmp:
        mode = stat.S_IMODE(tmp.stat().st_mode)
        save_file(plain, tmp, metadata)
        tmp.chmod(mode)


def tensor_checksum(tensors: dict[str, Any]) -> str:
    """``blake2b-128:<hex>`` of every tensor's name, dtype, shape and bytes, in name order: a
    flipped byte or a file spliced from two is caught (safetensors checks only its header)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        value = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
        if value.numel():
            digest.update(value.reshape(-1).view(torch.uint8).numpy().data)
    return f"blake2b-128:{digest.hexdigest()}"


def file_checksum(tensors: dict[str, Any], metadata: dict[str, str]) -> str:
    """``blake2b-128+metadata:<hex>`` of :func:`tensor_checksum` and every metadata item but
    the checksum itself, in key order: an edited alphabet or config is caught as a flipped
    weight is."""
    digest = hashlib.blake2b(tensor_checksum(tensors).encode(), digest_size=16)
    for key in sorted(metadata):
        if key != CHECKSUM_KEY:
            digest.update(f"\0{len(key)}:{key}\0{len(metadata[key])}:{metadata[key]}".encode())
    return f"{_SCHEME}{digest.hexdigest()}"


def verify_checksum(
    tensors: dict[str, Any], metadata: dict[str, str] | None, source: str, *, newest: int
) -> None:
    """Raise :class:`CheckpointError` when the file's checksum does not match its tensors and
    metadata, or a file of format ``newest`` (the one seqflow writes now) has none. Older
    formats (checksum of the tensors only, or none) are read with a warning; newer ones are
    left to :func:`check_format` to refuse."""
    meta = metadata or {}
    recorded = meta.get(CHECKSUM_KEY)
    mismatch = CheckpointError(
        f"{source}: checksum mismatch: the file is damaged or was altered after it was written"
    )
    if recorded is not None and recorded.startswith(_SCHEME):
        if recorded != file_checksum(tensors, meta):
            raise mismatch
        return
    try:
        version = int(meta.get("format_version", 0))
    except ValueError:  # garbled: counts as newer than any, check_format names the problem
        version = 2**31
    if version > newest or "format" not in meta:  # check_format refuses these
        return
    if version == newest:
        raise CheckpointError(
            f"{source}: {'no checksum' if recorded is None else 'no checksum of its metadata'} "
            f"(format {newest} files carry one): the file is damaged or was altered"
        )
    if recorded is not None and recorded != tensor_checksum(tensors):
        raise mismatch
    warnings.warn(
        f"{source}: {f'format {version}' if version else 'unversioned'} file of an older "
        "seqflow: its metadata is not covered by a checksum; read as it is",
        stacklevel=4,
    )


def read_tensors(
    path: str | Path, kind: str, *, newest: int
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The tensors and header metadata of the safetensors file of a ``kind`` (e.g.
    ``checkpoint``) of format version ``newest``, checksum verified; :class:`CheckpointError`
    when the file is missing, unreadable or damaged."""
    source = str(path)
    if not Path(path).is_file():
        raise CheckpointError(f"{source}: {no_such(path, kind + ' file')}")
    try:
        with safe_open(source, framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{source}: not a readable safetensors file ({first})") from None
    verify_checksum(tensors, metadata, source, newest=newest)
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
