"""Configuration: frozen dataclasses grouped by concern, YAML presets, ``--set`` overrides.

A run's configuration is ``Config(data, model, flow, train, sample)``. It is built from a preset
(``presets/NAME.yaml``) or a YAML file, then ``key=value`` overrides are applied last. Unknown
keys are an error naming the key and the nearest valid one; values are checked for type and
range here, so a bad value never reaches the engine. YAML is read by PyYAML's safe loader (no
Python tags), made stricter: a repeated key is an error rather than silently the last one wins.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from seqflow.duration import parse_duration
from seqflow.errors import ConfigError, no_such

MAX_WORKERS = 64
"""Most batch-preparing threads ``data.num_workers`` may ask for."""


@dataclass(frozen=True)
class DataConfig:
    """How sequences and their conditions are read and split.

    ``*_col`` name CSV/TSV columns: class labels, a scalar value (standardised for the model,
    its mean and scale kept in the checkpoint), a per-position signal (numbers separated by
    spaces, commas or semicolons in one cell), a split (``train``/``valid``/``test``; without
    one, ``valid_frac`` of the records are held out at random). ``signal_file`` is a ``.npy``,
    ``.npz`` or text file of signal rows aligned with the records by order.

    ``cache`` keeps the tokenised file as memory-mappable arrays (:mod:`seqflow.data.cache`):
    ``auto`` for files of 64 MiB or more, ``on`` for any, ``off`` never, any other value is
    the cache folder. ``num_workers``: CPU threads preparing minibatches ahead of the training
    step (``null``: one on CUDA, none on a CPU; ``0``: on the training thread).
    """

    alphabet: str = "auto"
    format: Literal["auto", "fasta", "fastq", "csv", "tsv"] = "auto"
    seq_col: str | None = None
    label_col: str | None = None
    value_col: str | None = None
    signal_col: str | None = None
    signal_file: str | None = None
    split_col: str | None = None
    set_col: str | None = None
    valid_frac: float = 0.05
    on_invalid: Literal["error", "skip", "replace"] = "error"
    max_length: int | None = None
    crop: bool = False
    cache: str = "auto"
    num_workers: int | None = None

    def __post_init__(self) -> None:
        _check(0.0 <= self.valid_frac < 1.0, "data.valid_frac", "must be in [0, 1)")
        _check(
            bool(self.cache.strip()),
            "data.cache",
            "must be auto, on, off or a folder, got an empty string",
        )
        _check(
            self.num_workers is None or 0 <= self.num_workers <= MAX_WORKERS,
            "data.num_workers",
            f"must be null (auto) or between 0 and {MAX_WORKERS}",
        )
        _check(self.max_length is None or self.max_length >= 1, "data.max_length", "must be >= 1")
        _check(
            not (self.signal_col and self.signal_file),
            "data.signal_col",
            "give either signal_col or signal_file, not both",
        )


@dataclass(frozen=True)
class ModelConfig:
    """The velocity network. ``arch: auto`` picks ``cnn`` for alphabets of at most 8 letters
    (DNA, RNA) and ``transformer`` otherwise (protein)."""

    arch: Literal["auto", "cnn", "transformer"] = "auto"
    hidden: int = 128
    depth: int = 6
    kernel_size: int = 9
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    heads: int = 4
    time_dim: int = 64
    time_scale: float = 16.0

    def __post_init__(self) -> None:
        for key in ("hidden", "depth", "kernel_size", "heads", "time_dim"):
            _check(getattr(self, key) >= 1, f"model.{key}", "must be >= 1")
        _check(self.kernel_size % 2 == 1, "model.kernel_size", "must be odd")
        _check(
            len(self.dilations) > 0 and min(self.dilations) >= 1,
            "model.dilations",
            "must be a non-empty list of integers >= 1",
        )
        _check(self.time_dim % 2 == 0, "model.time_dim", "must be even")
        _check(
            self.arch != "transformer" or self.hidden % self.heads == 0,
            "model.heads",
            f"must divide model.hidden ({self.hidden}): the transformer splits it into heads",
        )


@dataclass(frozen=True)
class FlowConfig:
    """The flow: geometry, coupling of prior and data, condition dropout for guidance.

    ``geometry``: ``fisher`` (Fisher-Flow on the sphere, Davis et al. 2024; the default),
    ``simplex`` (linear flow matching on the simplex, Stark et al. 2024's baseline),
    ``egeodesic`` (e-geodesic flow in mean-free logits, Boll et al. 2024, whose one-hot targets
    are smoothed by ``smoothing``) or ``dirichlet`` (Dirichlet FM, Stark et al. 2024: a
    denoiser over ``Dir(1 + tau e_i)`` paths up to ``tau_max``; coupling ``independent``).
    ``sigma > 0`` (egeodesic only) adds the Brownian-bridge noise of SB-CFM (Tong et al. 2024)
    to the paths; pair it with ``coupling: sinkhorn``.

    ``target``: what the network learns. ``velocity`` (the default) regresses the path's
    velocity ``u_t``; ``denoiser`` (``fisher`` and ``simplex``) predicts logits of ``p(x_1 |
    x_t)`` by cross-entropy and samples with the exact posterior mixture of the conditional
    velocities. ``dirichlet`` is a denoiser by construction and takes either value.

    ``t_early``: the share of training times drawn from ``[0, 0.5)`` (0.5: uniform times). On
    the sphere the posterior of ``x_1`` is settled by ``t ~ 0.45`` (DHS: cross-entropy 0.06
    nats per position at 0.45, 1.3 at 0.05), so uniform times spend half the steps where there
    is nothing left to learn; the ``dna`` preset draws 80% of its times before 0.5
    (``benchmarks/quality_budget_findings.md``). Keep 0.5 for runs of less than ~100 steps:
    they then see too few late times to learn to keep ``x_t``'s letters, and their samples
    fill with homopolymers.

    ``cond_dropout`` is the probability that a training sequence's conditions (label, value,
    signal, all together) are hidden, which trains the unconditional field classifier-free
    guidance needs (``label_dropout`` is accepted as its old name).
    """

    geometry: Literal["fisher", "simplex", "egeodesic", "dirichlet"] = "fisher"
    coupling: Literal["independent", "exact", "sinkhorn"] = "exact"
    sinkhorn_reg: float = 0.05
    cond_dropout: float = 0.1
    smoothing: float = 0.1
    sigma: float = 0.0
    tau_max: float = 8.0
    target: Literal["velocity", "denoiser"] = "velocity"
    t_early: float = 0.5

    def __post_init__(self) -> None:
        _check(self.sinkhorn_reg > 0, "flow.sinkhorn_reg", "must be > 0")
        _check(0.0 < self.t_early < 1.0, "flow.t_early", "must be in (0, 1)")
        _check(self.sigma >= 0, "flow.sigma", "must be >= 0")
        _check(self.tau_max > 0, "flow.tau_max", "must be > 0")
        _check(
            self.geometry != "dirichlet" or self.coupling == "independent",
            "flow.coupling",
            f"{self.coupling} pairs prior points with data, but dirichlet paths start from no "
            "prior point; set flow.coupling=independent with flow.geometry=dirichlet",
        )
        _check(
            self.sigma == 0 or self.geometry == "egeodesic",
            "flow.sigma",
            "noise (SB-CFM) is defined for geometry egeodesic only: it would push sphere and "
            "simplex points out of their domain",
        )
        _check(
            self.target == "velocity" or self.geometry != "egeodesic",
            "flow.target",
            "denoiser is exact for geometry fisher or simplex (dirichlet is a denoiser "
            "already); egeodesic regresses its velocity, set flow.target=velocity",
        )
        _check(0.0 < self.smoothing < 1.0, "flow.smoothing", "must be in (0, 1)")
        _check(0.0 <= self.cond_dropout < 1.0, "flow.cond_dropout", "must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: AdamW with linear warmup and cosine decay, gradient clipping, EMA.

    ``time_budget`` (e.g. ``20m``, ``4h``, ``1h30m``; :func:`~seqflow.duration.parse_duration`)
    replaces ``steps`` with the most steps that fit that wall time, measured when the run
    starts (:mod:`seqflow.run.budget`); the run records the steps it chose here. An explicit
    ``steps`` beside it is an error; a preset's or config file's gives way.
    """

    steps: int = 2000
    time_budget: str | None = None
    batch_size: int = 64
    lr: float = 1e-3
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 25
    eval_every: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    max_bad_steps: int = 50
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        for key in (
            "steps", "batch_size", "log_every", "eval_every", "checkpoint_every",
            "keep_checkpoints", "max_bad_steps",
        ):  # fmt: skip
            _check(getattr(self, key) >= 1, f"train.{key}", "must be >= 1")
        _check(self.lr > 0, "train.lr", "must be > 0")
        _check(0.0 <= self.min_lr_frac <= 1.0, "train.min_lr_frac", "must be in [0, 1]")
        _check(self.warmup_steps >= 0, "train.warmup_steps", "must be >= 0")
        _check(self.grad_clip >= 0, "train.grad_clip", "must be >= 0 (0 turns clipping off)")
        _check(0.0 <= self.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1)")
        if self.time_budget is not None:
            try:
                parse_duration(self.time_budget)
            except ValueError as err:
                raise ConfigError(f"train.time_budget (--time-budget): {err}") from None
        _check(0 <= self.seed < SEED_LIMIT, "train.seed", "must be in [0, 2^63)")


@dataclass(frozen=True)
class LibraryConfig:
    """Library mode (``mode: library``): whole libraries as point clouds (Wasserstein flow
    matching, Haviv et al. 2025).

    ``size`` is the number of sequences S of a training cloud (every library must have at
    least S); ``outer`` pairs prior clouds with the libraries of a minibatch (``exact``) or
    not (``none``); ``point_layers``/``set_layers`` are the per-sequence encoder blocks and the
    transformer blocks over the points of a cloud. ``flow.coupling`` is the coupling of the
    points within a cloud.
    """

    size: int = 32
    outer: Literal["none", "exact"] = "none"
    point_layers: int = 2
    set_layers: int = 2

    def __post_init__(self) -> None:
        for key in ("size", "point_layers", "set_layers"):
            _check(getattr(self, key) >= 1, f"library.{key}", "must be >= 1")


@dataclass(frozen=True)
class SampleConfig:
    """Defaults for ``seqflow sample`` (each can be overridden on the command line)."""

    steps: int = 100
    solver: Literal["euler", "midpoint", "rk4", "dopri5"] = "euler"
    guidance: float = 1.0
    decode: Literal["argmax", "sample"] = "argmax"
    batch_size: int = 1024

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "sample.steps", "must be >= 1")
        _check(self.batch_size >= 1, "sample.batch_size", "must be >= 1")


@dataclass(frozen=True)
class Config:
    """A complete run configuration. ``description`` and ``hardware`` describe presets."""

    description: str = ""
    hardware: Literal["cpu", "gpu"] = "cpu"
    mode: Literal["sequence", "library"] = "sequence"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists) for YAML/JSON."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> Config:
        """Build and validate a config; unknown keys raise :class:`ConfigError`."""
        return _build(cls, raw, prefix="", source=source)

    def with_overrides(self, overrides: dict[str, Any], *, source: str = "--set") -> Config:
        """Return a copy with dotted-key overrides (``{"train.lr": 3e-4}``) applied."""
        raw = self.to_dict()
        for dotted, value in overrides.items():
            _assign(raw, dotted, value, source)
        return Config.from_dict(raw, source=source)


MAX_CONFIG_BYTES = 64 << 10
"""Largest config file read (64 KiB; a real one is a few hundred bytes): PyYAML's pure-Python
loader takes about a second per 30 KB of the worst kinds of YAML."""

MAX_YAML_NESTING = 32
"""Deepest ``[``/``{`` nesting read; PyYAML's time grows with the square of it."""

_INT64_MAX = 2**63 - 1
_BRACKETS = re.compile(r"[\[\]{}]")
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxset = 3, 4, 4, 4
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 60


def _shown(value: Any) -> str:
    """A bounded one-line ``repr`` of a YAML value for an error message (deep or huge values,
    even alias bombs, are cut)."""
    try:
        text = _SHORT.repr(value)
    except ValueError:  # an integer of more than 4300 digits
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 120 else text[:119] + "…"


SEED_LIMIT = 2**63
"""Seeds lie in ``[0, SEED_LIMIT)``: what torch and numpy generators take."""


def check_seed(seed: int) -> None:
    """Refuse a ``--seed`` outside ``[0, SEED_LIMIT)``."""
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"--seed {seed}: must be in [0, 2^63)")


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _nearest(key: str, options: typing.Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{prefix}{close[0]}'?" if close else ""


def _assign(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    node: Any = raw
    parts = dotted.split(".")
    parts[-1] = _ALIASES.get(dotted, parts[-1])
    for i, part in enumerate(parts):
        known = list(node) if isinstance(node, dict) else []
        if part not in known:
            where = ".".join(parts[:i]) or "config"
            if i < len(parts) - 1:  # more parts follow: only a section fits here
                known = [k for k in known if isinstance(node[k], dict)]
            raise ConfigError(
                f"{source}: unknown key '{'.'.join(parts[: i + 1])}' in {where}"
                f"{_nearest(part, known, f'{where}.' if i else '')}"
            )
        if i == len(parts) - 1:
            if isinstance(node[part], dict):
                raise ConfigError(f"{source}: '{dotted}' is a section; set one of its keys")
            node[part] = value
        else:
            node = node[part]


_ALIASES = {"flow.label_dropout": "cond_dropout"}
"""Old key names still accepted (full dotted name -> current field name)."""


def _build(cls: type, raw: Any, *, prefix: str, source: str) -> Any:
    name = prefix.rstrip(".") or "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{name}' must be a mapping, got {type(raw).__name__}")
    raw = {_ALIASES.get(f"{prefix}{k}", k): v for k, v in raw.items()}
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            hint = _nearest(str(key), fields, prefix)
            name = f"{prefix}{key}"
            shown = f"'{name}'" if name.isprintable() and len(name) <= 80 else _shown(name)
            raise ConfigError(f"{source}: unknown key {shown}{hint}")
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, prefix=f"{prefix}{key}.", source=source)
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}", source)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    bad = ConfigError(f"{source}: {key}: expected {_describe(hint)}, got {_shown(value)}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{source}: {key}: {_shown(value)} is not one of {', '.join(map(str, args))}"
            )
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(v, args[0], key, source) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if hint is str and isinstance(value, bool):
        return "on" if value else "off"  # YAML 1.1 reads unquoted on/off as booleans
    if hint in (int, float) and isinstance(value, str):
        value = _number(value, bad)  # YAML 1.1 reads ``3e-4`` as a string
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > _INT64_MAX:
                raise ConfigError(f"{source}: {key}: {_shown(value)} is too large")
            return value
        raise bad
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{source}: {key}: expected a finite number, got {_shown(value)}")
            return number
        raise bad
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _shown(value)  # e.g. a column named 2020
        raise bad
    raise bad  # pragma: no cover - every field type is handled above


def _number(text: str, bad: ConfigError) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise bad from None
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        return f"a list of {_describe(args[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None)) + " or null"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(
        hint, str(hint)
    )


def parse_override(item: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as YAML (``3e-4``, ``[1, 2]``)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except (yaml.YAMLError, RecursionError, ValueError):
        value = text
    return key.strip(), value


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (the loader of ``yaml.safe_load``: no Python tags) that refuses a
    key repeated in one mapping instead of keeping its last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:
                continue  # unhashable: the SafeLoader reports it
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {_shown(key)}", key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError, text: str) -> tuple[str, str]:
    """``(":line", problem)`` of a PyYAML error, the problem on one line of at most 200 chars."""
    mark = getattr(err, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or "invalid YAML"
    if isinstance(err, yaml.reader.ReaderError):
        line = f":{text.count(chr(10), 0, err.position) + 1}"
        code = err.character if isinstance(err.character, int) else ord(err.character)
        problem = f"{err.reason} (#x{code:04x})"
    problem = " ".join(str(problem).split())
    return line, problem if len(problem) <= 200 else problem[:199] + "…"


def _nesting(text: str) -> int:
    """Deepest flow nesting (``[``/``{``) of ``text``; brackets inside quotes count too."""
    depth = peak = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match[0] in "[{" else -1
        peak = max(peak, depth)
    return peak


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``'s loader (a repeated key is refused).

    Raises:
        ConfigError: one line naming the file (and line): missing, unreadable, larger than
            ``MAX_CONFIG_BYTES``, not UTF-8, invalid or too deeply nested YAML, a Python tag,
            a repeated key, or not a mapping.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: {no_such(path, 'config file')}")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: {size} bytes is too large for a config file (max {MAX_CONFIG_BYTES})"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    if _nesting(text) > MAX_YAML_NESTING:
        raise ConfigError(f"{path}: YAML nested too deeply (over {MAX_YAML_NESTING} levels)")
    try:
        raw = yaml.load(text, Loader=_StrictSafeLoader)  # a SafeLoader: no Python tags
    except yaml.YAMLError as err:
        line, problem = _yaml_problem(err, text)
        raise ConfigError(f"{path}{line}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    except ValueError as err:  # an integer of more than 4300 digits, a date like 2020-13-45
        message = " ".join(str(err).split())
        raise ConfigError(f"{path}: invalid value ({message[:120]})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw


def presets_dir() -> Path:
    """The folder holding preset YAML files (installed package data, or the source tree)."""
    installed = Path(__file__).resolve().parent / "presets"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "presets"


def list_presets() -> dict[str, Config]:
    """All presets by name, parsed and validated."""
    return {
        p.stem: Config.from_dict(load_yaml(p), source=str(p))
        for p in sorted(presets_dir().glob("*.yaml"))
    }


def load_preset(name: str) -> Config:
    """Load ``presets/NAME.yaml``; an unknown name lists the available ones."""
    path = presets_dir() / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in presets_dir().glob("*.yaml"))
        raise ConfigError(
            f"unknown preset '{name}'{_nearest(name, names)} (available: {', '.join(names)})"
        )
    return Config.from_dict(load_yaml(path), source=str(path))
