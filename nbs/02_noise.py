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
# # Random label noise
#
# > The paper's noise model (§4): p% of the examples, each moved to one of the *other* classes uniformly at random.

# %%
#| default_exp noise

# %% [markdown]
# §4, *Method*: "We inject p% random label noise by selecting p% examples uniformly at random and changing the label of
# each example to one of the other labels in the dataset sampled uniformly at random. [...] We sample and fix the
# random labels before each independent run of an experiment."
#
# Two details matter for the analyses that follow:
#
# * the number of noisy examples is **exactly** `round(p·n)`, not a Bernoulli draw, so the noisy partition has the
#   same size on every seed;
# * a noisy label is **never** the original one: adding an offset drawn uniformly from `1..C-1` modulo `C` gives
#   each of the other `C-1` classes probability `1/(C-1)`.
#
# The function returns the noisy labels *and* the boolean mask of corrupted examples: Figure 4 and Table 11 split
# the training loss by that mask (noisy vs original partition). Everything is a tensor operation: no Python work
# per example.

# %%
#| export
from __future__ import annotations

import torch

from pruning_repro.config import ConfigError, check_noise, derive_seed

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %%
#| export
def add_label_noise(labels: torch.Tensor, p: float, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    "Relabel exactly round(p·n) examples, each to a different class drawn uniformly. Returns (noisy labels, mask)."
    p = check_noise(p)
    if num_classes < 2: raise ConfigError(f"label noise needs at least 2 classes, got {num_classes}")
    labels = torch.as_tensor(labels, dtype=torch.long)
    n = labels.numel()
    k = int(round(p * n))
    g = torch.Generator().manual_seed(derive_seed(seed, f"noise:{p!r}"))
    chosen = torch.randperm(n, generator=g)[:k]
    offset = torch.randint(1, num_classes, (k,), generator=g)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + offset) % num_classes
    mask = torch.zeros(n, dtype=torch.bool)
    mask[chosen] = True
    return noisy, mask


# %% [markdown]
# Checks: the exact fraction, never the same label, determinism per seed, a different draw for another seed, and
# p = 0 leaves the labels untouched.

# %%
y = torch.arange(10).repeat(1000)
ny, m = add_label_noise(y, 0.15, 10, seed=0)
test_eq(int(m.sum()), 1500)
test_eq(bool((ny[m] != y[m]).all()), True)
test_eq(bool((ny[~m] == y[~m]).all()), True)
ny2, m2 = add_label_noise(y, 0.15, 10, seed=0)
test_eq(ny2, ny); test_eq(m2, m)
test_eq(bool((add_label_noise(y, 0.15, 10, seed=1)[1] == m).all()), False)
test_eq(add_label_noise(y, 0.0, 10, seed=0)[0], y)
test_fail(lambda: add_label_noise(y, 1.0, 10, 0), contains="[0, 1)")

# %% [markdown]
# The new labels are uniform over the other classes: with 60% noise on 10,000 examples of class 0, each of the nine
# other classes receives about 6,000 / 9 ≈ 667 of them.

# %%
ny, m = add_label_noise(torch.zeros(10_000, dtype=torch.long), 0.6, 10, seed=3)
counts = torch.bincount(ny[m], minlength=10)
test_eq(int(counts[0]), 0)
assert (counts[1:] - 6000 / 9).abs().max() < 4 * (6000 / 9) ** 0.5, counts
counts
