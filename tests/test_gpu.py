"""CUDA path: bf16 autocast training, prefetched coupling, sampling on the device, the API's
fit/sample/resume, bf16 against fp32, ``torch.compile``, the TorchScript export and NCCL.

Marked ``gpu`` and skipped without a CUDA device (CI has none; run with ``-m gpu`` where one is,
or ``bash benchmarks/gpu_check.sh``, which runs them first). Each takes seconds.
"""

from __future__ import annotations

import json
import math
import socket

import pytest
import torch
import torch.distributed as dist

from seqflow import api
from seqflow.checkpoint import load_model, load_state, save_state
from seqflow.config import ModelConfig, TrainConfig
from seqflow.data import read_sequences
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


CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_fp32(monkeypatch):
    """fp32 convolutions in full precision with fixed algorithms, so that two paths through
    the same kernels (eager and compiled, scripted, DDP, resumed) agree to float rounding."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


def tiny_net(length: int = 24, arch: str = "cnn") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(arch=arch, hidden=32, depth=2, heads=2, time_dim=16),
                       vocab=4, length=length, num_labels=0).to(CUDA)  # fmt: skip


def target_batch(length: int = 24, n: int = 32):  # type: ignore[no-untyped-def]
    """A flow-matching batch on the device: ``(x_t, t, u_t)``, each of batch ``n``."""
    flow = FlowMatching(make_coupling("independent"), 4)
    g = torch.Generator(device=CUDA).manual_seed(1)
    tokens = torch.randint(0, 4, (n, length), device=CUDA, generator=g)
    x_0 = PositiveSphere().sample_prior([n, length, 4], generator=g, device=CUDA)
    t = torch.rand(n, device=CUDA, generator=g)
    path = flow.path(x_0, tokens, t)
    return flow, path.x_t, path.t, path.u_t


def test_api_fit_sample_and_resume_on_cuda(tiny_fasta, tiny_fit_kwargs, tmp_path):
    """``api.fit`` trains on the GPU (bf16 autocast by default), ``api.sample`` draws on it
    (the same seed, the same sequences), and ``api.fit(resume=...)`` continues the run."""
    kwargs = {**tiny_fit_kwargs, "device": "cuda"}
    run = tmp_path / "run"
    result = api.fit(tiny_fasta, out=run, **kwargs)
    assert result.steps == 30 and result.loss is not None and math.isfinite(result.loss)
    drawn = api.sample(run, n=8, steps=5, seed=0, output=tmp_path / "s.fasta", device="cuda")
    assert len(drawn.sequences) == 8 and all(len(s) == 24 for s in drawn.sequences)
    again = api.sample(run, n=8, steps=5, seed=0, output=tmp_path / "t.fasta", device="cuda")
    assert again.sequences == drawn.sequences
    api.fit(resume=run, steps=40, device="cuda")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20, 30, 40]
    assert load_model(run)[1].step == 40


class _Interrupt(Exception):
    pass


def test_trainer_resumes_on_cuda_to_the_same_weights(tiny_csv, tmp_path):
    """20 fp32 steps in one go == 10 steps, state saved, a fresh trainer resumed to 20, on the
    GPU: the CUDA generator, the prefetched exact-OT stream, AdamW, schedule and EMA resume
    (equal up to the float rounding of unordered sums on the GPU)."""
    tokens = read_sequences(tiny_csv).tokens

    def make(init_seed: int = 0) -> Trainer:
        cfg = TrainConfig(steps=20, batch_size=16, lr=3e-3, warmup_steps=3, ema_decay=0.9,
                          log_every=5, eval_every=10**6, checkpoint_every=10, seed=3,
                          device="cuda", precision="fp32")  # fmt: skip
        torch.manual_seed(init_seed)
        model = build_model(ModelConfig(arch="cnn", hidden=16, depth=2, time_dim=16), vocab=4,
                            length=tokens.shape[1])  # fmt: skip
        task = SequenceTask(FlowMatching(make_coupling("exact"), 4), cfg, TrainingSet(tokens),
                            device=CUDA)  # fmt: skip
        return Trainer(model, task, cfg, cond_dropout=0.0, device=CUDA)

    reference = make()
    reference.run()
    path = tmp_path / "state.safetensors"

    def save_and_stop(tr: Trainer) -> None:
        save_state(path, tr.state_dict())
        raise _Interrupt

    with pytest.raises(_Interrupt):
        make().run(on_checkpoint=save_and_stop)
    resumed = make(init_seed=99)
    resumed.load_state_dict(load_state(path))
    assert resumed.step == 10
    resumed.run()
    assert resumed.step == 20
    for (name, p), q in zip(reference.model.state_dict().items(),
                            resumed.model.state_dict().values(), strict=True):  # fmt: skip
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4, msg=name)
    for task in (reference.task, resumed.task):
        task.close()


def test_bf16_loss_and_gradient_match_fp32():
    """The trainer's bf16 autocast changes the loss by rounding only, and the gradient keeps
    its direction (cosine > 0.99)."""
    model = tiny_net()
    flow, x_t, t, u_t = target_batch()

    def loss_and_grad(bf16: bool) -> tuple[float, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            v = model(x_t, t)
        loss = flow.loss(v.float(), u_t)
        loss.backward()
        return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])

    l32, g32 = loss_and_grad(False)
    l16, g16 = loss_and_grad(True)
    assert abs(l16 - l32) <= 0.02 * l32
    assert float(torch.nn.functional.cosine_similarity(g16, g32, dim=0)) > 0.99


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_compiled_forward_equals_eager(arch):
    model = tiny_net(arch=arch).eval()
    _, x_t, t, _ = target_batch()
    with torch.no_grad():
        eager = model(x_t, t)
        compiled = torch.compile(model)(x_t, t)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_runs_on_cuda_like_the_model(tiny_fasta, tiny_fit_kwargs, tmp_path):
    """The exported sampler, loaded onto the GPU, gives the eager model's velocities and
    draws the tokens ``generate`` draws on the GPU with the same seed."""
    run = tmp_path / "run"
    api.fit(tiny_fasta, out=run, **tiny_fit_kwargs)  # CPU, as export checks on the CPU
    out = api.export(run, format="torchscript", output=tmp_path / "m.pt")
    scripted = torch.jit.load(str(out.output), map_location="cuda")
    model, meta = load_model(run, device="cuda")
    _, x_t, t, _ = target_batch(length=meta.length)
    with torch.no_grad():
        torch.testing.assert_close(scripted.velocity(x_t, t), model.velocity(x_t, t),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    got = scripted.sample(64, 3, 10, None, None, None, "euler", "argmax", 64)
    want = torch.cat(list(generate(model, n=64, length=meta.length, vocab=meta.vocab,
                                   geometry=meta.geometry, steps=10, solver="euler",
                                   decoder="argmax", pad=meta.pad, batch_size=64, seed=3,
                                   device=CUDA)))  # fmt: skip
    assert got.device.type == "cuda" and got.shape == want.shape == (64, meta.length)
    # the TorchScript executor may fuse the same kernels differently: an argmax tie can flip
    assert float((got == want).float().mean()) > 0.99


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_over_nccl_with_one_process_equals_the_plain_model():
    """One NCCL process: DistributedDataParallel (as the trainer wraps the model under torchrun)
    gives the plain model's gradients, and an all-reduce sums over the one rank."""
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}",
                            rank=0, world_size=1)  # fmt: skip
    try:
        model = tiny_net()
        ddp = torch.nn.parallel.DistributedDataParallel(tiny_net(), device_ids=[0])
        flow, x_t, t, u_t = target_batch()
        for net in (model, ddp):
            flow.loss(net(x_t, t), u_t).backward()
        for p, q in zip(model.parameters(), ddp.module.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)
        x = torch.arange(4.0, device=CUDA)
        dist.all_reduce(x)
        assert torch.equal(x, torch.arange(4.0, device=CUDA))
    finally:
        dist.destroy_process_group()
