"""From gathered bytes to tokens: the ``auto`` alphabet, mixed-alphabet check, invalid letters.

Everything here works on the flat byte buffer of a :class:`RecordBuffer`, a chunk of records at
a time, with per-record sums from ``np.add.reduceat`` over the record offsets; tokens replace
the bytes in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqflow.data._buffer import RecordBuffer
from seqflow.data.alphabet import (
    INVALID,
    Alphabet,
    auto_hint,
    detect_alphabet,
    invalid_letter_error,
)
from seqflow.errors import InvalidInputError

POLICIES = ("error", "skip", "replace")
"""What ``on_invalid`` may be."""

MIXED_MIN_LENGTH = 10
"""Records shorter than this do not count in the mixed-alphabet check."""

NUCLEOTIDE_LIKE = 0.9
"""A record whose share of A, C, G, T, U, N is at least this looks like nucleotides."""

PROTEIN_LIKE = 0.6
"""A record whose share of A, C, G, T, U, N is below this looks like protein."""

_NUCLEOTIDE_BYTES = np.zeros(256, dtype=np.uint8)
_NUCLEOTIDE_BYTES[list(b"ACGTUNacgtun")] = 1


@dataclass(frozen=True)
class PolicyOutcome:
    """What the invalid-letter policy did.

    Attributes:
        keep: which records remain, shape (N,), bool.
        replaced_records: records with replaced letters.
        replaced_letters: letters replaced.
    """

    keep: np.ndarray
    replaced_records: int = 0
    replaced_letters: int = 0


def _record_sums(buffer: RecordBuffer, table: np.ndarray) -> np.ndarray:
    """Per-record sum of ``table[byte]`` over each record's bytes, shape (N,), int64."""
    flat = buffer.flat()
    starts, ends = buffer.bounds()
    sums = np.empty(buffer.n, dtype=np.int64)
    for a, b in buffer.chunks():
        offset = starts[a]
        block = table[flat[offset : ends[b - 1]]]
        sums[a:b] = np.add.reduceat(block, starts[a:b] - offset, dtype=np.int64)
    return sums


def check_mixed(buffer: RecordBuffer) -> None:
    """Refuse a file mixing nucleotide-like and protein-like records (length >= 10 only).

    Raises:
        InvalidInputError: naming the first record of the minority kind.
    """
    starts, ends = buffer.bounds()
    lengths = ends - starts
    share = _record_sums(buffer, _NUCLEOTIDE_BYTES) / np.maximum(lengths, 1)
    counted = lengths >= MIXED_MIN_LENGTH
    nucleotide = counted & (share >= NUCLEOTIDE_LIKE)
    protein = counted & (share < PROTEIN_LIKE)
    if not (nucleotide.any() and protein.any()):
        return
    if nucleotide.sum() >= protein.sum():
        minority, kind, most = protein, "protein", "nucleotides"
    else:
        minority, kind, most = nucleotide, "nucleotides", "protein"
    first = int(np.argmax(minority))
    raise InvalidInputError(
        f"{buffer.where(first)} looks like {kind} but most records are {most} "
        "(mixed alphabets); give the alphabet explicitly: --alphabet (alphabet=)"
    )


def detect(buffer: RecordBuffer) -> tuple[Alphabet, str]:
    """The ``auto`` alphabet of the buffer, and a hint for an invalid-letter error.

    Raises:
        InvalidInputError: the file mixes nucleotide and protein records.
    """
    check_mixed(buffer)
    alphabet, missing = detect_alphabet(buffer.letter_counts())
    if not missing:
        return alphabet, ""
    return alphabet, (
        f"; {auto_hint(alphabet, missing)}, or --on-invalid skip or replace (on_invalid=)"
    )


def tokenise(
    buffer: RecordBuffer, alphabet: Alphabet, policy: str, seed: int, hint: str = ""
) -> PolicyOutcome:
    """Turn the buffer's bytes into tokens in place, handling letters outside ``alphabet``.

    Args:
        buffer: the gathered records.
        alphabet: letters to map (case-insensitive).
        policy: ``error`` (raise at the first invalid letter), ``skip`` (mark its record to be
            dropped) or ``replace`` (a letter drawn uniformly from the alphabet, in file order,
            by ``numpy.random.default_rng(seed)``).
        seed: seed of the ``replace`` draws.
        hint: appended to the invalid-letter error.

    Raises:
        InvalidInputError: ``error`` and an invalid letter: names its record, line and position.
    """
    flat = buffer.flat()
    starts, ends = buffer.bounds()
    invalid = np.zeros(buffer.n, dtype=bool)
    rng = np.random.default_rng(seed)
    replaced = 0
    for a, b in buffer.chunks():
        offset = starts[a]
        block = flat[offset : ends[b - 1]]
        mapped = alphabet.lookup[block]
        bad = mapped == INVALID
        if bad.any():
            if policy == "error":
                pos = offset + int(np.argmax(bad))
                i = int(np.searchsorted(ends, pos, side="right"))
                position = pos - int(starts[i]) + 1
                where = buffer.letter_where(i, position)
                err = invalid_letter_error(where, chr(flat[pos]), position, alphabet)
                raise InvalidInputError(f"{err}{hint}")
            invalid[a:b] = np.logical_or.reduceat(bad, starts[a:b] - offset)
            if policy == "replace":
                count = int(bad.sum())
                mapped[bad] = rng.integers(0, alphabet.size, size=count, dtype=np.uint8)
                replaced += count
        block[...] = mapped
    if policy == "replace":
        return PolicyOutcome(np.ones(buffer.n, dtype=bool), int(invalid.sum()), replaced)
    return PolicyOutcome(~invalid)
