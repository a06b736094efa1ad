"""The tokenised cache: hits skip tokenising, a hit equals a fresh read, any change rebuilds,
damage is repaired with a warning, writes are atomic, and a hit maps instead of copying."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from seqflow.api._dataset import load_dataset
from seqflow.cli import app
from seqflow.config import Config, DataConfig
from seqflow.data import DuplicateIdWarning, RecordIds, read_cached, read_sequences
from seqflow.data import cache as cache_module
from seqflow.errors import ConfigError

FASTA = "".join(f">r{i} note\n{'ACGT'[i % 4] * (3 + i % 5)}TTGCA\n" for i in range(40))
CSV = (
    "id,seq,y,v,s,part\n"
    'a,ACGT,x,1.5,"0.5,1,2,-3",train\n'
    'b,ACG,z, -2e1 ,"4; 5; 6",valid\n'
    "c,TTTT,x,0,7 8 9 10,test\n"
    "d,GG,y,3,11\t12,train\n"
)
CSV_OPTIONS = {"label_col": "y", "value_col": "v", "signal_col": "s", "split_col": "part"}
FIELDS = ("tokens", "lengths", "record_index", "labels", "values", "signal", "splits")
REAL_SAVE = np.save


@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "x.fasta"
    path.parent.mkdir()
    path.write_text(FASTA)
    return path


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """Records each fresh read (tokenisation) that the cache asks for."""
    calls: list[str] = []

    def counting(path, **options):
        calls.append(str(path))
        return read_sequences(path, **options)

    monkeypatch.setattr(cache_module, "read_sequences", counting)
    return calls


def assert_same_table(a, b) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and torch.equal(x, y), name
    assert list(a.ids) == list(b.ids) and a.ids == b.ids
    assert a.alphabet == b.alphabet and a.label_names == b.label_names
    assert a.report == b.report and a.source == b.source


def entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# --- hits ---------------------------------------------------------------------------------------


def test_second_read_skips_tokenisation(fasta, tmp_path, monkeypatch, counted):
    first = read_cached(fasta, cache=str(tmp_path / "c"))
    assert len(counted) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("tokenised again")

    monkeypatch.setattr("seqflow.data.readers.tokenise", refuse)
    second = read_cached(fasta, cache=str(tmp_path / "c"))
    assert len(counted) == 1
    assert_same_table(first, second)


@pytest.mark.parametrize(
    "body, options",
    [
        (FASTA + ">r1\nACGT\n", {}),
        (CSV, CSV_OPTIONS),
        (CSV.replace("ACGT,", "ACNT,"), {**CSV_OPTIONS, "on_invalid": "replace", "seed": 3}),
        (CSV.replace("ACGT,", "ACNT,"), {**CSV_OPTIONS, "on_invalid": "skip"}),
        (CSV, {**CSV_OPTIONS, "max_length": 3, "crop": True, "alphabet": "ACGTN"}),
        (">é1\nACGU\n>\nUUGA\n", {"fmt": "fasta"}),
    ],
    ids=["fasta-duplicates", "csv-columns", "replace", "skip", "crop-custom", "rna-odd-ids"],
)
def test_cached_table_equals_fresh_read(tmp_path, body, options, counted):
    path = tmp_path / ("x.fasta" if body.startswith(">") else "x.csv")
    path.write_text(body, encoding="utf-8")
    with warnings.catch_warnings(record=True) as fresh_warnings:
        warnings.simplefilter("always")
        fresh = read_sequences(path, **options)
    for _ in range(2):  # the read that builds the entry, then a hit
        with warnings.catch_warnings(record=True) as cached_warnings:
            warnings.simplefilter("always")
            cached = read_cached(path, cache=str(tmp_path / "c"), **options)
        assert_same_table(fresh, cached)
        assert [str(w.message) for w in cached_warnings] == [str(w.message) for w in fresh_warnings]
        assert all(w.category is DuplicateIdWarning for w in cached_warnings)
    assert len(counted) == 1


def test_a_hit_is_memory_mapped_not_copied(tmp_path):
    n, length = 200_000, 100
    codes = np.random.default_rng(0).integers(0, 4, (n, length), dtype=np.uint8)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[codes]
    lines = [f">s{i}\n".encode() + row.tobytes() + b"\n" for i, row in enumerate(letters)]
    path = tmp_path / "big.fasta"
    path.write_bytes(b"".join(lines))
    root = tmp_path / "c"
    read_cached(path, cache=str(root))  # builds the entry
    tracemalloc.start()
    try:
        table = read_cached(path, cache=str(root))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert table.tokens.shape == (n, length)
    assert peak < 0.1 * table.tokens.numel()  # the tokens (20 MB) are not in the heap
    assert table.ids[n - 1] == f"s{n - 1}" and np.array_equal(table.tokens.numpy(), codes)
    if sys.platform.startswith("linux"):  # the tensor's memory lies in a map of tokens.npy
        address = table.tokens.data_ptr()
        maps = Path("/proc/self/maps").read_text().splitlines()
        inside = [m for m in maps if _spans(m, address)]
        assert inside and inside[0].endswith("tokens.npy"), inside


def _spans(line: str, address: int) -> bool:
    start, end = (int(x, 16) for x in line.split()[0].split("-"))
    return start <= address < end


def test_record_ids_over_an_array_equal_ids_over_bytes():
    ids = ["a", "", "βeta", "seq 4"]
    data = "".join(ids).encode()
    ends = np.cumsum([len(i.encode()) for i in ids])
    mapped = RecordIds(np.frombuffer(data, dtype=np.uint8), ends)
    assert list(mapped) == ids == list(RecordIds(data, ends))
    assert mapped[2] == "βeta" and mapped[-1] == "seq 4" and mapped[1:3] == ("", "βeta")
    raw, offsets = mapped.arrays()
    assert raw.tobytes() == data and offsets.tolist() == ends.tolist()


# --- what invalidates an entry --------------------------------------------------------------


def _same_size_edit(path: Path) -> None:
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace("AAAT", "CAAT", 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # only the fingerprint sees it


def _touch(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _append(path: Path) -> None:
    with path.open("a") as handle:
        handle.write(">extra\nGGGG\n")


@pytest.mark.parametrize("change", [_same_size_edit, _touch, _append])
def test_a_changed_file_is_read_again(fasta, tmp_path, change, counted):
    root = tmp_path / "c"
    read_cached(fasta, cache=str(root))
    size = fasta.stat().st_size
    change(fasta)
    assert (fasta.stat().st_size == size) == (change is not _append)
    table = read_cached(fasta, cache=str(root))
    assert len(counted) == 2
    assert_same_table(table, read_sequences(fasta))
    assert len(entries(root)) == 1  # rebuilt in place
    read_cached(fasta, cache=str(root))
    assert len(counted) == 2


def test_other_options_get_their_own_entry(fasta, tmp_path, counted):
    root = tmp_path / "c"
    variants = [{}, {"max_length": 6, "crop": True}, {"alphabet": "ACGTN"}]
    for options in variants * 2:
        read_cached(fasta, cache=str(root), **options)
    assert len(counted) == 3 and len(entries(root)) == 3
    read_cached(fasta, cache=str(root), seed=99)  # the seed matters only to replace
    assert len(counted) == 3
    read_cached(fasta, cache=str(root), on_invalid="replace", seed=1)
    read_cached(fasta, cache=str(root), on_invalid="replace", seed=2)
    assert len(counted) == 5 and len(entries(root)) == 5


def test_a_new_seqflow_version_rebuilds(fasta, tmp_path, monkeypatch, counted):
    read_cached(fasta, cache=str(tmp_path / "c"))
    monkeypatch.setattr(cache_module, "__version__", "99.0")
    read_cached(fasta, cache=str(tmp_path / "c"))
    assert len(counted) == 2


def _entry(root: Path) -> Path:
    (name,) = entries(root)
    return root / name


def _garbage_manifest(entry: Path) -> None:
    (entry / "manifest.json").write_text("{not json")


def _no_manifest(entry: Path) -> None:
    (entry / "manifest.json").unlink()


def _list_manifest(entry: Path) -> None:
    (entry / "manifest.json").write_text("[]")


def _bad_alphabet(entry: Path) -> None:
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["alphabet"] = {"name": "dna", "letters": "AAC"}
    (entry / "manifest.json").write_text(json.dumps(manifest))


def _truncated_tokens(entry: Path) -> None:
    data = (entry / "tokens.npy").read_bytes()
    (entry / "tokens.npy").write_bytes(data[: len(data) // 2])


def _reshaped_tokens(entry: Path) -> None:
    np.save(entry / "tokens.npy", np.zeros((3, 2), dtype=np.uint8))


def _pickled_ids(entry: Path) -> None:
    np.save(entry / "ids_ends.npy", np.array([object()] * 40), allow_pickle=True)


def _no_lengths(entry: Path) -> None:
    (entry / "lengths.npy").unlink()


def _foreign_array(entry: Path) -> None:
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["arrays"]["../../elsewhere"] = manifest["arrays"].pop("lengths")
    (entry / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "damage",
    [_garbage_manifest, _no_manifest, _list_manifest, _bad_alphabet, _truncated_tokens,
     _reshaped_tokens, _pickled_ids, _no_lengths, _foreign_array],
)  # fmt: skip
def test_a_damaged_entry_is_rebuilt_with_a_warning(fasta, tmp_path, damage, caplog, counted):
    root = tmp_path / "c"
    read_cached(fasta, cache=str(root))
    damage(_entry(root))
    with caplog.at_level(logging.WARNING, logger="seqflow.data.cache"):
        table = read_cached(fasta, cache=str(root))
    assert len(counted) == 2
    assert any("damaged" in r.message and "rebuilding" in r.message for r in caplog.records)
    assert_same_table(table, read_sequences(fasta))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqflow.data.cache"):
        read_cached(fasta, cache=str(root))
    assert len(counted) == 2 and not caplog.records


# --- where, and whether, to cache -----------------------------------------------------------


def test_off_writes_nothing(fasta, tmp_path, monkeypatch, counted):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = sorted(tmp_path.rglob("*"))
    read_cached(fasta, cache="off")
    read_cached(fasta, cache="off")
    assert len(counted) == 2 and sorted(tmp_path.rglob("*")) == before


def test_auto_caches_only_large_files_beside_them(fasta, tmp_path, monkeypatch, counted):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_cached(fasta)
    assert not (fasta.parent / ".seqflow-cache").exists() and not (tmp_path / "xdg").exists()
    monkeypatch.setattr(cache_module, "AUTO_MIN_BYTES", fasta.stat().st_size)
    read_cached(fasta)
    read_cached(fasta, cache="auto")
    assert len(counted) == 2 and len(entries(fasta.parent / ".seqflow-cache")) == 1


def test_on_caches_any_size_beside_the_file(fasta, tmp_path, monkeypatch, counted):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_cached(fasta, cache="on")
    read_cached(fasta, cache="on")
    assert len(counted) == 1 and len(entries(fasta.parent / ".seqflow-cache")) == 1


def test_auto_falls_back_to_the_user_cache(fasta, tmp_path, monkeypatch, counted, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (fasta.parent / ".seqflow-cache").write_text("a file: no folder can be made here")
    with caplog.at_level(logging.WARNING, logger="seqflow.data.cache"):
        read_cached(fasta, cache="on")
        read_cached(fasta, cache="on")
    assert len(counted) == 1 and len(entries(tmp_path / "xdg" / "seqflow")) == 1
    assert not caplog.records  # falling back is normal, not a warning


def test_stdin_and_pipes_are_not_cached(tmp_path, fasta):
    assert cache_module.cache_roots("on", "-") == []
    assert cache_module.cache_roots(str(tmp_path / "c"), "-") == []
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        assert cache_module.cache_roots("on", tmp_path / "pipe") == []
    assert cache_module.cache_roots(str(tmp_path / "c"), fasta) == [tmp_path / "c"]


def test_an_unwritable_cache_folder_costs_only_the_speed_up(fasta, tmp_path, caplog, counted):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="seqflow.data.cache"):
        table = read_cached(fasta, cache=str(blocker / "c"))
    assert_same_table(table, read_sequences(fasta))
    assert any("cannot write a cache" in r.message for r in caplog.records)


# --- atomic writes ------------------------------------------------------------------------------


def _failing_save(error: BaseException, after: int):
    real, calls = REAL_SAVE, []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            raise error
        return real(*args, **kwargs)

    return save


def test_a_failed_write_leaves_no_temporary_folder(fasta, tmp_path, monkeypatch, caplog):
    root = tmp_path / "c"
    monkeypatch.setattr(cache_module.np, "save", _failing_save(OSError(28, "No space"), 2))
    with caplog.at_level(logging.WARNING, logger="seqflow.data.cache"):
        table = read_cached(fasta, cache=str(root))
    assert_same_table(table, read_sequences(fasta))
    assert entries(root) == []
    monkeypatch.setattr(cache_module.np, "save", _failing_save(KeyboardInterrupt(), 1))
    with pytest.raises(KeyboardInterrupt):
        read_cached(fasta, cache=str(root))
    assert entries(root) == []


def test_a_stale_entry_is_replaced_whole(fasta, tmp_path):
    root = tmp_path / "c"
    read_cached(fasta, cache=str(root))
    _append(fasta)
    table = read_cached(fasta, cache=str(root))
    assert len(entries(root)) == 1 and not any(n.endswith((".tmp", ".old")) for n in entries(root))
    assert table.report.records == 41


def test_concurrent_readers_share_one_whole_entry(fasta, tmp_path):
    root, tables, errors = tmp_path / "c", [], []
    start = threading.Barrier(4)

    def read() -> None:
        start.wait()
        try:
            tables.append(read_cached(fasta, cache=str(root)))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(tables) == 4
    for table in tables:
        assert_same_table(table, tables[0])
    assert len(entries(root)) == 1
    assert json.loads((_entry(root) / "manifest.json").read_text())["format"] == 1


# --- configuration, dataset and command line --------------------------------------------------


def test_config_keys_and_their_checks():
    assert DataConfig().cache == "auto" and DataConfig().num_workers is None
    cfg = Config().with_overrides({"data.cache": "/tmp/c", "data.num_workers": 2})
    assert cfg.data.cache == "/tmp/c" and cfg.data.num_workers == 2
    for bad, key in [({"data.cache": " "}, "data.cache"), ({"data.num_workers": -1}, "workers")]:
        with pytest.raises(ConfigError, match=key):
            Config().with_overrides(bad)


def test_dataset_keeps_consecutive_training_rows_mapped(fasta, tmp_path):
    cfg = DataConfig(cache=str(tmp_path / "c"), valid_frac=0.0)
    load_dataset(fasta, cfg, seed=0)
    ds = load_dataset(fasta, cfg, seed=0)
    assert ds.train.tokens.data_ptr() == ds.table.tokens.data_ptr()
    assert torch.equal(ds.train.tokens, read_sequences(fasta).tokens)
    split = load_dataset(fasta, DataConfig(cache=str(tmp_path / "c"), valid_frac=0.25), seed=0)
    assert len(split.train) + len(split.valid) == 40
    assert torch.equal(split.train.tokens, split.table.tokens[split.train_rows])


def test_fit_cache_option_caches_and_the_next_run_reads_the_cache(
    fasta, tmp_path, monkeypatch, tiny_cli_args
):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cache"
    args = ["fit", str(fasta), *tiny_cli_args, "--set", "train.steps=2", "--cache", str(root)]
    first = CliRunner().invoke(app, [*args, "--out", "run1", "--num-workers", "2"])
    assert first.exit_code == 0, first.output
    assert len(entries(root)) == 1
    saved = yaml.safe_load((tmp_path / "run1" / "config.yaml").read_text())["data"]
    assert saved["cache"] == str(root) and saved["num_workers"] == 2

    def refuse(*args, **kwargs):
        raise AssertionError("read the file again")

    monkeypatch.setattr(cache_module, "read_sequences", refuse)
    second = CliRunner().invoke(app, [*args, "--out", "run2"])
    assert second.exit_code == 0, second.output
    bad = CliRunner().invoke(app, [*args, "--out", "run3", "--num-workers", "-1"])
    assert bad.exit_code == 2 and not (tmp_path / "run3").exists()
