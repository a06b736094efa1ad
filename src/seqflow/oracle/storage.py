"""Built-in oracle files: safetensors weights with JSON metadata; nothing is ever unpickled.

The header metadata (all strings) holds ``format`` (``seqflow-oracle``), ``format_version``,
``seqflow_version``, ``kind``, ``alphabet`` (the letters), ``input_length``, ``output_names``
(JSON list), ``value`` (JSON ``{"mean", "std"}`` for a regressor, else null), ``network``
(JSON sizes) and ``metric`` (JSON ``{"name", "value"}``, the held-out score). The tensors are
the network's weights, ``network.*``. The metadata is checked in full before any tensor is
read, so a wrong file fails with a one-line :class:`~seqflow.errors.CheckpointError`. Files are
written atomically (temporary file beside the target + ``os.replace``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from seqflow._version import __version__
from seqflow.errors import CheckpointError, SeqflowError
from seqflow.io_utils import check_format, read_tensors, save_tensors
from seqflow.oracle.builtin import METRICS, BuiltinOracle
from seqflow.oracle.encoding import check_letters, last_line
from seqflow.oracle.network import NetworkConfig, OracleCNN

FORMAT = "seqflow-oracle"
FORMAT_VERSION = 2
"""Format 2: the checksum covers the metadata too (format 1 files are read with a warning)."""
_PREFIX = "network."


def _metadata(oracle: BuiltinOracle) -> dict[str, str]:
    value = {"mean": oracle.value_mean, "std": oracle.value_std}
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "seqflow_version": __version__,
        "kind": oracle.kind,
        "alphabet": oracle.letters,
        "input_length": str(oracle.input_length),
        "output_names": json.dumps(list(oracle.output_names)),
        "value": json.dumps(value if oracle.kind == "regressor" else None),
        "network": json.dumps(oracle.config.to_dict()),
        "metric": json.dumps({"name": oracle.metric_name, "value": oracle.metric}),
    }


def save_oracle(oracle: BuiltinOracle, path: str | Path) -> None:
    """Write ``oracle`` to ``path`` (a ``.safetensors`` file) atomically.

    Raises:
        InvalidInputError: the folder of ``path`` is missing or not writable.
    """
    tensors = {_PREFIX + k: v for k, v in oracle.network.state_dict().items()}
    save_tensors(tensors, path, _metadata(oracle))


def _parse(meta: dict[str, str], source: str) -> dict[str, Any]:
    """The oracle's fields from checked metadata (ValueError, KeyError, TypeError if bad)."""
    kind = meta["kind"]
    if kind not in METRICS:
        raise ValueError(f"kind {kind!r}")
    names = json.loads(meta["output_names"])
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ValueError("output_names must be a list of strings")
    wanted_ok = len(names) == 1 if kind == "regressor" else len(names) >= 2
    if not wanted_ok:
        raise ValueError(f"{len(names)} output_names for a {kind}")
    length = int(meta["input_length"])
    if length < 1:
        raise ValueError("input_length must be >= 1")
    value = json.loads(meta["value"])
    mean, std = (float(value["mean"]), float(value["std"])) if kind == "regressor" else (0.0, 1.0)
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ValueError("value needs a finite mean and a positive std")
    metric = json.loads(meta["metric"])
    return {
        "config": NetworkConfig.from_dict(json.loads(meta["network"])),
        "letters": check_letters(meta["alphabet"], source),
        "input_length": length,
        "output_names": tuple(names),
        "kind": kind,
        "value_mean": mean,
        "value_std": std,
        "metric": float(metric["value"]),
    }


def _check_header(meta: dict[str, str] | None, source: str) -> dict[str, Any]:
    if meta and meta.get("format") == "seqflow":
        raise CheckpointError(f"{source}: a seqflow generator checkpoint, not an oracle")
    meta = check_format(meta, source, fmt=FORMAT, newest=FORMAT_VERSION, kind="seqflow oracle")
    try:
        return _parse(meta, source)
    except SeqflowError as err:
        raise CheckpointError(str(err)) from None
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source}: damaged oracle metadata ({err})") from None


def load_oracle(path: str | Path) -> BuiltinOracle:
    """Rebuild a built-in oracle from its file alone (on the CPU, in eval mode).

    Raises:
        CheckpointError: no such file, not a safetensors file, not an oracle (e.g. a generator
            checkpoint), a newer format, damaged metadata, or weights that do not fit it.
    """
    source = str(path)
    raw, metadata = read_tensors(path, "oracle", newest=FORMAT_VERSION)
    fields = _check_header(metadata, source)
    state = {k.removeprefix(_PREFIX): v for k, v in raw.items()}
    network = OracleCNN(len(fields["letters"]), len(fields["output_names"]), fields["config"])
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{source}: weights do not match the network in its metadata ({last_line(err)})"
        ) from None
    return BuiltinOracle(network=network.eval(), source=source, **fields)
