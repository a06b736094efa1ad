"""Oracles for ``evaluate``: train a built-in one on labelled data, or load one from a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqflow.config import check_seed
from seqflow.data import Alphabet, read_sequences
from seqflow.data.table import SPLIT_TEST
from seqflow.errors import InvalidInputError
from seqflow.oracle import ExternalOracle, Oracle, OracleFitReport, save_oracle
from seqflow.oracle import fit_oracle as _fit
from seqflow.oracle import load_oracle as _load_builtin

ORACLE_KINDS = ("auto", "classifier", "regressor")


@dataclass(frozen=True)
class _Rows:
    """The table rows the oracle trains on (a :class:`seqflow.oracle.TokenTable`)."""

    tokens: Tensor
    alphabet: Alphabet
    labels: Tensor | None
    label_names: tuple[str, ...]
    values: Tensor | None
    source: str


def _looks_numeric(names: tuple[str, ...]) -> bool:
    try:
        [float(x) for x in names]
    except ValueError:
        return False
    return len(names) > 20


def fit_oracle(
    data: str | Path,
    *,
    target: str,
    out: str | Path,
    kind: str = "auto",
    split_col: str | None = None,
    steps: int = 1500,
    seed: int = 0,
    alphabet: str = "auto",
) -> OracleFitReport:
    """Train a CNN oracle predicting column ``target`` of ``data`` and save it to ``out``.

    ``kind=auto`` makes a regressor when the column holds more than 20 distinct numbers, else a
    classifier. With ``split_col`` the ``test`` rows are left out (held-out accuracy comes from
    a random share of the rest).
    """
    check_seed(seed)
    if kind not in ORACLE_KINDS:
        raise InvalidInputError(f"--kind {kind!r}: choose {', '.join(ORACLE_KINDS)}")
    if kind == "auto":
        probe = read_sequences(data, alphabet=alphabet, label_col=target, split_col=split_col)
        kind = "regressor" if _looks_numeric(probe.label_names) else "classifier"
    regress = kind == "regressor"
    table = read_sequences(
        data, alphabet=alphabet, split_col=split_col,
        label_col=None if regress else target, value_col=target if regress else None,
    )  # fmt: skip
    if not regress and len(table.label_names) < 2:
        raise InvalidInputError(
            f"{table.source}: column {target!r} holds {len(table.label_names)} class; a "
            "classifier needs at least 2"
        )
    keep = torch.ones(len(table), dtype=torch.bool)
    if table.splits is not None:
        keep = table.splits.long() != SPLIT_TEST
    idx = torch.nonzero(keep).flatten()
    rows = _Rows(
        tokens=table.tokens[idx], alphabet=table.alphabet,
        labels=table.labels[idx] if table.labels is not None else None,
        label_names=table.label_names,
        values=table.values[idx] if table.values is not None else None, source=table.source,
    )  # fmt: skip
    oracle, report = _fit(rows, target="value" if regress else "label", steps=steps, seed=seed)
    save_oracle(oracle, Path(out))
    return report


def load_oracle(
    path: str | Path,
    *,
    input_length: int | None = None,
    layout: str = "NLC",
    pad_value: float = 0.25,
    columns: list[int] | None = None,
    names_file: str | None = None,
    select: str | None = None,
) -> Oracle:
    """A built-in oracle (``.safetensors``) or, for any other file, a TorchScript module.

    TorchScript files run code when loaded: only load files you trust. They need
    ``input_length``; the other arguments describe their input and output contract (see
    :class:`seqflow.oracle.ExternalOracle`).
    """
    if Path(str(path)).suffix == ".safetensors":
        return _load_builtin(path)
    if input_length is None:
        raise InvalidInputError(
            f"{path}: a TorchScript oracle needs --oracle-length (its input length)"
        )
    return ExternalOracle.load(
        path, input_length=input_length, layout=layout, pad_value=pad_value, columns=columns,
        names_file=names_file, select=select,
    )  # fmt: skip


__all__ = ["fit_oracle", "load_oracle"]
