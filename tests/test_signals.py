"""Reading external signal files (.npy, .npz, text) into (N, L, C) float32 tensors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from seqflow.data import read_signal
from seqflow.errors import InvalidInputError

RNG = np.random.default_rng(0)


def signal_error(path: Path, **kwargs) -> str:
    """Read ``path`` expecting an InvalidInputError; return its one-line message."""
    with pytest.raises(InvalidInputError) as info:
        read_signal(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_npy_round_trip(tmp_path, shape):
    array = RNG.normal(size=shape)
    np.save(tmp_path / "s.npy", array)
    signal = read_signal(tmp_path / "s.npy", length=7, channels=shape[2] if len(shape) > 2 else 1)
    assert signal.dtype == torch.float32
    assert signal.shape == (5, 7, shape[2] if len(shape) > 2 else 1)
    assert torch.equal(signal.reshape(shape), torch.from_numpy(array.astype(np.float32)))


def test_integer_arrays_become_float(tmp_path):
    np.save(tmp_path / "s.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    assert read_signal(tmp_path / "s.npy")[..., 0].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_npz_single_or_named_array(tmp_path):
    array = RNG.normal(size=(3, 4)).astype(np.float32)
    np.savez(tmp_path / "one.npz", anything=array)
    np.savez(tmp_path / "named.npz", signal=array, other=np.zeros(2))
    for name in ("one.npz", "named.npz"):
        assert torch.equal(read_signal(tmp_path / name)[..., 0], torch.from_numpy(array))


def test_npz_with_several_arrays_lists_them(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros((2, 2)), b=np.ones((2, 2)))
    assert signal_error(tmp_path / "x.npz").endswith(
        "expected one array or an array named 'signal'; arrays: 'a', 'b'"
    )


def test_pickled_arrays_are_never_loaded(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "holds Python objects (pickled)" in signal_error(tmp_path / "obj.npy")
    (tmp_path / "raw.npy").write_bytes(pickle.dumps([1.0, 2.0]))
    assert signal_error(tmp_path / "raw.npy").endswith("not a valid numpy .npy file")


def test_text_rows_with_any_separator(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("# a comment\n1,2,3\n\n4\t5\t6\n7 8;9\n")
    assert read_signal(path, length=3)[..., 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_text_row_with_wrong_count_names_the_row(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("1 2 3\n4 5\n")
    assert signal_error(path, length=3) == f"{path}:2: row 2 has 2 values; expected 3"


def test_text_non_number(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("1\t2\n3\tx\n")
    assert signal_error(path) == f"{path}:2: row 2, position 2: 'x' is not a number"


def test_non_finite_values_name_row_and_position(tmp_path):
    array = np.zeros((3, 4))
    array[2, 1] = np.nan
    np.save(tmp_path / "s.npy", array)
    assert signal_error(tmp_path / "s.npy").endswith(
        "row 3, position 2, channel 1: non-finite value nan"
    )


def test_lengths_zero_the_tail_and_allow_padding_nan(tmp_path):
    array = RNG.normal(size=(3, 5))
    array[1, 2:] = np.nan
    np.save(tmp_path / "s.npy", array)
    signal = read_signal(tmp_path / "s.npy", lengths=torch.tensor([5, 2, 4]))
    assert torch.isfinite(signal).all()
    assert signal[1, 2:].abs().sum() == 0 and signal[2, 4:].abs().sum() == 0
    assert torch.equal(signal[0, :, 0], torch.from_numpy(array[0].astype(np.float32)))


def test_lengths_longer_than_the_rows(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((2, 4)))
    path = tmp_path / "s.npy"
    assert signal_error(path, lengths=torch.tensor([4, 6])).endswith(
        "row 2 has 4 values for a sequence of length 6"
    )
    assert signal_error(path, lengths=torch.tensor([4])).endswith("2 signal rows for 1 sequences")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"length": 5}, "rows have 4 values; expected 5"),
     ({"channels": 2}, "signal has 1 channels; expected 2")],
)  # fmt: skip
def test_length_and_channel_requirements(tmp_path, kwargs, expected):
    np.save(tmp_path / "s.npy", np.zeros((2, 4)))
    assert expected in signal_error(tmp_path / "s.npy", **kwargs)


@pytest.mark.parametrize(
    ("array", "expected"),
    [(np.zeros(4), "signal array has shape (4,); expected (N, L) or (N, L, C)"),
     (np.zeros((1, 2, 3, 4)), "shape (1, 2, 3, 4)"),
     (np.array([["a", "b"]]), "is not numeric")],
)  # fmt: skip
def test_bad_arrays(tmp_path, array, expected):
    np.save(tmp_path / "s.npy", array)
    assert expected in signal_error(tmp_path / "s.npy")


def test_bad_paths(tmp_path):
    assert signal_error(tmp_path / "none.npy").endswith("no such file")
    (tmp_path / "s.bed").write_text("1 2\n")
    assert "unknown signal file type '.bed'" in signal_error(tmp_path / "s.bed")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    assert signal_error(tmp_path / "empty.txt").endswith("no signal rows")
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    assert "not a valid numpy .npy file" in signal_error(tmp_path / "bad.npy")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 truncated")
    assert "not a valid numpy file" in signal_error(tmp_path / "cut.npz")
    assert "is a folder" in signal_error(tmp_path)
