"""Configuration and device choices shared by the API functions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from seqflow.config import Config, load_preset, load_yaml, parse_override
from seqflow.data import Alphabet
from seqflow.errors import ConfigError, InvalidInputError


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
    chosen: set[str] = set()
    if config_file:
        raw = load_yaml(Path(config_file))
        flow = raw.get("flow")
        if isinstance(flow, dict) and "coupling" in flow:
            chosen.add("flow.coupling")
        elif isinstance(flow, dict) and flow.get("geometry") in GEOMETRY_COUPLING:
            flow["coupling"] = GEOMETRY_COUPLING[flow["geometry"]]
        base = Config.from_dict(raw, source=str(config_file))
    elif preset:
        base = load_preset(preset)
    else:
        return None
    return apply_overrides(base, overrides, flags, chosen=chosen)


GEOMETRY_COUPLING = {"dirichlet": "independent"}
"""The coupling a geometry takes when the user chose none (a preset's ``flow.coupling`` is a
default, not a choice): dirichlet paths start from no prior point, so nothing is paired."""


def apply_overrides(
    cfg: Config,
    overrides: Sequence[str],
    flags: dict[str, Any] | None,
    *,
    chosen: Collection[str] = (),
) -> Config:
    """``cfg`` with the command line's flags (None = not given), then ``--set`` pairs.

    A ``--set flow.geometry`` with a coupling of its own (:data:`GEOMETRY_COUPLING`) sets that
    coupling too, unless ``flow.coupling`` is set on the command line or is in ``chosen`` (the
    keys the user's config file sets).
    """
    if flags:
        cfg = cfg.with_overrides(
            {k: v for k, v in flags.items() if v is not None}, source="command line"
        )
    pairs = dict(parse_override(item) for item in overrides)
    coupling = GEOMETRY_COUPLING.get(str(pairs.get("flow.geometry")))
    if coupling is not None and "flow.coupling" not in pairs and "flow.coupling" not in chosen:
        pairs["flow.coupling"] = coupling
    return cfg.with_overrides(pairs) if pairs else cfg


def default_preset(alphabet: Alphabet) -> str:
    """The CPU preset for an alphabet: ``protein`` for more than 8 letters, else ``dna``."""
    return "protein" if alphabet.size > 8 else "dna"
