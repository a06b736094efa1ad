"""``sample``: generate sequences from a run, optionally for a label, a value or signal rows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqflow.api._config import resolve_device
from seqflow.api._sets import decode_tokens
from seqflow.checkpoint import ModelMeta, load_model
from seqflow.data import Alphabet, write_fasta
from seqflow.data.signals import read_signal
from seqflow.errors import InvalidInputError
from seqflow.models import Condition
from seqflow.sampling import generate

DEFAULT_N = 100


@dataclass(frozen=True)
class SampleResult:
    """Outcome of ``sample``: the sequences (in order) and where they were written.

    Attributes:
        sequences: the generated sequences, without any end/pad letter.
        ids: their FASTA ids; headers also carry the conditions (``label=``, ``value=``,
            ``signal=FILE:ROW``).
        output: the file written, or ``-`` for standard output.
        label, value: the conditions asked for (None when not given).
        signal: the signal file whose rows were used, or None.
    """

    sequences: tuple[str, ...]
    ids: tuple[str, ...]
    output: str
    label: str | None
    seconds: float
    value: float | None = None
    signal: str | None = None


def sample(
    checkpoint: str | Path,
    *,
    n: int | None = None,
    label: str | None = None,
    value: float | None = None,
    signal: str | Path | None = None,
    guidance: float | None = None,
    steps: int | None = None,
    solver: str | None = None,
    decode: str | None = None,
    seed: int = 0,
    output: str | Path | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    id_prefix: str = "sample",
    on_progress: Callable[[int, int], None] | None = None,
) -> SampleResult:
    """Generate sequences from a run folder or checkpoint and write them as FASTA.

    Args:
        n: how many; default 100, or one per row of ``signal``.
        label: a class the model was trained with (its ``label_col``).
        value: a value on the scale of the training ``value_col`` (the model's standardisation
            is applied here).
        signal: a ``.npy``/``.npz``/text file of signal rows; one sequence per row.
        guidance: classifier-free guidance weight (1: conditional, 0: unconditional).
        output: a file path (written atomically) or ``None``/``"-"`` for standard output.
        on_progress: called with (sequences done, n) after each batch.
    """
    dev = resolve_device(device)
    model, meta = load_model(checkpoint, device=dev)
    label_index = _label_index(meta, label)
    cond_value = _value(meta, value)
    cond_signal = _signal(meta, signal) if signal is not None else None
    if cond_signal is not None:
        rows = int(cond_signal.shape[0])
        if n is not None and n != rows:
            raise InvalidInputError(
                f"-n {n}: {signal} has {rows} signal rows and one sequence is made per row; "
                "drop -n or give a file with that many rows"
            )
        n = rows
    n = DEFAULT_N if n is None else n
    if n < 1:
        raise InvalidInputError(f"-n {n}: the number of sequences must be >= 1")
    chosen = {"sample.steps": steps, "sample.solver": solver, "sample.guidance": guidance,
              "sample.decode": decode, "sample.batch_size": batch_size}  # fmt: skip
    s = meta.config.with_overrides(
        {k: v for k, v in chosen.items() if v is not None}, source="command line"
    ).sample
    cond = _condition(label_index, cond_value, cond_signal)
    alphabet = Alphabet.from_dict(meta.alphabet)
    started = time.perf_counter()
    chunks = generate(
        model, n=n, length=meta.length, vocab=meta.vocab, cond=cond, guidance=s.guidance,
        steps=s.steps, solver=s.solver, decoder=s.decode, pad=meta.pad,
        batch_size=s.batch_size, seed=seed, device=dev,
    )  # fmt: skip
    tags = []
    if label is not None:
        tags.append(f"label={label}")
    if value is not None:
        tags.append(f"value={value:g}")
    if cond is not None and not cond.empty and s.guidance != 1.0:
        tags.append(f"guidance={s.guidance:g}")
    suffix = "".join(f" {tag}" for tag in tags)
    sequences: list[str] = []
    ids: list[str] = []

    def records() -> Iterable[tuple[str, str]]:
        for tokens in chunks:
            for seq in decode_tokens(alphabet, tokens, meta.pad):
                ids.append(f"{id_prefix}_{len(ids) + 1}")
                sequences.append(seq)
                row = f" signal={Path(str(signal)).name}:{len(ids)}" if signal is not None else ""
                yield ids[-1] + suffix + row, seq
            if on_progress is not None:
                on_progress(len(sequences), n)

    target = None if output is None or str(output) == "-" else Path(output)
    write_fasta(records(), target)
    return SampleResult(
        sequences=tuple(sequences), ids=tuple(ids), output=str(target or "-"), label=label,
        seconds=time.perf_counter() - started, value=value,
        signal=str(signal) if signal is not None else None,
    )  # fmt: skip


def _condition(label: int | None, value: float | None, signal: Tensor | None) -> Condition | None:
    if label is None and value is None and signal is None:
        return None
    rows = signal.shape[0] if signal is not None else 1
    return Condition(
        labels=torch.full((rows,), label, dtype=torch.long) if label is not None else None,
        values=torch.full((rows,), value, dtype=torch.float32) if value is not None else None,
        signal=signal,
    )


def _label_index(meta: ModelMeta, label: str | None) -> int | None:
    if label is None:
        return None
    if not meta.labels:
        raise InvalidInputError(f"--label {label}: this model was trained without labels")
    if label not in meta.labels:
        raise InvalidInputError(
            f"--label {label}: unknown label; the model knows {', '.join(meta.labels)}"
        )
    return meta.labels.index(label)


def _value(meta: ModelMeta, value: float | None) -> float | None:
    """The standardised value the model takes, or None."""
    if value is None:
        return None
    if meta.value is None:
        raise InvalidInputError(f"--value {value}: this model was trained without a value column")
    if not math.isfinite(value):
        raise InvalidInputError(f"--value {value}: must be a finite number")
    return float(meta.value.apply(torch.tensor([value]))[0])


def _signal(meta: ModelMeta, path: str | Path) -> Tensor:
    """Standardised signal rows ``(rows, length, channels)`` from ``path``."""
    if meta.signal is None:
        raise InvalidInputError(f"--signal {path}: this model was trained without a signal")
    signal = read_signal(path, length=meta.length, channels=meta.signal.channels)
    return meta.signal.apply(signal)
