"""Exponential moving average of model weights (the weights that are sampled from)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """Shadow copy ``theta_ema <- theta_ema + (1 - d_n) (theta - theta_ema)``.

    The decay warms up as ``d_n = min(decay, (1 + n) / (10 + n))`` so early averages are not
    dominated by the random initialisation; ``decay`` in [0, 1) is the final one. Updates are
    one ``_foreach_lerp_``, no host sync.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()
        }
        self._params = [(k, p) for k, p in model.named_parameters() if p.requires_grad]

    @torch.no_grad()
    def update(self, weight: Tensor) -> None:
        """Move the average one step towards the current weights; ``weight``, a scalar on the
        device, multiplies the step (0: a skipped training step leaves the average as it is)."""
        n = self.num_updates
        d = min(self.decay, (1 + n) / (10 + n))
        self.num_updates += 1
        shadows = [self.shadow[k] for k, _ in self._params]
        params = [p.detach() for _, p in self._params]
        step = weight.to(shadows[0].dtype) * (1.0 - d) if shadows else weight
        torch._foreach_lerp_(shadows, params, [step] * len(shadows))

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged weights, keyed like the model's ``state_dict``."""
        return self.shadow

    def load_state_dict(self, state: dict[str, Tensor], num_updates: int) -> None:
        """Restore averaged weights saved by :meth:`state_dict`."""
        for k, v in state.items():
            self.shadow[k].copy_(v)
        self.num_updates = num_updates

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model``."""
        model.load_state_dict(self.shadow)
