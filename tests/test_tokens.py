"""seqflow.tokens: the one string-to-token encoder of metrics and oracles, against a letter loop."""

import numpy as np
import pytest

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import encode
from seqflow.tokens import INVALID, FlatTokens

SEQS = ["ACgt", "", "tTa", "G"]


def naive_rows(seqs, letters, width, offsets):
    """Token rows built letter by letter: the independent reference."""
    out = np.full((len(seqs), width), len(letters), dtype=np.uint8)
    for n, (seq, offset) in enumerate(zip(seqs, offsets, strict=True)):
        for i, c in enumerate(seq):
            out[n, offset + i] = letters.index(c.upper())
    return out


@pytest.mark.parametrize("centred", [False, True])
def test_padded_rows_equal_a_letter_loop(centred):
    flat = FlatTokens.of(SEQS, "ACGT")
    np.testing.assert_array_equal(flat.lengths, [4, 0, 3, 1])
    offsets = (6 - flat.lengths) // 2 if centred else np.zeros(len(SEQS), dtype=np.int64)
    rows = flat.padded(6, 4, offsets if centred else None)
    np.testing.assert_array_equal(rows, naive_rows(SEQS, "ACGT", 6, offsets))
    assert flat.first_invalid() is None


@pytest.mark.parametrize(
    ("seqs", "where"),
    [
        (["AC", "", "AXG"], (2, 1)),  # an empty sequence before the bad one
        (["", "N"], (1, 0)),
        (["ACGT", "é"], (1, 0)),  # not ASCII
        (["A\ud800"], (0, 1)),  # a lone surrogate
    ],
)
def test_first_invalid_names_sequence_and_position(seqs, where):
    flat = FlatTokens.of(seqs, "ACGT")
    assert flat.first_invalid() == where
    assert flat.tokens[sum(map(len, seqs[: where[0]])) + where[1]] == INVALID


def test_metrics_encode_names_a_non_ascii_letter():
    with pytest.raises(InvalidInputError, match="gen: sequence 1: letter 'é' not in 'ACGT'"):
        encode(["ACGT", "AéGT"], "ACGT", "gen")
