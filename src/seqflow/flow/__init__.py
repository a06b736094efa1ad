"""Flow-matching objectives: couplings, paths and losses."""

from seqflow.flow.coupling import (
    COUPLINGS,
    Coupling,
    ExactOTCoupling,
    IndependentCoupling,
    SinkhornCoupling,
    grouped_permutation,
    make_coupling,
)
from seqflow.flow.library import OUTER_COUPLINGS, LibraryCoupling
from seqflow.flow.matching import FlowBatch, FlowMatching, flow_matching_loss

__all__ = [
    "COUPLINGS",
    "OUTER_COUPLINGS",
    "Coupling",
    "ExactOTCoupling",
    "FlowBatch",
    "FlowMatching",
    "IndependentCoupling",
    "LibraryCoupling",
    "SinkhornCoupling",
    "flow_matching_loss",
    "grouped_permutation",
    "make_coupling",
]
