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
# # Models: LeNet-300-100, CIFAR ResNet-20/32, VGG-16, ResNet-50
#
# > The paper's architectures (§2, App. B.1), each with a width multiplier, OpenLTH's initialisation and named prunable tensors.

# %%
#| default_exp models

# %% [markdown]
# The paper trains LeNet-300-100 on MNIST, ResNet-20 and VGG-16 on CIFAR-10, ResNet-32 on CIFAR-100 and ResNet-50 on
# ImageNet, with the OpenLTH implementations. We follow them:
#
# * **LeNet-300-100**: fully connected 784→300→100→10 with ReLU.
# * **CIFAR ResNet-D** (D = 20, 32): a 3×3 stem of W=16 filters, three stages of W, 2W, 4W filters with (D−2)/6 basic
#   blocks each, 1×1 convolution + BN shortcuts where the shape changes, global average pooling, one linear layer.
# * **VGG-16 (CIFAR)**: 13 conv3×3 + BN + ReLU layers (64, 64, M, 128, 128, M, 256×3, M, 512×3, M, 512×3), a 2×2 average
#   pool and one linear layer 512→classes.
# * **ResNet-50**: the standard bottleneck ImageNet network (stem 7×7/2 + max-pool, stages of 3, 4, 6, 3 blocks).
#
# Every model takes a **`width`** multiplier scaling every hidden layer's units or channels (width down-scaling,
# §5.2), is initialised as OpenLTH initialises it (below), and says which tensors are **prunable**: the weights of
# every conv and linear layer, never biases or BatchNorm; the output layer is left dense for LeNet and VGG-16 and
# pruned for the ResNets (OpenLTH's choice).
#
# **Initialisation.** Table 1 says only "Kaiming normal"; the paper ran on OpenLTH, whose defaults for every one of
# these models are `model_init='kaiming_normal'` and `batchnorm_init='uniform'`:
#
# * `kaiming_normal` (OpenLTH's `models/initializers.py`) draws the *weights* of conv and linear layers from
#   N(0, 2/fan_in) and touches nothing else, so **biases keep PyTorch's default**, U(−1/√fan_in, 1/√fan_in);
# * `uniform` (`models/bn_initializers.py`) sets every **BatchNorm weight to U[0, 1)** and its bias to 0.
#
# Our first version zeroed the biases and set BatchNorm weights to 1. It is not a detail: in a side-by-side run of our
# IMP (weight rewinding, LeNet, 5k Fashion-MNIST, 20 epochs × 11 levels, 3 seeds) against OpenLTH's lottery runner on
# the same recipe, the two matched at 9 of 11 levels but not at the dense level and level 1, where ours was 0.72 and
# 0.48 points lower in test error. The initialisation is therefore a field of the model spec, `ModelSpec.init`:
# `'openlth'` (the default, the paper's) or `'legacy'` (the first version). Runs stored before the field have no
# `init` in their spec, which reads as `'legacy'`: they keep their hashes and are never reused as runs of the
# current recipe.

# %%
#| export
from __future__ import annotations

import functools
import math

import torch
from torch import nn
import torch.nn.functional as F

from pruning_repro.config import ConfigError, ModelSpec, add_unique

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %%
#| export
def _w(c: int, width: float) -> int: return max(1, int(round(c * width)))

class PrunableModel(nn.Module):
    "Base class: `prunable_names()` lists the weight tensors pruning may remove."
    prune_output = True
    output_name = "fc"
    compile_by_default = False   # train through torch.compile on GPUs unless $PRUNING_REPRO_COMPILE says otherwise
    prefers_gpu = True           # where a run trains unless told (`24_placement`): on a GPU when the machine has one

    def prunable_names(self) -> list[str]:
        names = []
        for mn, m in self.named_modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                if mn == self.output_name and not self.prune_output: continue
                names.append(f"{mn}.weight")
        return names

_LAYERS, _NORMS = (nn.Linear, nn.Conv1d, nn.Conv2d), (nn.BatchNorm1d, nn.BatchNorm2d)

def openlth_init(model: nn.Module) -> nn.Module:
    """OpenLTH's defaults (`kaiming_normal` + `batchnorm_init='uniform'`): Kaiming-normal (fan-in, ReLU gain) conv and
    linear weights, biases left at PyTorch's default, BatchNorm weight ~ U[0, 1) and bias 0."""
    for m in model.modules():
        if isinstance(m, _LAYERS): nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, _NORMS):
            with torch.no_grad(): m.weight.copy_(torch.rand(m.weight.shape)); m.bias.zero_()
    return model

def kaiming_init(model: nn.Module) -> nn.Module:
    "The first version's ('legacy'): Kaiming-normal conv/linear weights, zero biases, BatchNorm weight 1 and bias 0."
    for m in model.modules():
        if isinstance(m, _LAYERS):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None: nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS):
            nn.init.ones_(m.weight); nn.init.zeros_(m.bias)
    return model

INITIALIZERS = {"openlth": openlth_init, "legacy": kaiming_init}   # `ModelSpec.init` names one


# %% [markdown]
# ## LeNet-300-100

# %%
#| export
class LeNet(PrunableModel):
    "LeNet-300-100 (fully connected); input of any shape is flattened. Output layer not pruned."
    prune_output = False
    prefers_gpu = False   # 266k weights: a GPU's kernel launches cost more than its arithmetic; one run per CPU core
    def __init__(self, in_features: int, num_classes: int = 10, width: float = 1.0, hidden=(300, 100)):
        super().__init__()
        dims = [in_features] + [_w(h, width) for h in hidden]
        self.fc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.fc = nn.Linear(dims[-1], num_classes)
    def forward(self, x):
        x = x.flatten(1)
        for l in self.fc_layers: x = F.relu(l(x))
        return self.fc(x)


# %% [markdown]
# ## CIFAR ResNets

# %%
#| export
class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

class CifarResNet(PrunableModel):
    "CIFAR ResNet-D (He et al. 2016, §4.2): 3 stages of (D-2)/6 basic blocks with W, 2W, 4W filters."
    # bench/results: torch.compile fuses the many small BatchNorm/ReLU/add kernels; a ResNet-20 training step on
    # the 2-core CPU drops from 0.248 s to 0.173 s. (VGG-16, GEMM-bound, gains nothing: 1.11 -> 1.21 s.) By default
    # only on GPUs (`35_forward`): on an AMD EPYC inductor's CPU backward pass was wrong.
    compile_by_default = True
    def __init__(self, depth: int, num_classes: int = 10, width: float = 1.0, in_channels: int = 3, base: int = 16):
        super().__init__()
        if (depth - 2) % 6: raise ConfigError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        w = [_w(base * m, width) for m in (1, 2, 4)]
        self.conv = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False); self.bn = nn.BatchNorm2d(w[0])
        blocks, cin = [], w[0]
        for si, cout in enumerate(w):
            for bi in range(n):
                blocks.append(_Block(cin, cout, 2 if (si > 0 and bi == 0) else 1)); cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)
    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# %% [markdown]
# ## VGG-16 (CIFAR variant)

# %%
#| export
VGG16_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)

class CifarVGG(PrunableModel):
    "VGG-16 for 32×32 inputs: conv3×3+BN+ReLU layers, 2×2 average pool, one linear layer. Output layer not pruned."
    prune_output = False
    def __init__(self, num_classes: int = 10, width: float = 1.0, in_channels: int = 3, plan=VGG16_PLAN):
        super().__init__()
        layers, cin = [], in_channels
        for v in plan:
            if v == "M": layers.append(nn.MaxPool2d(2)); continue
            c = _w(v, width)
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            cin = c
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
    def forward(self, x):
        x = F.avg_pool2d(self.layers(x), 2)
        return self.fc(x.flatten(1))


# %% [markdown]
# ## ResNet-50

# %%
#| export
class _Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int, expansion: int = 4):
        super().__init__()
        cout = mid * expansion
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False); self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False); self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False); self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))

class ResNet50(PrunableModel):
    "ImageNet ResNet-50 (torchvision layout, stride on the 3×3 convolution) with a width multiplier."
    def __init__(self, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3, blocks=(3, 4, 6, 3)):
        super().__init__()
        stem = _w(64, width)
        self.conv = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False); self.bn = nn.BatchNorm2d(stem)
        layers, cin = [], stem
        for si, (n, mid) in enumerate(zip(blocks, (64, 128, 256, 512))):
            m = _w(mid, width)
            for bi in range(n):
                layers.append(_Bottleneck(cin, m, 2 if (si > 0 and bi == 0) else 1)); cin = m * 4
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 3, 2, 1)
        return self.fc(F.adaptive_avg_pool2d(self.blocks(x), 1).flatten(1))


# %% [markdown]
# ## The model registry
#
# `build_model(spec, info, seed)` makes the architecture for a data set (input shape, classes) and initialises it from
# the run's seed. A new architecture is one entry in `MODELS`.

# %%
#| export
MODELS = {
    "lenet": lambda info, w: LeNet(math.prod(info.input_shape), info.num_classes, w),
    "resnet20": lambda info, w: CifarResNet(20, info.num_classes, w, info.input_shape[0]),
    "resnet32": lambda info, w: CifarResNet(32, info.num_classes, w, info.input_shape[0]),
    "vgg16": lambda info, w: CifarVGG(info.num_classes, w, info.input_shape[0]),
    "resnet50": lambda info, w: ResNet50(info.num_classes, w, info.input_shape[0]),
}

def register_model(name: str, factory, prune_output: bool = True, output_name: str = "fc",
                   prefers_gpu: bool | None = None) -> None:
    """Add an architecture: `factory(info, width)` returns any `nn.Module` for data described by `info`. Unless it
    defines `prunable_names`, the paper's rule applies: the weights of every conv and linear layer, the output layer
    (the module named `output_name`) pruned or not as `prune_output` declares. `prefers_gpu=False` keeps its runs on
    the CPU unless a GPU is asked for (a small model; None: the module's own attribute, else True)."""
    def make(info, width):
        m = factory(info, width)
        if not isinstance(m, nn.Module):
            raise ConfigError(f"the factory of architecture {name!r} returned {type(m).__name__}, not an nn.Module")
        if not hasattr(m, "prunable_names"):
            m.prune_output, m.output_name = prune_output, output_name
            m.prunable_names = PrunableModel.prunable_names.__get__(m)
        if prefers_gpu is not None: m.prefers_gpu = prefers_gpu
        return m
    add_unique(MODELS, name, make, "architecture")

def _factory(arch: str):
    if arch not in MODELS: raise ConfigError(f"unknown architecture {arch!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[arch]

def _make(spec: ModelSpec, info) -> nn.Module:
    "The architecture's factory called for `info`: whatever it raises is one `ConfigError` naming the architecture."
    factory = _factory(spec.arch)
    try: return factory(info, spec.width)
    except ConfigError: raise
    except Exception as e:
        raise ConfigError(f"the factory of architecture {spec.arch!r} failed (width {spec.width}): "
                          f"{type(e).__name__}: {_line(e)}") from None

def _line(e: BaseException) -> str:
    "An exception's message on one line (at most 300 characters)."
    return " ".join(str(e).split())[:300]

@functools.lru_cache(maxsize=None)
def meta_model(spec: ModelSpec, info) -> nn.Module:
    """The architecture of `spec` on the meta device (no memory, no initialisation), built once per (spec, info); on
    the CPU, uninitialised, when its factory cannot build on the meta device (one that reads a file, say)."""
    try:
        with torch.device("meta"): return _make(spec, info)
    except ConfigError: return _make(spec, info)       # on the CPU: a factory failing there too is the error

def _dataset_name(info) -> str:
    "The registered name of the data set `info` describes (for messages), or 'the data set'."
    from pruning_repro.data import INFO
    name = next((k for k, v in INFO.items() if v is info), None) or next((k for k, v in INFO.items() if v == info), None)
    return f"data set {name!r}" if name else "the data set"

def check_model(spec: ModelSpec, info, dataset: str | None = None) -> None:
    """Fail early, before anything is trained or written, if `spec` names no usable architecture for data described
    by `info`: its factory fails, it has no prunable tensor, or its forward pass on a batch of two examples (on the
    meta device: no memory) fails or returns anything but one (2, classes) tensor of logits."""
    m = meta_model(spec, info)
    if not m.prunable_names():
        raise ConfigError(f"architecture {spec.arch!r} has no prunable tensors (no conv or linear weight to prune)")
    problem = _forward_problem(spec, info)
    if problem:
        raise ConfigError(f"architecture {spec.arch!r} on {f'data set {dataset!r}' if dataset else _dataset_name(info)}"
                          f": {problem}")

@functools.lru_cache(maxsize=None)
def _forward_problem(spec: ModelSpec, info) -> str | None:
    "What is wrong with one forward pass of `spec` on a batch of 2 zero inputs (None: nothing): once per (spec, info)."
    m, k, shape = meta_model(spec, info), info.num_classes, (2, *info.input_shape)
    def forward(model):
        was = model.training
        try:
            with torch.no_grad(): return model.eval()(torch.zeros(shape, device=next(model.parameters()).device))
        finally: model.train(was)
    try: out = forward(m)
    except Exception as e:
        if next(m.parameters()).device.type != "meta":
            return f"its forward pass fails on a batch of shape {shape}: {type(e).__name__}: {_line(e)}"
        try: out = forward(_make(spec, info))            # the meta device lacks an operation: on the CPU, once
        except Exception as e:
            return f"its forward pass fails on a batch of shape {shape}: {type(e).__name__}: {_line(e)}"
    if not isinstance(out, torch.Tensor):
        return (f"forward() returns a {type(out).__name__}; expected one tensor of logits, shape (N, {k}) (return the "
                f"logits alone)")
    if tuple(out.shape) != (2, k):
        return (f"outputs shape {tuple(out.shape)} for a batch of 2 examples; expected (2, {k}): one logit for each "
                f"of the {k} classes")
    return None

def build_model(spec: ModelSpec, info, seed: int | None = None, stream: str = "init") -> PrunableModel:
    "The model of `spec` for data described by `info` (a `DataInfo`), initialised by `spec.init` from (`seed`, `stream`)."
    _factory(spec.arch); init = INITIALIZERS[spec.init]
    if seed is not None:
        from pruning_repro.config import derive_seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, stream))
            m = init(_make(spec, info))
    else: m = init(_make(spec, info))
    if not m.prunable_names():
        raise ConfigError(f"architecture {spec.arch!r} has no prunable tensors (no conv or linear weight to prune)")
    return m

def count_params(model: nn.Module, names: list[str] | None = None) -> int:
    "Number of parameters (of `names` only, if given)."
    p = dict(model.named_parameters())
    return sum(p[n].numel() for n in (names if names is not None else p))


# %%
# a model is checked before anything trains: its factory, its output (one (N, classes) tensor), without memory
from pruning_repro.data import INFO, DataInfo
check_model(ModelSpec("resnet20"), INFO["cifar10"])
_info4 = DataInfo(4, (1, 16), (0.0,), (1.0,))
class _Pair(nn.Module):
    def __init__(self): super().__init__(); self.fc = nn.Linear(16, 4)
    def forward(self, x): return self.fc(x.flatten(1)), x
def _boom(info, w): raise RuntimeError("no weights file")
for _n, _f in (("_t_seven", lambda info, w: nn.Sequential(nn.Flatten(), nn.Linear(16, 7))), ("_t_pair", lambda info, w: _Pair()),
               ("_t_boom", _boom)):
    if _n not in MODELS: register_model(_n, _f)
test_fail(lambda: check_model(ModelSpec("_t_seven"), _info4, "blobs"), contains="outputs shape (2, 7) for a batch of 2 examples; expected (2, 4)")
test_fail(lambda: check_model(ModelSpec("_t_pair"), _info4), contains="forward() returns a tuple")
test_fail(lambda: check_model(ModelSpec("_t_boom"), _info4), contains="the factory of architecture '_t_boom' failed")
for _n in ("_t_seven", "_t_pair", "_t_boom"): MODELS.pop(_n)


# %% [markdown]
# What a scheduler needs to know of an architecture without building it for real (on the meta device: no memory,
# no initialisation): whether it gains from a GPU (`prefers_gpu`; a registered model without the attribute does),
# and the FLOPs of one example's forward pass through its conv and linear layers (2 × multiply-adds), from which a
# dry run counts a study's compute without any data (`30_plan`).

# %%
#| export
def prefers_gpu(spec: ModelSpec, info) -> bool:
    "Whether runs of `spec` go to a GPU by default (the model's `prefers_gpu`, True when it does not say)."
    return bool(getattr(meta_model(spec, info), "prefers_gpu", True))

@functools.lru_cache(maxsize=None)
def forward_flops(spec: ModelSpec, info) -> int:
    "FLOPs (2 × multiply-adds) of one example's forward pass through the conv and linear layers of `spec`."
    model, total = meta_model(spec, info), 0
    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Linear): total += 2 * m.in_features * m.out_features
        else: total += 2 * (m.in_channels // m.groups) * math.prod(m.kernel_size) * out[0].numel()
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    try:
        with torch.no_grad(): model.eval()(torch.zeros(1, *info.input_shape, device="meta"))
    finally:
        for h in hs: h.remove()
    return total


# %%
from pruning_repro.data import INFO
test_eq((prefers_gpu(ModelSpec("lenet"), INFO["mnist"]), prefers_gpu(ModelSpec("resnet50"), INFO["imagenet"])),
        (False, True))
test_eq(forward_flops(ModelSpec("lenet"), INFO["mnist"]), 2 * (784 * 300 + 300 * 100 + 100 * 10))
# ResNet-50 at 224²: 4.1 G multiply-adds, the usual figure
assert 8.1e9 < forward_flops(ModelSpec("resnet50"), INFO["imagenet"]) < 8.3e9

# %% [markdown]
# Parameter counts against the published ones: LeNet-300-100 266,610; OpenLTH's CIFAR ResNet-20 (1×1-conv
# shortcuts) 272,474; VGG-16 (CIFAR, conv biases as in OpenLTH) 14,728,266; torchvision's ResNet-50 25,557,032.
# ResNet-32 on CIFAR-100 has 472,756 (466,906 body + a 64×100 head). Prunable weights exclude the output layer of
# LeNet and VGG-16.

# %%
from pruning_repro.data import INFO
counts = {a: count_params(build_model(ModelSpec(a), INFO[d])) for a, d in
          [("lenet", "mnist"), ("resnet20", "cifar10"), ("resnet32", "cifar100"), ("vgg16", "cifar10"), ("resnet50", "imagenet")]}
test_eq(counts, {"lenet": 266_610, "resnet20": 272_474, "resnet32": 472_756, "vgg16": 14_728_266, "resnet50": 25_557_032})
lenet = build_model(ModelSpec("lenet"), INFO["mnist"])
test_eq(lenet.prunable_names(), ["fc_layers.0.weight", "fc_layers.1.weight"])
r20 = build_model(ModelSpec("resnet20"), INFO["cifar10"])
assert "fc.weight" in r20.prunable_names() and not any("bn" in n or "bias" in n for n in r20.prunable_names())
test_fail(lambda: build_model(ModelSpec("alexnet"), INFO["mnist"]), contains="unknown architecture")
counts

# %% [markdown]
# The width multiplier scales every hidden layer, so the parameter count falls roughly with width² (the input and
# output dimensions stay). Seeded initialisation is deterministic:

# %%
# OpenLTH's initialisation: BatchNorm weights in [0, 1) (not all 1), biases at PyTorch's default (not zero)
bn = [m for m in r20.modules() if isinstance(m, nn.BatchNorm2d)]
w = torch.cat([m.weight.detach() for m in bn])
assert (w >= 0).all() and (w < 1).all() and w.std() > 0.2 and all((m.bias == 0).all() for m in bn)
b0 = lenet.fc_layers[0].bias.detach()
assert (b0 != 0).all() and b0.abs().max() <= 1 / 784 ** 0.5
vgg = build_model(ModelSpec("vgg16", 0.25), INFO["cifar10"], seed=0)
assert all((m.bias != 0).any() for m in vgg.modules() if isinstance(m, nn.Conv2d))
# the first version's, for the runs stored before: BatchNorm weight 1, zero biases
old = build_model(ModelSpec("resnet20", init="legacy"), INFO["cifar10"])
assert all((m.weight == 1).all() for m in old.modules() if isinstance(m, nn.BatchNorm2d))
assert (build_model(ModelSpec("lenet", init="legacy"), INFO["mnist"]).fc_layers[0].bias == 0).all()

# %% [markdown]
# The two initialisations of a ResNet-20's BatchNorm weights and LeNet's first-layer biases:

# %%
import matplotlib.pyplot as plt
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
axes[0].hist(w.numpy(), bins=30, color="C0", label="openlth"); axes[0].axvline(1, color="C3", label="legacy")
axes[0].set_title("ResNet-20 BatchNorm weights", fontsize=9); axes[0].legend(fontsize=8)
axes[1].hist(b0.numpy(), bins=30, color="C0", label="openlth"); axes[1].axvline(0, color="C3", label="legacy")
axes[1].set_title("LeNet first-layer biases", fontsize=9); axes[1].legend(fontsize=8)
fig.tight_layout()

# %%
half = build_model(ModelSpec("resnet20", width=0.5), INFO["cifar10"])
test_eq(half.conv.out_channels, 8)
assert 0.2 < count_params(half) / counts["resnet20"] < 0.3
a, b = build_model(ModelSpec("lenet"), INFO["mnist"], seed=3), build_model(ModelSpec("lenet"), INFO["mnist"], seed=3)
test_eq(a.fc.weight.detach(), b.fc.weight.detach())
x = torch.randn(2, 3, 32, 32)
test_eq(build_model(ModelSpec("vgg16", 0.25), INFO["cifar10"])(x).shape, (2, 10))
test_eq(half(x).shape, (2, 10))
