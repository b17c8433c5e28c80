# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training and per-example evaluation
#
# > One loop for every bench: Adam or SGD with momentum, weight decay, LR drops and warmup, masks enforced after each step, a checkpoint at the rewind epoch; per-example losses evaluated in large batches.

# %%
#| default_exp train

# %% [markdown]
# Table 1 fixes the recipes: LeNet trains 60 epochs with Adam (lr 1.2e-3, batch 128); the CIFAR networks 160
# epochs of SGD with momentum 0.9, lr 0.1 dropped 10× at epochs 80 and 120, weight decay 1e-4; ResNet-50 90 epochs,
# batch 768, lr 0.3 dropped at 30, 60, 80 (with OpenLTH's 5-epoch warmup).
#
# Pruning needs three more things of the loop:
#
# 1. **Masks**: a pruned weight stays zero. After every optimizer step the masked tensors are multiplied by their
#    masks (momentum and weight decay would otherwise revive them). Unmasked tensors are untouched.
# 2. **Replaying the schedule from an epoch** (§2, step 3): LR rewinding trains from epoch `t` to the end with the
#    learning rate the original schedule had at those epochs. `train(..., start_epoch=t)` does exactly that.
# 3. **A checkpoint at the rewind epoch** `t`, for weight rewinding (App. J.1): the state after `t` epochs of the
#    dense run (`t = 0`: the initialisation).
#
# Each call builds a fresh optimizer, as OpenLTH does for every training run, so a pruning level does not inherit
# Adam's moments or SGD's momentum from the level before.
#
# The analyses need the **per-example training loss and correctness on the labels used for training** (noisy ones
# included), evaluated with the model in eval mode on unaugmented examples, in large batches under
# `torch.inference_mode`.

# %%
#| export
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from pruning_repro.config import TrainSpec
from pruning_repro.forward import Compiled, forward_fn, local_twin, numerics, precision_flags
from pruning_repro.runtime import Runtime

# %%
#| hide
from fastcore.test import test_eq, test_close, test_fail


# %% [markdown]
# ## The learning-rate schedule
#
# Per step: linear warmup over `warmup_epochs`, then the base rate multiplied by `gamma` once for every milestone
# epoch already reached.

# %%
#| export
def lr_at(spec: TrainSpec, step: int, steps_per_epoch: int) -> float:
    "Learning rate at global step `step` (0-based) of a run with `steps_per_epoch` steps per epoch."
    epoch = step / steps_per_epoch
    lr = spec.lr * spec.gamma ** sum(epoch >= m for m in spec.milestones)
    warm = spec.warmup_epochs * steps_per_epoch
    if warm and step < warm: lr *= (step + 1) / warm
    return lr


# %%
sp = TrainSpec(epochs=160, batch_size=128, lr=0.1, milestones=(80, 120))
test_close(lr_at(sp, 0, 10), 0.1); test_close(lr_at(sp, 799, 10), 0.1)
test_close(lr_at(sp, 800, 10), 0.01); test_close(lr_at(sp, 1200, 10), 0.001)
test_close(lr_at(TrainSpec(epochs=90, batch_size=768, lr=0.3, warmup_epochs=5), 4, 10), 0.3 * 5 / 50)

# %% [markdown]
# The schedules of Table 1 over one level of training, and what LR rewinding replays: a pruned level restarts at the
# rewind epoch (10 for the CIFAR benches), so every level runs the epochs from 10 to the end of the same schedule.

# %%
import matplotlib.pyplot as plt
from pruning_repro.config import get_bench
fig, ax = plt.subplots(figsize=(7, 2.8))
for name in ("resnet20_c10", "resnet50_imagenet", "lenet_mnist"):
    t = get_bench(name).train
    steps = range(0, t.epochs * 100)
    ax.plot([s / 100 for s in steps], [lr_at(t, s, 100) for s in steps], label=f"{name} ({t.optimizer})")
ax.axvline(10, color="k", ls=":", lw=0.8, label="rewind epoch (CIFAR, ImageNet)")
ax.set_yscale("log"); ax.set_xlabel("epoch"); ax.set_ylabel("learning rate"); ax.legend(fontsize=7)
fig.tight_layout()


# %% [markdown]
# **Optimizer implementation.** torch offers three implementations of the same update: a Python loop over
# parameters (its CPU default), `foreach` (one batched kernel per operation over all parameters) and `fused` (one
# kernel for the whole update). They compute the same algorithm; results agree to float rounding (a test in
# `tests/test_speed.py` bounds the difference). `bench/` measured the three on this machine's CPU (LeNet-300-100,
# 60k examples, see `bench/results/`) and `fused` is the default; `$PRUNING_REPRO_OPTIMIZER_IMPL` picks another.

# %%
#| export
class Diverged(RuntimeError):
    "Training produced a non-finite loss: the run stops (nothing of the level is stored) with where it happened."

_IMPL_FLAGS = {"fused": dict(fused=True), "foreach": dict(foreach=True), "for-loop": dict(foreach=False)}

def make_optimizer(model: nn.Module, spec: TrainSpec, impl: str = "fused") -> torch.optim.Optimizer:
    "A fresh optimizer of `spec` over all parameters (weight decay on all of them, as OpenLTH), implemented by `impl`."
    flags = _IMPL_FLAGS[Runtime(optimizer_impl=impl).optimizer_impl]
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, betas=tuple(spec.betas), eps=spec.eps,
                                weight_decay=spec.weight_decay, **flags)
    return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                           **flags)


# %% [markdown]
# ## Masks
#
# A mask is a dict from parameter name to a 0/1 tensor of the parameter's shape. `apply_masks` zeroes the pruned
# entries in place; it runs once when a level starts and after every step. Inside the loop the (parameter, mask)
# pairs are gathered once and multiplied in one `torch._foreach_mul_` call per step: one pass over the masked
# weights, no per-tensor Python work.

# %%
#| export
def _mask_lists(model: nn.Module, masks: dict[str, torch.Tensor] | None) -> tuple[list, list]:
    if not masks: return [], []
    params = dict(model.named_parameters())
    return [params[n] for n in masks], [m.to(params[n].device, params[n].dtype) for n, m in masks.items()]

def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor] | None) -> None:
    "Multiply each masked parameter by its mask, in place."
    ps, ms = _mask_lists(model, masks)
    if ps:
        with torch.no_grad(): torch._foreach_mul_(ps, ms)

def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    "A detached CPU copy of the model's state (parameters and buffers)."
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# %% [markdown]
# ## Per-example evaluation
#
# One pass in eval mode over a split, in batches of `batch_size`, returning the cross-entropy loss and correctness of
# every example against the split's labels. Outputs are CPU tensors aligned with the split's rows.
#
#
# The batch size is chosen by device: 2048 on a GPU and for MLPs; 128 for convolutional networks on a CPU, where the
# activations of a large batch overflow the caches (`bench/`: ResNet-20 evaluation on the 2-core CPU runs at 2,140
# examples/s in batches of 128 and 554 in batches of 2048; LeNet at 357k/s in batches of 2048). On a GPU, 2048
# CIFAR images are small, but 2048 ImageNet images of 224² are not (ResNet-50 keeps tens of GB of activations for
# them): given the input shape, the batch is sized by memory instead — one forward pass of 1 example on the model's
# device, its layers' inputs and outputs counted (`placement.forward_memory`), gives the widest layer's input +
# output per example; twice that (a residual branch's input is alive too, and the allocator rounds up) is what one
# example holds at the peak of an inference pass, and the batch is the largest power of two whose activations take
# at most a quarter of the device's memory, capped at 2048. ResNet-50 at 224² holds 12.8 MB per example this way
# (the 112² stem's batch norm: 2 × 2 × 64 × 112² floats): batch 1024 on an 80 GiB GPU; CIFAR models get 2048.
#
# In a data-parallel run (`23_distributed`) each rank evaluates a contiguous part of every split and the
# per-example results are gathered in order, so every rank ends with the whole arrays.

# %%
#| export
_PROBED: dict = {}

def eval_batch_size(model: nn.Module, input_shape: tuple | None = None, memory: int | None = None) -> int:
    """Per-example evaluation batch for `model` on its device, for inputs of `input_shape` when given (see above).
    `memory`: the device's bytes (default: asked of CUDA for a model on a GPU); given, the GPU rule applies wherever
    the model is (a test's fake device)."""
    from pruning_repro.placement import forward_memory
    dev = next(iter(model.parameters()), torch.empty(0)).device      # a parameter-free model counts as CPU
    conv = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in model.modules())
    if memory is None:
        if dev.type == "cpu": return 128 if conv else 2048
        if dev.type != "cuda" or input_shape is None or not conv: return 2048
        memory = torch.cuda.get_device_properties(dev).total_memory
    if input_shape is None or not conv: return 2048
    key = (type(model).__name__, sum(p.numel() for p in model.parameters()), tuple(input_shape), str(dev), memory)
    if key not in _PROBED:
        was = model.training
        with torch.inference_mode(): layer = forward_memory(model.eval(), torch.zeros(1, *input_shape, device=dev))["layer"]
        model.train(was)
        per_example = max(1, 2 * layer)             # twice the widest layer's input + output of one example (see above)
        _PROBED[key] = int(min(2048, max(1, 2 ** int(math.log2(max(1, memory // 4 // per_example))))))
    return _PROBED[key]

def evaluate(model: nn.Module, split, batch_size: int | None = None, world=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example (loss, correct) of `model` on `split`, no augmentation, eval mode; with a data-parallel `world`,
    each rank evaluates its part and every rank gets the whole arrays."""
    from pruning_repro.tensors import shard_bounds
    batch_size = batch_size or eval_batch_size(model)
    order = torch.arange(len(split))
    if world is not None and world.distributed: order = order[slice(*shard_bounds(len(order), *world.shard))]
    was_training = model.training
    model.eval()
    losses, correct = [torch.zeros(0)], [torch.zeros(0, dtype=torch.bool)]
    with torch.inference_mode():
        for xb, yb, _ in split.iterate({"order": order}, batch_size, augment=False):
            out = model(xb).float()
            losses.append(F.cross_entropy(out, yb, reduction="none").cpu())
            correct.append((out.argmax(1) == yb).cpu())
    model.train(was_training)
    loss, corr = torch.cat(losses), torch.cat(correct)
    if world is not None and world.distributed: loss, corr = world.gather(loss), world.gather(corr)
    return loss, corr

def eval_metrics(model: nn.Module, data, batch_size: int | None = None, world=None) -> tuple[dict, dict]:
    """Summary metrics (errors, mean losses, partition losses) and per-example train arrays of `model` on `data`.
    Train metrics use the labels used for training; `noisy`/`original` split them by the noise mask (NaN for an
    empty part: no noisy label, or a training subset holding noisy labels only)."""
    batch_size = batch_size or eval_batch_size(model, data.info.input_shape)
    tl, tc = evaluate(model, data.train, batch_size, world)
    vl, vc = evaluate(model, data.val, batch_size, world)
    sl, sc = evaluate(model, data.test, batch_size, world)
    nz = data.noisy
    part = lambda x, sel: x[sel].mean().item() if sel.any() else float("nan")     # an empty partition: undefined
    m = {"train_loss": tl.mean().item(), "train_err": 1 - tc.float().mean().item(),
         "val_loss": vl.mean().item(), "val_err": 1 - vc.float().mean().item(),
         "test_loss": sl.mean().item(), "test_err": 1 - sc.float().mean().item(),
         "noisy_loss": part(tl, nz), "original_loss": part(tl, ~nz),
         "noisy_err": 1 - part(tc.float(), nz), "original_err": 1 - part(tc.float(), ~nz)}
    return m, {"train_loss": tl, "train_correct": tc}


# %% [markdown]
# ## The loop
#
# `train` runs epochs `start_epoch .. spec.epochs-1`. The data order of each epoch comes from `generator`, so a run
# is reproducible on CPU bit for bit. With `steps_per_epoch` set, an epoch is that many steps drawn from successive
# shuffled passes — how a model trained on a subset keeps the step count and schedule of the full run (App. E).
#
# Two options for GPUs, both `35_forward`'s: the **precision** a level runs in (`TrainSpec.precision`: true
# float32, TF32 or bfloat16 autocast, set by `precision_flags` while it trains and is evaluated) and whether its
# forward is **compiled** (`Runtime.compile`; compiled code is used only when its gradients on the first batch are
# the eager model's). Each level's metrics record both (`numerics`).
#
# `train` returns the state at `checkpoint_epoch` when asked (the weights after that many epochs, before the epoch
# runs), which is how IMP gets its rewind point.
#
# Two more things a long study needs, both off by default here and used by `06_imp`:
#
# * **a data-parallel world** (`world`, `23_distributed`): each rank takes its part of every global batch
#   (`EpochStream(shard=...)`), its loss is its part's summed cross-entropy × world ÷ global batch, and
#   `DistributedDataParallel` averages the gradients — the step of the mean loss over the global batch. With a world
#   of one, the code path is the single-process one, bit for bit;
# * **snapshots inside a level** (`snapshots`, `resume`): after every step, `snapshots.due()` may ask for the state
#   that resuming needs — weights, optimizer, the generator's state and the stream's position (`EpochStream.state`:
#   the pass's plan, batches taken), the rewind point once taken. Given back as `resume`, training continues the same
#   stream of batches and augmentations from the next step, so a resumed run is bit-identical on a CPU.

# %%
#| export
class EpochStream:
    """The batches of one epoch: a shuffled pass over `split`, or exactly `steps` batches from successive passes
    (`TrainSpec.steps_per_epoch`). Yields `(x, y, n)` — this rank's part of a batch (`shard`) and the size `n` of the
    global batch. `state()` is where it stands after the batches taken (the current pass's plan, batches taken from
    it and in the epoch): given back as `state`, with the generator's state of that moment, it continues the stream."""
    def __init__(self, split, batch_size: int, steps: int, generator, shard=None, state: dict | None = None):
        self.split, self.bs, self.steps, self.generator, self.shard = split, batch_size, steps, generator, shard
        state = state or {}
        self.plan, self.pos, self.taken = state.get("plan"), state.get("pos", 0), state.get("taken", 0)

    def state(self) -> dict: return {"plan": self.plan, "pos": self.pos, "taken": self.taken}

    def __iter__(self):
        while self.taken < self.steps:
            if self.plan is None: self.plan, self.pos = self.split.plan(True, self.generator), 0
            n_all = len(self.plan["order"])
            for xb, yb, _ in self.split.iterate(self.plan, self.bs, self.generator, start=self.pos, shard=self.shard):
                n = min(self.bs, n_all - self.pos * self.bs)
                self.pos += 1; self.taken += 1
                yield xb, yb, n
                if self.taken == self.steps: return
            self.plan = None

def _under_precision_flags(f):
    "`f(model, data, spec, ...)` run under `precision_flags(spec.precision, <the model's device>)`."
    import functools
    @functools.wraps(f)
    def inner(model, data, spec, *args, **kw):
        with precision_flags(spec.precision, next(iter(model.parameters()), torch.empty(0)).device):
            return f(model, data, spec, *args, **kw)
    return inner

@dataclass
class Segment:
    """The stretch of a run's training one `train` call runs: epochs [`start_epoch`, spec.epochs) in the data order
    of `generator`, `masks` held at zero after every step, the weights at the start of `checkpoint_epoch` kept (the
    rewind point), continued from `resume` (an in-level snapshot's state, the model's weights already loaded by the
    caller) when given. `name` labels its progress bar and its errors ('level 3')."""
    generator: torch.Generator
    start_epoch: int = 0
    masks: dict | None = None
    checkpoint_epoch: int | None = None
    resume: dict | None = None
    name: str = "train"

@_under_precision_flags
def train(model: nn.Module, data, spec: TrainSpec, segment: Segment, runtime: Runtime | None = None, world=None,
          snapshots=None) -> dict:
    """Train `model` on `data.train` for the `segment` of `spec` as `runtime` says (None: `Runtime()`'s defaults; its
    `progress`: a bar over the epochs). Returns timings, the rewind checkpoint and `numerics`.

    `world`: the data-parallel world (`23_distributed`; None: this process alone). `snapshots`: an object whose
    `due()` is asked after every step and whose `save(state)` then receives what resuming needs (`snapshots.Snapshots`),
    given back as `Segment.resume`."""
    rt = runtime or Runtime()
    generator, start_epoch, masks, desc = segment.generator, segment.start_epoch, segment.masks, segment.name
    checkpoint_epoch, resume = segment.checkpoint_epoch, segment.resume
    dp = world is not None and world.distributed
    opt = make_optimizer(model, spec, rt.optimizer_impl)
    steps_per_epoch = spec.steps_per_epoch or -(-len(data.train) // spec.batch_size)
    mask_p, mask_m = _mask_lists(model, masks)          # gathered once; one product per step below
    def mask_step():
        if mask_p:
            with torch.no_grad(): torch._foreach_mul_(mask_p, mask_m)
    mask_step()
    model.train()
    device = next(model.parameters()).device
    net = world.wrap(model) if dp else model             # DistributedDataParallel averages the ranks' gradients
    forward = forward_fn(net, rt.compile, getattr(model, "compile_by_default", False), model)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if spec.precision == "bf16" \
        else contextlib.nullcontext
    ckpt, stream_state, seconds0 = None, None, 0.0
    level_start = step = start_epoch * steps_per_epoch
    epochs = spec.epochs - start_epoch
    if resume is not None:                              # the optimizer, the generator and where the stream stood
        opt.load_state_dict(resume["optimizer"]); generator.set_state(resume["generator"])
        start_epoch, step, stream_state = resume["epoch"], resume["step"], resume["stream"]
        ckpt, seconds0 = resume.get("rewind"), resume.get("seconds", 0.0)
    t0 = time.perf_counter()
    bar = tqdm(range(start_epoch, spec.epochs), desc=desc, leave=False, disable=not rt.progress)
    for epoch in bar:
        if checkpoint_epoch is not None and epoch == checkpoint_epoch and stream_state is None:
            ckpt = state_copy(model)
        total, n, epoch_first = torch.zeros((), device=device), 0, step + 1
        stream = EpochStream(data.train, spec.batch_size, steps_per_epoch, generator, world.shard if dp else None,
                             stream_state)
        stream_state = None
        for xb, yb, n_global in stream:
            if isinstance(forward, Compiled) and not forward.verified:   # a rank checks its local twin, then all agree
                forward.verify(xb, yb, module=local_twin(model) if dp else None, world=world if dp else None)
            for g in opt.param_groups: g["lr"] = lr_at(spec, step, steps_per_epoch)
            with autocast():
                out = forward(xb)
                # alone: the batch's mean loss; a rank: its part's summed loss x world / global batch, which the
                # gradient averaging over the ranks turns into the gradient of the global batch's mean loss
                loss = F.cross_entropy(out, yb) if not dp else \
                    F.cross_entropy(out, yb, reduction="sum") * (world.size / n_global)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            mask_step()
            total += loss.detach() * (len(yb) if not dp else n_global / world.size); n += len(yb); step += 1
            if snapshots is not None and snapshots.due():
                snapshots.save({"model": state_copy(model), "optimizer": opt.state_dict(),
                                "generator": generator.get_state(), "epoch": epoch, "step": step,
                                "stream": stream.state(), "rewind": ckpt,
                                "seconds": seconds0 + time.perf_counter() - t0})
        if dp: total, n = world.sum(total), int(world.sum(torch.tensor(n)))
        mean = (total / max(n, 1)).item()               # one sync per epoch (the progress bar shows it anyway)
        if not math.isfinite(mean):
            raise Diverged(f"{desc}: the training loss became {mean} in epoch {epoch + 1} (steps "
                           f"{epoch_first}-{step}); lower the learning rate or check the data")
        bar.set_postfix(loss=f"{mean:.3f}")
    if checkpoint_epoch is not None and checkpoint_epoch == spec.epochs: ckpt = state_copy(model)
    return {"seconds": seconds0 + time.perf_counter() - t0, "epochs": epochs, "steps": step - level_start,
            "checkpoint": ckpt, "numerics": numerics(device, spec.precision, forward)}


# %% [markdown]
# A small check on synthetic data: a LeNet learns a linearly separable problem, masked weights stay exactly zero
# through Adam updates, the checkpoint at epoch 0 is the initialisation, and two runs with the same generator seed
# give identical weights.

# %%
from pruning_repro.data import Data, DataInfo
from pruning_repro.tensors import TensorSplit
from pruning_repro.models import LeNet

def toy(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, generator=g); y = (x[:, 0, 0] > 0).long()
    s = TensorSplit(x, y, torch.arange(n))
    return Data(s, s, s, y, torch.zeros(n, dtype=torch.bool), DataInfo(2, (1, 8), (0.,), (1.,)))

def run(seed=0):
    torch.manual_seed(0)
    m = LeNet(8, 2, width=0.1)
    mask = {"fc_layers.0.weight": (torch.rand_like(m.fc_layers[0].weight) > 0.5).float()}
    init = state_copy(m)
    r = train(m, toy(), TrainSpec(epochs=5, batch_size=64, optimizer="adam", lr=1e-2),
              Segment(torch.Generator().manual_seed(seed), masks=mask, checkpoint_epoch=0))
    return m, mask, init, r

m, mask, init, r = run()
test_eq(bool((m.fc_layers[0].weight[mask["fc_layers.0.weight"] == 0] == 0).all()), True)
test_eq(r["checkpoint"]["fc.weight"], init["fc.weight"])
metrics, per_ex = eval_metrics(m, toy())
assert metrics["train_err"] < 0.1, metrics
test_eq(per_ex["train_loss"].shape, (512,))
assert torch.equal(run()[0].fc.weight, m.fc.weight)
# a fixed step budget per epoch: 3 epochs x 7 steps on 512 examples of batch 64 (8 per pass)
net, calls = LeNet(8, 2, width=0.1), []
net.register_forward_pre_hook(lambda mod, inp: calls.append(1))
train(net, toy(), TrainSpec(epochs=3, batch_size=64, optimizer="adam", lr=1e-2, steps_per_epoch=7),
      Segment(torch.Generator().manual_seed(0)))
test_eq(len(calls), 21)
metrics

# %% [markdown]
# The numerics of a run are recorded with the level (here eager, true float32, on the CPU).

# %%
test_eq({k: r["numerics"][k] for k in ("precision", "compiled", "tf32_matmul", "cuda")},
        {"precision": "fp32", "compiled": False, "tf32_matmul": False, "cuda": None})

# %% [markdown]
# **Resuming inside a run.** A snapshot taken after any step — here the 11th of 24, in the middle of the second
# epoch, with a fixed step budget so that passes straddle epochs — holds the weights, the optimizer's state, the
# generator's state and where the stream stood. A fresh model given it ends bit-identical to the uninterrupted run.

# %%
import copy
class AtStep:
    "Snapshots for the check: one, after step `k`."
    def __init__(self, k): self.k, self.seen, self.saved = k, 0, None
    def due(self): self.seen += 1; return self.seen == self.k
    def save(self, state): self.saved = copy.deepcopy(state)

spec = TrainSpec(epochs=3, batch_size=64, optimizer="adam", lr=1e-2, steps_per_epoch=8, milestones=(2,))
torch.manual_seed(0); whole = LeNet(8, 2, width=0.1); first = state_copy(whole)
snap = AtStep(11)
r1 = train(whole, toy(500), spec, Segment(torch.Generator().manual_seed(5), checkpoint_epoch=1), snapshots=snap)
test_eq((snap.saved["epoch"], snap.saved["step"], snap.saved["stream"]["taken"]), (1, 11, 3))
again = LeNet(8, 2, width=0.1); again.load_state_dict(snap.saved["model"])
r2 = train(again, toy(500), spec, Segment(torch.Generator(), checkpoint_epoch=1, resume=snap.saved))
assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), again.state_dict().values()))
assert all(torch.equal(r1["checkpoint"][k], r2["checkpoint"][k]) for k in r1["checkpoint"])
test_eq((r2["epochs"], r2["steps"]), (r1["epochs"], r1["steps"]))
