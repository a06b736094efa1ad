"""Configuration and device choices shared by the API functions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from seqflow.config import Config, load_preset, load_yaml, parse_override
from seqflow.data import Alphabet
from seqflow.errors import ConfigError, InvalidInputError
from seqflow.options import FLAGS


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("--device cuda: no CUDA device is available (use cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise InvalidInputError(f"--device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def build_config(
    *,
    preset: str | None,
    config_file: str | Path | None,
    overrides: Sequence[str] = (),
    flags: dict[str, Any] | None = None,
) -> Config | None:
    """Preset or YAML file, then explicit flags, then ``--set`` overrides (last wins).

    Returns None when neither a preset nor a file is given (the preset is then chosen from
    the data's alphabet by :func:`~seqflow.api.fit`).
    """
    if preset and config_file:
        raise ConfigError("give either --preset or --config, not both")
    if config_file:
        base = Config.from_dict(load_yaml(Path(config_file)), source=str(config_file))
    elif preset:
        base = load_preset(preset)
    else:
        return None
    return apply_overrides(base, overrides, flags)


def apply_overrides(cfg: Config, overrides: Sequence[str], flags: dict[str, Any] | None) -> Config:
    """``cfg`` with the command line's flags (None = not given), then ``--set`` pairs."""
    for key, value in (flags or {}).items():  # one at a time: an error names its flag
        if value is not None:
            cfg = cfg.with_overrides({key: value}, source=FLAGS[key].flag.split("/")[0])
    pairs = dict(parse_override(item) for item in overrides)
    return cfg.with_overrides(pairs) if pairs else cfg


def default_preset(alphabet: Alphabet) -> str:
    """The CPU preset for an alphabet: ``protein`` for more than 8 letters, else ``dna``."""
    return "protein" if alphabet.size > 8 else "dna"
