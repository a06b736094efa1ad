"""Library mode: fit a set velocity field on whole libraries, sample new libraries, score them.

A library (a selection round, a screening pool, the sequences of one cell type on one
chromosome) is one training item: a point cloud on the product of spheres. ``fit`` with
``mode: library`` (``seqflow fit --mode library --set-col COL``) reads libraries from a CSV/TSV
column or one FASTA per library, and trains a :class:`~seqflow.models.SetVelocityField` with
Wasserstein flow matching (Haviv, Pooladian, Pe'er, Amos, ICML 2025, arXiv 2411.00698):
each prior cloud is paired point by point with a library by optimal assignment, and every
point follows its own geodesic. :func:`sample_libraries` generates whole libraries;
:func:`evaluate_library_sets` compares them with real ones (1-NNA, within-library diversity).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqflow.api._conditions import condition, label_index
from seqflow.api._config import resolve_device
from seqflow.api._sets import decode_tokens, read_set, write_rows
from seqflow.checkpoint import load_library_model
from seqflow.config import Config, check_seed
from seqflow.data import (
    TABLE_FORMATS,
    Alphabet,
    LibraryTable,
    format_header,
    read_header_tags,
    read_libraries,
)
from seqflow.errors import InvalidInputError
from seqflow.io_utils import open_output
from seqflow.metrics import LibraryReport, evaluate_libraries
from seqflow.sampling import generate
from seqflow.training import LibrarySet

LIBRARY_BATCH = 16
"""Libraries integrated at once when sampling."""


@dataclass(frozen=True)
class LibraryData:
    """Libraries read for training.

    Attributes:
        train: the libraries' tokens (one ``(n_i, L)`` tensor each) and labels.
        source: the table the libraries came from (alphabet, length, report).
    """

    train: LibrarySet
    source: LibraryTable


def read_library_data(data: str | Path, cfg: Config) -> LibraryData:
    """Read the libraries of ``data`` as ``cfg.data`` says; every library needs at least
    ``cfg.library.size`` sequences, and a labelled library one label."""
    d = cfg.data
    paths: Any = data
    if isinstance(data, str) and "," in data and not Path(data).exists():
        paths = [p for p in data.split(",") if p]
    tables = read_libraries(
        paths, d.set_col, seq_col=d.seq_col, label_col=d.label_col, alphabet=d.alphabet,
        on_invalid=d.on_invalid, max_length=d.max_length, crop=d.crop,
        min_size=cfg.library.size, seed=cfg.train.seed,
    )  # fmt: skip
    table = tables.table
    libraries, labels = [], []
    for name, rows in tables.libraries.items():
        index = torch.as_tensor(rows, dtype=torch.long)
        libraries.append(table.tokens[index])
        if table.labels is not None:
            own = table.labels[index].unique()
            if len(own) != 1:
                raise InvalidInputError(
                    f"{data}: library {name!r} mixes labels "
                    f"{', '.join(table.label_names[i] for i in own.tolist()[:4])}; a library "
                    "has one label in library mode"
                )
            labels.append(int(own[0]))
    label_tensor = torch.tensor(labels, dtype=torch.long) if labels else None
    return LibraryData(
        train=LibrarySet(libraries, label_tensor, table.label_names if labels else ()),
        source=tables,
    )


@dataclass(frozen=True)
class LibrarySampleResult:
    """Outcome of :func:`sample_libraries`.

    Attributes:
        libraries: library name -> its generated sequences.
        outputs: the files written (one per library with ``out_dir``, else one).
        label: the library label asked for, or None; guidance: its weight.
    """

    libraries: dict[str, list[str]]
    outputs: tuple[str, ...]
    label: str | None
    guidance: float


def sample_libraries(
    checkpoint: str | Path,
    *,
    libraries: int = 1,
    size: int | None = None,
    label: str | None = None,
    guidance: float = 1.0,
    steps: int | None = None,
    seed: int = 0,
    output: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
) -> LibrarySampleResult:
    """Generate ``libraries`` libraries of ``size`` sequences from a library-mode run.

    Args:
        size: sequences per library (default: the training set size ``library.size``; the set
            layers take any size).
        label: the library label to condition on (one the run was trained with).
        output: one file for all libraries: FASTA (``library=`` in each header; ``-`` or None
            is standard output) or ``.csv``/``.tsv``/``.jsonl`` with a ``library`` column.
        out_dir: instead, one FASTA per library (``library_001.fasta``, ...) in this folder.
    """
    check_seed(seed)
    if libraries < 1:
        raise InvalidInputError(f"--libraries {libraries}: must be at least 1")
    dev = resolve_device(device or "auto")
    model, meta = load_library_model(checkpoint, device=dev)
    cfg = meta.config
    size = size if size is not None else cfg.library.size
    if size < 1:
        raise InvalidInputError(f"--size {size}: must be at least 1")
    index = label_index(meta, label)
    cond = condition(index, None, None)
    tokens = torch.cat(list(generate(
        model, n=libraries, size=size, length=meta.length, vocab=meta.vocab, cond=cond,
        guidance=guidance, steps=steps or cfg.sample.steps, solver=cfg.sample.solver,
        geometry=meta.geometry, target=cfg.flow.target, batch_size=LIBRARY_BATCH, seed=seed,
        device=dev,
    )))  # fmt: skip
    alphabet, width = Alphabet.from_dict(meta.alphabet), max(3, len(str(libraries)))
    result = {
        f"library_{i + 1:0{width}d}": decode_tokens(alphabet, tokens[i], meta.pad)
        for i in range(libraries)
    }
    outputs = _write_libraries(result, output, out_dir, label=label, guidance=guidance)
    return LibrarySampleResult(result, outputs, label, guidance)


def _write_libraries(
    libs: Mapping[str, list[str]],
    output: str | Path | None,
    out_dir: str | Path | None,
    *,
    label: str | None,
    guidance: float,
) -> tuple[str, ...]:
    tags = {"label": label, "guidance": guidance if guidance != 1.0 else None}
    rows = {
        name: [{"library": name, "id": f"{name}_{j + 1}", "sequence": s, "label": label}
               for j, s in enumerate(seqs)]
        for name, seqs in libs.items()
    }  # fmt: skip

    def header(row: dict[str, Any]) -> str:
        return format_header(row["id"], {"library": row["library"], **tags})

    columns = ("library", "id", "sequence", "label")
    if out_dir is not None:
        if output not in (None, "-"):
            raise InvalidInputError("give either -o FILE or --out-dir DIR, not both")
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, own in rows.items():
            write_rows(own, folder / f"{name}.fasta", "fasta", header=header, columns=columns)
        return tuple(str(folder / f"{name}.fasta") for name in rows)
    target = None if output in (None, "-") else output
    suffix = Path(str(target)).suffix.lower().lstrip(".") if target is not None else ""
    fmt = suffix if suffix in TABLE_FORMATS else "fasta"
    every = [row for own in rows.values() for row in own]
    write_rows(every, target, fmt, header=header, columns=columns)
    return (str(target) if target is not None else "-",)


def evaluate_library_sets(
    generated: str | Path | Sequence[str | Path],
    reference: str | Path | Sequence[str | Path],
    *,
    set_col: str | None = "library",
    k: int | None = None,
    seed: int = 0,
    json_out: str | Path | None = None,
) -> LibraryReport:
    """Set-level metrics of generated libraries against real ones (each a CSV/TSV with a
    ``set_col`` column, a FASTA whose headers carry ``library=NAME``, or a folder/list of one
    FASTA per library): 1-NNA under OT and Chamfer set distances, within-library diversity."""
    check_seed(seed)
    report = evaluate_libraries(
        _library_sequences(generated, set_col), _library_sequences(reference, set_col),
        k=k, seed=seed,
    )  # fmt: skip
    if json_out is not None:
        with open_output(json_out) as handle:
            json.dump(report.to_dict(), handle, indent=2)
    return report


def _library_sequences(
    source: str | Path | Sequence[str | Path], set_col: str | None
) -> dict[str, list[str]]:
    if isinstance(source, (str, Path)) and Path(source).is_file() and _fasta_like(Path(source)):
        return _fasta_libraries(Path(source))
    col = set_col if isinstance(source, (str, Path)) and Path(source).is_file() else None
    return read_libraries(source, col, alphabet="auto").sequences()


def _fasta_like(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".fasta", ".fa", ".fna", ".fas"))


def _fasta_libraries(path: Path) -> dict[str, list[str]]:
    """Libraries of a FASTA whose headers carry ``library=NAME`` (as ``sample`` writes)."""
    seqs = read_set(path).seqs
    out: dict[str, list[str]] = {}
    names = [tags.get("library", "") for tags in read_header_tags(path)]
    if len(names) != len(seqs) or not all(names):
        raise InvalidInputError(
            f"{path}: every FASTA header needs library=NAME to group records into libraries"
        )
    for name, seq in zip(names, seqs, strict=True):
        out.setdefault(name, []).append(seq)
    return out
