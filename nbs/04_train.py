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
from tqdm import tqdm

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
    """How to train: `compile` ('auto': the model's default, '1', '0'), `optimizer_impl`, `progress` (inner bars),
    `checkpoint_min`: minutes between in-level snapshots (`06_imp`; 0: after every step, None: never), and
    `runs_per_gpu`: how many runs a local pool trains on each GPU at once (`24_placement`)."""
    compile: str = "auto"
    optimizer_impl: str = "fused"
    progress: bool = True
    checkpoint_min: float | None = 30.0
    runs_per_gpu: int = 1

    def __post_init__(self):
        from pruning_repro.config import ConfigError
        if self.compile not in COMPILE_MODES:
            raise ConfigError(f"PRUNING_REPRO_COMPILE (Runtime.compile) must be auto, 1 or 0, got {self.compile!r}")
        if self.optimizer_impl not in OPTIMIZER_IMPLS:
            raise ConfigError(f"PRUNING_REPRO_OPTIMIZER_IMPL (Runtime.optimizer_impl) must be one of "
                              f"{', '.join(OPTIMIZER_IMPLS)}, got {self.optimizer_impl!r}")
        c = self.checkpoint_min
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float)) or not c >= 0):
            raise ConfigError(f"PRUNING_REPRO_CHECKPOINT_MIN (Runtime.checkpoint_min, minutes between in-level "
                              f"snapshots) must be a number >= 0 or 'never', got {c!r}")
        r = self.runs_per_gpu
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ConfigError(f"PRUNING_REPRO_RUNS_PER_GPU (Runtime.runs_per_gpu) must be an integer >= 1, got {r!r}")

    @classmethod
    def from_env(cls, environ=None) -> "Runtime":
        "The settings the environment asks for (read here, once, by the caller at the edge)."
        e = os.environ if environ is None else environ
        c, r = e.get("PRUNING_REPRO_CHECKPOINT_MIN", "30"), e.get("PRUNING_REPRO_RUNS_PER_GPU", "1")
        try: c = None if c.strip().lower() == "never" else float(c)
        except ValueError: pass                     # __post_init__ says what is expected
        try: r = int(r)
        except ValueError: pass
        return cls(e.get("PRUNING_REPRO_COMPILE", "auto"), e.get("PRUNING_REPRO_OPTIMIZER_IMPL", "fused"),
                   e.get("PRUNING_REPRO_PROGRESS", "1") != "0", c, r)

    def environ(self) -> dict[str, str]:
        "These settings as the environment variables `from_env` reads (for processes started from this one)."
        return {"PRUNING_REPRO_COMPILE": self.compile, "PRUNING_REPRO_OPTIMIZER_IMPL": self.optimizer_impl,
                "PRUNING_REPRO_PROGRESS": "1" if self.progress else "0",
                "PRUNING_REPRO_CHECKPOINT_MIN": "never" if self.checkpoint_min is None else str(self.checkpoint_min),
                "PRUNING_REPRO_RUNS_PER_GPU": str(self.runs_per_gpu)}

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
test_eq(Runtime.from_env({}), Runtime("auto", "fused", True, 30.0, 1))
test_eq(Runtime.from_env(Runtime(checkpoint_min=None, runs_per_gpu=3).environ()), Runtime(checkpoint_min=None, runs_per_gpu=3))
test_eq(Runtime.from_env({"PRUNING_REPRO_CHECKPOINT_MIN": "never"}).checkpoint_min, None)
test_fail(lambda: Runtime.from_env({"PRUNING_REPRO_CHECKPOINT_MIN": "often"}), contains="CHECKPOINT_MIN")
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
# examples/s in batches of 128 and 554 in batches of 2048; LeNet at 357k/s in batches of 2048). On a GPU, 2048
# CIFAR images are small, but 2048 ImageNet images of 224² are not (ResNet-50 keeps tens of GB of activations for
# them): given the input shape, the batch is measured instead — one forward pass of 8 examples gives the peak memory
# per example, and the batch is the largest power of two whose activations take at most a quarter of the device's
# memory, capped at 2048.
#
# In a data-parallel run (`23_distributed`) each rank evaluates a contiguous part of every split and the
# per-example results are gathered in order, so every rank ends with the whole arrays.

# %%
#| export
_PROBED: dict = {}

def eval_batch_size(model: nn.Module, input_shape: tuple | None = None) -> int:
    "Per-example evaluation batch for `model` on its device, for inputs of `input_shape` when given (see above)."
    dev = next(iter(model.parameters()), torch.empty(0)).device      # a parameter-free model counts as CPU
    conv = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in model.modules())
    if dev.type == "cpu": return 128 if conv else 2048
    if dev.type != "cuda" or input_shape is None or not conv: return 2048
    key = (type(model).__name__, sum(p.numel() for p in model.parameters()), tuple(input_shape), str(dev))
    if key not in _PROBED:
        was = model.training
        torch.cuda.synchronize(dev); torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        with torch.inference_mode(): model.eval()(torch.zeros(8, *input_shape, device=dev))
        torch.cuda.synchronize(dev); model.train(was)
        per_example = max(1, (torch.cuda.max_memory_allocated(dev) - base) // 8)
        budget = torch.cuda.get_device_properties(dev).total_memory // 4
        _PROBED[key] = int(min(2048, max(1, 2 ** int(math.log2(max(1, budget // per_example))))))
    return _PROBED[key]

def evaluate(model: nn.Module, split, batch_size: int | None = None, world=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example (loss, correct) of `model` on `split`, no augmentation, eval mode; with a data-parallel `world`,
    each rank evaluates its part and every rank gets the whole arrays."""
    from pruning_repro.data import shard_bounds
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
    Train metrics use the labels used for training; `noisy`/`original` split them by the noise mask."""
    batch_size = batch_size or eval_batch_size(model, data.info.input_shape)
    tl, tc = evaluate(model, data.train, batch_size, world)
    vl, vc = evaluate(model, data.val, batch_size, world)
    sl, sc = evaluate(model, data.test, batch_size, world)
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
# models whose `compile_by_default` is set, the CIFAR ResNets, on a GPU), `1` (always) or `0` (never). On a CPU
# `auto` trains eagerly: compiled ResNet-20 steps were 30% faster on one of our machines (`bench/`), but on another,
# an AMD EPYC, inductor's CPU backward pass gave wrong gradients and at times aborted the process. If compilation fails (no C++ compiler, say), training goes on eagerly with a warning — and so it does
# if, on the first batch, the compiled model's gradients are not the eager model's (checked once per process and
# input shape: on one of our machines, an AMD EPYC, inductor's ResNet-20 backward pass is wrong). It returns the state at `checkpoint_epoch` when asked (the weights after that
# many epochs, before the epoch runs), which is how IMP gets its rewind point.
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
_VERIFIED: dict = {}    # (model, input shape, device, dtype) -> whether compiled gradients matched eager ones

class _Compiled:
    """`torch.compile(model)`, falling back to the eager model (with one warning) if compilation fails on first use,
    or if its gradients are not the eager model's (`verify`)."""
    def __init__(self, model: nn.Module):
        self.model, self.fn, self.ok, self.verified = model, torch.compile(model), None, False
    def __call__(self, x):
        if self.ok is False: return self.model(x)
        try:
            out = self.fn(x); self.ok = True
            return out
        except Exception as e:
            if self.ok: raise
            self._fallback(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]})")
            return self.model(x)

    def _fallback(self, why: str) -> None:
        import warnings
        warnings.warn(f"{why}; training this model eagerly")
        self.ok = False

    def verify(self, x, y, autocast=contextlib.nullcontext, tol: float = 1e-2) -> None:
        """Once per process and (model, input shape, device): the gradients of one batch's loss, compiled and eager,
        from the same state (restored after). If they differ by more than `tol` of the largest gradient, the compiled
        code is wrong on this machine — measured: on an AMD EPYC, inductor's ResNet-20 backward differs from eager by
        2.0 with gradients of 0.77 — and training goes on eagerly."""
        if self.verified: return
        self.verified = True
        key = (type(self.model).__name__, tuple(p.shape for p in self.model.parameters()), tuple(x.shape[1:]),
               x.device.type, x.dtype)
        if key not in _VERIFIED:
            saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            params = [p for p in self.model.parameters() if p.requires_grad]
            def grads(f):
                self.model.load_state_dict(saved)
                with autocast(): loss = F.cross_entropy(f(x), y)
                return torch.autograd.grad(loss, params, allow_unused=True)
            try:
                eager, compiled = grads(self.model), grads(self.fn)
                scale = max(float(g.abs().max()) for g in eager if g is not None)
                err = max(float((a - b).abs().max()) for a, b in zip(eager, compiled) if a is not None)
                _VERIFIED[key] = (err <= tol * scale, f"torch.compile's gradients differ from the eager model's on "
                                                      f"this machine (by {err:.3g}; largest gradient {scale:.3g})")
            except Exception as e:
                _VERIFIED[key] = (False, f"torch.compile failed ({type(e).__name__}: {str(e)[:200]})")
            finally: self.model.load_state_dict(saved)
        ok, why = _VERIFIED[key]
        if not ok and self.ok is not False: self._fallback(why)

def _forward_fn(model: nn.Module, mode: str = "auto", default: bool | None = None):
    """The training forward: compiled or eager by `mode` (`Runtime.compile`: auto | 1 | 0) and the model's default
    (`default`, when `model` is a wrapper such as `DistributedDataParallel`); 'auto' compiles on GPUs only."""
    default = getattr(model, "compile_by_default", False) if default is None else default
    cuda = next(iter(model.parameters()), torch.empty(0)).device.type == "cuda"
    use = mode == "1" or (mode == "auto" and default and cuda)
    return _Compiled(model) if use else model

def _progress_enabled(progress) -> bool:
    if progress is not None: return bool(progress)
    return os.environ.get("PRUNING_REPRO_PROGRESS", "1") != "0"

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

def train(model: nn.Module, data, spec: TrainSpec, *, generator: torch.Generator, start_epoch: int = 0,
          masks: dict | None = None, checkpoint_epoch: int | None = None, progress: bool | None = None,
          desc: str = "train", runtime: Runtime | None = None, world=None, resume: dict | None = None,
          snapshots=None) -> dict:
    """Train `model` on `data.train` for epochs [start_epoch, spec.epochs) as `runtime` says (None: resolved from the
    environment here, for a direct call). Returns timings and the rewind checkpoint.

    `world`: the data-parallel world (`23_distributed`; None: this process alone). `snapshots`: an object whose
    `due()` is asked after every step and whose `save(state)` then receives what resuming needs (`06_imp` stores it);
    `resume`: such a state (the model's weights already loaded by the caller) to continue from."""
    rt = runtime or Runtime.from_env()
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
    forward = _forward_fn(net, rt.compile, getattr(model, "compile_by_default", False))
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
    bar = tqdm(range(start_epoch, spec.epochs), desc=desc, leave=False,
               disable=not (rt.progress if progress is None else progress))
    for epoch in bar:
        if checkpoint_epoch is not None and epoch == checkpoint_epoch and stream_state is None:
            ckpt = state_copy(model)
        total, n, epoch_first = torch.zeros((), device=device), 0, step + 1
        stream = EpochStream(data.train, spec.batch_size, steps_per_epoch, generator, world.shard if dp else None,
                             stream_state)
        stream_state = None
        for xb, yb, n_global in stream:
            if isinstance(forward, _Compiled) and not dp: forward.verify(xb, yb, autocast)   # no-op once checked
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
            "checkpoint": ckpt}


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

spec = TrainSpec(3, 64, "adam", 1e-2, steps_per_epoch=8, milestones=(2,))
torch.manual_seed(0); whole = LeNet(8, 2, width=0.1); first = state_copy(whole)
snap = AtStep(11)
r1 = train(whole, toy(500), spec, generator=torch.Generator().manual_seed(5), checkpoint_epoch=1, snapshots=snap,
           progress=False)
test_eq((snap.saved["epoch"], snap.saved["step"], snap.saved["stream"]["taken"]), (1, 11, 3))
again = LeNet(8, 2, width=0.1); again.load_state_dict(snap.saved["model"])
r2 = train(again, toy(500), spec, generator=torch.Generator(), checkpoint_epoch=1, resume=snap.saved, progress=False)
assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), again.state_dict().values()))
assert all(torch.equal(r1["checkpoint"][k], r2["checkpoint"][k]) for k in r1["checkpoint"])
test_eq((r2["epochs"], r2["steps"]), (r1["epochs"], r1["steps"]))
