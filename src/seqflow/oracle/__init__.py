"""Oracles: fixed models that score sequences, for metrics (Frechet distance) and guidance.

- :class:`BuiltinOracle`: a small CNN classifier or regressor trained with :func:`fit_oracle`,
  saved and loaded with :func:`save_oracle` / :func:`load_oracle` (safetensors + metadata).
- :class:`ExternalOracle`: a user's TorchScript model with an explicit input contract.

Both follow the :class:`Oracle` protocol (``predict`` and ``embed`` of plain strings).
"""

from seqflow.oracle.base import KINDS, Oracle
from seqflow.oracle.builtin import BuiltinOracle
from seqflow.oracle.external import ExternalOracle
from seqflow.oracle.fit import OracleFitReport, OracleProgress, TokenTable, fit_oracle
from seqflow.oracle.network import NetworkConfig, OracleCNN
from seqflow.oracle.storage import load_oracle, save_oracle

__all__ = [
    "KINDS",
    "BuiltinOracle",
    "ExternalOracle",
    "NetworkConfig",
    "Oracle",
    "OracleCNN",
    "OracleFitReport",
    "OracleProgress",
    "TokenTable",
    "fit_oracle",
    "load_oracle",
    "save_oracle",
]
