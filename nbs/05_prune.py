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
# # Pruning: masks, weight-selection heuristics, sparsity accounting
#
# > Global pruning of a fraction of the remaining prunable weights, by a score that a heuristic assigns.

# %%
#| default_exp prune

# %% [markdown]
# IMP (§2, step 2) "removes a specified fraction of the smallest-magnitude remaining weights" — 20% per level,
# **globally** across all prunable tensors (OpenLTH's `sparse_global` strategy), so layers lose weights at different
# rates. Appendix J.2 swaps the magnitude score for other heuristics; here a heuristic is one function
# `(model, names, context) -> {name: score tensor}`, registered in `STRATEGIES`, and the rest (which weights survive,
# the bookkeeping) is shared:
#
# * only weights still alive (mask = 1) compete;
# * exactly `round(fraction · alive)` of them are removed: the lowest scores, ties broken by position;
# * a mask is a float 0/1 tensor per prunable parameter name.
#
# The "% weights remaining" on the x-axes of the paper's figures counts prunable weights.

# %%
#| export
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from pruning_repro.config import ConfigError

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close


# %%
#| export
def full_masks(model, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    "All-ones masks for the model's prunable tensors."
    params = dict(model.named_parameters())
    names = model.prunable_names() if names is None else names
    return {n: torch.ones_like(params[n], device="cpu") for n in names}

def density(masks: dict[str, torch.Tensor]) -> float:
    "Fraction of prunable weights remaining."
    total = sum(m.numel() for m in masks.values())
    return sum(float(m.sum()) for m in masks.values()) / total


# %% [markdown]
# ## Heuristics

# %%
#| export
def magnitude_scores(model: nn.Module, names: list[str], context: dict) -> dict[str, torch.Tensor]:
    "|w|: the magnitude heuristic of IMP."
    params = dict(model.named_parameters())
    return {n: params[n].detach().abs().cpu() for n in names}

def random_scores(model: nn.Module, names: list[str], context: dict) -> dict[str, torch.Tensor]:
    "Uniform random scores (iterative random pruning, App. C)."
    params, g = dict(model.named_parameters()), context["generator"]
    return {n: torch.rand(params[n].shape, generator=g) for n in names}

STRATEGIES: dict[str, Callable] = {"magnitude": magnitude_scores, "random": random_scores}

def register_strategy(name: str, fn: Callable) -> Callable:
    "Add a weight-selection heuristic `fn(model, names, context) -> {name: scores}`."
    STRATEGIES[name] = fn
    return fn


# %% [markdown]
# ## Global selection

# %%
#| export
def prune_masks(model: nn.Module, masks: dict[str, torch.Tensor], fraction: float, strategy: str = "magnitude",
                context: dict | None = None) -> dict[str, torch.Tensor]:
    "New masks with `round(fraction · alive)` more weights removed, the lowest-scoring among those alive, globally."
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown pruning strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    if not 0 < fraction < 1: raise ConfigError(f"prune fraction must be in (0, 1), got {fraction}")
    names = list(masks)
    scores = STRATEGIES[strategy](model, names, context or {})
    flat_s = torch.cat([scores[n].flatten().float() for n in names])
    flat_m = torch.cat([masks[n].flatten() for n in names]).bool()
    alive = flat_m.nonzero().squeeze(1)
    k = int(round(fraction * alive.numel()))
    new = flat_m.clone()
    if k > 0:
        # stable sort so that equal scores are removed in position order
        order = torch.sort(flat_s[alive], stable=True).indices
        new[alive[order[:k]]] = False
    out, i = {}, 0
    for n in names:
        sz = masks[n].numel()
        out[n] = new[i:i + sz].view_as(masks[n]).float(); i += sz
    return out


# %% [markdown]
# Checks on a hand-made model: the global threshold takes the smallest magnitudes wherever they are, pruned weights
# never come back, and the count is exact.

# %%
class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2, bias=False); self.b = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[0.1, -2.0], [3.0, 0.05]])); self.b.weight.copy_(torch.tensor([[-0.2, 1.0]]))
    def prunable_names(self): return ["a.weight", "b.weight"]

m = Two()
ms = full_masks(m)
m1 = prune_masks(m, ms, 0.5)   # 6 alive -> remove 3: 0.05, 0.1, 0.2
test_eq(m1["a.weight"], torch.tensor([[0., 1.], [1., 0.]])); test_eq(m1["b.weight"], torch.tensor([[0., 1.]]))
test_close(density(m1), 0.5)
m2 = prune_masks(m, m1, 0.34)  # 3 alive -> remove 1: 1.0
test_eq(m2["b.weight"], torch.tensor([[0., 0.]])); test_eq(m2["a.weight"], m1["a.weight"])
test_fail(lambda: prune_masks(m, ms, 0.2, "oracle"), contains="unknown pruning strategy")
r = prune_masks(m, ms, 0.5, "random", {"generator": torch.Generator().manual_seed(0)})
test_eq(int(sum(v.sum() for v in r.values())), 3)

# %% [markdown]
# Twenty levels of 20% leave 0.8²⁰ ≈ 1.15% of the weights, the range of the paper's x-axes:

# %%
from pruning_repro.models import LeNet
net = LeNet(784, 10)
masks = full_masks(net)
dens = []
for _ in range(20):
    masks = prune_masks(net, masks, 0.2); dens.append(density(masks))
assert abs(dens[-1] - 0.8 ** 20) < 1e-4
[f"{d:.2%}" for d in dens[::4]]
