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
from seqflow.flow.fisher import FisherFlow, FlowBatch, flow_matching_loss
from seqflow.flow.library import OUTER_COUPLINGS, LibraryBatch, LibraryFlow, inner_coupling

__all__ = [
    "COUPLINGS",
    "OUTER_COUPLINGS",
    "Coupling",
    "ExactOTCoupling",
    "FisherFlow",
    "FlowBatch",
    "IndependentCoupling",
    "LibraryBatch",
    "LibraryFlow",
    "SinkhornCoupling",
    "flow_matching_loss",
    "grouped_permutation",
    "inner_coupling",
    "make_coupling",
]
