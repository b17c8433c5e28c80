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
# # The training forward: precision and compilation
#
# > How a level's forward and backward run on a device — true float32, TF32 or bfloat16; compiled or eager, and compiled only when its gradients are the eager model's — and the record of it each level keeps (`numerics`).

# %%
#| default_exp forward

# %% [markdown]
# `train` (`04_train`) asks this chapter for its forward (`forward_fn`), runs a level under `precision_flags` and
# stores `numerics` with the level's metrics: the two options for GPUs live here. **Precision**
# (`TrainSpec.precision`, part of the spec and of the run's hash, since it changes the numbers): `fp32` is true
# float32 on every device — on a GPU, `precision_flags` turns TF32 off for matmuls and cuDNN convolutions while a
# level trains and is evaluated (PyTorch's own default lets cuDNN use TF32, 10-bit mantissa products, so "fp32" would
# mean TF32 convolutions on an A100 or H100 and full float32 elsewhere); `tf32` allows TF32 for both (faster on tensor
# cores, other numbers); `bf16` runs the forward pass and loss under bfloat16 autocast (weights, gradients and
# optimizer state stay float32, TF32 off; no loss scaling is needed for bfloat16). The flags are restored after. Each
# level's metrics record them (`numerics`, below).
#
# **Compilation**: `torch.compile` computes the same function (to float rounding), so it is a runtime choice, not a
# spec field: `$PRUNING_REPRO_COMPILE` = `auto` (default: the models whose `compile_by_default` is set, the CIFAR
# ResNets, on a GPU), `1` (always) or `0` (never). On a CPU `auto` trains eagerly: compiled ResNet-20 steps were 30%
# faster on one of our machines (`bench/`), but on another, an AMD EPYC, inductor's CPU backward pass gave wrong
# gradients and at times aborted the process. If compilation fails (no C++ compiler, say), training goes on eagerly
# with a warning — and so it does if, on the first batch, the compiled model's gradients are not the eager model's
# (`Compiled.verify`, once per process, architecture and input shape). That check runs in true float32 (TF32 and
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
# data-parallel rank checks a local twin of its module (`local_twin`: synchronized BatchNorm made local, so the
# check makes no collective), compiled on its own, and the ranks train compiled only if every rank's check passed.
#
# **One compile cache per architecture.** Dynamo keys its cache by code object: every width of `CifarResNet` shares
# the cache of `CifarResNet.forward`, and after 8 shapes (`torch._dynamo.config.recompile_limit`) it runs that code
# eagerly for the rest of the process, silently — a pool worker training a width sweep would train all later widths
# eagerly (measured on the CPU with dynamo's `eager` backend: the 8th width of a ResNet-8 sweep hits it). Raising the
# limit would keep every width's code alive for the worker's life; instead, `Compiled` empties dynamo's caches
# (`torch._dynamo.reset`) whenever the architecture it compiles (class and parameter shapes) is not the one compiled
# before in this process. The levels of one run (and runs of one architecture) share the compiled code — new model
# objects of the same shapes reuse it — and an architecture needs few graphs (the full batch, the last partial
# batch, the float32 check of a bf16 run), far below the limit. Each level records in its metrics whether it ran
# compiled, how many graphs dynamo compiled for it and whether it hit the limit (`numerics`).

# %%
#| export
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

# %%
import warnings
from fastcore.test import test_eq
from pruning_repro.models import LeNet

# %% [markdown]
# **Precision.** The flags a level runs under, and true float32 for the compile check whatever they are.

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


# %% [markdown]
# Only flags change, so this is checkable without a GPU: TF32 as the precision says on a CUDA device, restored after;
# on a CPU nothing changes.

# %%
_was = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
for _p, _on in (("tf32", True), ("fp32", False), ("bf16", False)):
    with precision_flags(_p, "cuda"):
        test_eq((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32), (_on, _on))
    test_eq((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32), _was)
with precision_flags("tf32", "cpu"): test_eq(torch.backends.cuda.matmul.allow_tf32, _was[0])


# %% [markdown]
# **The compile check's distance**: zero for the model itself, far above `VERIFY_TOL` for a wrong function (here the
# output doubled).

# %%
#| export
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


# %%
_m, _x = LeNet(8, 2, width=0.1), torch.randn(64, 1, 8)
_y = (_x[:, 0, 0] > 0).long()
test_eq(grad_distance(_m, _m, _x, _y), 0.0)
assert grad_distance(_m, lambda x: 2 * _m(x), _x, _y) > VERIFY_TOL


# %% [markdown]
# A data-parallel rank checks a **local twin** of its module: its synchronized BatchNorm layers made local, so the
# check makes no collective. (A twin of a `SyncBatchNorm` model under a real process group is tested in
# `tests/test_gpu_numerics.py`; here, a model without one is copied as it is.)

# %%
#| export
def local_twin(model: nn.Module) -> nn.Module:
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


# %%
_t = local_twin(_m)
assert _t is not _m and all(torch.equal(a, b) for a, b in zip(_t.state_dict().values(), _m.state_dict().values()))
_s = local_twin(nn.Sequential(nn.SyncBatchNorm(3)))
test_eq(type(_s[0]).__name__, "_LocalNorm")

# %% [markdown]
# **One compile cache per architecture**: a new architecture empties dynamo's caches, the same one does not.

# %%
#| export
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


# %%
_ARCH[0] = None
test_eq([_fresh_compile_cache(LeNet(8, 2, width=w)) for w in (0.1, 0.1, 0.2)], [False, False, True])


# %% [markdown]
# `Compiled` is `torch.compile(model)` that falls back to the eager model, with one warning, when compiling fails or
# its gradients are not the eager model's. Here its compiled function is replaced by a wrong one (the output doubled):
# `verify` refuses it, and the model runs eagerly. (Compiling for real, on a GPU, is `bench/gpu_check.py`'s; the
# fallback on a failed compile is tested in `tests/test_gpu_numerics.py`.)

# %%
#| export
class Compiled:
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
        rank checks its local twin, `local_twin`, compiled on its own); `world`: then compiled only if every rank's
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


# %%
_c = Compiled(_m); _c.fn = lambda x: 2 * _m(x)
with warnings.catch_warnings(record=True) as _w:
    warnings.simplefilter("always"); _c.verify(_x, _y)
test_eq((_c.ok, len(_w)), (False, 1))
assert "gradients differ" in str(_w[0].message) and torch.equal(_c(_x), _m(_x))
test_eq(_c.record()["compiled"], False)


# %% [markdown]
# The training forward by `Runtime.compile`: `auto` compiles the models that ask for it (`compile_by_default`) on a
# GPU only; `1` always; `0` never.

# %%
#| export
def forward_fn(model: nn.Module, mode: str = "auto", default: bool | None = None, arch: nn.Module | None = None):
    """The training forward: compiled or eager by `mode` (`Runtime.compile`: auto | 1 | 0) and the model's default
    (`default`, when `model` is a wrapper such as `DistributedDataParallel`, whose module is `arch`); 'auto' compiles
    on GPUs only."""
    default = getattr(model, "compile_by_default", False) if default is None else default
    cuda = next(iter(model.parameters()), torch.empty(0)).device.type == "cuda"
    use = mode == "1" or (mode == "auto" and default and cuda)
    return Compiled(model, arch) if use else model


# %%
test_eq(forward_fn(_m, "auto", default=True) is _m, True)      # a CPU model: eager under 'auto'
test_eq(forward_fn(_m, "0", default=True) is _m, True)
test_eq(type(forward_fn(_m, "1")).__name__, "Compiled")


# %% [markdown]
# What a level's numbers depend on besides its spec, recorded with its metrics.

# %%
#| export
def numerics(device, precision: str, forward=None) -> dict:
    """What a level's numbers depend on besides its spec, recorded in its metrics (`06_imp`): the device, torch and
    its CUDA / cuDNN / NCCL versions (None off CUDA), the precision, the TF32 flags in force, and how `forward` (the
    training forward of `forward_fn`) ran: compiled or not, graphs dynamo compiled, whether it hit its limit."""
    import platform
    device = torch.device(device)
    cuda = device.type == "cuda"
    def nccl():
        try:
            v = torch.cuda.nccl.version()
            return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
        except Exception: return None
    run = forward.record() if isinstance(forward, Compiled) else \
        {"compiled": False, "compile_graphs": 0, "recompile_limit_hit": False}
    return {"device": torch.cuda.get_device_name(device) if cuda else
                      f"{device.type} ({platform.processor() or platform.machine() or 'unknown'})",
            "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None, "nccl": nccl() if cuda else None,
            "precision": precision, "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else False,
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32) if cuda else False, **run}


# %%
_n = numerics("cpu", "fp32", _m)
test_eq({k: _n[k] for k in ("precision", "compiled", "tf32_matmul", "cuda", "nccl")},
        {"precision": "fp32", "compiled": False, "tf32_matmul": False, "cuda": None, "nccl": None})
assert _n["device"].startswith("cpu")
