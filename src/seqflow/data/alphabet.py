"""Alphabets: the letters of a sequence family and their token indices.

A token is the 0-based index of a letter in :attr:`Alphabet.letters`, stored as ``uint8``;
encoding and decoding go through 256-entry numpy lookup tables, a batch in one vectorised step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from seqflow.errors import InvalidInputError

INVALID = 255
"""Value of :attr:`Alphabet.lookup` for a byte that is not a letter of the alphabet."""


@dataclass(frozen=True)
class Alphabet:
    """An ordered set of letters; the position of a letter is its token.

    Attributes:
        name: short label (``"dna"``, ``"rna"``, ``"protein"`` or ``"custom"``).
        letters: the letters, upper-case ASCII, unique, in token order.
    """

    name: str
    letters: str

    def __post_init__(self) -> None:
        letters = self.letters
        if len(letters) < 2:
            raise InvalidInputError(f"alphabet {letters!r}: needs at least 2 letters")
        if not letters.isascii() or not letters.isprintable() or any(c.isspace() for c in letters):
            raise InvalidInputError(
                f"alphabet {letters!r}: letters must be printable ASCII without spaces"
            )
        if letters != letters.upper():
            raise InvalidInputError(f"alphabet {letters!r}: letters must be upper-case")
        repeated = sorted({c for c in letters if letters.count(c) > 1})
        if repeated:
            raise InvalidInputError(f"alphabet {letters!r}: letter {repeated[0]!r} is repeated")

    @property
    def size(self) -> int:
        """Number of letters (the vocabulary size of a model)."""
        return len(self.letters)

    def describe(self) -> str:
        """Short human-readable form, e.g. ``"dna: ACGT"``."""
        return f"{self.name}: {self.letters}"

    @cached_property
    def lookup(self) -> np.ndarray:
        """Byte-to-token table, shape (256,), uint8; both cases map, other bytes are ``INVALID``."""
        table = np.full(256, INVALID, dtype=np.uint8)
        for token, letter in enumerate(self.letters):
            table[ord(letter)] = token
            table[ord(letter.lower())] = token
        return table

    def decode_batch(self, tokens: Any) -> list[str]:
        """Turn integer tokens, shape (batch, length), numpy or torch, into ``batch`` strings of
        ``length`` upper-case letters."""
        if hasattr(tokens, "detach"):
            tokens = tokens.detach().cpu().numpy()
        array = np.asarray(tokens)
        if array.ndim != 2:
            raise ValueError(f"expected tokens of 2 dimensions, got shape {array.shape}")
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= self.size):
            bad = int(array.min()) if array.min() < 0 else int(array.max())
            raise ValueError(f"token {bad} is outside alphabet {self.describe()}")
        n, length = array.shape
        codes = np.frombuffer(self.letters.encode("ascii"), dtype=np.uint8)
        text = codes[array.astype(np.intp)].tobytes().decode("ascii")
        return [text[i * length : (i + 1) * length] for i in range(n)]

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form, e.g. for checkpoint metadata."""
        return {"name": self.name, "letters": self.letters}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alphabet:
        """Inverse of :meth:`to_dict`; raises InvalidInputError on missing or extra keys."""
        if not isinstance(data, dict) or set(data) != {"name", "letters"}:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise InvalidInputError(f"alphabet metadata: expected keys name, letters; got {keys}")
        return cls(name=str(data["name"]), letters=str(data["letters"]))


DNA = Alphabet("dna", "ACGT")
RNA = Alphabet("rna", "ACGU")
PROTEIN = Alphabet("protein", "ACDEFGHIKLMNPQRSTVWY")
BUILTIN: dict[str, Alphabet] = {a.name: a for a in (DNA, RNA, PROTEIN)}
"""Built-in alphabets by name."""


def invalid_letter_error(
    where: str, letter: str, position: int, alphabet: Alphabet | None, hint: str = ""
) -> InvalidInputError:
    """The one-line error for a letter outside the alphabet (``position`` is 1-based)."""
    allowed = f"alphabet {alphabet.describe()}" if alphabet else "sequences must be ASCII letters"
    return InvalidInputError(
        f"{where}: invalid letter {letter!r} at position {position} ({allowed}){hint}"
    )


IUPAC_NUCLEOTIDES = "ACGTUNRYKMSWBDHV"
"""Nucleotide letters including ambiguity codes (all but B and U are amino-acid letters too)."""

NUCLEOTIDE_SHARE = 0.75
"""Share of A, C, G, T, U above which ``auto`` treats sequences as nucleotides (proteins: ~20%)."""


def detect_alphabet(counts: Mapping[str, int]) -> tuple[Alphabet, list[str]]:
    """Pick the built-in alphabet for ``auto`` from letter counts (case-insensitive): DNA or RNA
    (DNA on a tie) when the letters are all IUPAC nucleotide codes or A, C, G, T, U make up at
    least ``NUCLEOTIDE_SHARE`` of them (so DNA with ``N`` is reported, not read as protein),
    else protein.

    Returns:
        the alphabet and the sorted upper-case letters it lacks (empty when it fits).
    """
    upper: Counter[str] = Counter()
    for letter, count in counts.items():
        upper[letter.upper()] += count
    letters = {c for c, count in upper.items() if count > 0}
    share = sum(upper[c] for c in "ACGTU") / (sum(upper.values()) or 1)
    nucleotide = letters <= set(IUPAC_NUCLEOTIDES) or share >= NUCLEOTIDE_SHARE
    candidates = (DNA, RNA) if nucleotide else (PROTEIN,)
    best = min(candidates, key=lambda alphabet: len(letters - set(alphabet.letters)))
    return best, sorted(letters - set(best.letters))


def resolve_alphabet(spec: str, *, where: str = "") -> Alphabet:
    """Turn a user's alphabet choice into an :class:`Alphabet` (``auto`` is resolved by
    :func:`~seqflow.data.read_sequences` from the letters of the file).

    Args:
        spec: ``dna``, ``rna``, ``protein`` (any case), or custom letters such as ``"ACGTN"``
            (at least 2 unique letters; names win, so ``"dna"`` is DNA, not D, N, A).
        where: prefix for error messages, e.g. the file name.

    Returns:
        the alphabet; custom letters equal to a built-in's letters give that built-in.

    Raises:
        InvalidInputError: ``auto``, or bad custom letters.
    """
    prefix = f"{where}: " if where else ""
    key = spec.strip().lower()
    if key in BUILTIN:
        return BUILTIN[key]
    if key == "auto":
        raise InvalidInputError(f"{prefix}alphabet 'auto' needs sequences to inspect")
    letters_spec = spec.strip().upper()
    for builtin in BUILTIN.values():
        if builtin.letters == letters_spec:
            return builtin
    try:
        return Alphabet("custom", letters_spec)
    except InvalidInputError as err:
        raise InvalidInputError(
            f"{prefix}{err} (use dna, rna, protein, auto or at least 2 unique letters)"
        ) from None
