"""Checkpoints: safetensors files with JSON metadata; nothing is ever unpickled.

- ``model.safetensors``: the model weights (``model.*``) and their EMA (``ema.*``), with the
  string metadata of :meth:`ModelMeta.to_metadata`; it alone rebuilds the model. Format 1 files
  (before variable length and value/signal conditions) are read as having none; files before
  format 3 have a checksum of their tensors only, and are read with a warning. An inference
  bundle (``seqflow export --format safetensors``) is one without ``model.*``.
- ``state.safetensors``: what ``--resume`` needs on top: optimizer moments, scheduler, random
  generator states, data order and EMA counter.

Both are written atomically (temporary file in the same folder + ``os.replace``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from seqflow._version import __version__
from seqflow.config import Config
from seqflow.errors import CheckpointError, SeqflowError, no_such
from seqflow.geometry import Geometry, make_geometry
from seqflow.io_utils import check_format, read_tensors, save_tensors
from seqflow.models import (
    SetVelocityField,
    Standardizer,
    VelocityField,
    build_set_velocity_field,
    build_velocity_field,
    min_weights,
    resolve_arch,
)

FORMAT = "seqflow"
FORMAT_VERSION = 3
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"


@dataclass(frozen=True)
class ModelMeta:
    """What a checkpoint says about its model.

    Attributes:
        config: the full run configuration.
        alphabet: the alphabet as a dict (``name``, ``letters``).
        labels: class names in index order (empty for an unconditional model).
        length: sequence length L the model generates (the maximum, for variable length).
        step: training steps taken.
        variable_length: whether the model has an end/pad category (index K).
        value, signal: standardisation of the value and (per channel) signal conditions, or
            None without one.
    """

    config: Config
    alphabet: dict[str, Any]
    labels: tuple[str, ...]
    length: int
    step: int
    variable_length: bool = False
    value: Standardizer | None = None
    signal: Standardizer | None = None

    @property
    def letters(self) -> int:
        """Alphabet size K."""
        return len(self.alphabet["letters"])

    @property
    def vocab(self) -> int:
        """Categories per position: K letters, plus the end/pad category when variable."""
        return self.letters + int(self.variable_length)

    @property
    def pad(self) -> int | None:
        """Index of the end/pad category, or None for fixed-length models."""
        return self.letters if self.variable_length else None

    @property
    def geometry(self) -> Geometry:
        """The geometry the model's flow runs on (``flow.geometry``)."""
        flow = self.config.flow
        return make_geometry(flow.geometry, smoothing=flow.smoothing, tau_max=flow.tau_max)

    def to_metadata(self) -> dict[str, str]:
        """String metadata for the safetensors header."""
        return {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "seqflow_version": __version__,
            "config": json.dumps(self.config.to_dict()),
            "alphabet": json.dumps(self.alphabet),
            "labels": json.dumps(list(self.labels)),
            "length": str(self.length),
            "step": str(self.step),
            "variable_length": json.dumps(self.variable_length),
            "value": json.dumps(self.value.to_dict() if self.value else None),
            "signal": json.dumps(self.signal.to_dict() if self.signal else None),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str] | None, source: str) -> ModelMeta:
        """Parse and check header metadata; any problem is a :class:`CheckpointError`. So that
        damaged or hostile metadata cannot make the model factory allocate more than the file
        holds, the file ``source`` must hold the model's :func:`~seqflow.models.min_weights`
        at 2 bytes or more each."""
        meta = check_format(
            meta, source, fmt=FORMAT, newest=FORMAT_VERSION, kind="seqflow checkpoint"
        )
        try:
            config = Config.from_dict(json.loads(meta["config"]), source=f"{source} [config]")
            alphabet = json.loads(meta["alphabet"])
            raw_labels = json.loads(meta["labels"])
            if not isinstance(raw_labels, list):
                raise ValueError("labels must be a list")
            labels = tuple(str(x) for x in raw_labels)
            length, step = int(meta["length"]), int(meta["step"])
            if length < 1 or step < 0:
                raise ValueError(f"length {length} or step {step} out of range")
            letters = alphabet.get("letters") if isinstance(alphabet, dict) else None
            if not isinstance(letters, str) or len(letters) < 2:
                raise ValueError("alphabet")
            variable = json.loads(meta.get("variable_length", "false"))
            if not isinstance(variable, bool):
                raise ValueError("variable_length must be true or false")
            value, signal = (
                Standardizer.from_dict(raw) if (raw := json.loads(meta.get(key, "null"))) else None
                for key in ("value", "signal")
            )
            numbers = [x for s in (value, signal) if s for x in (*s.mean, *s.std)]
            if not all(abs(x) < float("inf") for x in numbers):
                raise ValueError("value or signal standardisation is not finite")
        except SeqflowError as err:
            raise CheckpointError(str(err)) from None
        except (KeyError, ValueError, TypeError, RecursionError) as err:
            problem = " ".join(str(err).split())[:200]
            raise CheckpointError(f"{source}: damaged checkpoint metadata ({problem})") from None

        model = config.model
        vocab = len(letters) + int(variable)
        if resolve_arch(model, vocab) == "transformer" and model.hidden % model.heads:
            raise CheckpointError(
                f"{source}: damaged checkpoint metadata (transformer hidden {model.hidden} is not "
                f"a multiple of heads {model.heads})"
            )
        weights = min_weights(model, vocab=vocab, length=length)
        file = Path(source)
        if file.is_file() and 2 * weights > file.stat().st_size:
            raise CheckpointError(
                f"{source}: damaged checkpoint metadata (length {length}, hidden {model.hidden}, "
                f"depth {model.depth} need more weights than its {file.stat().st_size} bytes hold)"
            )
        return cls(
            config=config, alphabet=alphabet, labels=labels, length=length, step=step,
            variable_length=variable, value=value, signal=signal,
        )  # fmt: skip


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder means its ``model.safetensors``; a file is taken as it is."""
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
        if not p.is_file():
            raise CheckpointError(f"{path}: run folder has no {MODEL_FILE} (did `fit` finish?)")
    elif not p.exists():
        raise CheckpointError(f"{path}: {no_such(p, 'run folder or checkpoint file')}")
    return p


def save_model(
    path: Path,
    model_state: dict[str, Tensor] | None,
    ema_state: dict[str, Tensor],
    meta: ModelMeta,
) -> None:
    """Write ``model.*`` and ``ema.*`` weights with ``meta`` atomically to ``path``; without
    ``model_state``, an inference bundle."""
    tensors = {f"model.{k}": v for k, v in (model_state or {}).items()}
    tensors.update({f"ema.{k}": v for k, v in ema_state.items()})
    save_tensors(tensors, path, meta.to_metadata(), make_folder=True)


def load_model(
    path: str | Path, *, weights: str = "ema", device: torch.device | str = "cpu"
) -> tuple[VelocityField, ModelMeta]:
    """Rebuild a model from its checkpoint alone: a run folder or a ``.safetensors`` model
    file; ``weights``: ``ema`` (what sampling uses) or ``model`` (the raw weights)."""
    file, state, meta = _weights(path, weights)
    if meta.config.mode == "library":
        raise CheckpointError(
            f"{file}: a library-mode run; sample it with seqflow sample RUN --libraries M"
        )
    return _loaded(build_velocity_field(meta), state, file).to(device).eval(), meta


def load_library_model(
    path: str | Path, *, weights: str = "ema", device: torch.device | str = "cpu"
) -> tuple[SetVelocityField, ModelMeta]:
    """Rebuild a library-mode model (a :class:`SetVelocityField`) from its checkpoint alone."""
    file, state, meta = _weights(path, weights)
    if meta.config.mode != "library":
        raise CheckpointError(f"{file}: a sequence-mode run; sample it without --libraries")
    return _loaded(build_set_velocity_field(meta), state, file).to(device).eval(), meta


def read_meta(path: str | Path) -> ModelMeta:
    """The metadata of a checkpoint (a run folder or a model file), checked."""
    file = resolve_checkpoint(path)
    return ModelMeta.from_metadata(
        read_tensors(file, "checkpoint", newest=FORMAT_VERSION)[1], str(file)
    )


def _weights(path: str | Path, weights: str) -> tuple[Path, dict[str, Tensor], ModelMeta]:
    file = resolve_checkpoint(path)
    tensors, metadata = read_tensors(file, "checkpoint", newest=FORMAT_VERSION)
    meta = ModelMeta.from_metadata(metadata, str(file))
    prefix = f"{weights}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{file}: holds no {weights} weights")
    return file, state, meta


M = TypeVar("M", bound=torch.nn.Module)


def _loaded(model: M, state: dict[str, Tensor], file: Path) -> M:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{file}: weights do not match the model in its metadata ({str(err).splitlines()[0]})"
        ) from None
    return model


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a trainer state (tensors and JSON-able values, nested) atomically."""
    tensors: dict[str, Tensor] = {}
    plain = _split(state, "", tensors)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "state": json.dumps(plain)}
    save_tensors(tensors, path, header, make_folder=True)


def load_state(path: Path) -> dict[str, Any]:
    """Read a trainer state written by :func:`save_state`."""
    tensors, metadata = read_tensors(path, "checkpoint", newest=FORMAT_VERSION)
    if not metadata or metadata.get("format") != FORMAT or "state" not in metadata:
        raise CheckpointError(f"{path}: not a seqflow training state")
    try:
        return _join(json.loads(metadata["state"]), tensors)
    except (KeyError, ValueError, TypeError, RecursionError) as err:
        problem = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{path}: damaged training state ({problem})") from None


_TENSOR = "__tensor__"


def _split(value: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """Replace tensors in a nested structure by references, collecting them in ``tensors``."""
    if isinstance(value, Tensor):
        tensors[key] = value
        return {_TENSOR: key}
    if isinstance(value, dict):
        items = enumerate(value.items())  # names by position: keys 1 and "1" must not collide
        return {"__dict__": [[_key(k), _split(v, f"{key}/{i}", tensors)] for i, (k, v) in items]}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    return value


def _key(k: Any) -> Any:
    return k if isinstance(k, (str, int)) else str(k)


def _join(value: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, dict) and _TENSOR in value:
        return tensors[value[_TENSOR]]
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _join(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value
