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

The classifiers, the AUROC and the Markov chain are the library's
(:mod:`seqflow.metrics.discriminator`, :mod:`seqflow.metrics.markov`, as ``seqflow evaluate
--discriminator --markov 4`` runs them), with their defaults. Both classifiers use fixed seeds,
so a set always gets the same score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seqflow.metrics.discriminator import cnn_auroc, fit_logistic, kmer_auroc, kmer_features
from seqflow.metrics.markov import fit_markov

try:
    from benchmarks._kmers import js_distance, kmer_counts
except ImportError:  # run as a script: benchmarks/ is on sys.path
    from _kmers import js_distance, kmer_counts  # type: ignore[no-redef]

LETTERS = "ACGT"


def to_strings(tokens: Tensor) -> list[str]:
    """Tokens ``(n, L)`` (0-3) as DNA strings."""
    table = np.array(list(LETTERS))
    return ["".join(row) for row in table[tokens.numpy()]]


def markov_sample(tokens: Tensor, n: int, order: int = 4, seed: int = 0) -> Tensor:
    """``n`` sequences from an order-``order`` Markov chain fitted to ``tokens`` (n0, L)."""
    lengths = np.full(len(tokens), tokens.shape[1])
    chain = fit_markov(tokens.numpy(), lengths, len(LETTERS), order)
    return torch.as_tensor(chain.sample(n, seed)[0])


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
        self.clf = fit_logistic(kmer_features(train), train_labels.long(), self.classes)
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
