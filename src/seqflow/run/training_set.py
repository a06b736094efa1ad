"""The training data of a run as gzipped FASTA (``train.fasta.gz``, ``libraries.fasta.gz``)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from pathlib import Path

from torch import Tensor

from seqflow.data import SequenceTable, format_header
from seqflow.io_utils import atomic_path

CHUNK_ROWS = 65_536
"""Rows decoded at a time by :func:`write_training_set` (bounded memory on 10M-row data)."""


def write_training_set(
    path: Path, table: SequenceTable, groups: Iterable[tuple[Tensor, Mapping[str, object]]]
) -> None:
    """Write rows of ``table`` as gzipped FASTA, atomically, a chunk of rows at a time; the
    gzip header has an empty name and mtime 0, so the same data give the same bytes.

    Args:
        groups: ``(rows, tags)`` pairs: table row indices ``(n,)`` int64, written with their
            original ids and the ``key=value`` tags after the id (``{"library": NAME}``, ``{}``).
    """
    with (
        atomic_path(path) as temp,
        open(temp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as handle,
    ):
        pad = table.pad_token
        for rows, tags in groups:
            for start in range(0, len(rows), CHUNK_ROWS):
                part = rows[start : start + CHUNK_ROWS]
                tokens = table.tokens[part].long()
                texts = table.alphabet.decode_batch(tokens.masked_fill(tokens == pad, 0))
                lengths = table.lengths[part].tolist()
                handle.write(
                    "".join(
                        f">{format_header(table.ids[i], tags)}\n{text[:n]}\n"
                        for i, text, n in zip(part.tolist(), texts, lengths, strict=True)
                    ).encode()
                )
