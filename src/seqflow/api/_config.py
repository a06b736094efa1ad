"""Configuration and device choices shared by the API functions."""

from __future__ import annotations

from collections.abc import Sequence
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
    if config_file:
        base = Config.from_dict(load_yaml(Path(config_file)), source=str(config_file))
    elif preset:
        return apply_overrides(load_preset(preset), overrides, flags, preset=True)
    else:
        return None
    return apply_overrides(base, overrides, flags)


def apply_overrides(
    cfg: Config,
    overrides: Sequence[str],
    flags: dict[str, Any] | None,
    *,
    preset: bool = False,
) -> Config:
    """``cfg`` with the command line's flags (None = not given), then ``--set`` pairs.

    With ``preset``, the preset's choices the user did not make follow the ones they did
    (:func:`follow_choices`): ``--set flow.geometry=dirichlet`` on the ``dna`` preset takes
    the geometry's coupling and target instead of refusing a pairing the user never chose.
    """
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    pairs = dict(parse_override(item) for item in overrides)
    if preset:
        given = {**follow_choices(cfg, {**given, **pairs}), **given}
    if given:
        cfg = cfg.with_overrides(given, source="command line")
    return cfg.with_overrides(pairs) if pairs else cfg


def follow_choices(base: Config, chosen: dict[str, Any]) -> dict[str, Any]:
    """Keys of a preset that must change for the user's ``chosen`` keys to be valid: a
    ``denoiser`` target falls back to ``velocity`` where only velocities are defined
    (``egeodesic``, library mode), and ``dirichlet`` (no prior points to pair) takes the
    ``independent`` coupling. Keys the user set are never changed."""
    geometry = chosen.get("flow.geometry", base.flow.geometry)
    mode = chosen.get("mode", base.mode)
    follow: dict[str, Any] = {}
    velocity_only = geometry == "egeodesic" or mode == "library"
    if "flow.target" not in chosen and base.flow.target == "denoiser" and velocity_only:
        follow["flow.target"] = "velocity"
    if "flow.coupling" not in chosen and geometry == "dirichlet":
        follow["flow.coupling"] = "independent"
    return follow


def default_preset(alphabet: Alphabet) -> str:
    """The CPU preset for an alphabet: ``protein`` for more than 8 letters, else ``dna``."""
    return "protein" if alphabet.size > 8 else "dna"
