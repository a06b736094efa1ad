"""Configuration and device choices shared by the API functions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
        raw = load_yaml(Path(config_file))
        chosen = set(_dotted_keys(raw))
        default = Config().to_dict()
        for key, value in follow_choices(Config(), {k: _get(raw, k) for k in chosen}).items():
            section, name = key.split(".")
            raw.setdefault(section, dict(default[section]))[name] = value
        base = Config.from_dict(raw, source=str(config_file))
        return apply_overrides(base, overrides, flags, chosen=chosen)
    if preset:
        return apply_overrides(load_preset(preset), overrides, flags, chosen=())
    return None


def apply_overrides(
    cfg: Config,
    overrides: Sequence[str],
    flags: dict[str, Any] | None,
    *,
    chosen: Collection[str] | None = None,
) -> Config:
    """``cfg`` with the flags given on the command line (:func:`~seqflow.options.config_flags`),
    then ``--set`` pairs.

    Unless ``chosen`` is None (a resumed run's own config), ``cfg``'s keys that the user did
    not choose (``chosen``: those of their config file; none of a preset's) follow the ones
    they did (:func:`follow_choices`): ``--set flow.geometry=dirichlet`` on the ``dna``
    preset takes the geometry's coupling and target instead of refusing a pairing the user
    never chose.
    """
    given = dict(flags or {})
    pairs = dict(parse_override(item) for item in overrides)
    if chosen is not None:
        raw = cfg.to_dict()
        user = {**{k: _get(raw, k) for k in chosen}, **given, **pairs}
        given = {**follow_choices(cfg, user), **given}
    if given:
        try:
            cfg = cfg.with_overrides(given, source="command line")
        except ConfigError:
            _blame_flag(cfg, flags or {})
            raise
    return cfg.with_overrides(pairs) if pairs else cfg


def _blame_flag(cfg: Config, flags: dict[str, Any]) -> None:
    """Apply the given ``flags`` to ``cfg`` one at a time, so that a bad value's error names
    its flag (``--seed -1``) rather than the whole command line."""
    for key, value in flags.items():
        cfg = cfg.with_overrides({key: value}, source=FLAGS[key].flag.split("/")[0])


def follow_choices(base: Config, chosen: dict[str, Any]) -> dict[str, Any]:
    """Keys of ``base`` that must change for the user's ``chosen`` keys to be valid: a
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


def _dotted_keys(raw: dict[str, Any]) -> list[str]:
    """The ``section.key`` (or top-level) names a config file sets."""
    keys: list[str] = []
    for name, value in raw.items():
        if isinstance(value, dict):
            keys += [f"{name}.{key}" for key in value]
        else:
            keys.append(name)
    return keys


def _get(raw: dict[str, Any], dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    value = raw.get(section)
    return value.get(name) if name and isinstance(value, dict) else value


def default_preset(alphabet: Alphabet) -> str:
    """The CPU preset for an alphabet: ``protein`` for more than 8 letters, else ``dna``."""
    return "protein" if alphabet.size > 8 else "dna"
