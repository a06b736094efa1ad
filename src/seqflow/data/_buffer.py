"""Records gathered while a file streams in, tokenised in place (the ``auto`` alphabet, the
mixed-alphabet check, invalid letters; a chunk of records at a time), then laid out as a padded
:class:`SequenceTable`.

Letters go as ASCII bytes into one ``bytearray``, the rest of a record into typed ``array``
columns, so no Python object per record outlives its line of the file.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from seqflow.data._source import RawRecord, quote
from seqflow.data.alphabet import INVALID, Alphabet, detect_alphabet, invalid_letter_error
from seqflow.data.table import ReadReport, RecordIds, SequenceTable
from seqflow.errors import InvalidInputError

_CHUNK_BYTES = 1 << 18
"""Letters handled per vectorised step; numpy's temporaries (int64 casts in ``bincount`` and
``reduceat``) take up to 8 bytes per letter, so this bounds them to about 2 MB."""

POLICIES = ("error", "skip", "replace")  # what on_invalid may be
NON_ASCII = 0  # byte stored for a non-ASCII letter when invalid letters are skipped or replaced
MIXED_MIN_LENGTH = 10  # records shorter than this do not count in the mixed-alphabet check
NUCLEOTIDE_LIKE = 0.9  # a record with at least this share of A, C, G, T, U, N: nucleotides
PROTEIN_LIKE = 0.6  # a record with less than this share of A, C, G, T, U, N: protein
_NUCLEOTIDE_BYTES = np.zeros(256, dtype=np.uint8)
_NUCLEOTIDE_BYTES[list(b"ACGTUNacgtun")] = 1


class RecordBuffer:
    """Sequence bytes and per-record columns of one file, in file order; records longer than
    ``max_length`` are an error or, with ``crop``, cut; a non-ASCII letter is an error when
    ``strict`` (``on_invalid="error"``), else stored as ``NON_ASCII``."""

    def __init__(self, source: str, *, max_length: int | None, crop: bool, strict: bool) -> None:
        self.source = source
        self.max_length = max_length
        self.crop = crop
        self.strict = strict
        self.cropped = 0
        self.data, self.id_data = bytearray(), bytearray()  # letters, ids (UTF-8)
        self.ends, self.id_ends = array("q"), array("q")  # where each record / id stops
        self.lines, self.seq_lines, self.widths = array("q"), array("q"), array("q")
        self.id_hashes, self.label_codes = array("q"), array("q")
        self.label_index: dict[str, int] = {}
        self.values, self.signal, self.splits = array("d"), array("f"), array("b")

    @property
    def n(self) -> int:
        """Records gathered so far."""
        return len(self.ends)

    def add(self, record: RawRecord) -> None:
        """Append one record, cut to ``max_length`` with ``crop``; an :class:`InvalidInputError`
        when it is longer without ``crop`` or (``strict``) holds a non-ASCII letter."""
        seq, signal = record.seq, record.signal
        if self.max_length is not None and len(seq) > self.max_length:
            if not self.crop:
                raise InvalidInputError(
                    f"{self.source}:{record.line}: record {quote(record.id)} has length "
                    f"{len(seq)} > max_length {self.max_length} (use crop to cut it)"
                )
            seq = seq[: self.max_length]
            signal = None if signal is None else signal[: self.max_length]
            self.cropped += 1
        try:
            raw = seq.encode("ascii")
        except UnicodeEncodeError as err:
            if self.strict:
                where = record.letter_where(self.source, err.start + 1)
                raise invalid_letter_error(where, seq[err.start], err.start + 1, None) from None
            points = np.frombuffer(seq.encode("utf-32-le"), dtype=np.uint32)
            raw = np.where(points < 128, points, NON_ASCII).astype(np.uint8).tobytes()
        self.data += raw
        self.ends.append(len(self.data))
        self.lines.append(record.line)
        self.seq_lines.append(record.seq_line)
        self.widths.append(record.width)
        self.id_data += record.id.encode("utf-8")
        self.id_ends.append(len(self.id_data))
        self.id_hashes.append(hash(record.id))
        if record.label is not None:
            code = self.label_index.setdefault(record.label, len(self.label_index))
            self.label_codes.append(code)
        if record.value is not None:
            self.values.append(record.value)
        if signal is not None:
            self.signal.frombytes(signal.tobytes())
        if record.split is not None:
            self.splits.append(record.split)

    def flat(self) -> np.ndarray:
        """The sequence bytes, shape (total letters,), uint8; a writable view, not a copy."""
        return np.frombuffer(self.data, dtype=np.uint8)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end offset of each record in :meth:`flat`, each shape (N,), int64."""
        ends = np.frombuffer(self.ends, dtype=np.int64)
        return np.concatenate(([0], ends[:-1])).astype(np.int64), ends

    def chunks(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """Record ranges ``[a, b)`` of about ``_CHUNK_BYTES`` letters (at least one record), with
        their bytes (a writable view) and the offset of each record in them, shape (b - a,)."""
        flat = self.flat()
        starts, ends = self.bounds()
        a = 0
        while a < self.n:
            b = max(int(np.searchsorted(ends, starts[a] + _CHUNK_BYTES, side="right")), a + 1)
            yield a, b, flat[starts[a] : ends[b - 1]], starts[a:b] - starts[a]
            a = b

    def record_id(self, i: int) -> str:
        """Id of record ``i``."""
        start = self.id_ends[i - 1] if i else 0
        return self.id_data[start : self.id_ends[i]].decode("utf-8")

    def letter_where(self, i: int, position: int) -> str:
        """Error prefix naming the line of letter ``position`` (1-based) of record ``i``."""
        record = RawRecord(self.record_id(i), "", self.lines[i], self.seq_lines[i], self.widths[i])
        return record.letter_where(self.source, position)

    def letter_counts(self) -> dict[str, int]:
        """How often each character occurs (``NON_ASCII`` bytes left out)."""
        counts = np.zeros(256, dtype=np.int64)
        flat = self.flat()
        for start in range(0, len(flat), _CHUNK_BYTES):
            counts += np.bincount(flat[start : start + _CHUNK_BYTES], minlength=256)
        counts[NON_ASCII] = 0
        return {chr(b): int(counts[b]) for b in np.flatnonzero(counts)}


@dataclass(frozen=True)
class PolicyOutcome:
    """What the invalid-letter policy did: which records remain (``keep``, shape (N,), bool),
    and how many records and letters it replaced."""

    keep: np.ndarray
    replaced_records: int = 0
    replaced_letters: int = 0


def detect(buffer: RecordBuffer) -> tuple[Alphabet, str]:
    """The ``auto`` alphabet of the buffer, and a hint for an invalid-letter error.

    Raises:
        InvalidInputError: the file mixes nucleotide-like and protein-like records (of length
            at least ``MIXED_MIN_LENGTH``); the message names the first of the minority kind.
    """
    starts, ends = buffer.bounds()
    lengths = ends - starts
    sums = np.empty(buffer.n, dtype=np.int64)
    for a, b, block, offsets in buffer.chunks():
        sums[a:b] = np.add.reduceat(_NUCLEOTIDE_BYTES[block], offsets, dtype=np.int64)
    share = sums / np.maximum(lengths, 1)
    counted = lengths >= MIXED_MIN_LENGTH
    nucleotide = counted & (share >= NUCLEOTIDE_LIKE)
    protein = counted & (share < PROTEIN_LIKE)
    if nucleotide.any() and protein.any():
        if nucleotide.sum() >= protein.sum():
            minority, kind, most = protein, "protein", "nucleotides"
        else:
            minority, kind, most = nucleotide, "nucleotides", "protein"
        first = int(np.argmax(minority))
        raise InvalidInputError(
            f"{buffer.source}:{buffer.lines[first]}: record {quote(buffer.record_id(first))} "
            f"looks like {kind} but most records are {most} (mixed alphabets); give the "
            "alphabet explicitly: --alphabet (alphabet=)"
        )
    alphabet, missing = detect_alphabet(buffer.letter_counts())
    if not missing:
        return alphabet, ""
    extra = "".join(c for c in missing if c.isascii() and c.isprintable() and not c.isspace())
    letters = alphabet.letters + extra
    return alphabet, (
        f"; auto-detection chose {alphabet.name}; give the letters explicitly, e.g. "
        f"--alphabet {letters} (alphabet={letters!r}), or --on-invalid skip or replace "
        "(on_invalid='skip' or 'replace')"
    )


def tokenise(
    buffer: RecordBuffer, alphabet: Alphabet, policy: str, seed: int, hint: str = ""
) -> PolicyOutcome:
    """Turn the buffer's bytes into tokens in place; letters outside ``alphabet`` by ``policy``:
    ``error`` (raise at the first, ``hint`` appended), ``skip`` (drop its record) or ``replace``
    (a letter drawn uniformly, in file order, by ``numpy.random.default_rng(seed)``).

    Raises:
        InvalidInputError: ``error`` and an invalid letter: names its record, line and position.
    """
    invalid = np.zeros(buffer.n, dtype=bool)
    rng = np.random.default_rng(seed)
    replaced = 0
    for a, b, block, offsets in buffer.chunks():
        mapped = alphabet.lookup[block]
        bad = mapped == INVALID
        if bad.any():
            if policy == "error":
                local = int(np.argmax(bad))
                k = int(np.searchsorted(offsets, local, side="right")) - 1
                position = local - int(offsets[k]) + 1
                where = buffer.letter_where(a + k, position)
                raise invalid_letter_error(where, chr(block[local]), position, alphabet, hint)
            invalid[a:b] = np.logical_or.reduceat(bad, offsets)
            if policy == "replace":
                count = int(bad.sum())
                mapped[bad] = rng.integers(0, alphabet.size, size=count, dtype=np.uint8)
                replaced += count
        block[...] = mapped
    if policy == "replace":
        return PolicyOutcome(np.ones(buffer.n, dtype=bool), int(invalid.sum()), replaced)
    return PolicyOutcome(~invalid)


def pad_rows(flat: np.ndarray, lengths: np.ndarray, fill: float | int) -> np.ndarray:
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


def assemble(
    buffer: RecordBuffer, keep: np.ndarray, alphabet: Alphabet, report: ReadReport
) -> SequenceTable:
    """The tokenised records kept by ``keep`` (shape (N,), bool, at least one True) as a table
    padded with ``alphabet.size``."""
    starts, ends = buffer.bounds()
    lengths = ends - starts
    flat = buffer.flat()
    signal = np.frombuffer(buffer.signal, dtype=np.float32) if buffer.signal else None
    id_ends = np.frombuffer(buffer.id_ends, dtype=np.int64)
    id_data = bytes(buffer.id_data)
    if not keep.all():
        per_byte = np.repeat(keep, lengths)
        flat = flat[per_byte]
        signal = None if signal is None else signal[per_byte]
        id_lengths = np.diff(id_ends, prepend=0)
        id_data = np.frombuffer(id_data, dtype=np.uint8)[np.repeat(keep, id_lengths)].tobytes()
        id_ends = np.cumsum(id_lengths[keep])
        lengths = lengths[keep]

    def column(values: array, dtype: type) -> np.ndarray | None:
        return np.frombuffer(values, dtype=dtype)[keep] if values else None

    names = tuple(sorted(buffer.label_index))
    labels = column(buffer.label_codes, np.int64)
    if labels is not None:  # codes in order of appearance -> ranks among the sorted names
        labels = np.argsort(np.argsort(list(buffer.label_index))).astype(np.int64)[labels]
    values = column(buffer.values, np.float64)
    splits = column(buffer.splits, np.int8)

    def tensor(array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(array)

    return SequenceTable(
        tokens=torch.from_numpy(pad_rows(flat, lengths, alphabet.size)),
        ids=RecordIds(id_data, id_ends),
        alphabet=alphabet,
        labels=tensor(labels),
        label_names=names,
        source=buffer.source,
        lengths=torch.from_numpy(lengths),
        values=tensor(None if values is None else values.astype(np.float32)),
        signal=tensor(None if signal is None else pad_rows(signal, lengths, 0.0)[..., None]),
        splits=tensor(splits),
        record_index=torch.from_numpy(np.flatnonzero(keep).astype(np.int64)),
        report=report,
    )


def duplicates(buffer: RecordBuffer, keep: np.ndarray) -> tuple[int, int]:
    """How many kept records (``keep`` shape (N,), bool) repeat an earlier kept record's id,
    and the buffer index of the first that does (-1: none); only ids of equal hash are compared.
    """
    kept = np.flatnonzero(keep)
    hashes = np.frombuffer(buffer.id_hashes, dtype=np.int64)[kept]
    order = np.argsort(hashes, kind="stable")
    same = hashes[order[1:]] == hashes[order[:-1]]
    if not same.any():
        return 0, -1
    candidates = np.unique(np.concatenate((order[1:][same], order[:-1][same])))
    seen: set[str] = set()
    repeated = []
    for i in kept[candidates].tolist():
        record_id = buffer.record_id(i)
        if record_id in seen:
            repeated.append(i)
        seen.add(record_id)
    return len(repeated), (repeated[0] if repeated else -1)
