"""Alphabets: the lookup table, vectorised decoding, metadata round trip, user specs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from seqflow.data import read_sequences
from seqflow.data.alphabet import (
    DNA,
    PROTEIN,
    RNA,
    Alphabet,
    detect_alphabet,
    resolve_alphabet,
)
from seqflow.errors import InvalidInputError

ALPHABETS = [DNA, RNA, PROTEIN, Alphabet("custom", "ACGTN-")]


def naive_encode(alphabet: Alphabet, seq: str) -> list[int]:
    """Independent reference: one dictionary look-up per letter."""
    return [alphabet.letters.index(c.upper()) for c in seq]


def encode(alphabet: Alphabet, seq: str) -> np.ndarray:
    """Tokens of ``seq`` through the byte lookup table, as the readers tokenise."""
    return alphabet.lookup[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]


def decode(alphabet: Alphabet, tokens) -> str:
    return alphabet.decode_batch(np.asarray(tokens)[None])[0]


def test_builtin_sizes_and_order():
    assert (DNA.size, RNA.size, PROTEIN.size) == (4, 4, 20)
    assert DNA.letters == "ACGT"
    assert RNA.letters == "ACGU"
    assert PROTEIN.letters == "ACDEFGHIKLMNPQRSTVWY"


def test_lookup_gives_letter_index_as_uint8():
    tokens = encode(DNA, "GATTACA")
    assert tokens.dtype == np.uint8
    assert tokens.tolist() == [2, 0, 3, 3, 0, 1, 0]


def test_lookup_is_case_insensitive():
    assert encode(DNA, "acgtACGT").tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert encode(PROTEIN, "mkvl").tolist() == encode(PROTEIN, "MKVL").tolist()
    assert (DNA.lookup[list(b"NX*")] == 255).all()


def test_decode_returns_upper_case():
    assert decode(DNA, encode(DNA, "gattaca")) == "GATTACA"
    assert decode(DNA, [3, 2, 1, 0]) == "TGCA"


@pytest.mark.parametrize("alphabet", ALPHABETS, ids=lambda a: a.name + a.letters[-1])
def test_decode_batch_equals_per_sequence_decode(alphabet):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, alphabet.size, size=(17, 31), dtype=np.uint8)
    expected = ["".join(alphabet.letters[t] for t in row) for row in tokens]
    assert alphabet.decode_batch(tokens) == expected
    assert alphabet.decode_batch(torch.from_numpy(tokens).long()) == expected
    assert expected[0] == "".join(alphabet.letters[t] for t in tokens[0])


def test_decode_batch_of_empty_shapes():
    assert DNA.decode_batch(np.zeros((0, 5), dtype=np.uint8)) == []
    assert DNA.decode_batch(np.zeros((3, 0), dtype=np.uint8)) == ["", "", ""]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [([[0, 4]], "token 4"), ([[-1, 0]], "token -1"), ([0, 1], "dimensions"),
     ([[0.5]], "integers")],
)  # fmt: skip
def test_decode_rejects_bad_tokens(tokens, message):
    with pytest.raises(ValueError, match=message):
        DNA.decode_batch(np.asarray(tokens))


def test_invalid_letter_message_is_one_line_with_1_based_position(tmp_path):
    path = tmp_path / "reads.fa"
    path.write_text(">x\nACGT\n>y\nAAAA\n>r1\nACGTACGTACGTACGTNAC\n")
    with pytest.raises(InvalidInputError) as info:
        read_sequences(path, alphabet="dna")
    assert str(info.value) == (
        f"{path}:6: record 'r1': invalid letter 'N' at position 17 (alphabet dna: ACGT)"
    )


def test_non_ascii_letter_is_invalid_input(tmp_path):
    path = tmp_path / "reads.fa"
    path.write_text(">a\nACéGT\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"invalid letter 'é' at position 3"):
        read_sequences(path, alphabet="dna")


@pytest.mark.parametrize("alphabet", ALPHABETS, ids=lambda a: a.name + a.letters[-1])
def test_to_dict_json_round_trip(alphabet):
    again = Alphabet.from_dict(json.loads(json.dumps(alphabet.to_dict())))
    assert again == alphabet
    assert encode(again, alphabet.letters).tolist() == list(range(alphabet.size))


def test_from_dict_rejects_wrong_keys():
    with pytest.raises(InvalidInputError, match="expected keys name, letters"):
        Alphabet.from_dict({"letters": "ACGT"})


@pytest.mark.parametrize(
    ("letters", "message"),
    [("A", "at least 2"), ("ACGA", "'A' is repeated"), ("acgt", "upper-case"),
     ("AC GT", "without spaces"), ("ACGé", "printable ASCII")],
)  # fmt: skip
def test_alphabet_rejects_bad_letters(letters, message):
    with pytest.raises(InvalidInputError, match=message):
        Alphabet("custom", letters)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("dna", DNA), ("DNA", DNA), ("rna", RNA), ("Protein", PROTEIN), ("acgt", DNA)],
)
def test_resolve_names_and_builtin_letters(spec, expected):
    assert resolve_alphabet(spec) is expected


def test_resolve_custom_letters_keeps_order_and_upper_cases():
    alphabet = resolve_alphabet("acgtn")
    assert alphabet == Alphabet("custom", "ACGTN")
    assert encode(alphabet, "n").tolist() == [4]


@pytest.mark.parametrize("spec", ["A", "AAC", "AC GT", ""])
def test_resolve_rejects_bad_custom_letters(spec):
    with pytest.raises(InvalidInputError, match="use dna, rna, protein, auto"):
        resolve_alphabet(spec, where="cfg")


@pytest.mark.parametrize(
    ("sample", "expected"),
    [(["ACGT", "AAAA"], DNA), (["acgu", "GGG"], RNA), (["ACG"], DNA), (["MKVLAAG"], PROTEIN),
     (["ACGT", "EF"], PROTEIN)],
)  # fmt: skip
def test_auto_picks_smallest_builtin(tmp_path, sample, expected):
    path = tmp_path / "x.fa"
    path.write_text("".join(f">r{i}\n{seq}\n" for i, seq in enumerate(sample)))
    assert read_sequences(path).alphabet is expected


@pytest.mark.parametrize(
    ("sample", "letter", "chosen", "suggested"),
    [(["ACGT", "acgn"], "N", "dna: ACGT", "ACGTN"),
     (["ACGU", "ACGURY"], "R", "rna: ACGU", "ACGURY"),
     (["NNNNNNNN", "ACGT"], "N", "dna: ACGT", "ACGTN"),
     (["MKVLEEX", "MKVLE*"], "X", "protein: " + PROTEIN.letters, PROTEIN.letters + "*X")],
)  # fmt: skip
def test_auto_names_the_letter_the_detected_alphabet_lacks(
    tmp_path, sample, letter, chosen, suggested
):
    path = tmp_path / "x.fa"
    path.write_text("".join(f">r{i}\n{seq}\n" for i, seq in enumerate(sample)))
    with pytest.raises(InvalidInputError) as info:
        read_sequences(path)
    message = str(info.value)
    assert message.startswith(f"{path}:")
    assert f"invalid letter {letter.lower()!r}" in message.lower()
    assert f"(alphabet {chosen})" in message
    assert f"alphabet={suggested!r}" in message
    assert "\n" not in message


def test_auto_never_reads_nucleotides_with_n_as_protein():
    """N, R, Y, ... are amino-acid letters too; DNA that holds them must not become protein."""
    alphabet, missing = detect_alphabet({"A": 30, "C": 20, "G": 20, "T": 25, "N": 5, "E": 1})
    assert alphabet is DNA
    assert missing == ["E", "N"]
    alphabet, missing = detect_alphabet({"M": 1, "K": 3, "E": 4, "L": 5, "A": 2, "G": 2})
    assert alphabet is PROTEIN
    assert missing == []


def test_resolve_leaves_auto_to_the_reader():
    with pytest.raises(InvalidInputError, match="needs sequences"):
        resolve_alphabet("auto")


@given(
    alphabet=st.sampled_from(ALPHABETS),
    data=st.data(),
)
def test_encode_decode_round_trip_property(alphabet, data):
    letters = alphabet.letters + alphabet.letters.lower()
    seq = data.draw(st.text(alphabet=letters, max_size=300))
    tokens = encode(alphabet, seq)
    assert tokens.tolist() == naive_encode(alphabet, seq)
    assert decode(alphabet, tokens) == seq.upper()
