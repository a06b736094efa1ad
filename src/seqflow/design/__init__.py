"""Designing candidates for the lab: templates, synthesis rules, rejection sampling and the
order sheet."""

from seqflow.design.constraints import (
    WILDCARDS,
    Rules,
    Template,
    gc_fraction,
    longest_run,
    nucleic,
    reverse_complement,
)
from seqflow.design.order_sheet import COLUMNS, annotate
from seqflow.design.rejection import Tally, draw_designs, round_seed

__all__ = [
    "COLUMNS",
    "WILDCARDS",
    "Rules",
    "Tally",
    "Template",
    "annotate",
    "draw_designs",
    "gc_fraction",
    "longest_run",
    "nucleic",
    "reverse_complement",
    "round_seed",
]
