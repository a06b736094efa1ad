"""Hostile input: readers, YAML configs and checkpoints given bytes made to break them.

Whatever the bytes, the only allowed outcomes are success or a :class:`SeqflowError` whose
message is one line; anything else (a traceback, a hang, a message of several lines) is a bug.
The property tests generate random bytes and near-valid FASTA, FASTQ, CSV, TSV, YAML and
mutated checkpoints (plain or gzip, with every line ending and a few wrong encodings), with a
fixed seed and no example database, so CI sees the same cases every run. How many examples ran
is printed at the end of the module (``pytest -s``) and shown as hypothesis events
(``--hypothesis-show-statistics``).
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from seqflow.checkpoint import ModelMeta, load_model, load_state, save_model, save_state
from seqflow.cli import app
from seqflow.config import Config, load_yaml
from seqflow.data import _source as gzip_module
from seqflow.data import read_sequences, read_signal
from seqflow.data.table import DuplicateIdWarning
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError, SeqflowError
from seqflow.io_utils import CHECKSUM_KEY, file_checksum
from seqflow.models import build_model

EXAMPLES: Counter[str] = Counter()
"""Examples run by each property test (printed when the module ends)."""


def fixed(n: int) -> settings:
    """Deterministic settings: ``n`` examples from a fixed seed, no database, no deadline."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    total = sum(EXAMPLES.values())
    listing = ", ".join(f"{name} {n}" for name, n in sorted(EXAMPLES.items()))
    print(f"\nhostile-input examples: {total} ({listing})")


def outcome(test: str, call: Callable[[], object]) -> str:
    """Run ``call``: success, or a SeqflowError with a one-line message; count and report it."""
    EXAMPLES[test] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateIdWarning)
            call()
    except SeqflowError as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        event(f"{type(err).__name__}")
        return "error"
    event("success")
    return "ok"


def one_line_error(kind: type[SeqflowError], call: Callable[[], object]) -> str:
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


# --- strategies: bytes near valid files ---------------------------------------------------------

ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])
clean = st.text(alphabet="ACGTacgt", min_size=1, max_size=40)
sequences = clean | clean | clean | st.text(alphabet="ACGTNUXMKW*-. \t", max_size=40)
simple_names = st.text(alphabet="abcXYZ019_-.|", min_size=1, max_size=8)
names = (
    simple_names
    | simple_names
    | st.text(st.characters(codec="utf-8", exclude_characters="\n\r\x00"), max_size=12)
    | st.sampled_from(["", "dup", "é", " x y", "\ufeffbom", "a" * 300])
)
numbers = st.sampled_from(
    ["1.5", "-2", "0", "3e-4"] * 3 + ["nan", "inf", "1e400", "1_0", "0x10", ""]
)
splits = st.sampled_from(["train", "valid", "TEST", "val"] * 3 + ["other", ""])
hostile_cells = st.sampled_from(['"quoted', 'a"b', '"x,y"', "#", "1 2 3", "1,2;3", "\t", "\x00"])


@st.composite
def encoded(draw, text: str) -> bytes:
    """``text`` as UTF-8 mostly; sometimes with a BOM, as latin-1 or UTF-16, or cut short."""
    how = draw(st.sampled_from(["utf-8"] * 12 + ["utf-8-sig", "latin-1", "utf-16", "cut"]))
    if how == "latin-1":
        return text.encode("latin-1", errors="replace")
    data = text.encode("utf-8" if how == "cut" else how)
    return data[: draw(st.integers(0, len(data)))] if how == "cut" else data


@st.composite
def fasta_bytes(draw) -> bytes:
    end = draw(ENDINGS)
    records = draw(
        st.lists(
            st.tuples(names, st.lists(sequences, min_size=1, max_size=4)), min_size=1, max_size=6
        )
    )
    lines = [draw(st.sampled_from(["", "", "junk before", ";comment"]))]
    for name, body in records:
        lines += [f">{name}", *body]
    return draw(encoded(end.join(lines) + draw(st.sampled_from(["", end]))))


@st.composite
def fastq_bytes(draw) -> bytes:
    end = draw(ENDINGS)
    lines = []
    for name, seq in draw(st.lists(st.tuples(names, sequences), min_size=1, max_size=5)):
        quality = draw(st.sampled_from(["I" * len(seq)] * 12 + ["I" * (len(seq) + 1), "", "@@"]))
        plus = draw(st.sampled_from(["+"] * 10 + [f"+{name}"] * 3 + ["+other", ""]))
        lines += [f"@{name}", seq, plus, quality]
    return draw(encoded(end.join(lines) + draw(st.sampled_from(["", end]))))


CELLS = {"id": names, "sequence": sequences, "seq": sequences, "label": simple_names,
         "value": numbers, "signal": st.just("signal"), "split": splits}  # fmt: skip
COLUMNS = [*CELLS, "Sequence", ""]


@st.composite
def table_bytes(draw, delimiter: str) -> bytes:
    """A header of known (and some unknown) columns, rows of cells that mostly fit them."""
    end = draw(ENDINGS)
    header = draw(st.lists(st.sampled_from(COLUMNS) | simple_names, min_size=1, max_size=6))
    if draw(st.integers(0, 3)):
        header.insert(0, "sequence")
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = [draw(CELLS.get(name, names) | hostile_cells) if draw(st.integers(0, 9)) == 0
               else draw(CELLS.get(name, names)) for name in header]  # fmt: skip
        length = len(row[0])
        row = [" ".join(["1"] * length) if cell == "signal" else cell for cell in row]
        rows.append(row[: draw(st.sampled_from([len(row)] * 5 + [len(row) - 1, len(row) + 1]))])
    preamble = draw(st.sampled_from(["", "", f"# comment{end}", end]))
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    return draw(encoded(preamble + end.join(lines) + draw(st.sampled_from(["", end]))))


read_options = st.fixed_dictionaries(
    {
        "alphabet": st.sampled_from(["auto", "dna", "protein"]),
        "on_invalid": st.sampled_from(["error", "skip", "replace"]),
        "max_length": st.sampled_from([None, None, None, 50, 3]),
        "crop": st.booleans(),
    }
)
column_options = st.fixed_dictionaries(
    {},
    optional={
        f"{key}_col": st.sampled_from([key] * 4 + ["sequence", "missing"])
        for key in ("seq", "label", "value", "signal", "split")
    },
)


@st.composite
def packed(draw, data: bytes) -> tuple[bytes, bool]:
    """``data`` plain or gzip-compressed (and then sometimes cut short or with trailing junk)."""
    if not draw(st.booleans()):
        return data, False
    zipped = gzip.compress(data, compresslevel=1, mtime=0)
    damage = draw(st.sampled_from(["none"] * 4 + ["cut", "junk"]))
    if damage == "cut":
        zipped = zipped[: draw(st.integers(2, len(zipped)))]
    elif damage == "junk":
        zipped += draw(st.binary(min_size=1, max_size=8))
    return zipped, True


def read_file(folder: Path, name: str, data: bytes, **options) -> Callable[[], object]:
    path = folder / name
    path.write_bytes(data)
    return lambda: read_sequences(path, **options)


# --- property tests: readers ----------------------------------------------------------------------


@fixed(250)
@given(
    data=st.binary(max_size=600) | st.binary(max_size=8).map(lambda b: b"\x1f\x8b" + b),
    suffix=st.sampled_from([".fa", ".fq", ".csv", ".tsv", ".txt", ".dat", ".fa.gz"]),
    fmt=st.sampled_from(["auto", "fasta", "fastq", "csv", "tsv"]),
    options=read_options,
)
def test_random_bytes_read_or_fail_in_one_line(folder, data, suffix, fmt, options):
    outcome("random bytes", read_file(folder, f"x{suffix}", data, fmt=fmt, **options))


@fixed(250)
@given(data=fasta_bytes().flatmap(packed), options=read_options)
def test_near_valid_fasta(folder, data, options):
    raw, compressed = data
    name = "x.fa.gz" if compressed else "x.fa"
    outcome("fasta", read_file(folder, name, raw, **options))


@fixed(200)
@given(data=fastq_bytes().flatmap(packed), options=read_options)
def test_near_valid_fastq(folder, data, options):
    raw, compressed = data
    outcome("fastq", read_file(folder, "x.fq.gz" if compressed else "x.fq", raw, **options))


@fixed(300)
@given(
    kind=st.sampled_from([("csv", ","), ("tsv", "\t")]),
    data=st.data(),
    options=read_options,
    columns=column_options,
)
def test_near_valid_tables(folder, kind, data, options, columns):
    fmt, delimiter = kind
    raw, compressed = data.draw(table_bytes(delimiter).flatmap(packed))
    name = f"x.{fmt}{'.gz' if compressed else ''}"
    outcome(fmt, read_file(folder, name, raw, **options, **columns))


@fixed(60)
@given(
    data=st.binary(max_size=300)
    | st.sampled_from([b"\x93NUMPY", b"PK\x03\x04"]).flatmap(
        lambda magic: st.binary(max_size=200).map(lambda rest: magic + rest)
    ),
    suffix=st.sampled_from([".npy", ".npz", ".txt", ".csv"]),
)
def test_random_signal_files(folder, data, suffix):
    path = folder / f"signal{suffix}"
    path.write_bytes(data)
    outcome("signal", lambda: read_signal(path))


# --- property tests: YAML configs -----------------------------------------------------------------

SECTIONS = ["data", "model", "flow", "train", "sample", "description", "hardware", "unknown"]
KEYS = ["alphabet", "seq_col", "max_length", "hidden", "depth", "dilations", "heads", "arch",
        "geometry", "coupling", "steps", "lr", "batch_size", "device", "solver", "crop",
        "bogus"]  # fmt: skip
yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["3e-4", "1e999", "auto", "cnn", "many", "-1", "[1, 2]"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
yaml_documents = st.dictionaries(
    st.sampled_from(SECTIONS) | st.integers() | st.none(),
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), yaml_values, max_size=4)
    | yaml_values,
    max_size=5,
)
valid_documents = st.fixed_dictionaries(
    {},
    optional={
        "train": st.fixed_dictionaries({}, optional={
            "steps": st.integers(1, 10**6), "lr": st.floats(1e-6, 1.0),
            "device": st.sampled_from(["auto", "cpu"])}),
        "model": st.fixed_dictionaries({}, optional={
            "hidden": st.sampled_from([8, 16, 64]), "arch": st.sampled_from(["auto", "cnn"]),
            "dilations": st.lists(st.integers(1, 8), min_size=1, max_size=4)}),
        "data": st.fixed_dictionaries({}, optional={
            "alphabet": st.sampled_from(["auto", "dna", "ACGTN"]),
            "max_length": st.none() | st.integers(1, 10**4), "seq_col": simple_names}),
        "description": st.text(max_size=20),
    },
)  # fmt: skip
YAML_DAMAGE = ["!!python/object:os.system {}", "!!python/name:os.system", "&a [*a]", "\t",
               "{", "- x", "%YAML 9.9", "\x00", "? [a]\n: 1", "1" * 5000,
               "[" * 3000]  # fmt: skip


@st.composite
def yaml_bytes(draw) -> bytes:
    text = yaml.safe_dump(draw(valid_documents | yaml_documents), allow_unicode=True)
    lines = text.splitlines()
    damage = draw(st.sampled_from([""] * 12 + YAML_DAMAGE))
    if damage:
        lines.insert(
            draw(st.integers(0, len(lines))), f"{draw(st.sampled_from(SECTIONS))}: {damage}"
        )
    if lines and not draw(st.integers(0, 3)):
        lines.append(draw(st.sampled_from(lines)))  # a repeated key, or a repeated list item
    return draw(encoded("\n".join(lines)))


def build_config(path: Path) -> Config:
    return Config.from_dict(load_yaml(path), source=str(path))


@fixed(300)
@given(data=yaml_bytes() | st.binary(max_size=300))
def test_yaml_configs_build_or_fail_in_one_line(folder, data):
    path = folder / "config.yaml"
    path.write_bytes(data)
    if outcome("yaml", lambda: build_config(path)) == "error":
        with pytest.raises(ConfigError):
            build_config(path)


# --- property tests: checkpoints ------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[bytes, bytes]:
    """The bytes of a real tiny model file and of a real training state."""
    folder = tmp_path_factory.mktemp("checkpoints")
    cfg = Config().with_overrides(
        {"model.hidden": 8, "model.depth": 1, "model.kernel_size": 3, "model.time_dim": 8,
         "model.dilations": [1]}
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg.model, vocab=4, length=6, num_labels=2)
    meta = ModelMeta(config=cfg, alphabet={"name": "dna", "letters": "ACGT"}, labels=("a", "b"),
                     length=6, step=3)  # fmt: skip
    save_model(folder / "model.safetensors", model.state_dict(), model.state_dict(), meta)
    state = {"step": 3, "rng": torch.arange(5), "opt": {"m": [torch.ones(2), {"x": 1.5}]}}
    save_state(folder / "state.safetensors", state)
    return (folder / "model.safetensors").read_bytes(), (folder / "state.safetensors").read_bytes()


def split_header(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def resign(header: dict, data: bytes) -> None:
    """Sign edited metadata as seqflow would (the file's tensors are those of ``data``): the
    damage then passes the checksum and reaches the metadata parser."""
    meta = header["__metadata__"]
    meta[CHECKSUM_KEY] = file_checksum(safetensors.torch.load(data), meta)


def join_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


json_texts = st.sampled_from(
    ["", "null", "0", "-1", "6", "99999999999", "1" * 5000, "true", '"yes"', "[]", "{}", "[1, 2",
     '{"letters": "A"}', '{"letters": ["A", "C"]}', '{"name": "x", "letters": "ACGTN"}',
     '{"mean": [0.0], "std": [0.0]}', '{"mean": [NaN], "std": [1.0]}', '{"model": {"heads": 3}}',
     '{"model": {"arch": "transformer", "heads": 3}}', '{"model": {"hidden": 1e30}}',
     '{"__tensor__": "nope"}', '{"__dict__": 5}', '{"__dict__": [[[1], 2]]}', "[" * 5000]
) | st.text(max_size=12)  # fmt: skip


@st.composite
def mutated(draw, data: bytes) -> bytes:
    how = draw(st.sampled_from(["cut", "flip", "metadata", "drop", "tensor", "junk"]))
    if how == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if how == "junk":
        return draw(st.binary(max_size=200))
    header, body = split_header(data)
    meta = header.setdefault("__metadata__", {})
    if how == "metadata":
        meta[draw(st.sampled_from([*sorted(meta), "extra"]))] = draw(json_texts)
        if draw(st.booleans()):
            resign(header, data)
    elif how == "drop" and meta:
        del meta[draw(st.sampled_from(sorted(meta)))]
    else:
        entry = header[draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))]
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        entry[field] = draw(
            st.sampled_from(["F16", "BF16", "I64", "BOOL", "U8", "F8_E5M2", "X9"])
            if field == "dtype"
            else st.lists(st.integers(-2, 2**40), max_size=3)
        )
    return join_header(header, body)


@fixed(150)
@given(data=st.data())
def test_mutated_model_files(folder, checkpoints, data):
    path = folder / "model.safetensors"
    path.write_bytes(data.draw(mutated(checkpoints[0])))
    outcome("checkpoint model", lambda: load_model(path))


@fixed(100)
@given(data=st.data())
def test_mutated_state_files(folder, checkpoints, data):
    path = folder / "state.safetensors"
    path.write_bytes(data.draw(mutated(checkpoints[1])))
    outcome("checkpoint state", lambda: load_state(path))


# --- specific cases: huge lines, NUL, line endings, encodings -------------------------------------


def test_fifty_megabyte_single_line_reads_quickly(tmp_path):
    path = tmp_path / "long.fa"
    path.write_bytes(b">r\n" + b"ACGT" * 12_500_000)  # no newline at the end
    start = time.perf_counter()
    table = read_sequences(path, alphabet="dna")
    assert time.perf_counter() - start < 30
    assert table.tokens.shape == (1, 50_000_000)
    header_only = tmp_path / "header.fa"
    header_only.write_bytes(b">" + b"x" * 50_000_000)
    message = one_line_error(InvalidInputError, lambda: read_sequences(header_only))
    assert "empty sequence" in message and "(50000000 characters)" in message
    assert len(message) < 300  # the 50 MB id is cut in the message


def test_nul_byte_past_the_head_names_its_line(tmp_path):
    path = tmp_path / "x.fa"
    path.write_bytes(b">a\nACGT\n" * 2000 + b">b\nAC\x00GT\n")
    for policy in ("error", "skip"):
        message = one_line_error(
            InvalidInputError, lambda p=policy: read_sequences(path, on_invalid=p)
        )
        assert message == f"{path}:4002: binary file, not text (NUL byte in the line)"


TEXTS = {
    "fasta": ">a desc\nACGT\nAC\n>b\nGGGG\n",
    "fastq": "@a\nACGTAC\n+\nIIIIII\n@b\nGGGG\n+\nIIII\n",
    "csv": "id,sequence\na,ACGTAC\nb,GGGG\n",
    "tsv": "id\tsequence\na\tACGTAC\nb\tGGGG\n",
}


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
@pytest.mark.parametrize("fmt", sorted(TEXTS))
def test_crlf_and_lone_cr_read_as_lf(tmp_path, fmt, ending):
    lf = tmp_path / f"lf.{fmt}"
    lf.write_bytes(TEXTS[fmt].encode())
    other = tmp_path / f"other.{fmt}"
    other.write_bytes(TEXTS[fmt].replace("\n", ending).encode())
    a, b = read_sequences(lf), read_sequences(other)
    assert torch.equal(a.tokens, b.tokens) and list(a.ids) == list(b.ids) == ["a", "b"]
    for path in (lf, other):  # an error names the same line whatever the line endings
        path.write_bytes(path.read_bytes().replace(b"GGGG", b"GGJG"))
    errors = [one_line_error(InvalidInputError, lambda p=p: read_sequences(p, alphabet="dna"))
              for p in (lf, other)]  # fmt: skip
    assert errors[0].replace(str(lf), "") == errors[1].replace(str(other), "")


@pytest.mark.parametrize(
    ("data", "expected"),
    [(">a\nACGT\n".encode("utf-16"), "UTF-16 text (byte-order mark)"),
     (">a\nACGT\n".encode("utf-16-be"), "UTF-16 text?"),
     (">a\nACGT\n".encode("utf-32"), "UTF-32 text (byte-order mark)")],
)  # fmt: skip
def test_utf16_and_utf32_files_are_named(tmp_path, data, expected):
    path = tmp_path / "x.fa"
    path.write_bytes(data)
    message = one_line_error(InvalidInputError, lambda: read_sequences(path))
    assert message.startswith(f"{path}: ") and expected in message


def test_latin1_header_names_byte_and_line(tmp_path):
    path = tmp_path / "x.fa"
    path.write_bytes(">a\nACGT\n>s\xe9q\nACGT\n".encode("latin-1"))
    message = one_line_error(InvalidInputError, lambda: read_sequences(path))
    assert message == f"{path}: not a UTF-8 text file (undecodable byte 0xe9 at offset 10, line 3)"


# --- gzip bombs -----------------------------------------------------------------------------------


def bomb(megabytes: int) -> bytes:
    """A FASTA record of ``megabytes`` MiB of letters, as many 1 MiB gzip members (made fast)."""
    member = gzip.compress(b"ACGT" * (1 << 18), compresslevel=9, mtime=0)
    return gzip.compress(b">r\n", mtime=0) + member * megabytes


def test_gzip_bomb_stops_at_the_environment_limit(tmp_path, monkeypatch):
    path = tmp_path / "bomb.fa.gz"
    path.write_bytes(bomb(200))  # 200 MiB of letters in about 200 KB
    monkeypatch.setenv("SEQFLOW_MAX_DECOMPRESSED", "16M")
    start = time.perf_counter()
    message = one_line_error(InvalidInputError, lambda: read_sequences(path))
    assert time.perf_counter() - start < 10
    assert message.startswith(f"{path}: gzip data decompresses to more than 16.0 MiB")
    assert "SEQFLOW_MAX_DECOMPRESSED" in message


def test_gzip_limit_defaults_to_a_ratio_of_the_compressed_size(tmp_path, monkeypatch):
    monkeypatch.delenv("SEQFLOW_MAX_DECOMPRESSED", raising=False)
    monkeypatch.setattr(gzip_module, "MAX_DECOMPRESSED_FLOOR", 1 << 20)
    path = tmp_path / "bomb.fa.gz"
    path.write_bytes(bomb(40))  # ratio about 1000, far above MAX_DECOMPRESSED_RATIO
    limit = gzip_module.MAX_DECOMPRESSED_RATIO * path.stat().st_size
    message = one_line_error(InvalidInputError, lambda: read_sequences(path))
    assert f"more than {limit / (1 << 20):.1f} MiB" in message
    codes = np.random.default_rng(0).integers(0, 4, 2 << 20)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[codes]
    plain = tmp_path / "plain.fa.gz"  # 2 MiB of random DNA: about 4 times smaller compressed
    plain.write_bytes(gzip.compress(b">a\n" + letters.tobytes()))
    assert read_sequences(plain).length == 2 << 20


def test_gzip_limit_on_stdin_follows_the_bytes_read(monkeypatch):
    monkeypatch.delenv("SEQFLOW_MAX_DECOMPRESSED", raising=False)
    monkeypatch.setattr(gzip_module, "MAX_DECOMPRESSED_FLOOR", 1 << 20)
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(bomb(40))))
    message = one_line_error(InvalidInputError, lambda: read_sequences("-"))
    assert message.startswith("<stdin>: gzip data decompresses to more than ")


@pytest.mark.parametrize(("value", "reads"), [("0", True), ("1G", True), ("lots", False)])
def test_limit_variable_values(tmp_path, monkeypatch, value, reads):
    path = tmp_path / "x.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n"))
    monkeypatch.setenv("SEQFLOW_MAX_DECOMPRESSED", value)
    if reads:
        assert len(read_sequences(path)) == 1
    else:
        message = one_line_error(InvalidInputError, lambda: read_sequences(path))
        assert "SEQFLOW_MAX_DECOMPRESSED='lots' is not a size" in message


# --- specific cases: YAML and checkpoint metadata -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("train:\n  steps: 1\n  steps: 2\n", ":3: found duplicate key 'steps'"),
     ("train: {}\ntrain: {}\n", ":2: found duplicate key 'train'"),
     ("data: !!python/object/apply:os.system ['true']\n", ":1: could not determine a constructor"),
     ("[" * 5000 + "]" * 5000, "nested too deeply"), ("- " * 2000 + "x", "too deeply"),
     ("description: " + "x" * 70_000, "too large for a config file"),
     ("train:\n  steps: " + "9" * 5000 + "\n", "invalid value (Exceeds the limit"),
     ("train:\n  steps: 99999999999999999999\n", "train.steps: 99999999999999999999 is too large"),
     ("train:\n  lr: .nan\n", "train.lr: expected a finite number, got nan"),
     ("model:\n  time_scale: 1e999\n", "model.time_scale: expected a finite number"),
     ('"a\\nb": 1\n', "unknown key 'a\\nb'"),
     ("- data\n- model\n", "expected a mapping of sections, got list"),
     ("model:\n  arch: transformer\n  hidden: 10\n  heads: 4\n", "model.heads: must divide"),
     ("a: \x01\n", ":1: special characters are not allowed (#x0001)")],
)  # fmt: skip
def test_yaml_problems_are_one_line_config_errors(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert expected in one_line_error(ConfigError, lambda: build_config(path))


def test_yaml_alias_bomb_is_reported_briefly(tmp_path):
    levels = ["&a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = tmp_path / "c.yaml"
    path.write_text(f"description: [{', '.join(levels)}]\n")
    start = time.perf_counter()
    message = one_line_error(ConfigError, lambda: build_config(path))
    assert time.perf_counter() - start < 5 and len(message) < 250


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"length": "-3"}, "out of range"), ({"length": "100000000000"}, "need more weights"),
     ({"config": "[" * 100_000}, "maximum recursion depth"),
     ({"config": '{"model": {"arch": "transformer", "heads": 3}}'}, "model.heads: must divide"),
     ({"config": '{"model": {"heads": 3}}', "alphabet": '{"name": "p", "letters": "ACDEFGHIK"}'},
      "transformer hidden 128 is not a multiple of heads 3"),
     ({"alphabet": '{"letters": ["A", "C"]}'}, "(alphabet)"),
     ({"value": '{"mean": [NaN], "std": [1.0]}'}, "not finite")],
)  # fmt: skip
def test_checkpoint_metadata_that_would_crash_the_build(tmp_path, checkpoints, changes, expected):
    header, body = split_header(checkpoints[0])
    header["__metadata__"].update(changes)
    resign(header, checkpoints[0])
    path = tmp_path / "model.safetensors"
    path.write_bytes(join_header(header, body))
    assert expected in one_line_error(CheckpointError, lambda: load_model(path))


def test_deeply_nested_training_state(tmp_path, checkpoints):
    header, body = split_header(checkpoints[1])
    header["__metadata__"]["state"] = "[" * 100_000
    resign(header, checkpoints[1])
    path = tmp_path / "state.safetensors"
    path.write_bytes(join_header(header, body))
    assert "damaged training state" in one_line_error(CheckpointError, lambda: load_state(path))


# --- the command line -----------------------------------------------------------------------------

HOSTILE_FILES = {
    "nul.fa": b">a\nACGT\n" * 2000 + b">b\nAC\x00GT\n",
    "utf16.fa": ">a\nACGT\n".encode("utf-16"),
    "latin1.fa": ">s\xe9q\nACGT\n".encode("latin-1"),
    "junk.fa.gz": b"\x1f\x8b\x08\x00junk",
    "bomb.fa.gz": bomb(64),
    "quote.csv": b'id,sequence\nr1,"ACGT\n',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_cli_fit_on_hostile_file_is_one_error_line(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_bytes(HOSTILE_FILES[name])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["fit", str(path), "--out", "run"], env={"SEQFLOW_MAX_DECOMPRESSED": "16M"}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert name in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
