"""From a tokenised :class:`RecordBuffer` to padded arrays, compact ids and duplicate counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqflow.data._buffer import _CHUNK_BYTES, RecordBuffer
from seqflow.data.table import RecordIds


@dataclass(frozen=True)
class Assembled:
    """The kept records as arrays.

    Attributes:
        tokens: shape (N, L), uint8, ``pad`` past each length.
        lengths: shape (N,), int64.
        record_index: index of each kept record in the file, shape (N,), int64.
        ids: the kept records' ids.
        id_hashes: ``hash`` of each kept id, shape (N,), int64.
        lines: header or row line of each kept record, shape (N,), int64.
        labels: label codes into ``label_names``, shape (N,), int64; or None.
        label_names: sorted label names.
        values: shape (N,), float32; or None.
        signal: shape (N, L, 1), float32, zero past each length; or None.
        splits: shape (N,), int8; or None.
    """

    tokens: np.ndarray
    lengths: np.ndarray
    record_index: np.ndarray
    ids: RecordIds
    id_hashes: np.ndarray
    lines: np.ndarray
    labels: np.ndarray | None
    label_names: tuple[str, ...]
    values: np.ndarray | None
    signal: np.ndarray | None
    splits: np.ndarray | None


def _pad(flat: np.ndarray, lengths: np.ndarray, fill: float | int) -> np.ndarray:
    """Rows of ``flat`` (concatenated records of ``lengths``) padded to the longest: (N, L)."""
    n, longest = len(lengths), int(lengths.max())
    if (lengths == longest).all():
        return flat.reshape(n, longest)
    out = np.full((n, longest), fill, dtype=flat.dtype)
    ends = np.cumsum(lengths)
    step = max(1, _CHUNK_BYTES // longest)
    for a in range(0, n, step):
        b = min(a + step, n)
        inside = np.arange(longest) < lengths[a:b, None]
        out[a:b][inside] = flat[ends[a] - lengths[a] : ends[b - 1]]
    return out


def _kept(column: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    return column if keep is None else column[keep]


def assemble(buffer: RecordBuffer, keep: np.ndarray, pad: int) -> Assembled:
    """Drop the records not in ``keep`` and lay the rest out as padded arrays.

    Args:
        buffer: tokenised records.
        keep: records to keep, shape (N,), bool; at least one True.
        pad: token for positions past a record's end.
    """
    starts, ends = buffer.bounds()
    lengths = ends - starts
    flat = buffer.flat()
    signal = np.frombuffer(buffer.signal, dtype=np.float32) if buffer.signal else None
    id_ends = np.frombuffer(buffer.id_ends, dtype=np.int64)
    id_data = bytes(buffer.id_data)
    mask: np.ndarray | None = None
    if not keep.all():
        mask = keep
        per_byte = np.repeat(keep, lengths)
        flat = flat[per_byte]
        signal = None if signal is None else signal[per_byte]
        id_lengths = np.diff(id_ends, prepend=0)
        raw_ids = np.frombuffer(id_data, dtype=np.uint8)[np.repeat(keep, id_lengths)]
        id_data, id_ends = raw_ids.tobytes(), np.cumsum(id_lengths[keep])
        lengths = lengths[keep]
    labels: np.ndarray | None = None
    names: tuple[str, ...] = ()
    if buffer.label_index:
        names = tuple(sorted(buffer.label_index))
        order = np.empty(len(names), dtype=np.int64)
        order[[buffer.label_index[name] for name in names]] = np.arange(len(names))
        labels = order[_kept(np.frombuffer(buffer.label_codes, dtype=np.int64), mask)]
    values = None
    if buffer.values:
        values = _kept(np.frombuffer(buffer.values, dtype=np.float64), mask).astype(np.float32)
    splits = None
    if buffer.splits:
        splits = _kept(np.frombuffer(buffer.splits, dtype=np.int8), mask).copy()
    return Assembled(
        tokens=_pad(flat, lengths, pad),
        lengths=lengths,
        record_index=np.flatnonzero(keep).astype(np.int64),
        ids=RecordIds(id_data, id_ends),
        id_hashes=_kept(np.frombuffer(buffer.id_hashes, dtype=np.int64), mask),
        lines=_kept(np.frombuffer(buffer.lines, dtype=np.int64), mask),
        labels=labels,
        label_names=names,
        values=values,
        signal=None if signal is None else _pad(signal, lengths, 0.0)[..., None],
        splits=splits,
    )


def duplicates(ids: RecordIds, hashes: np.ndarray) -> tuple[int, int]:
    """How many records repeat an earlier record's id, and the first that does (-1: none).

    Ids are compared only within groups of equal hash, so the cost is one sort of N integers
    plus a string comparison per colliding record.

    Args:
        ids: record ids.
        hashes: ``hash`` of each id, shape (N,), int64.
    """
    order = np.argsort(hashes, kind="stable")
    same = hashes[order[1:]] == hashes[order[:-1]]
    if not same.any():
        return 0, -1
    candidates = np.unique(np.concatenate((order[1:][same], order[:-1][same])))
    seen: set[str] = set()
    repeated = []
    for i in candidates.tolist():
        record_id = ids[i]
        if record_id in seen:
            repeated.append(i)
        seen.add(record_id)
    return len(repeated), (repeated[0] if repeated else -1)
