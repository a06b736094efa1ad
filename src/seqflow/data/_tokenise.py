"""From gathered bytes to tokens: the ``auto`` alphabet, mixed-alphabet check, invalid letters;
on the bytes of a :class:`RecordBuffer`, a chunk of records at a time, tokens replacing them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqflow.data._buffer import RecordBuffer
from seqflow.data._source import quote
from seqflow.data.alphabet import INVALID, Alphabet, detect_alphabet, invalid_letter_error
from seqflow.errors import InvalidInputError

POLICIES = ("error", "skip", "replace")  # what on_invalid may be
MIXED_MIN_LENGTH = 10  # records shorter than this do not count in the mixed-alphabet check
NUCLEOTIDE_LIKE = 0.9  # a record with at least this share of A, C, G, T, U, N: nucleotides
PROTEIN_LIKE = 0.6  # a record with less than this share of A, C, G, T, U, N: protein

_NUCLEOTIDE_BYTES = np.zeros(256, dtype=np.uint8)
_NUCLEOTIDE_BYTES[list(b"ACGTUNacgtun")] = 1


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
