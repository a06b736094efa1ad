"""JASPAR matrices, synthetic motif libraries and motif purity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seqflow.data.motifs import (
    motif_hits,
    motif_purity,
    motif_scores,
    read_jaspar,
    synthetic_libraries,
)
from seqflow.errors import InvalidInputError

JASPAR = Path(__file__).parent / "data" / "jaspar_motifs.jaspar"


def consensus(motif) -> str:
    """The most likely letter at every position of the motif."""
    return "".join("ACGT"[i] for i in motif.pwm.argmax(dim=1).tolist())


@pytest.fixture(scope="module")
def motifs():
    return read_jaspar(JASPAR)


def test_read_jaspar_gives_the_known_matrices(motifs):
    by_name = {m.name: m for m in motifs}
    assert set(by_name) == {"CTCF", "GATA1", "SPI1", "REST", "HNF4A", "FOXA2"}
    assert by_name["CTCF"].id == "MA0139.2"
    assert consensus(by_name["CTCF"]) == "GCCACCAGGGGGCGC"
    assert consensus(by_name["SPI1"]) == "AAAGAGGAAGTGG"
    for m in motifs:
        assert 8 <= m.length <= 20
        assert m.pwm.shape == (m.length, 4)
        torch.testing.assert_close(m.pwm.sum(dim=1), torch.ones(m.length, dtype=torch.float64))


def test_read_jaspar_rejects_a_file_without_matrices(tmp_path):
    path = tmp_path / "empty.jaspar"
    path.write_text("# only a comment\n")
    with pytest.raises(InvalidInputError):
        read_jaspar(path)


def test_consensus_scores_one_and_a_planted_site_is_found(motifs):
    ctcf = motifs[0]
    site = ctcf.pwm.argmax(dim=1)
    seq = torch.zeros(24, dtype=torch.long)  # poly-A background
    seq[5 : 5 + ctcf.length] = site
    scores = motif_scores(seq[None], motifs)
    assert scores[0, 0].item() == pytest.approx(1.0)
    assert motif_hits(seq[None], motifs).tolist() == [0]


def test_synthetic_libraries_plant_one_motif_per_library(motifs):
    chosen = [motifs[0], motifs[2], motifs[4]]
    g = torch.Generator().manual_seed(0)
    lib = synthetic_libraries(chosen, n_libraries=6, size=32, length=20, generator=g)
    assert lib.tokens.shape == (6, 32, 20)
    assert torch.bincount(lib.motif).tolist() == [2, 2, 2]
    for i in range(6):
        hits = motif_hits(lib.tokens[i], chosen)
        assert (hits >= 0).float().mean() > 0.5
        assert torch.bincount(hits[hits >= 0]).argmax() == lib.motif[i]
        assert motif_purity(lib.tokens[i], chosen) > 0.85


def test_synthetic_libraries_are_reproducible(motifs):
    a = synthetic_libraries(motifs[:2], n_libraries=3, size=4, length=24,
                            generator=torch.Generator().manual_seed(5))  # fmt: skip
    b = synthetic_libraries(motifs[:2], n_libraries=3, size=4, length=24,
                            generator=torch.Generator().manual_seed(5))  # fmt: skip
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.motif, b.motif)


def test_synthetic_libraries_refuse_a_motif_longer_than_the_sequence(motifs):
    with pytest.raises(InvalidInputError):
        synthetic_libraries(motifs, n_libraries=1, size=1, length=10)


def test_purity_of_a_mixture_is_near_one_over_m(motifs):
    chosen = [motifs[0], motifs[2], motifs[4]]
    g = torch.Generator().manual_seed(1)
    lib = synthetic_libraries(chosen, n_libraries=30, size=64, length=20,
                              density=(1.0, 1.0), generator=g)  # fmt: skip
    pooled = lib.tokens.reshape(-1, 20)
    mixed = pooled[torch.randperm(pooled.shape[0], generator=g)].reshape(30, 64, 20)
    purity = sum(motif_purity(mixed[i], chosen) for i in range(30)) / 30
    assert 1 / 3 < purity < 0.5
    assert math.isnan(motif_purity(torch.zeros(4, 20, dtype=torch.long), chosen))
