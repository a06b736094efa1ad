"""Read FASTA, FASTQ, CSV or TSV files (plain or gzip, or stdin) into a token table.

Records stream into one flat byte buffer (:mod:`seqflow.data._buffer`) while the file is read;
the alphabet is then resolved (``auto`` looks at every letter of the file), the bytes are turned
into tokens in place, chunk by chunk, with the alphabet's lookup table, invalid letters are
handled by the ``on_invalid`` policy, and the records are laid out as a padded (N, L) array.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from seqflow.data._buffer import POLICIES, RecordBuffer, assemble, detect, duplicates, tokenise
from seqflow.data._delimited import Columns, iter_table
from seqflow.data._fasta import iter_fasta, iter_fastq
from seqflow.data._source import GZIP_ERRORS, TextSource, open_text, quote
from seqflow.data.alphabet import resolve_alphabet
from seqflow.data.table import DuplicateIdWarning, ReadReport, SequenceTable
from seqflow.errors import InvalidInputError

FORMATS = ("fasta", "fastq", "csv", "tsv")
_SUFFIXES = {
    ".fa": "fasta", ".fasta": "fasta", ".fna": "fasta", ".fas": "fasta", ".faa": "fasta",
    ".fq": "fastq", ".fastq": "fastq",
    ".csv": "csv", ".tsv": "tsv", ".txt": "tsv",
}  # fmt: skip


def split_suffix(name: str) -> tuple[str, str | None]:
    """A file name without ``.gz`` and its sequence suffix, and the format that suffix names:
    ``lib1.FA.gz`` -> ``("lib1", "fasta")``, ``notes.md`` -> ``("notes.md", None)``."""
    base = Path(name[:-3] if name.lower().endswith(".gz") else name)
    fmt = _SUFFIXES.get(base.suffix.lower())
    return (base.stem if fmt else base.name), fmt


def _resolve_format(fmt: str, path: str | Path, source: TextSource) -> str:
    """Explicit ``fmt``, else the suffix (``.gz`` stripped), else a look at the content."""
    key = fmt.lower()
    if key in FORMATS:
        return key
    if key != "auto":
        raise InvalidInputError(
            f"{source.name}: unknown format {fmt!r}; use auto, {', '.join(FORMATS)}"
        )
    by_suffix = split_suffix(Path(str(path)).name)[1]
    if by_suffix:
        return by_suffix
    first = next((line for line in source.head.splitlines() if line.strip()), "").lstrip()
    if first[:1] in (">", "@"):
        return "fasta" if first[0] == ">" else "fastq"
    if "\t" in first or "," in first:
        return "tsv" if "\t" in first else "csv"
    raise InvalidInputError(
        f"{source.name}: cannot tell the format (not FASTA or FASTQ, no tab or comma in the "
        "first line); set fmt to fasta, fastq, csv or tsv"
    )


def _gather(path: str | Path, fmt: str, columns: Columns, buffer: RecordBuffer) -> str:
    """Stream the records of ``path`` into ``buffer``; returns the resolved format."""
    with open_text(path) as source:
        kind = _resolve_format(fmt, path, source)
        if kind in ("fasta", "fastq") and columns.options():
            raise InvalidInputError(
                f"{source.name}: {', '.join(columns.options())} needs a CSV or TSV file; {kind} "
                "files have no columns (use a CSV with columns id,sequence,label,...)"
            )
        if kind in ("fasta", "fastq"):
            records = (iter_fasta if kind == "fasta" else iter_fastq)(source)
        else:
            delimiter = "," if kind == "csv" else "\t"
            records = iter_table(source, delimiter=delimiter, columns=columns)
        try:
            for record in records:
                buffer.add(record)
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"{source.name}: not a UTF-8 text file (undecodable byte after line {source.line})"
            ) from None
        except GZIP_ERRORS as err:
            raise InvalidInputError(f"{source.name}: damaged gzip file ({err})") from None
        except OSError as err:
            raise InvalidInputError(
                f"{source.name}: read error after line {source.line} ({err.strerror or err})"
            ) from None
    if buffer.n == 0:
        marker = ">" if kind == "fasta" else "@"  # a table without rows stops in iter_table
        raise InvalidInputError(
            f"{source.name}: no {kind.upper()} records (no line starts with {marker!r})"
        )
    return kind


def read_sequences(
    path: str | Path,
    *,
    alphabet: str = "auto",
    fmt: str = "auto",
    seq_col: str | None = None,
    label_col: str | None = None,
    value_col: str | None = None,
    signal_col: str | None = None,
    split_col: str | None = None,
    on_invalid: str = "error",
    max_length: int | None = None,
    crop: bool = False,
    seed: int = 0,
) -> SequenceTable:
    """Read sequences from FASTA, FASTQ, CSV or TSV (optionally gzip), or stdin (``"-"``).

    Args:
        path: the file; ``"-"`` reads standard input.
        alphabet: ``auto`` (dna, rna or protein from every letter of the file, see
            :func:`~seqflow.data.alphabet.detect_alphabet`; a file mixing nucleotide and protein
            records is refused), a built-in name, or custom letters such as ``"ACGTN"`` (any case).
        fmt: ``auto`` (from the suffix, else the content), ``fasta``, ``fastq``, ``csv``, ``tsv``.
        seq_col: CSV/TSV sequence column; default ``sequence`` or ``seq``.
        label_col: CSV/TSV column of class labels.
        value_col: CSV/TSV column of one finite number per record.
        signal_col: CSV/TSV column of per-position numbers (one channel; as many as letters).
        split_col: CSV/TSV column of ``train``, ``valid`` (``validation``, ``val``) or ``test``.
        on_invalid: letters outside the alphabet: ``error``, ``skip`` (drop the record) or
            ``replace`` (by a uniformly drawn letter of the alphabet).
        max_length: longest record allowed (None: no limit); L is the longest record kept.
        crop: cut records longer than ``max_length`` to their first ``max_length`` letters.
        seed: seed of the ``replace`` draws.

    Returns:
        the table: tokens (N, L) padded with ``alphabet.size``, lengths (N,), and labels,
        values (N,), signal (N, L, 1), splits (N,) for the columns asked for.

    Raises:
        InvalidInputError: one line starting ``path:line:`` (or ``path:``) naming the problem.

    Warns:
        DuplicateIdWarning: several records share an id.
    """
    name = "<stdin>" if str(path) == "-" else str(path)
    if on_invalid not in POLICIES:
        raise InvalidInputError(
            f"{name}: unknown on_invalid {on_invalid!r}; use {', '.join(POLICIES)}"
        )
    if max_length is not None and max_length < 1:
        raise InvalidInputError(f"{name}: max_length must be at least 1, got {max_length}")
    auto = alphabet.strip().lower() == "auto"
    chosen = None if auto else resolve_alphabet(alphabet, where=name)
    columns = Columns(seq_col, label_col, value_col, signal_col, split_col)
    buffer = RecordBuffer(name, max_length=max_length, crop=crop, strict=on_invalid == "error")
    kind = _gather(path, fmt, columns, buffer)
    chosen, hint = detect(buffer) if chosen is None else (chosen, "")
    outcome = tokenise(buffer, chosen, on_invalid, seed, hint)
    kept = int(outcome.keep.sum())
    if kept == 0:
        raise InvalidInputError(
            f"{name}: all {buffer.n} records have letters outside {chosen.describe()}; "
            "none is left (--on-invalid skip, on_invalid='skip')"
        )
    repeated, first = duplicates(buffer, outcome.keep)
    if repeated:
        warnings.warn(
            f"{name}: {repeated} duplicate record ids "
            f"(first: {quote(buffer.record_id(first))} at line {buffer.lines[first]})",
            DuplicateIdWarning,
            stacklevel=2,
        )
    report = ReadReport(
        format=kind, alphabet_detected=auto, records=buffer.n, skipped=buffer.n - kept,
        replaced_records=outcome.replaced_records, replaced_letters=outcome.replaced_letters,
        cropped=buffer.cropped, duplicate_ids=repeated, alphabet=chosen.describe(),
        max_length=max_length,
    )  # fmt: skip
    return assemble(buffer, outcome.keep, chosen, report)
