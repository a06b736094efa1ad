"""The Python API behind the CLI: ``fit``, ``sample``, ``evaluate``, ``export`` and oracles.

Each function takes keyword-only typed arguments and returns a frozen result dataclass, so one
signature serves the command line and notebooks. Progress leaves through callbacks; nothing
here prints.
"""

from seqflow.api._config import build_config, resolve_device
from seqflow.api.evaluate import EvaluateResult, OracleReport, evaluate
from seqflow.api.export import ExportResult, export
from seqflow.api.fit import FitPlan, FitResult, fit
from seqflow.api.library import (
    LibrarySampleResult,
    evaluate_library_sets,
    sample_libraries,
)
from seqflow.api.oracle import fit_oracle, load_oracle
from seqflow.api.plot import plot_run
from seqflow.api.sample import SampleResult, sample

__all__ = [
    "EvaluateResult",
    "ExportResult",
    "FitPlan",
    "FitResult",
    "LibrarySampleResult",
    "OracleReport",
    "SampleResult",
    "build_config",
    "evaluate",
    "evaluate_library_sets",
    "export",
    "fit",
    "fit_oracle",
    "load_oracle",
    "plot_run",
    "resolve_device",
    "sample",
    "sample_libraries",
]
