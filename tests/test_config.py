"""Configuration: presets, YAML files, ``--set`` overrides, key and type errors, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seqflow.config import (
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
    list_presets,
    load_preset,
    load_yaml,
    parse_override,
)
from seqflow.errors import ConfigError

PRESETS = ("dna", "protein", "dna-large", "protein-large")


def config_error(fn, *args, **kwargs) -> str:
    """Call ``fn`` expecting a ConfigError; return its message, checked to be one line."""
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def from_file(path: Path) -> Config:
    return Config.from_dict(load_yaml(path), source=str(path))


# --- presets ----------------------------------------------------------------------------------


def test_list_presets_names_the_four_presets():
    assert set(list_presets()) == set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_validates(name):
    cfg = load_preset(name)
    assert isinstance(cfg, Config)
    assert cfg.description
    expected_hardware = "gpu" if name.endswith("-large") else "cpu"
    assert cfg.hardware == expected_hardware
    assert cfg.model.arch == ("transformer" if name.startswith("protein") else "cnn")
    # presets are not just the dataclass defaults
    assert cfg.model != ModelConfig() or cfg.train != TrainConfig()


def test_large_presets_are_larger_than_cpu_presets():
    for small, large in (("dna", "dna-large"), ("protein", "protein-large")):
        s, g = load_preset(small), load_preset(large)
        assert g.model.hidden > s.model.hidden
        assert g.model.depth > s.model.depth
        assert g.train.steps > s.train.steps


def test_unknown_preset_lists_available_presets():
    message = config_error(load_preset, "dnaa")
    assert "dnaa" in message
    for name in PRESETS:
        assert name in message
    assert "did you mean 'dna'" in message


# --- unknown keys -----------------------------------------------------------------------------


def test_unknown_key_in_yaml_names_key_and_nearest(tmp_path):
    path = write_yaml(tmp_path, "train:\n  lrr: 0.1\n")
    message = config_error(from_file, path)
    assert "train.lrr" in message
    assert "'train.lr'" in message
    assert str(path) in message


def test_unknown_section_in_yaml_suggests_section(tmp_path):
    path = write_yaml(tmp_path, "trian:\n  lr: 0.1\n")
    message = config_error(from_file, path)
    assert "'trian'" in message
    assert "'train'" in message


def test_unknown_override_key_names_key_and_nearest():
    message = config_error(Config().with_overrides, {"train.lrr": 0.1})
    assert "train.lrr" in message
    assert "did you mean 'train.lr'" in message


def test_unknown_override_section_names_it():
    message = config_error(Config().with_overrides, {"modle.hidden": 8})
    assert "'modle'" in message
    assert "'model'" in message


def test_override_of_a_whole_section_is_an_error():
    message = config_error(Config().with_overrides, {"train": 3})
    assert "train" in message


# --- types and ranges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"train.steps": "ten"}, "train.steps"),
        ({"train.steps": True}, "train.steps"),
        ({"train.steps": 2.5}, "train.steps"),
        ({"train.lr": "fast"}, "train.lr"),
        ({"model.dilations": [1, "a"]}, "model.dilations"),
        ({"model.dilations": 3}, "model.dilations"),
        ({"model.arch": "rnn"}, "model.arch"),
        ({"data.seq_col": [5]}, "data.seq_col"),
        ({"model.kernel_size": 4}, "model.kernel_size"),
        ({"train.ema_decay": 1.0}, "train.ema_decay"),
        ({"model.hidden": 0}, "model.hidden"),
        ({"flow.coupling": "greedy"}, "flow.coupling"),
        ({"flow.t_early": 1.0}, "flow.t_early"),
        ({"flow.t_early": 0}, "flow.t_early"),
    ],
)
def test_bad_value_names_the_key(overrides, key):
    message = config_error(Config().with_overrides, overrides)
    assert key in message


def test_numeric_column_name_is_read_as_text():
    # ``--set data.label_col=2020`` arrives from YAML as the integer 2020
    cfg = Config().with_overrides({"data.label_col": 2020, "data.seq_col": None})
    assert cfg.data.label_col == "2020"
    assert cfg.data.seq_col is None


def test_type_error_in_yaml_names_key_and_file(tmp_path):
    path = write_yaml(tmp_path, "train:\n  batch_size: many\n")
    message = config_error(from_file, path)
    assert "train.batch_size" in message
    assert str(path) in message


def test_section_that_is_not_a_mapping_is_an_error(tmp_path):
    path = write_yaml(tmp_path, "train: 3\n")
    assert "train" in config_error(from_file, path)


def test_yaml_scientific_notation_is_a_float(tmp_path):
    # YAML 1.1 (PyYAML) reads ``3e-4`` as a string; the config must still take it as a number
    path = write_yaml(tmp_path, "train:\n  lr: 3e-4\n  steps: 1e3\n")
    assert yaml.safe_load(path.read_text())["train"]["lr"] == "3e-4"
    cfg = from_file(path)
    assert cfg.train.lr == pytest.approx(3e-4)
    assert isinstance(cfg.train.lr, float)
    assert cfg.train.steps == 1000
    assert isinstance(cfg.train.steps, int)


def test_broken_yaml_names_file_and_line(tmp_path):
    path = write_yaml(tmp_path, "train:\n  lr: [1, 2\n")
    message = config_error(load_yaml, path)
    assert str(path) in message


def test_missing_config_file(tmp_path):
    assert "no such config file" in config_error(load_yaml, tmp_path / "nope.yaml")


def test_empty_yaml_is_the_default_config(tmp_path):
    assert from_file(write_yaml(tmp_path, "")) == Config()


# --- parse_override ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("model.dilations=[1,2]", "model.dilations", [1, 2]),
        ("model.dilations=[1, 2, 4]", "model.dilations", [1, 2, 4]),
        ("data.label_col=null", "data.label_col", None),
        ("train.steps=300", "train.steps", 300),
        ("train.lr=0.5", "train.lr", 0.5),
        ("flow.coupling=sinkhorn", "flow.coupling", "sinkhorn"),
        (" train.seed = 7", "train.seed", 7),
        ("data.seq_col=", "data.seq_col", ""),
    ],
)
def test_parse_override_reads_yaml_values(item, key, value):
    assert parse_override(item) == (key, value)


def test_parse_override_scientific_notation_becomes_float():
    key, value = parse_override("train.lr=3e-4")
    assert key == "train.lr"
    cfg = Config().with_overrides({key: value})
    assert cfg.train.lr == pytest.approx(3e-4)
    assert isinstance(cfg.train.lr, float)


def test_parse_override_applies_list_and_null():
    pairs = dict(parse_override(item) for item in ("model.dilations=[1,2]", "data.label_col=null"))
    cfg = Config(data=DataConfig(label_col="x")).with_overrides(pairs)
    assert cfg.model.dilations == (1, 2)
    assert cfg.data.label_col is None


@pytest.mark.parametrize("item", ["train.lr", "=3", ""])
def test_parse_override_without_key_value_is_an_error(item):
    assert "key=value" in config_error(parse_override, item)


def test_overrides_are_applied_last_and_leave_the_original_alone():
    base = load_preset("dna")
    cfg = base.with_overrides({"train.lr": 0.25, "model.hidden": 8})
    assert (cfg.train.lr, cfg.model.hidden) == (0.25, 8)
    assert base.train.lr != 0.25
    assert cfg.model.depth == base.model.depth


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PRESETS)
def test_to_dict_from_dict_round_trip(name):
    cfg = load_preset(name)
    raw = cfg.to_dict()
    assert isinstance(raw["model"]["dilations"], list)
    assert Config.from_dict(raw) == cfg
    # through the serialisations that run folders and checkpoints use
    assert Config.from_dict(json.loads(json.dumps(raw))) == cfg
    assert Config.from_dict(yaml.safe_load(yaml.safe_dump(raw))) == cfg


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.train = TrainConfig()  # type: ignore[misc]
