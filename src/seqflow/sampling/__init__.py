"""Sampling: the guided field, ODE solvers on a flow's geometry, and decoding, as
TorchScript-compatible pieces (``seqflow export`` scripts them)."""

from seqflow.sampling.conditions import label_index, standardise_value
from seqflow.sampling.field import Guide, GuidedField
from seqflow.sampling.sampler import decode, generate
from seqflow.sampling.solvers import FIXED_STEP_SOLVERS, SOLVERS, FixedStepSolver, integrate

__all__ = [
    "FIXED_STEP_SOLVERS",
    "SOLVERS",
    "FixedStepSolver",
    "Guide",
    "GuidedField",
    "decode",
    "generate",
    "integrate",
    "label_index",
    "standardise_value",
]
