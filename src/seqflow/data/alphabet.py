"""Alphabets: the letters of a sequence family and their token indices.

A token is the 0-based index of a letter in :attr:`Alphabet.letters`; tokens are stored as
``uint8``. Encoding and decoding go through 256-entry numpy lookup tables, so a batch of
sequences is converted in one vectorised step, never letter by letter in Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
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

    @cached_property
    def _codes(self) -> np.ndarray:
        """Token-to-byte table, shape (size,), uint8 ASCII codes of the letters."""
        return np.frombuffer(self.letters.encode("ascii"), dtype=np.uint8)

    def encode(self, seq: str, *, where: str = "") -> np.ndarray:
        """Turn a sequence into tokens (case-insensitive).

        Args:
            seq: the sequence, e.g. ``"ACGTacgt"``.
            where: prefix for the error message, e.g. ``"reads.fa:12: record 'r1'"``.

        Returns:
            tokens, shape (len(seq),), uint8.

        Raises:
            InvalidInputError: a letter is not in the alphabet (message gives the 1-based position).
        """
        try:
            raw = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError as err:
            raise invalid_letter_error(where, seq[err.start], err.start + 1, self) from None
        tokens = self.lookup[raw]
        bad = np.flatnonzero(tokens == INVALID)
        if bad.size:
            raise invalid_letter_error(where, seq[bad[0]], int(bad[0]) + 1, self)
        return tokens

    def decode(self, tokens: Any) -> str:
        """Turn tokens back into a string of upper-case letters.

        Args:
            tokens: integer tokens, shape (length,); a numpy array, a list or a torch tensor.
        """
        array = self._as_tokens(tokens, ndim=1)
        return self._codes[array].tobytes().decode("ascii")

    def decode_batch(self, tokens: Any) -> list[str]:
        """Decode many sequences at once (one table lookup for the whole batch).

        Args:
            tokens: integer tokens, shape (batch, length); numpy array or torch tensor.

        Returns:
            ``batch`` strings, each of ``length`` letters.
        """
        array = self._as_tokens(tokens, ndim=2)
        n, length = array.shape
        text = self._codes[array].tobytes().decode("ascii")
        return [text[i * length : (i + 1) * length] for i in range(n)]

    def _as_tokens(self, tokens: Any, *, ndim: int) -> np.ndarray:
        if hasattr(tokens, "detach"):
            tokens = tokens.detach().cpu().numpy()
        array = np.asarray(tokens)
        if array.ndim != ndim:
            raise ValueError(f"expected tokens of {ndim} dimension(s), got shape {array.shape}")
        if array.size == 0:
            return array.astype(np.intp)
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got dtype {array.dtype}")
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= self.size:
            bad = low if low < 0 else high
            raise ValueError(f"token {bad} is outside alphabet {self.describe()}")
        return array

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
    where: str, letter: str, position: int, alphabet: Alphabet | None
) -> InvalidInputError:
    """The one-line error for a letter outside the alphabet (``position`` is 1-based)."""
    prefix = f"{where}: " if where else ""
    allowed = f"alphabet {alphabet.describe()}" if alphabet else "sequences must be ASCII letters"
    return InvalidInputError(
        f"{prefix}invalid letter {letter!r} at position {position} ({allowed})"
    )


IUPAC_NUCLEOTIDES = "ACGTUNRYKMSWBDHV"
"""Nucleotide letters including ambiguity codes (all but B and U are amino-acid letters too)."""

NUCLEOTIDE_SHARE = 0.75
"""Share of A, C, G, T, U above which ``auto`` treats sequences as nucleotides (proteins: ~20%)."""


def detect_alphabet(counts: Mapping[str, int]) -> tuple[Alphabet, list[str]]:
    """Pick the built-in alphabet for ``auto`` from letter counts (case-insensitive).

    Sequences are nucleotides when their letters are all IUPAC nucleotide codes or when A, C, G,
    T, U make up at least ``NUCLEOTIDE_SHARE`` of them; then the choice is DNA or RNA (DNA on a
    tie), else protein. So DNA with ``N`` is reported, not silently read as protein.

    Returns:
        the alphabet and the sorted upper-case letters it lacks (empty when it fits).
    """
    upper: Counter[str] = Counter()
    for letter, count in counts.items():
        upper[letter.upper()] += count
    letters = {c for c, count in upper.items() if count > 0}
    total = sum(upper.values()) or 1
    share = sum(upper[c] for c in "ACGTU") / total
    nucleotide = letters <= set(IUPAC_NUCLEOTIDES) or share >= NUCLEOTIDE_SHARE
    candidates = (DNA, RNA) if nucleotide else (PROTEIN,)
    best, missing = candidates[0], sorted(letters - set(candidates[0].letters))
    for alphabet in candidates[1:]:
        lacking = sorted(letters - set(alphabet.letters))
        if len(lacking) < len(missing):
            best, missing = alphabet, lacking
    return best, missing


def auto_hint(alphabet: Alphabet, missing: Iterable[str]) -> str:
    """Advice for letters that the detected alphabet lacks, e.g. ``--alphabet ACGTN``, named
    as the command line and the API (``alphabet=``) spell it."""
    extra = "".join(c for c in missing if c.isascii() and c.isprintable() and not c.isspace())
    letters = alphabet.letters + extra
    return (
        f"auto-detection chose {alphabet.name}; give the letters explicitly, "
        f"e.g. --alphabet {letters} (alphabet={letters!r})"
    )


def resolve_alphabet(
    spec: str, sample: Iterable[str] | None = None, *, where: str = ""
) -> Alphabet:
    """Turn a user's alphabet choice into an :class:`Alphabet`.

    Args:
        spec: ``dna``, ``rna``, ``protein``, ``auto`` (case-insensitive; see
            :func:`detect_alphabet`), or custom letters such as
            ``"ACGTN"`` (at least 2 unique letters; names win, so ``"dna"`` is DNA, not D, N, A).
        sample: sequences to inspect when ``spec`` is ``auto``.
        where: prefix for error messages, e.g. the file name.

    Returns:
        the alphabet; custom letters equal to a built-in's letters give that built-in.

    Raises:
        InvalidInputError: bad custom letters, or ``auto`` finds a letter the detected alphabet
            lacks (e.g. ``N`` in DNA).
    """
    prefix = f"{where}: " if where else ""
    key = spec.strip().lower()
    if key in BUILTIN:
        return BUILTIN[key]
    if key == "auto":
        if sample is None:
            raise InvalidInputError(f"{prefix}alphabet 'auto' needs sequences to inspect")
        counts: Counter[str] = Counter()
        for seq in sample:
            counts.update(seq)
        alphabet, missing = detect_alphabet(counts)
        if missing:
            raise InvalidInputError(
                f"{prefix}letter {missing[0]!r} is not in {alphabet.describe()}; "
                f"{auto_hint(alphabet, missing)}"
            )
        return alphabet
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
