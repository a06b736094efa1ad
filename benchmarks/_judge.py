"""An independent judge of generated DNA against real held-out sequences (issue 17).

Every figure compares a set of generated sequences (tokens ``(n, L)``, letters 0-3) with real
sequences the generator never saw:

- ``js6``: Jensen-Shannon distance of 6-mer spectra, per label against that label's real
  reference, averaged over labels (:mod:`_kmers`);
- ``label_acc``: accuracy of a k-mer (k <= 5 frequencies) logistic regression trained on real
  training sequences at predicting each generated sequence's conditioning label;
- ``kmer_auroc``: a k-mer logistic regression told to separate real reference from generated,
  cross-validated; AUROC of the held-out scores (0.5: indistinguishable);
- ``cnn_auroc``: the same with a small CNN on one-hot sequences (a classifier two-sample test,
  Lopez-Paz and Oquab 2017);
- ``copies``: generated sequences identical to a training sequence.

No scikit-learn: the logistic regression is a full-batch L-BFGS fit in torch, the AUROC is the
Mann-Whitney statistic. Both classifiers use fixed seeds, so a set always gets the same score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

try:
    from benchmarks._kmers import js_distance, kmer_counts
except ImportError:  # run as a script: benchmarks/ is on sys.path
    from _kmers import js_distance, kmer_counts  # type: ignore[no-redef]

LETTERS = "ACGT"
KMAX = 5


def to_strings(tokens: Tensor) -> list[str]:
    """Tokens ``(n, L)`` (0-3) as DNA strings."""
    table = np.array(list(LETTERS))
    return ["".join(row) for row in table[tokens.numpy()]]


def kmer_features(tokens: Tensor, kmax: int = KMAX) -> Tensor:
    """Frequencies of every k-mer for k = 1..kmax per sequence: ``(n, sum_k 4^k)`` float32
    (each k's block sums to 1)."""
    n, length = tokens.shape
    blocks = []
    for k in range(1, kmax + 1):
        idx = torch.zeros(n, length - k + 1, dtype=torch.long)
        for j in range(k):
            idx = idx * 4 + tokens[:, j : length - k + 1 + j].long()
        counts = torch.zeros(n, 4**k).scatter_add_(1, idx, torch.ones(idx.shape))
        blocks.append(counts / (length - k + 1))
    return torch.cat(blocks, dim=1)


def auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary labels ``y`` (ties count half)."""
    ranks = rankdata(scores)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class LogisticRegression:
    """Multinomial logistic regression on standardised features with an L2 penalty ``l2``
    (on the weights, per training example), fitted by full-batch L-BFGS."""

    l2: float = 1e-3
    max_iter: int = 200
    mean: Tensor | None = None
    std: Tensor | None = None
    weight: Tensor | None = None

    def fit(self, x: Tensor, y: Tensor, classes: int) -> LogisticRegression:
        self.mean, self.std = x.mean(0), x.std(0).clamp_min(1e-6)
        z = (x - self.mean) / self.std
        w = torch.zeros(z.shape[1] + 1, classes, requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            logits = z @ w[:-1] + w[-1]
            loss = nn.functional.cross_entropy(logits, y) + self.l2 * w[:-1].square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.weight = w.detach()
        return self

    def logits(self, x: Tensor) -> Tensor:
        assert self.weight is not None and self.mean is not None and self.std is not None
        return ((x - self.mean) / self.std) @ self.weight[:-1] + self.weight[-1]


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint index sets covering ``range(n)`` in a seeded random order."""
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def kmer_auroc(real: Tensor, fake: Tensor, k: int = 5, seed: int = 0) -> float:
    """Cross-validated (``k`` folds) AUROC of a k-mer logistic regression, real vs generated."""
    x = torch.cat([kmer_features(real), kmer_features(fake)])
    y = np.r_[np.zeros(len(real)), np.ones(len(fake))].astype(int)
    scores = np.zeros(len(y))
    for test in folds(len(y), k, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        lr = LogisticRegression(l2=1e-2).fit(x[train], torch.as_tensor(y[train]), 2)
        out = lr.logits(x[test])
        scores[test] = (out[:, 1] - out[:, 0]).numpy()
    return auroc(scores, y)


class SmallCNN(nn.Module):
    """Two convolutions and a global max pool: a quick real-vs-generated discriminator."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(4, width, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4),
            nn.Conv1d(width, width, 9, padding=4), nn.ReLU(), nn.AdaptiveMaxPool1d(1),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(width, 1),
        )  # fmt: skip

    def forward(self, tokens: Tensor) -> Tensor:
        x = nn.functional.one_hot(tokens.long(), 4).float().transpose(1, 2)
        return self.net(x).squeeze(-1)


def cnn_auroc(real: Tensor, fake: Tensor, k: int = 3, epochs: int = 12, seed: int = 0) -> float:
    """Cross-validated (``k`` folds) AUROC of :class:`SmallCNN`, real vs generated: each fold
    trains a fresh CNN on the other folds (Adam, ``epochs`` passes) and scores its own."""
    x = torch.cat([real, fake])
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))])
    scores = np.zeros(len(y))
    for i, test in enumerate(folds(len(y), k, seed)):
        train = torch.as_tensor(np.setdiff1d(np.arange(len(y)), test))
        torch.manual_seed(seed + i)
        net = SmallCNN()
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


def markov_sample(
    tokens: Tensor, n: int, order: int = 4, seed: int = 0, pseudo: float = 0.1
) -> Tensor:
    """``n`` sequences from an order-``order`` Markov chain fitted to ``tokens`` (n0, L): the
    first ``order`` letters drawn from the data's first ``order``-mers, each next letter from
    the counts of the ``order + 1``-mers (plus ``pseudo``)."""
    rng = np.random.default_rng(seed)
    t = tokens.numpy().astype(np.int64)
    length = t.shape[1]
    ctx = np.zeros((t.shape[0], length - order), dtype=np.int64)
    for j in range(order):
        ctx = ctx * 4 + t[:, j : length - order + j]
    nxt = t[:, order:]
    trans = np.full((4**order, 4), pseudo)
    np.add.at(trans, (ctx.ravel(), nxt.ravel()), 1.0)
    cum = np.cumsum(trans / trans.sum(1, keepdims=True), axis=1)
    starts = t[rng.integers(0, t.shape[0], n), :order]
    out = np.zeros((n, length), dtype=np.int64)
    out[:, :order] = starts
    state = np.zeros(n, dtype=np.int64)
    for j in range(order):
        state = state * 4 + starts[:, j]
    for pos in range(order, length):
        letter = (rng.random(n)[:, None] > cum[state]).sum(1).clip(0, 3)
        out[:, pos] = letter
        state = (state * 4 + letter) % 4**order
    return torch.as_tensor(out)


@dataclass(frozen=True)
class Scores:
    """The judge's figures for one generated set (see the module docstring)."""

    js6: float
    label_acc: float
    kmer_auroc: float
    cnn_auroc: float
    copies: int


class Judge:
    """Score generated sets against a fixed real reference.

    Args:
        train: real training tokens ``(n, L)`` and their labels ``(n,)`` (the label classifier
            is fitted on them; copies are counted against them).
        reference: real held-out tokens per label (for the 6-mer JS).
        disc_reference: real held-out tokens per label, ``n`` each (the discriminators' real
            class: as many per label as a generated set has).
    """

    def __init__(
        self,
        train: Tensor,
        train_labels: Tensor,
        reference: list[Tensor],
        disc_reference: list[Tensor],
    ) -> None:
        self.classes = len(reference)
        self.clf = LogisticRegression(l2=1e-3).fit(
            kmer_features(train), train_labels.long(), self.classes
        )
        self.train_set = set(to_strings(train))
        self.ref_counts = [kmer_counts(to_strings(r), 6) for r in reference]
        self.disc_reference = torch.cat(disc_reference)

    def score(self, generated: list[Tensor]) -> Scores:
        """Figures for ``generated[c]``: the sequences generated for label ``c``."""
        js = [
            js_distance(kmer_counts(to_strings(g), 6), self.ref_counts[c])
            for c, g in enumerate(generated)
        ]
        fake = torch.cat(generated)
        labels = torch.cat([torch.full((len(g),), c) for c, g in enumerate(generated)])
        pred = self.clf.logits(kmer_features(fake)).argmax(1)
        strings = to_strings(fake)
        return Scores(
            js6=float(np.mean(js)),
            label_acc=float((pred == labels).float().mean()),
            kmer_auroc=kmer_auroc(self.disc_reference, fake),
            cnn_auroc=cnn_auroc(self.disc_reference, fake),
            copies=sum(s in self.train_set for s in strings),
        )
