# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training and per-example evaluation
#
# > One loop for every bench: Adam or SGD with momentum, weight decay, LR drops and warmup, masks enforced after each
# > step, a checkpoint at the rewind epoch; per-example losses evaluated in large batches.

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
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pruning_repro.config import TrainSpec

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
sp = TrainSpec(160, 128, lr=0.1, milestones=(80, 120))
test_close(lr_at(sp, 0, 10), 0.1); test_close(lr_at(sp, 799, 10), 0.1)
test_close(lr_at(sp, 800, 10), 0.01); test_close(lr_at(sp, 1200, 10), 0.001)
test_close(lr_at(TrainSpec(90, 768, lr=0.3, warmup_epochs=5), 4, 10), 0.3 * 5 / 50)

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

# %% [markdown]
# **Runtime settings** say *how* to train, never *what*: they are not part of a run's spec (its hash), and results
# agree across them to float rounding. They are resolved **once, at the edge** — a command, a notebook, a worker
# process — into a `Runtime` (from the environment: `$PRUNING_REPRO_COMPILE`, `$PRUNING_REPRO_OPTIMIZER_IMPL`,
# `$PRUNING_REPRO_PROGRESS`, or given), and passed down to every level and epoch; nothing below reads the environment.

# %%
#| export
OPTIMIZER_IMPLS = ("fused", "foreach", "for-loop")
COMPILE_MODES = ("auto", "1", "0")

class Diverged(RuntimeError):
    "Training produced a non-finite loss: the run stops (nothing of the level is stored) with where it happened."

@dataclass(frozen=True)
class Runtime:
    "How to train: `compile` ('auto': the model's default, '1', '0'), `optimizer_impl`, `progress` (inner bars)."
    compile: str = "auto"
    optimizer_impl: str = "fused"
    progress: bool = True

    def __post_init__(self):
        from pruning_repro.config import ConfigError
        if self.compile not in COMPILE_MODES:
            raise ConfigError(f"PRUNING_REPRO_COMPILE (Runtime.compile) must be auto, 1 or 0, got {self.compile!r}")
        if self.optimizer_impl not in OPTIMIZER_IMPLS:
            raise ConfigError(f"PRUNING_REPRO_OPTIMIZER_IMPL (Runtime.optimizer_impl) must be one of "
                              f"{', '.join(OPTIMIZER_IMPLS)}, got {self.optimizer_impl!r}")

    @classmethod
    def from_env(cls, environ=None) -> "Runtime":
        "The settings the environment asks for (read here, once, by the caller at the edge)."
        e = os.environ if environ is None else environ
        return cls(e.get("PRUNING_REPRO_COMPILE", "auto"), e.get("PRUNING_REPRO_OPTIMIZER_IMPL", "fused"),
                   e.get("PRUNING_REPRO_PROGRESS", "1") != "0")

_IMPL_FLAGS = {"fused": dict(fused=True), "foreach": dict(foreach=True), "for-loop": dict(foreach=False)}

def make_optimizer(model: nn.Module, spec: TrainSpec, impl: str = "fused") -> torch.optim.Optimizer:
    "A fresh optimizer of `spec` over all parameters (weight decay on all of them, as OpenLTH), implemented by `impl`."
    flags = _IMPL_FLAGS[Runtime(optimizer_impl=impl).optimizer_impl]
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, betas=tuple(spec.betas), eps=spec.eps,
                                weight_decay=spec.weight_decay, **flags)
    return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                           **flags)


# %%
test_eq(Runtime.from_env({}), Runtime("auto", "fused", True))
test_eq(Runtime.from_env({"PRUNING_REPRO_COMPILE": "0", "PRUNING_REPRO_PROGRESS": "0"}), Runtime("0", "fused", False))
test_fail(lambda: Runtime(optimizer_impl="turbo"), contains="PRUNING_REPRO_OPTIMIZER_IMPL")
test_fail(lambda: Runtime.from_env({"PRUNING_REPRO_COMPILE": "yes"}), contains="auto, 1 or 0")


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
# examples/s in batches of 128 and 554 in batches of 2048; LeNet at 357k/s in batches of 2048).

# %%
#| export
def eval_batch_size(model: nn.Module) -> int:
    "Per-example evaluation batch for `model` on its device (see above)."
    dev = next(iter(model.parameters()), torch.empty(0)).device      # a parameter-free model counts as CPU
    conv = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in model.modules())
    return 128 if dev.type == "cpu" and conv else 2048

def evaluate(model: nn.Module, split, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    "Per-example (loss, correct) of `model` on `split`, no augmentation, eval mode."
    batch_size = batch_size or eval_batch_size(model)
    was_training = model.training
    model.eval()
    losses, correct = [], []
    with torch.inference_mode():
        for xb, yb, _ in split.batches(batch_size, shuffle=False, augment=False):
            out = model(xb).float()
            losses.append(F.cross_entropy(out, yb, reduction="none").cpu())
            correct.append((out.argmax(1) == yb).cpu())
    model.train(was_training)
    return torch.cat(losses), torch.cat(correct)

def eval_metrics(model: nn.Module, data, batch_size: int | None = None) -> tuple[dict, dict]:
    """Summary metrics (errors, mean losses, partition losses) and per-example train arrays of `model` on `data`.
    Train metrics use the labels used for training; `noisy`/`original` split them by the noise mask."""
    tl, tc = evaluate(model, data.train, batch_size)
    vl, vc = evaluate(model, data.val, batch_size)
    sl, sc = evaluate(model, data.test, batch_size)
    nz = data.noisy
    m = {"train_loss": tl.mean().item(), "train_err": 1 - tc.float().mean().item(),
         "val_loss": vl.mean().item(), "val_err": 1 - vc.float().mean().item(),
         "test_loss": sl.mean().item(), "test_err": 1 - sc.float().mean().item(),
         "noisy_loss": tl[nz].mean().item() if nz.any() else float("nan"),
         "original_loss": tl[~nz].mean().item(),
         "noisy_err": 1 - tc[nz].float().mean().item() if nz.any() else float("nan"),
         "original_err": 1 - tc[~nz].float().mean().item()}
    return m, {"train_loss": tl, "train_correct": tc}


# %% [markdown]
# ## The loop
#
# `train` runs epochs `start_epoch .. spec.epochs-1`. The data order of each epoch comes from `generator`, so a run
# is reproducible on CPU bit for bit. With `steps_per_epoch` set, an epoch is that many steps drawn from successive
# shuffled passes — how a model trained on a subset keeps the step count and schedule of the full run (App. E).
#
# Two options for GPUs: `TrainSpec.precision = "bf16"` runs the forward pass and loss under bfloat16 autocast
# (weights, gradients and optimizer state stay float32; no loss scaling is needed for bfloat16). It changes the
# numbers, so it is part of the spec and of the run's hash. `torch.compile` computes the same function (to
# float rounding), so it is a runtime choice, not a spec field: `$PRUNING_REPRO_COMPILE` = `auto` (default: the
# models whose `compile_by_default` is set, the CIFAR ResNets, measured faster in `bench/`), `1` (always) or `0`
# (never). If compilation fails (no C++ compiler, say), training goes on eagerly with a warning. It returns the state at `checkpoint_epoch` when asked (the weights after that
# many epochs, before the epoch runs), which is how IMP gets its rewind point.

# %%
#| export
class _Compiled:
    "`torch.compile(model)`, falling back to the eager model (with one warning) if compilation fails on first use."
    def __init__(self, model: nn.Module):
        self.model, self.fn, self.ok = model, torch.compile(model), None
    def __call__(self, x):
        if self.ok is False: return self.model(x)
        try:
            out = self.fn(x); self.ok = True
            return out
        except Exception as e:
            if self.ok: raise
            import warnings
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training this model eagerly")
            self.ok = False
            return self.model(x)

def _forward_fn(model: nn.Module, mode: str = "auto"):
    "The training forward: compiled or eager by `mode` (`Runtime.compile`: auto | 1 | 0) and the model's default."
    use = mode == "1" or (mode == "auto" and getattr(model, "compile_by_default", False))
    return _Compiled(model) if use else model

def _progress_enabled(progress) -> bool:
    if progress is not None: return bool(progress)
    return os.environ.get("PRUNING_REPRO_PROGRESS", "1") != "0"

def _epoch_batches(split, spec: TrainSpec, steps: int, generator):
    "One epoch: a shuffled pass, or exactly `spec.steps_per_epoch` batches drawn from successive shuffled passes."
    if spec.steps_per_epoch is None:
        yield from split.batches(spec.batch_size, shuffle=True, generator=generator); return
    n = 0
    while True:
        for b in split.batches(spec.batch_size, shuffle=True, generator=generator):
            yield b; n += 1
            if n == steps: return

def train(model: nn.Module, data, spec: TrainSpec, *, generator: torch.Generator, start_epoch: int = 0,
          masks: dict | None = None, checkpoint_epoch: int | None = None, progress: bool | None = None,
          desc: str = "train", runtime: Runtime | None = None) -> dict:
    """Train `model` on `data.train` for epochs [start_epoch, spec.epochs) as `runtime` says (None: resolved from the
    environment here, for a direct call). Returns timings and the rewind checkpoint."""
    rt = runtime or Runtime.from_env()
    opt = make_optimizer(model, spec, rt.optimizer_impl)
    steps_per_epoch = spec.steps_per_epoch or -(-len(data.train) // spec.batch_size)
    mask_p, mask_m = _mask_lists(model, masks)          # gathered once; one product per step below
    def mask_step():
        if mask_p:
            with torch.no_grad(): torch._foreach_mul_(mask_p, mask_m)
    mask_step()
    model.train()
    device = next(model.parameters()).device
    forward = _forward_fn(model, rt.compile)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if spec.precision == "bf16" \
        else contextlib.nullcontext
    ckpt, t0, step = None, time.perf_counter(), start_epoch * steps_per_epoch
    bar = tqdm(range(start_epoch, spec.epochs), desc=desc, leave=False,
               disable=not (rt.progress if progress is None else progress))
    for epoch in bar:
        if checkpoint_epoch is not None and epoch == checkpoint_epoch: ckpt = state_copy(model)
        total, n = torch.zeros((), device=device), 0
        for xb, yb, _ in _epoch_batches(data.train, spec, steps_per_epoch, generator):
            for g in opt.param_groups: g["lr"] = lr_at(spec, step, steps_per_epoch)
            with autocast(): loss = F.cross_entropy(forward(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            mask_step()
            total += loss.detach() * len(yb); n += len(yb); step += 1
        mean = (total / n).item()                       # one sync per epoch (the progress bar shows it anyway)
        if not math.isfinite(mean):
            raise Diverged(f"{desc}: the training loss became {mean} in epoch {epoch + 1} (steps "
                           f"{step - steps_per_epoch + 1}-{step}); lower the learning rate or check the data")
        bar.set_postfix(loss=f"{mean:.3f}")
    if checkpoint_epoch is not None and checkpoint_epoch == spec.epochs: ckpt = state_copy(model)
    return {"seconds": time.perf_counter() - t0, "epochs": spec.epochs - start_epoch,
            "steps": step - start_epoch * steps_per_epoch, "checkpoint": ckpt}


# %% [markdown]
# A small check on synthetic data: a LeNet learns a linearly separable problem, masked weights stay exactly zero
# through Adam updates, the checkpoint at epoch 0 is the initialisation, and two runs with the same generator seed
# give identical weights.

# %%
from pruning_repro.data import TensorSplit, Data, DataInfo
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
    r = train(m, toy(), TrainSpec(5, 64, "adam", 1e-2), generator=torch.Generator().manual_seed(seed),
              masks=mask, checkpoint_epoch=0, progress=False)
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
train(net, toy(), TrainSpec(3, 64, "adam", 1e-2, steps_per_epoch=7), generator=torch.Generator().manual_seed(0),
      progress=False)
test_eq(len(calls), 21)
metrics
