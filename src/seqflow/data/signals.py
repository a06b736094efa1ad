"""Read per-position signal tracks (one row per sequence, in the order of the sequence file's
records) from ``.npy``, ``.npz`` or text files; a file holding Python objects is refused, never
unpickled (``allow_pickle=False``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from seqflow.data._buffer import pad_rows
from seqflow.data._delimited import SEPARATORS
from seqflow.data._source import quote
from seqflow.errors import InvalidInputError, listed, no_such

SUFFIXES = (".npy", ".npz", ".txt", ".csv", ".tsv")
"""Signal file types, told by the suffix."""

_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK\x03\x04"}


def _load_array(path: Path, name: str) -> np.ndarray:
    """The array of a ``.npy`` file, or the single (or ``signal``) array of a ``.npz`` file."""
    magic = _MAGIC[path.suffix.lower()]
    with path.open("rb") as handle:
        if handle.read(len(magic)) != magic:
            raise InvalidInputError(f"{name}: not a valid numpy {path.suffix.lower()} file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return np.asarray(loaded)
        with loaded:
            names = list(loaded.files)
            if len(names) != 1 and "signal" not in names:
                listing = listed(repr(n) for n in names) or "none"
                raise InvalidInputError(
                    f"{name}: expected one array or an array named 'signal'; arrays: {listing}"
                )
            return np.asarray(loaded["signal" if "signal" in names else names[0]])
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise InvalidInputError(
                f"{name}: holds Python objects (pickled); only numeric arrays are read"
            ) from None
        raise InvalidInputError(f"{name}: not a valid numpy file ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise InvalidInputError(f"{name}: not a valid numpy file ({err})") from None


def _parse_row(text: str, name: str, row: int, line: int) -> np.ndarray:
    parts = text.translate(SEPARATORS).split()
    try:
        return np.array(parts, dtype=np.float64)
    except ValueError:
        for j, part in enumerate(parts, start=1):
            try:
                float(part)
            except ValueError:
                raise InvalidInputError(
                    f"{name}:{line}: row {row}, position {j}: {quote(part)} is not a number"
                ) from None
        raise


def _load_text(path: Path, name: str, length: int | None) -> np.ndarray:
    """Rows of numbers (one channel); blank and ``#`` lines skipped; short rows zero-padded."""
    rows: list[np.ndarray] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip() or text.lstrip().startswith("#"):
                    continue
                numbers = _parse_row(text, name, len(rows) + 1, line)
                if length is not None and len(numbers) != length:
                    raise InvalidInputError(
                        f"{name}:{line}: row {len(rows) + 1} has {len(numbers)} values; "
                        f"expected {length}"
                    )
                rows.append(numbers)
    except UnicodeDecodeError:
        raise InvalidInputError(f"{name}: not a UTF-8 text file") from None
    if not rows:
        raise InvalidInputError(f"{name}: no signal rows")
    return pad_rows(np.concatenate(rows), np.array([len(r) for r in rows]), 0.0)


def read_signal(
    path: str | Path,
    *,
    lengths: torch.Tensor | None = None,
    length: int | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """Read a signal file: one row per sequence, one number per position and channel.

    Args:
        path: ``.npy`` or ``.npz`` (arrays (N, L) or (N, L, C); an ``.npz`` holds one array or
            one named ``signal``), or ``.txt``/``.csv``/``.tsv`` text (one row per line, numbers
            separated by commas, tabs, spaces or semicolons; blank and ``#`` lines skipped;
            shorter rows zero-padded).
        lengths: true length of each row, shape (N,); then rows need at least
            ``max(lengths)`` values and values past each length are zeroed (and not checked).
        length: the exact number of positions every row must have.
        channels: the number of channels C the signal must have.

    Returns:
        the signal, shape (N, L, C), float32.

    Raises:
        InvalidInputError: one line starting with the path: missing file, unknown suffix,
            pickled or non-numeric data, a wrong shape or count, a non-finite number.
    """
    file, name = Path(path), str(path)
    if file.is_dir():
        raise InvalidInputError(f"{name}: is a folder, not a signal file")
    if not file.exists():
        raise InvalidInputError(f"{name}: {no_such(file)}")
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError(
            f"{name}: unknown signal file type {suffix or '(none)'!r}; use {', '.join(SUFFIXES)}"
        )
    array = _load_array(file, name) if suffix in _MAGIC else _load_text(file, name, length)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name}: signal dtype {array.dtype} is not numeric")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise InvalidInputError(
            f"{name}: signal array has shape {tuple(array.shape)}; expected (N, L) or (N, L, C)"
        )
    with np.errstate(over="ignore"):
        signal = np.ascontiguousarray(array, dtype=np.float32)
    rows, width, depth = signal.shape
    if length is not None and width != length:
        raise InvalidInputError(f"{name}: rows have {width} values; expected {length} (row 1)")
    if channels is not None and depth != channels:
        raise InvalidInputError(f"{name}: signal has {depth} channels; expected {channels}")
    if lengths is not None:
        need = lengths.detach().cpu().numpy().astype(np.int64).reshape(-1)
        if len(need) != rows:
            raise InvalidInputError(f"{name}: {rows} signal rows for {len(need)} sequences")
        short = np.flatnonzero(need > width)
        if short.size:
            i = int(short[0])
            raise InvalidInputError(
                f"{name}: row {i + 1} has {width} values for a sequence of length {need[i]}"
            )
        signal[np.arange(width)[None, :] >= need[:, None]] = 0.0
    bad = np.argwhere(~np.isfinite(signal))
    if len(bad):
        i, j, c = (int(v) + 1 for v in bad[0])
        raise InvalidInputError(
            f"{name}: row {i}, position {j}, channel {c}: non-finite value {signal[tuple(bad[0])]}"
        )
    return torch.from_numpy(signal)
