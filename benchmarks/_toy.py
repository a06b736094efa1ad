"""The Dirichlet-FM simplex-dimension toy (Stark et al. 2024; also Davis et al. 2024), shared by
``toy_kl.py`` and ``ot_overhead.py``.

Sequences of length 4 whose positions are independent categoricals over K letters with
probabilities ``softmax(U(0, 1))`` (one draw of logits per position). Everything engine-side
comes from the library: :class:`~seqflow.training.Trainer`, :class:`~seqflow.flow.FlowMatching`,
:func:`~seqflow.flow.make_coupling`, :func:`~seqflow.models.build_model`.
"""

from __future__ import annotations

import torch

from seqflow.config import ModelConfig, TrainConfig
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import make_geometry
from seqflow.models import build_model
from seqflow.training import SequenceTask, Trainer, TrainingSet

LENGTH = 4
BATCH = 512
# A small CNN: the toy's positions are independent, so a narrow receptive field suffices, and
# sampling 512k sequences must stay affordable on a 2-core CPU.
MODEL = ModelConfig(arch="cnn", hidden=64, depth=2, kernel_size=3, dilations=(1,), time_dim=32)


def target_probs(k: int, seed: int) -> torch.Tensor:
    """Per-position target ``softmax(U(0, 1))`` over ``k`` letters, shape ``(LENGTH, k)``."""
    g = torch.Generator().manual_seed(seed * 1000 + k)
    return torch.softmax(torch.rand(LENGTH, k, generator=g, dtype=torch.float64), dim=-1)


def draw(probs: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` sequences from the product of categoricals ``probs`` (L, K): tokens ``(n, L)``."""
    g = torch.Generator().manual_seed(seed)
    cols = [torch.multinomial(p.float(), n, replacement=True, generator=g) for p in probs]
    return torch.stack(cols, dim=1)


def make_trainer(
    k: int,
    coupling: str,
    *,
    steps: int,
    seed: int,
    n_train: int = 200_000,
    batch: int = BATCH,
    lr: float = 2e-3,
    model: ModelConfig = MODEL,
    prefetch: bool = False,
    geometry: str = "fisher",
    target: str = "velocity",
) -> Trainer:
    """A CPU :class:`Trainer` of the toy model on ``n_train`` sequences from the target."""
    torch.manual_seed(seed)
    m = make_geometry(geometry)
    tangent = "none" if target == "denoiser" else m.tangent
    net = build_model(model, vocab=k, length=LENGTH, num_labels=0, tangent=tangent)
    flow = FlowMatching(make_coupling(coupling), vocab=k, geometry=m, target=target)
    cfg = TrainConfig(
        steps=steps,
        batch_size=batch,
        lr=lr,
        warmup_steps=min(100, steps // 10),
        ema_decay=0.999,
        log_every=max(1, steps // 10),
        eval_every=10**9,
        checkpoint_every=10**9,
        seed=seed,
        device="cpu",
        precision="fp32",
    )
    tokens = draw(target_probs(k, seed), n_train, seed + 17)
    cpu = torch.device("cpu")
    # the task prefetches on CUDA only by default; one worker measures the overlap on CPU
    task = SequenceTask(flow, cfg, TrainingSet(tokens=tokens), device=cpu, workers=int(prefetch))
    return Trainer(net, task, cfg, cond_dropout=0.0, device=cpu)
