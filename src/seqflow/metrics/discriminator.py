"""Classifier two-sample test: can a classifier tell generated sequences from real ones?

Each classifier learns real (class 0) against generated (class 1); its cross-validated scores
give an AUROC: 0.5 means it cannot tell the sets apart, 1.0 that it always can (Lopez-Paz and
Oquab 2017, "Revisiting classifier two-sample tests", ICLR). Two classifiers, each with a fixed
seed so a pair of sets always gets the same score: a logistic regression on k-mer frequencies
(:func:`kmer_auroc`) and a small CNN on one-hot sequences (:func:`cnn_auroc`). Any alphabet and
variable lengths: the pad token ``vocab`` is an all-zero one-hot column for the CNN and opens no
k-mer window. No scikit-learn: the AUROC is the Mann-Whitney statistic with ties counted half.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import encode

KMER_BLOCK_MAX = 4**5
"""Largest number of features of one k-mer block: bounds ``k_max`` for large alphabets."""
KMER_ORDER_MAX = 5
MIN_PER_CLASS = 10
"""Fewest sequences per class the cross-validation accepts."""


def kmer_order(vocab: int, length: int | None = None) -> int:
    """Largest ``k <= 5`` with ``vocab**k <= 1024`` (and ``k <= length`` when given), at least 1."""
    k = 1
    while k < KMER_ORDER_MAX and vocab ** (k + 1) <= KMER_BLOCK_MAX:
        k += 1
    return max(1, min(k, length)) if length is not None else k


def kmer_features(
    tokens: Tensor, kmax: int = 5, vocab: int = 4, lengths: Tensor | None = None
) -> Tensor:
    """Frequencies of every k-mer for k = 1..kmax per sequence.

    Args:
        tokens: letters ``0..vocab-1``, shape (n, L); beyond ``lengths`` any value (padding).
        kmax: the largest k.
        vocab: the number of letters.
        lengths: each sequence's length, shape (n,); None: all ``L``.

    Returns:
        float32 features, shape (n, sum_k vocab**k); each k's block sums to 1 (0 for a sequence
        shorter than k).
    """
    n, length = tokens.shape
    if lengths is None:
        lengths = torch.full((n,), length)
    blocks = []
    for k in range(1, kmax + 1):
        windows = max(length - k + 1, 0)
        idx = torch.zeros(n, windows, dtype=torch.long)
        for j in range(k):
            idx = idx * vocab + tokens[:, j : windows + j].long()
        valid = torch.arange(windows) < (lengths - k + 1)[:, None]
        idx = torch.where(valid, idx, 0)
        counts = torch.zeros(n, vocab**k).scatter_add_(1, idx, valid.float())
        blocks.append(counts / (lengths - k + 1).clamp_min(1)[:, None].float())
    return torch.cat(blocks, dim=1)


def auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (n,) for binary labels ``y`` (n,): the share of
    (positive, negative) pairs the scores order correctly, ties counting half."""
    ranks = rankdata(scores)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class LogisticRegression:
    """A fitted multinomial logistic regression on standardised features.

    Attributes:
        mean, std: feature standardisation, shape (d,).
        weight: weights with the bias as last row, shape (d + 1, classes).
    """

    mean: Tensor
    std: Tensor
    weight: Tensor

    def logits(self, x: Tensor) -> Tensor:
        """Class logits of features ``x`` (n, d): shape (n, classes)."""
        return ((x - self.mean) / self.std) @ self.weight[:-1] + self.weight[-1]


def fit_logistic(
    x: Tensor, y: Tensor, classes: int, *, l2: float = 1e-3, max_iter: int = 200
) -> LogisticRegression:
    """Fit a logistic regression by full-batch L-BFGS (strong Wolfe line search).

    Args:
        x: features, shape (n, d).
        y: class indices, shape (n,).
        classes: number of classes.
        l2: penalty on the squared weights (not the bias), added to the mean cross-entropy.
        max_iter: L-BFGS iterations.
    """
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1] + 1, classes, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        logits = z @ w[:-1] + w[-1]
        loss = nn.functional.cross_entropy(logits, y) + l2 * w[:-1].square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LogisticRegression(mean, std, w.detach())


def fold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint index sets covering ``range(n)`` in a seeded random order."""
    return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def kmer_auroc(
    real: Tensor, fake: Tensor, folds: int = 5, seed: int = 0, *, vocab: int = 4,
    kmax: int = 5, lengths: tuple[Tensor, Tensor] | None = None,
) -> float:  # fmt: skip
    """Cross-validated AUROC of a k-mer logistic regression (``l2 = 1e-2``), real vs fake.

    Args:
        real, fake: tokens, shapes (n_real, L) and (n_fake, L) (padded with ``vocab``).
        folds: cross-validation folds.
        lengths: each set's sequence lengths, or None for full rows.
    """
    lr, lf = lengths if lengths is not None else (None, None)
    x = torch.cat([kmer_features(real, kmax, vocab, lr), kmer_features(fake, kmax, vocab, lf)])
    y = np.r_[np.zeros(len(real)), np.ones(len(fake))].astype(int)
    scores = np.zeros(len(y))
    for test in fold_indices(len(y), folds, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        model = fit_logistic(x[train], torch.as_tensor(y[train]), 2, l2=1e-2)
        out = model.logits(x[test])
        scores[test] = (out[:, 1] - out[:, 0]).numpy()
    return auroc(scores, y)


class SmallCNN(nn.Module):
    """Two convolutions and a global max pool: a quick real-vs-generated discriminator.

    Args:
        vocab: number of letters; the token ``vocab`` is padding (an all-zero column).
        width: channels of both convolutions.
    """

    def __init__(self, vocab: int = 4, width: int = 64) -> None:
        super().__init__()
        self.vocab = vocab
        self.net = nn.Sequential(
            nn.Conv1d(vocab, width, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4),
            nn.Conv1d(width, width, 9, padding=4), nn.ReLU(), nn.AdaptiveMaxPool1d(1),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(width, 1),
        )  # fmt: skip

    def forward(self, tokens: Tensor) -> Tensor:
        """Logit of "generated" for tokens (n, L), L >= 4: shape (n,)."""
        x = nn.functional.one_hot(tokens.long(), self.vocab + 1)[..., : self.vocab]
        return self.net(x.float().transpose(1, 2)).squeeze(-1)


def cnn_auroc(
    real: Tensor, fake: Tensor, folds: int = 3, epochs: int = 12, seed: int = 0, *,
    vocab: int = 4,
) -> float:  # fmt: skip
    """Cross-validated AUROC of :class:`SmallCNN`, real vs fake: each fold trains a fresh CNN
    on the other folds (Adam, lr 2e-3, batches of 64, ``epochs`` passes) and scores its own.
    The global torch RNG is seeded inside and restored afterwards.

    Args:
        real, fake: tokens, shapes (n_real, L) and (n_fake, L), padded with ``vocab``.
    """
    x = torch.cat([real, fake])
    if x.shape[1] < 4:  # the first pooling needs 4 positions
        x = nn.functional.pad(x, (0, 4 - x.shape[1]), value=vocab)
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))])
    scores = np.zeros(len(y))
    with torch.random.fork_rng(devices=[]):
        for i, test in enumerate(fold_indices(len(y), folds, seed)):
            train = torch.as_tensor(np.setdiff1d(np.arange(len(y)), test))
            torch.manual_seed(seed + i)
            net = SmallCNN(vocab)
            opt = torch.optim.Adam(net.parameters(), lr=2e-3)
            for _ in range(epochs):
                net.train()
                for batch in train[torch.randperm(len(train))].split(64):
                    opt.zero_grad()
                    loss = nn.functional.binary_cross_entropy_with_logits(net(x[batch]), y[batch])
                    loss.backward()
                    opt.step()
            net.eval()
            with torch.no_grad():
                scores[test] = net(x[torch.as_tensor(test)]).numpy()
    return auroc(scores, y.numpy().astype(int))


@dataclass(frozen=True)
class TwoSampleTest:
    """Outcome of :func:`classifier_two_sample_test`.

    Attributes:
        kmer_auroc: AUROC of the k-mer logistic regression (0.5: indistinguishable).
        cnn_auroc: AUROC of the CNN.
        kmax: the k-mer orders used, 1..kmax.
        n_per_class: sequences of each set used (the larger set is subsampled).
    """

    kmer_auroc: float
    cnn_auroc: float
    kmax: int
    n_per_class: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def classifier_two_sample_test(
    gen: Sequence[str], ref: Sequence[str], letters: str, *, seed: int = 0
) -> TwoSampleTest:
    """Both discriminators on ``min(len(gen), len(ref))`` sequences of each set.

    Args:
        gen: generated sequences.
        ref: real held-out sequences.
        letters: the alphabet (the pad token is ``len(letters)``).
        seed: seed of the subsample, folds and CNN initialisation.

    Raises:
        InvalidInputError: fewer than 10 sequences in either set (too few to cross-validate).
    """
    n = min(len(gen), len(ref))
    if n < MIN_PER_CLASS:
        raise InvalidInputError(
            f"--discriminator: needs at least {MIN_PER_CLASS} generated and {MIN_PER_CLASS} "
            f"real sequences to cross-validate, got {len(gen)} and {len(ref)}"
        )
    rng = np.random.default_rng(seed)
    real = encode([ref[i] for i in np.sort(rng.permutation(len(ref))[:n])], letters, "ref")
    fake = encode([gen[i] for i in np.sort(rng.permutation(len(gen))[:n])], letters, "gen")
    vocab = real.size
    width = max(real.tokens.shape[1], fake.tokens.shape[1])

    def padded(tokens: np.ndarray) -> Tensor:
        return torch.as_tensor(np.pad(tokens, ((0, 0), (0, width - tokens.shape[1])),
                                      constant_values=vocab).astype(np.int64))  # fmt: skip

    r, f = padded(real.tokens), padded(fake.tokens)
    lengths = torch.as_tensor(real.lengths), torch.as_tensor(fake.lengths)
    kmax = kmer_order(vocab, int(max(real.lengths.max(), fake.lengths.max())))
    return TwoSampleTest(
        kmer_auroc=kmer_auroc(r, f, seed=seed, vocab=vocab, kmax=kmax, lengths=lengths),
        cnn_auroc=cnn_auroc(r, f, seed=seed, vocab=vocab),
        kmax=kmax,
        n_per_class=n,
    )
