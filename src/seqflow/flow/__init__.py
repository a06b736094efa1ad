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

__all__ = [
    "COUPLINGS",
    "Coupling",
    "ExactOTCoupling",
    "FisherFlow",
    "FlowBatch",
    "IndependentCoupling",
    "SinkhornCoupling",
    "flow_matching_loss",
    "grouped_permutation",
    "make_coupling",
]
