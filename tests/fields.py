"""Plain functions ``fn(x, t)`` as the field of seqflow's solvers, for tests of the solvers
themselves (the package's own field is a module taking a guide)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from seqflow.sampling import Guide
from seqflow.sampling import integrate as integrate_field


class FunctionField(nn.Module):
    """``fn(x, t)`` as a solver's field; the guide is ignored."""

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, t: Tensor, guide: Guide) -> Tensor:
        return self.fn(x, t)


def integrate(fn: Callable[[Tensor, Tensor], Tensor], x_0: Tensor, **kwargs: Any) -> Tensor:
    """:func:`seqflow.sampling.integrate` along the function ``fn``."""
    return integrate_field(FunctionField(fn), x_0, **kwargs)
