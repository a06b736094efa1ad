"""The Python API behind the CLI: ``fit`` and ``sample``.

Each function takes keyword-only typed arguments and returns a frozen result dataclass, so one
signature serves the command line and notebooks. Progress leaves through callbacks; nothing
here prints.
"""

from seqflow.api._config import build_config, resolve_device
from seqflow.api.fit import CONFIG_FILE, METRICS_FILE, FitPlan, FitResult, fit
from seqflow.api.sample import SampleResult, sample

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "FitPlan",
    "FitResult",
    "SampleResult",
    "build_config",
    "fit",
    "resolve_device",
    "sample",
]
