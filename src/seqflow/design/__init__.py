"""Designing candidates for the lab: templates, synthesis rules and order-ready records."""

from seqflow.design.constraints import (
    WILDCARDS,
    Rules,
    Template,
    gc_fraction,
    longest_run,
    nucleic,
    reverse_complement,
)

__all__ = [
    "WILDCARDS",
    "Rules",
    "Template",
    "gc_fraction",
    "longest_run",
    "nucleic",
    "reverse_complement",
]
