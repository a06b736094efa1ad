"""External oracles: a user's TorchScript model (e.g. Sei, Enformer-style CNNs) as an oracle.

Input contract. The model is called as ``module(x)`` with ``x`` a one-hot float32 tensor of
shape ``(batch, input_length, K)`` (layout ``NLC``) or ``(batch, K, input_length)`` (``NCL``),
channels in alphabet order (``ACGT`` by default; lower-case letters are accepted). A sequence
shorter than ``input_length`` is padded with ``pad_value`` in every channel (Sei takes 4096 bp
padded with 0.25): centred (``pad_mode="center"``; an odd pad puts the extra position on the
right) or after the sequence (``"right"``). A longer sequence, or a letter outside the
alphabet, is an error naming the sequence. The model must return ``(batch, outputs)``, of which
:mod:`seqflow.oracle.selection` picks the reported columns (Sei-style promoter activity is the
mean of the H3K4me3 columns).

Loading TorchScript runs code from the file: load only files you trust.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqflow.errors import CheckpointError, InvalidInputError, no_such
from seqflow.oracle.encoding import (
    PAD_MODES,
    check_count,
    check_letters,
    encode,
    in_batches,
    last_line,
    one_hot,
)
from seqflow.oracle.selection import REDUCTIONS, select_columns

LAYOUTS = ("NLC", "NCL")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInputError(f"{name} {value!r}: must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, eq=False)
class ExternalOracle:
    """A TorchScript model scoring one-hot sequences, under the module docstring's contract.

    Attributes:
        module: the loaded TorchScript module (eval mode, CPU).
        source: its file, named in error messages.
        input_length, letters, layout, pad_value, pad_mode, reduce: as given to :meth:`load`
            (``letters`` as ``alphabet``).
        width: columns of the model's raw output.
        columns: the selected columns, or None for all.
        output_names: names of the columns :meth:`predict` returns.
    """

    module: torch.nn.Module
    source: str
    input_length: int
    letters: str
    layout: str
    pad_value: float
    pad_mode: str
    width: int
    columns: tuple[int, ...] | None
    reduce: str
    output_names: tuple[str, ...]

    @property
    def kind(self) -> str:
        """Always ``external``."""
        return "external"

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        input_length: int,
        alphabet: str = "ACGT",
        layout: str = "NLC",
        pad_value: float = 0.25,
        pad_mode: str = "center",
        columns: list[int] | None = None,
        names_file: str | None = None,
        select: str | None = None,
        reduce: str = "mean",
    ) -> ExternalOracle:
        """Load a TorchScript file (``torch.jit.load``, on the CPU) and check its output.

        The model is run once on an all-padding input to learn its output width, so a wrong
        names file or column fails here rather than at the first prediction.

        Args:
            path: the ``.pt`` TorchScript file.
            input_length, alphabet, layout, pad_value, pad_mode: the input contract (see the
                module docstring).
            columns, names_file, select, reduce: the output selection (see
                :mod:`seqflow.oracle.selection`).

        Raises:
            CheckpointError: the file is missing or not TorchScript.
            InvalidInputError: a bad setting, a names file of the wrong length, a column out of
                range, ``select`` matching nothing, or an output that is not (batch, outputs).
        """
        source = str(path)
        check_count("input_length", input_length)
        if not math.isfinite(pad_value):
            raise InvalidInputError(f"pad_value {pad_value!r}: must be a finite number")
        letters = check_letters(alphabet, source)
        _one_of("layout", layout, LAYOUTS)
        _one_of("pad_mode", pad_mode, PAD_MODES)
        _one_of("reduce", reduce, REDUCTIONS)
        if not Path(path).is_file():
            raise CheckpointError(f"{source}: {no_such(path, 'TorchScript file')}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated
                module = torch.jit.load(source, map_location="cpu")
        except (RuntimeError, ValueError, OSError) as err:
            raise CheckpointError(f"{source}: not a TorchScript file ({last_line(err)})") from None
        oracle = cls(
            module=module.eval(), source=source, input_length=input_length, letters=letters,
            layout=layout, pad_value=float(pad_value), pad_mode=pad_mode, width=0,
            columns=None, reduce=reduce, output_names=(),
        )  # fmt: skip
        width = int(oracle._call(module.forward, oracle.inputs([""])).shape[1])
        chosen = select_columns(
            width, source, columns=columns, names_file=names_file, select=select, reduce=reduce
        )
        return replace(
            oracle, width=width, columns=chosen.columns, output_names=chosen.output_names
        )

    def _tokens(self, seqs: list[str]) -> Tensor:
        tokens = encode(
            seqs, self.letters, length=self.input_length, source=self.source,
            pad_mode=self.pad_mode,
        )  # fmt: skip
        return torch.from_numpy(tokens)

    def _one_hot(self, tokens: Tensor) -> Tensor:
        x = one_hot(tokens, len(self.letters), pad_value=self.pad_value)
        return x.transpose(1, 2).contiguous() if self.layout == "NCL" else x

    def inputs(self, seqs: list[str]) -> Tensor:
        """The model's input for ``seqs``: shape (N, L, K) (NLC) or (N, K, L) (NCL), float32."""
        return self._one_hot(self._tokens(seqs))

    def _call(self, method: Callable[[Tensor], Any], x: Tensor) -> Tensor:
        """``method(x)``, checked to be a (batch, columns) tensor, as float32."""
        try:
            with torch.inference_mode():
                y = method(x)
        except RuntimeError as err:
            raise InvalidInputError(
                f"{self.source}: the model failed on input of shape {tuple(x.shape)} "
                f"({last_line(err)})"
            ) from None
        if not isinstance(y, Tensor):
            raise InvalidInputError(f"{self.source}: output is a {type(y).__name__}, not a tensor")
        if y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise InvalidInputError(
                f"{self.source}: output has shape {tuple(y.shape)} for a batch of {x.shape[0]}; "
                "an oracle must return (batch, outputs)"
            )
        return y.detach().float()

    def _batches(self, seqs: list[str], batch_size: int, method: Callable[[Tensor], Any]) -> Tensor:
        """Outputs of ``method``, one-hot built batch by batch (Sei inputs are 64 kB each)."""
        check_count("batch_size", batch_size)
        tokens = self._tokens(seqs)
        return in_batches(lambda t: self._call(method, self._one_hot(t)), tokens, batch_size)

    def _selected(self, y: Tensor) -> Tensor:
        if y.shape[1] != self.width:
            raise InvalidInputError(
                f"{self.source}: output has {y.shape[1]} columns, {self.width} when loaded"
            )
        return y if self.columns is None else y[:, list(self.columns)]

    def predict(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """Selected (and reduced) outputs of the model for N sequences of at most
        ``input_length`` letters, ``batch_size`` per call: shape (N, len(output_names)), float32.
        """
        y = self._selected(self._batches(seqs, batch_size, self.module.forward))
        if self.columns is not None and self.reduce == "mean":
            y = y.mean(dim=1, keepdim=True)
        return y.numpy()

    def embed(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """The module's ``embed`` method if it has one, else the selected (unreduced) outputs:
        shape (N, D), float32."""
        method = getattr(self.module, "embed", None)
        if method is None or isinstance(method, torch.nn.Module):
            return self._selected(self._batches(seqs, batch_size, self.module.forward)).numpy()
        return self._batches(seqs, batch_size, method).numpy()
