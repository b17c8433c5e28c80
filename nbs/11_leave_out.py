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
# # Leave-out retraining
#
# > Dense models retrained without the examples pruning improved (App. D) or without those the sparse model gets wrong (App. E).

# %%
#| default_exp leave_out

# %% [markdown]
# Two experiments test what the pruning-affected examples do to generalization:
#
# * **App. D — top improved examples (TIE) vs random (RND).** Rank training examples by how much pruning (to a chosen
#   level) *lowered* their loss relative to the dense model, leave out the top K% (K = 20 in §3), and retrain a dense
#   model; compare with leaving out a random set of the same size. If the improved examples matter, TIE hurts more.
# * **App. E — dense-subset models.** Train a dense model only on the examples the optimally sparse model predicts
#   correctly (on the labels used for training). "Since training only on a dataset subset changes the number of
#   gradient steps an epoch takes, we increase the total number of epochs so that the total number of gradient steps
#   taken remains the same": here each epoch of the subset run is given exactly the dense run's steps per epoch
#   (`TrainSpec.steps_per_epoch`), which keeps both the step count and the learning-rate schedule identical.
#
# * **App. K.2 — top-worsened examples (S_TW vs S_Rand).** Rank examples by how much pruning to a level *raised* their
#   loss; from a random (N − P) examples, build S_TW by adding the P top-worsened ones and S_Rand by adding P random
#   others (N = 40%, P = 1% of the training set, after Paul et al.), and train a dense model on each. If pruning
#   helps by not fitting harmful examples, S_TW generalizes worse.
#
# All are dense runs of the store (`levels = 0`) whose `DataSpec.exclude_ids` lists the left-out examples by their
# stable ids; the label noise is drawn before the exclusion, so every kept example has the label it had in the
# pruning run.

# %%
#| export
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from pruning_repro.config import ConfigError, RunSpec, derive_seed
from pruning_repro.store import Store

# %%
#| hide
from fastcore.test import test_eq
from pruning_repro.runtime import Platform, using


# %%
#| export
def dense_spec(spec: RunSpec) -> RunSpec:
    "The standard dense run of `spec` (level 0 only)."
    return replace(spec, prune=replace(spec.prune, levels=0))

def _excluding(spec: RunSpec, ids, steps_per_epoch: int | None = None) -> RunSpec:
    ids = tuple(sorted(int(i) for i in ids))
    s = replace(dense_spec(spec), data=replace(spec.data, exclude_ids=ids))
    if steps_per_epoch is not None: s = replace(s, train=replace(s.train, steps_per_epoch=steps_per_epoch))
    return s

def tie_rnd_specs(spec: RunSpec, store: Store, level: int, fraction: float = 0.2) -> dict[str, RunSpec]:
    """Dense retraining without the top `fraction` of examples whose loss pruning to `level` lowered most (TIE), and
    without a random set of the same size (RND, drawn by the run's seed)."""
    if not 0 < fraction < 1: raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    ids = store.load_extra(spec, "data")["train_ids"]
    change = store.load_per_example(spec, level)["train_loss"] - store.load_per_example(spec, 0)["train_loss"]
    k = int(round(fraction * len(ids)))
    tie = ids[torch.argsort(change, stable=True)[:k]]                      # most negative change first
    g = torch.Generator().manual_seed(derive_seed(spec.seed, f"rnd:{level}:{fraction!r}"))
    rnd = ids[torch.randperm(len(ids), generator=g)[:k]]
    return {"TIE": _excluding(spec, tie.tolist()), "RND": _excluding(spec, rnd.tolist())}

def dense_subset_spec(spec: RunSpec, store: Store, level: int) -> RunSpec:
    "A dense run on the examples the model at `level` classifies correctly, with the dense run's step count."
    ids = store.load_extra(spec, "data")["train_ids"]
    correct = store.load_per_example(spec, level)["train_correct"]
    if bool(correct.all()): raise ConfigError(f"the model at level {level} fits every training example: nothing to leave out")
    steps = -(-len(ids) // spec.train.batch_size)
    return _excluding(spec, ids[~correct].tolist(), steps_per_epoch=steps)


def top_worsened_specs(spec: RunSpec, store: Store, level: int, size: float = 0.4, top: float = 0.01) -> dict[str, RunSpec]:
    """App. K.2: dense runs on a `size` subsample holding the `top` fraction of examples whose loss pruning to `level`
    raised most (TW) or as many random others (Rand), on the same random base (drawn by the run's seed)."""
    if not (0 < top < size < 1): raise ConfigError(f"need 0 < top < size < 1, got top={top}, size={size}")
    ids = store.load_extra(spec, "data")["train_ids"]
    n = len(ids)
    change = store.load_per_example(spec, level)["train_loss"] - store.load_per_example(spec, 0)["train_loss"]
    p, m = max(1, int(round(top * n))), int(round(size * n))
    tw = torch.argsort(-change, stable=True)[:p]                           # most positive change first
    rest = torch.ones(n, dtype=torch.bool); rest[tw] = False
    g = torch.Generator().manual_seed(derive_seed(spec.seed, f"tw:{level}:{size!r}:{top!r}"))
    others = torch.nonzero(rest).flatten()[torch.randperm(int(rest.sum()), generator=g)]
    base, extra = others[:m - p], others[m - p:m]
    keep = {"TW": torch.cat([base, tw]), "Rand": torch.cat([base, extra])}
    out = {}
    for k, idx in keep.items():
        drop = torch.ones(n, dtype=torch.bool); drop[idx] = False
        out[k] = _excluding(spec, ids[drop].tolist())
    return out


# %% [markdown]
# A run of the store with hand-made per-example results shows the selection: the TIE set is the examples with the
# largest loss decrease, RND has the same size, and the dense-subset run keeps the full run's steps per epoch.

# %%
import tempfile
from pruning_repro.config import get_bench
spec = get_bench("lenet_mnist", "smoke").run_spec(0.1, 0)
with tempfile.TemporaryDirectory() as tmp:
    st = Store(tmp)
    ids = torch.arange(100, 110)
    st.save_extra(spec, "data", {"train_ids": ids})
    dense_loss = torch.ones(10)
    sparse_loss = torch.tensor([1.0, 0.1, 1.0, 0.5, 1.2, 1.0, 0.2, 1.0, 1.0, 1.0])
    correct = torch.tensor([True] * 8 + [False] * 2)
    for lv, loss in ((0, dense_loss), (1, sparse_loss)):
        st.save_level(spec, lv, {"val_err": 0.1}, {"train_loss": loss, "train_correct": correct}, {}, {})
    tr = tie_rnd_specs(spec, st, 1, fraction=0.2)
    test_eq(tr["TIE"].data.exclude_ids, (101, 106))
    test_eq(len(tr["RND"].data.exclude_ids), 2)
    ds = dense_subset_spec(spec, st, 1)
    test_eq(ds.data.exclude_ids, (108, 109))
    test_eq(ds.train.steps_per_epoch, -(-10 // spec.train.batch_size))
    test_eq((ds.prune.levels, tr["TIE"].prune.levels), (0, 0))
    kw = top_worsened_specs(spec, st, 1, size=0.5, top=0.1)            # 5 of 10 kept; the 1 most worsened: id 104
    kept = {k: set(ids.tolist()) - set(v.data.exclude_ids) for k, v in kw.items()}
    test_eq([len(v) for v in kept.values()], [5, 5])
    assert 104 in kept["TW"] and 104 not in kept["Rand"] and len(kept["TW"] & kept["Rand"]) == 4


# %% [markdown]
# ## The examples themselves (App. K.1, Figure 16)
#
# K.1 shows the 20 examples most worsened, most improved and least affected by pruning to the sparsities of Table 4
# (`analysis.example_selection_levels`), "averag[ing] the per-example training loss across selected sparsities and
# across independent runs". Every seed has its own validation split, so an example is averaged over the seeds whose
# training set holds it (`analysis.seed_mean_changes`), then ranked (`analysis.rank_examples`). `loss_changes` reads a
# run's changes, `example_images` the images, training labels and the models' majority prediction of chosen ids.

# %%
#| export
def loss_changes(spec: RunSpec, store: Store, levels) -> tuple[np.ndarray, np.ndarray]:
    "The training examples' ids of `spec` and their loss change (level − dense) at each of `levels`: [levels × examples]."
    ids = store.load_extra(spec, "data")["train_ids"].numpy()
    dense = store.load_per_example(spec, 0)["train_loss"]
    return ids, np.stack([(store.load_per_example(spec, lv)["train_loss"] - dense).numpy() for lv in levels])

def example_images(specs, store: Store, ids, levels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images and training labels of the examples `ids` (from the first of `specs`, one run per seed, whose training
    set holds each: under label noise each seed has its own labels, so the label is that run's), with the majority
    prediction of the models at `levels` of every run that trains on it."""
    from pruning_repro.data import load_data
    from pruning_repro.models import build_model
    ids = [int(i) for i in ids]
    x, y, votes = {}, {}, {i: [] for i in ids}
    for spec in specs:
        data = load_data(spec.data, spec.seed, "cpu")
        pos = {int(e): j for j, e in enumerate(data.train.ids.tolist())}
        mine = [i for i in ids if i in pos]
        if not mine: continue
        idx = torch.tensor([pos[i] for i in mine])
        xs = data.train.images(idx)         # in-memory rows, or ImageNet's evaluation views decoded from the files
        for i, xi, yi in zip(mine, xs, data.train.y[idx]):
            if i not in x: x[i], y[i] = xi, int(yi)
        for lv in levels:
            m = build_model(spec.model, data.info)
            m.load_state_dict(store.load_state(spec, lv)[0]); m.eval()
            with torch.no_grad(): pred = m(xs).argmax(1)
            for i, p in zip(mine, pred.tolist()): votes[i].append(p)
    missing = [i for i in ids if i not in x]
    if missing: raise ConfigError(f"examples {missing[:5]} are in none of the given runs' training sets")
    return (torch.stack([x[i] for i in ids]), torch.tensor([y[i] for i in ids]),
            torch.tensor([torch.tensor(votes[i]).mode().values.item() for i in ids]))


# %% [markdown]
# The images come from the split, whatever its kind: on ImageNet (here a tiny tree of generated files and a narrow
# ResNet-50 stored as the dense model) they are the evaluation views decoded from the files.

# %%
from pruning_repro.config import ModelSpec
from pruning_repro.data import data_info, load_data
from pruning_repro.formats import write_imagefolder
from pruning_repro.models import build_model
with tempfile.TemporaryDirectory() as tmp, using(Platform(data=tmp)):
    write_imagefolder(tmp, n_train=3, n_val=1, classes=2, size=(48, 64))
    b = get_bench("resnet50_imagenet", "smoke")
    spec = b.run_spec(0.0, 0, data=replace(b.data, n_val=2), model=ModelSpec("resnet50", width=0.0625))
    st, net = Store(tmp + "/store"), build_model(spec.model, data_info("imagenet")).eval()
    st.save_level(spec, 0, {"val_err": 0.5}, {}, net.state_dict(), {})
    data = load_data(spec.data, spec.seed)
    x, y, pred = example_images([spec], st, data.train.ids[[2, 0]], levels=[0])
    test_eq((x, y), (data.train.images([2, 0]), data.train.y[[2, 0]]))
    with torch.no_grad(): test_eq(pred, net(x).argmax(1))
