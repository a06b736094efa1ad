"""Training the built-in oracle on a sequence table: a classifier or a regressor.

``target="label"`` trains a classifier with cross-entropy on the table's label column;
``target="value"`` a regressor with mean squared error on its value column, standardised with
the training part's mean and standard deviation (kept in the oracle). A random ``valid_frac``
of the records is held out and scored at the end: accuracy, or R^2 on the original scale.
AdamW with a linear warmup (5% of the steps) and a cosine decay to 5% of ``lr``. On a CPU the
same seed gives the same oracle: weights and minibatch order come from that seed alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

from seqflow.errors import InvalidInputError
from seqflow.oracle.builtin import METRICS, BuiltinOracle
from seqflow.oracle.encoding import check_count, check_letters, in_batches, one_hot
from seqflow.oracle.network import NetworkConfig, OracleCNN


class _Letters(Protocol):
    @property
    def letters(self) -> str: ...


class TokenTable(Protocol):
    """What training reads from a :class:`seqflow.data.SequenceTable`."""

    @property
    def tokens(self) -> Tensor: ...
    @property
    def alphabet(self) -> _Letters: ...
    @property
    def labels(self) -> Tensor | None: ...
    @property
    def label_names(self) -> tuple[str, ...]: ...
    @property
    def values(self) -> Tensor | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class OracleProgress:
    """One progress report: training loss at ``step`` of ``steps``, after ``seconds``."""

    step: int
    steps: int
    loss: float
    seconds: float


@dataclass(frozen=True)
class OracleFitReport:
    """How fitting went.

    Attributes:
        kind: ``classifier`` or ``regressor``.
        target: the table column trained on, ``label`` or ``value``.
        metric_name: ``accuracy`` (classifier) or ``r2`` (regressor).
        metric: that metric on the held-out records.
        n_train, n_valid: records trained on and held out.
        steps: optimiser steps taken.
        seconds: wall time of the whole fit.
        loss: training loss of the last step (cross-entropy, or MSE in standardised units).
    """

    kind: str
    target: str
    metric_name: str
    metric: float
    n_train: int
    n_valid: int
    steps: int
    seconds: float
    loss: float


def _lr_factor(step: int, steps: int) -> float:
    warmup = max(1, steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _targets(table: TokenTable, target: str) -> tuple[str, Tensor, tuple[str, ...]]:
    """Kind, targets ``(N,)`` (int64 classes or float64 values) and output names."""
    if target == "label":
        if table.labels is None or len(table.label_names) < 2:
            raise InvalidInputError(
                f"{table.source}: target='label' needs a label column with >= 2 classes"
            )
        return "classifier", table.labels.long(), tuple(table.label_names)
    if target == "value":
        if table.values is None:
            raise InvalidInputError(f"{table.source}: target='value' needs a value column")
        return "regressor", table.values.double(), ("value",)
    raise InvalidInputError(f"target {target!r}: must be 'label' (classifier) or 'value'")


def _check(
    n: int, valid_frac: float, steps: int, batch_size: int, lr: float, log_every: int
) -> int:
    """Number of held-out records, after checking the settings."""
    if not 0.0 < valid_frac < 1.0:
        raise InvalidInputError(f"valid_frac {valid_frac!r}: must be between 0 and 1")
    for name, v in (("steps", steps), ("batch_size", batch_size), ("log_every", log_every)):
        check_count(name, v)
    if not lr > 0:
        raise InvalidInputError(f"lr {lr!r}: must be > 0")
    n_valid = max(1, round(n * valid_frac))
    if n - n_valid < 1:
        raise InvalidInputError(f"{n} records: too few to hold out {valid_frac:g} and train")
    return n_valid


def _score(oracle: BuiltinOracle, x_tokens: Tensor, y: Tensor, batch_size: int) -> float:
    """Accuracy or R^2 of ``oracle`` on tokens ``(M, L)`` with targets ``(M,)``."""
    k = len(oracle.letters)
    with torch.inference_mode():
        out = in_batches(lambda t: oracle.outputs(one_hot(t, k)), x_tokens, batch_size)
    if oracle.kind == "classifier":
        return float((out.argmax(dim=-1) == y).double().mean())
    residual = ((out[:, 0].double() - y) ** 2).sum()
    total = ((y - y.mean()) ** 2).sum()
    return float(1.0 - residual / total) if total > 0 else math.nan


def fit_oracle(
    table: TokenTable,
    *,
    target: str = "label",
    valid_frac: float = 0.1,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    hidden: int = 32,
    depth: int = 2,
    kernel_size: int = 9,
    pool: int = 4,
    log_every: int = 50,
    on_progress: Callable[[OracleProgress], None] | None = None,
) -> tuple[BuiltinOracle, OracleFitReport]:
    """Train a built-in oracle on ``table``.

    Args:
        table: a :class:`seqflow.data.SequenceTable`; ``tokens`` shape (N, L), uint8, padded
            with ``alphabet.size``; ``labels`` (N,) or ``values`` (N,) as the target.
        target: ``label`` (classifier) or ``value`` (regressor).
        valid_frac: fraction of records held out for the reported metric.
        steps, batch_size, lr: optimiser steps, records per step, peak learning rate.
        seed: seeds the weights, the held-out split and the minibatch order.
        hidden, depth, kernel_size, pool: the network's size (:class:`NetworkConfig`).
        log_every: steps between progress reports (the last step always reports).
        on_progress: called with an :class:`OracleProgress`; nothing is printed.

    Returns:
        the oracle (``input_length`` = L) and an :class:`OracleFitReport`.

    Raises:
        InvalidInputError: the target column is missing, or a setting is out of range.
    """
    start = time.perf_counter()
    kind, y, names = _targets(table, target)
    letters = check_letters(table.alphabet.letters, table.source)
    n, length = table.tokens.shape
    n_valid = _check(n, valid_frac, steps, batch_size, lr, log_every)
    try:
        config = NetworkConfig(hidden=hidden, depth=depth, kernel_size=kernel_size, pool=pool)
    except ValueError as err:
        raise InvalidInputError(str(err)) from None
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    valid, train = order[:n_valid], order[n_valid:]
    mean, std = 0.0, 1.0
    if kind == "regressor":
        mean, std = float(y[train].mean()), float(y[train].std(correction=0))
        std = std if std > 1e-12 else 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = OracleCNN(len(letters), len(names), config)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    batch_size = min(batch_size, len(train))
    y_fit = y if kind == "classifier" else ((y - mean) / std).float()
    perm, cursor = train[torch.randperm(len(train), generator=generator)], 0
    network.train()
    for step in range(steps):
        if cursor + batch_size > len(perm):
            perm, cursor = train[torch.randperm(len(train), generator=generator)], 0
        idx = perm[cursor : cursor + batch_size]
        cursor += batch_size
        out = network(one_hot(table.tokens[idx], len(letters)))
        if kind == "classifier":
            batch_loss = F.cross_entropy(out, y_fit[idx])
        else:
            batch_loss = F.mse_loss(out[:, 0], y_fit[idx])
        for group in optimizer.param_groups:
            group["lr"] = lr * _lr_factor(step, steps)
        optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        optimizer.step()
        if on_progress is not None and ((step + 1) % log_every == 0 or step + 1 == steps):
            seconds = time.perf_counter() - start
            on_progress(OracleProgress(step + 1, steps, float(batch_loss.detach()), seconds))
    network.eval()
    oracle = BuiltinOracle(
        network=network, config=config, letters=letters, input_length=int(length),
        output_names=names, kind=kind, value_mean=mean, value_std=std,
    )  # fmt: skip
    metric = _score(oracle, table.tokens[valid], y[valid], 256)
    oracle = replace(oracle, metric=metric)
    report = OracleFitReport(
        kind=kind, target=target, metric_name=METRICS[kind], metric=metric, n_train=len(train),
        n_valid=n_valid, steps=steps, seconds=time.perf_counter() - start,
        loss=float(batch_loss.detach()),
    )  # fmt: skip
    return oracle, report
