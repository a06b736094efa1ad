"""CUDA path: bf16 autocast training, prefetched coupling, sampling on the device.

Marked ``gpu`` and skipped without a CUDA device (CI has none; run with ``-m gpu`` where one is).
"""

from __future__ import annotations

import pytest
import torch

from seqflow.config import ModelConfig, TrainConfig
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import PositiveSphere
from seqflow.models import build_model
from seqflow.sampling import generate
from seqflow.training import SequenceTask, Trainer, TrainingSet

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_training_in_bf16_learns_and_matches_the_device():
    torch.manual_seed(0)
    tokens = torch.randint(0, 4, (512, 32), dtype=torch.uint8)
    tokens[:, 10:16] = torch.tensor([0, 1, 2, 3, 0, 1], dtype=torch.uint8)  # a fixed motif
    model = build_model(ModelConfig(arch="cnn", hidden=32, depth=2), vocab=4, length=32,
                        num_labels=0)  # fmt: skip
    cfg = TrainConfig(steps=300, batch_size=128, log_every=50, eval_every=10**6,
                      device="cuda", precision="bf16")  # fmt: skip
    device = torch.device("cuda")
    task = SequenceTask(FlowMatching(make_coupling("exact"), 4), cfg, TrainingSet(tokens),
                        device=device)  # fmt: skip
    trainer = Trainer(model, task, cfg, cond_dropout=0.0, device=device)
    assert task.stream._pool is not None  # the coupling is prefetched on CUDA
    losses = []
    last = trainer.run(on_progress=lambda p: losses.append(p.loss))
    assert last.loss is not None and last.loss < losses[0]
    trainer.ema.copy_to(trainer.model)
    out = torch.cat(list(generate(trainer.model, geometry=PositiveSphere(),
                                  n=256, length=32, vocab=4, steps=50,
                                  device=device)))  # fmt: skip
    motif = (out[:, 10:16] == torch.tensor([0, 1, 2, 3, 0, 1])).all(dim=1).float().mean()
    assert motif > 0.5  # random letters would give 4**-6
