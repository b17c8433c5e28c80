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
# Two options for GPUs. **Precision** (`TrainSpec.precision`, part of the spec and of the run's hash, since it
# changes the numbers): `fp32` is true float32 on every device — on a GPU, `precision_flags` turns TF32 off for
# matmuls and cuDNN convolutions while a level trains and is evaluated (PyTorch's own default lets cuDNN use TF32,
# 10-bit mantissa products, so "fp32" would mean TF32 convolutions on an A100 or H100 and full float32 elsewhere);
# `tf32` allows TF32 for both (faster on tensor cores, other numbers); `bf16` runs the forward pass and loss under
# bfloat16 autocast (weights, gradients and optimizer state stay float32, TF32 off; no loss scaling is needed for
# bfloat16). The flags are restored after. Each level's metrics record them (`numerics`, below).
#
# **Compilation**: `torch.compile` computes the same function (to float rounding), so it is a runtime choice, not a
# spec field: `$PRUNING_REPRO_COMPILE` = `auto` (default: the models whose `compile_by_default` is set, the CIFAR
# ResNets, on a GPU), `1` (always) or `0` (never). On a CPU `auto` trains eagerly: compiled ResNet-20 steps were 30%
# faster on one of our machines (`bench/`), but on another, an AMD EPYC, inductor's CPU backward pass gave wrong
# gradients and at times aborted the process. If compilation fails (no C++ compiler, say), training goes on eagerly
# with a warning — and so it does if, on the first batch, the compiled model's gradients are not the eager model's
# (`_Compiled.verify`, once per process, architecture and input shape). That check runs in true float32 (TF32 and
# autocast off, whatever the run's precision) and compares all gradients at once by their relative L2 distance
# `‖g_compiled − g_eager‖ / ‖g_eager‖` (`grad_distance`), refused above `VERIFY_TOL` = 0.05. Why these choices,
# measured: two valid computations of one batch's gradients differ more than float32's 1e-7 suggests, because a
# rounding difference flips ReLUs near zero and BatchNorm's backward cancels — contiguous and channels-last float32
# (same weights, same batch of 128, at initialisation) differ by 0.004–0.006 (ResNet-20), 0.007–0.009 (ResNet-32),
# 0.003–0.009 (VGG-16) over 3 seeds on our CPU (float32 against float64: 0.0025 for ResNet-20; 1 against 2 threads:
# 3e-6); bf16 against fp32 differs by 0.22 (ResNet-20) and 0.44 (VGG-16); a wrong kernel is O(1) (the EPYC: a
# difference of 2.0 with gradients of 0.77). The old check (largest difference ≤ 1% of the largest gradient, in the
# run's precision) failed on an H200 in "fp32" too (ResNet-20: 0.00266 of 0.128, VGG-16: 0.026 of 0.167, with cuDNN's
# default TF32), so every CUDA run trained eagerly (`bench/results/2026-12-04-cuda-h200-partial.md`). A
# data-parallel rank checks a local twin of its module (`_local_twin`: synchronized BatchNorm made local, so the
# check makes no collective), compiled on its own, and the ranks train compiled only if every rank's check passed.
#
# **One compile cache per architecture.** Dynamo keys its cache by code object: every width of `CifarResNet` shares
# the cache of `CifarResNet.forward`, and after 8 shapes (`torch._dynamo.config.recompile_limit`) it runs that code
# eagerly for the rest of the process, silently — a pool worker training a width sweep would train all later widths
# eagerly (measured on the CPU with dynamo's `eager` backend: the 8th width of a ResNet-8 sweep hits it). Raising the
# limit would keep every width's code alive for the worker's life; instead, `_Compiled` empties dynamo's caches
# (`torch._dynamo.reset`) whenever the architecture it compiles (class and parameter shapes) is not the one compiled
# before in this process. The levels of one run (and runs of one architecture) share the compiled code — new model
# objects of the same shapes reuse it — and an architecture needs few graphs (the full batch, the last partial
# batch, the float32 check of a bf16 run), far below the limit. Each level records in its metrics whether it ran
# compiled, how many graphs dynamo compiled for it and whether it hit the limit (`numerics`).
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
_VERIFIED: dict = {}    # (model, parameter shapes, input shape, device, dtype) -> (compiled gradients match, why not)
VERIFY_TOL = 5e-2       # largest relative L2 distance of compiled from eager gradients in true float32 (see above)

@contextlib.contextmanager
def precision_flags(precision: str, device):
    """TF32 as the spec's `precision` says (`config.PRECISIONS`), for the code inside, on a CUDA `device`: allowed for
    matmuls and cuDNN convolutions under 'tf32', off under 'fp32' (true float32) and 'bf16' (what autocast leaves in
    float32). The flags before are restored after. Elsewhere nothing changes (a CPU has no TF32)."""
    if torch.device(device).type != "cuda":
        yield; return
    m, c = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (m.allow_tf32, c.allow_tf32)
    m.allow_tf32 = c.allow_tf32 = precision == "tf32"
    try: yield
    finally: m.allow_tf32, c.allow_tf32 = saved

@contextlib.contextmanager
def _true_fp32(device_type: str):
    "True float32 inside, whatever the caller set: TF32 off (then restored), autocast off."
    m, c = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (m.allow_tf32, c.allow_tf32)
    m.allow_tf32 = c.allow_tf32 = False
    try:
        with torch.autocast(device_type, enabled=False): yield
    finally: m.allow_tf32, c.allow_tf32 = saved

def grad_distance(model: nn.Module, fn, x, y) -> float:
    """||g_fn - g_model|| / ||g_model||: the relative L2 distance over all gradients of one batch's cross-entropy,
    computed by `fn` and by `model` from the same state (BatchNorm's running statistics restored between and after),
    in true float32 (`_true_fp32`). A gradient `fn` leaves out counts as zero; NaN when either is not finite."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    def grads(f):
        model.load_state_dict(saved)
        return torch.autograd.grad(F.cross_entropy(f(x), y), params, allow_unused=True)
    try:
        with _true_fp32(x.device.type): eager, other = grads(model), grads(fn)
    finally: model.load_state_dict(saved)
    pairs = [(a.float(), torch.zeros_like(a, dtype=torch.float32) if b is None else b.float())
             for a, b in zip(eager, other) if a is not None]
    num = math.sqrt(sum(float(torch.linalg.vector_norm(a - b)) ** 2 for a, b in pairs))
    den = math.sqrt(sum(float(torch.linalg.vector_norm(a)) ** 2 for a, _ in pairs))
    if not (math.isfinite(num) and math.isfinite(den)): return float("nan")
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))

def _local_twin(model: nn.Module) -> nn.Module:
    """A copy of `model` whose synchronized BatchNorm layers (`SyncBatchNorm`, `GlobalBatchNorm`) are local ones with
    the same parameters and buffers: what one rank computes alone, with no collective (for `verify`)."""
    import copy
    twin = copy.deepcopy(model)
    for name, m in list(twin.named_modules()):
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and \
                type(m) not in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, _LocalNorm):
            local = _LocalNorm(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
            local.load_state_dict(m.state_dict())
            dev = next(iter([*m.parameters(), *m.buffers()]), torch.empty(0)).device
            parent, _, attr = name.rpartition(".")
            setattr(twin.get_submodule(parent), attr, local.to(dev))
    return twin

class _LocalNorm(nn.modules.batchnorm._BatchNorm):
    "BatchNorm over this process's batch, for inputs of any rank (as `SyncBatchNorm` takes)."
    def _check_input_dim(self, x): pass

_ARCH: list = [None]    # the architecture whose compiled code dynamo's caches hold in this process

def _arch_key(model: nn.Module) -> tuple:
    return type(model).__name__, tuple((n, tuple(p.shape)) for n, p in model.named_parameters())

def _fresh_compile_cache(model: nn.Module) -> bool:
    """Before compiling `model`: empty dynamo's caches (`torch._dynamo.reset`) when they hold another architecture's
    code (see above). Returns whether they were emptied."""
    key = _arch_key(model)
    reset = _ARCH[0] is not None and _ARCH[0] != key
    if reset: torch._dynamo.reset()
    _ARCH[0] = key
    return reset

def _dynamo_counts() -> tuple[int, int]:
    "(graphs dynamo compiled, times it hit its recompile limit) in this process so far, from dynamo's own counters."
    from torch._dynamo.utils import counters
    hits = sum(v for k, v in counters["unimplemented"].items()
               if "recompile limit" in str(k).lower() or "cache_size_limit" in str(k).lower())
    return int(counters["stats"]["unique_graphs"]), int(hits)

class _Compiled:
    """`torch.compile(model)`, falling back to the eager model (with one warning) if compilation fails on first use,
    or if its gradients are not the eager model's (`verify`). `arch`: the module whose architecture keys dynamo's
    cache (`model` itself, or the module a `DistributedDataParallel` wraps)."""
    def __init__(self, model: nn.Module, arch: nn.Module | None = None):
        _fresh_compile_cache(model if arch is None else arch)
        self.counts0 = _dynamo_counts()
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

    def verify(self, x, y, tol: float = VERIFY_TOL, module: nn.Module | None = None, world=None) -> None:
        """Once per process and (model, input shape, device): `grad_distance` of the compiled from the eager model on
        one batch, in true float32 whatever the run's precision. Above `tol` the compiled code is wrong on this
        machine — measured: on an AMD EPYC, inductor's ResNet-20 backward differs from eager by 2.0 with gradients
        of 0.77 — and training goes on eagerly. `module`: the module to check instead of `self.model` (a data-parallel
        rank checks its local twin, `_local_twin`, compiled on its own); `world`: then compiled only if every rank's
        check passed (one all-reduce)."""
        if self.verified: return
        self.verified = True
        m = self.model if module is None else module
        key = (type(m).__name__, tuple(p.shape for p in m.parameters()), tuple(x.shape[1:]), x.device.type, x.dtype)
        if key not in _VERIFIED:
            try:
                d = grad_distance(m, self.fn if module is None else torch.compile(m), x, y)
                _VERIFIED[key] = (d <= tol, f"torch.compile's gradients differ from the eager model's on this "
                                            f"machine (relative L2 distance {d:.3g} > {tol:g}, float32, TF32 off)")
            except Exception as e:
                _VERIFIED[key] = (False, f"torch.compile failed ({type(e).__name__}: {str(e)[:200]})")
        ok, why = _VERIFIED[key]
        if world is not None and world.distributed:      # every rank takes the same path
            passed = int(round(float(world.sum(torch.tensor(float(ok), device=x.device)))))
            if ok and passed < world.size:
                ok, why = False, f"torch.compile's check failed on {world.size - passed} of {world.size} ranks"
        if not ok and self.ok is not False: self._fallback(why)

    def record(self) -> dict:
        """How the model ran since this object was made: `compiled` (compiled code trained it: the check passed and
        dynamo never gave up at its recompile limit), `compile_graphs` (graphs dynamo compiled meanwhile),
        `recompile_limit_hit`."""
        graphs, hits = (a - b for a, b in zip(_dynamo_counts(), self.counts0))
        return {"compiled": self.ok is True and hits == 0, "compile_graphs": graphs, "recompile_limit_hit": hits > 0}

def _forward_fn(model: nn.Module, mode: str = "auto", default: bool | None = None, arch: nn.Module | None = None):
    """The training forward: compiled or eager by `mode` (`Runtime.compile`: auto | 1 | 0) and the model's default
    (`default`, when `model` is a wrapper such as `DistributedDataParallel`, whose module is `arch`); 'auto' compiles
    on GPUs only."""
    default = getattr(model, "compile_by_default", False) if default is None else default
    cuda = next(iter(model.parameters()), torch.empty(0)).device.type == "cuda"
    use = mode == "1" or (mode == "auto" and default and cuda)
    return _Compiled(model, arch) if use else model

def numerics(device, precision: str, forward=None) -> dict:
    """What a level's numbers depend on besides its spec, recorded in its metrics (`06_imp`): the device, torch and
    its CUDA / cuDNN / NCCL versions (None off CUDA), the precision, the TF32 flags in force, and how `forward` (the
    training forward of `_forward_fn`) ran: compiled or not, graphs dynamo compiled, whether it hit its limit."""
    import platform
    device = torch.device(device)
    cuda = device.type == "cuda"
    def nccl():
        try:
            v = torch.cuda.nccl.version()
            return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
        except Exception: return None
    run = forward.record() if isinstance(forward, _Compiled) else \
        {"compiled": False, "compile_graphs": 0, "recompile_limit_hit": False}
    return {"device": torch.cuda.get_device_name(device) if cuda else
                      f"{device.type} ({platform.processor() or platform.machine() or 'unknown'})",
            "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None, "nccl": nccl() if cuda else None,
            "precision": precision, "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else False,
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32) if cuda else False, **run}

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
    forward = _forward_fn(net, rt.compile, getattr(model, "compile_by_default", False), model)
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
            if isinstance(forward, _Compiled) and not forward.verified:   # a rank checks its local twin, then all agree
                forward.verify(xb, yb, module=_local_twin(model) if dp else None, world=world if dp else None)
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
# The numerics of a run: recorded with the level (here eager, true float32, on the CPU); TF32 set by the precision
# on a GPU and restored after (only flags: checkable without one); the compile check's distance (zero for the model
# itself, far above `VERIFY_TOL` for a wrong function); a new architecture empties dynamo's cache, the same one not.

# %%
test_eq({k: r["numerics"][k] for k in ("precision", "compiled", "tf32_matmul", "cuda")},
        {"precision": "fp32", "compiled": False, "tf32_matmul": False, "cuda": None})
_was = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
for _p, _on in (("tf32", True), ("fp32", False), ("bf16", False)):
    with precision_flags(_p, "cuda"):
        test_eq((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32), (_on, _on))
    test_eq((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32), _was)
_m, _x = LeNet(8, 2, width=0.1), torch.randn(64, 1, 8)
_y = (_x[:, 0, 0] > 0).long()
test_eq(grad_distance(_m, _m, _x, _y), 0.0)
assert grad_distance(_m, lambda x: 2 * _m(x), _x, _y) > VERIFY_TOL
_ARCH[0] = None
test_eq([_fresh_compile_cache(LeNet(8, 2, width=w)) for w in (0.1, 0.1, 0.2)], [False, False, True])

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
