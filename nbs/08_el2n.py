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
# # EL2N scores
#
# > Each training example's influence on generalization, estimated early in training (Paul et al. 2021; App. B.3).

# %%
#| default_exp el2n

# %% [markdown]
# Appendix B.3: "we first train N of a model for K% of the total training time to obtain partially trained weights
# θₙ, n = 1..N. Subsequently, we compute the EL2N score for each image-label pair (x, y) as
# (1/N) Σₙ ‖p_θₙ(x) − y‖₂, where y is the one-hot label and p_θₙ(x) the softmax output." N = 10 and K = 10 follow
# Paul et al. (ImageNet: N = 22 in the paper's text; our registry keeps 10 unless a bench overrides it).
#
# Here:
#
# * the N models are **replicas** of the run (`RunSpec.replica` = 1..N): the same split and the same noisy labels
#   (the label *used* for training is the `y` of the score), a different initialisation and data order each, and
#   none the run itself (replica 0), whose per-example losses the scores are compared with;
# * each is trained for `round(K% · epochs)` epochs (at least one) with the bench's schedule — its first K% — and
#   stored like any run, so the N models are trained once;
# * scores are computed, as data_diet does, in eval mode on unaugmented training examples, in large batches, and kept
#   in the store beside the base run (`el2n_n{N}_k{K}`).

# %%
#| export
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from pruning_repro.config import ConfigError, RunKey, RunSpec
from pruning_repro.data import load_data
from pruning_repro.executors import run_many
from pruning_repro.imp import record_data
from pruning_repro.placement import run_device
from pruning_repro.runtime import Runtime
from pruning_repro.models import build_model
from pruning_repro.store import CorruptRun, Store
from pruning_repro.train import eval_batch_size

# %%
#| hide
from fastcore.test import test_eq, test_close


# %%
#| export
def el2n_of(model: torch.nn.Module, split, batch_size: int | None = None,
            input_shape: tuple | None = None) -> torch.Tensor:
    """‖softmax(f(x)) − onehot(y)‖₂ of every example of `split` (eval mode, no augmentation), on the CPU. The batch
    (`train.eval_batch_size`) is sized for the inputs' shape: `input_shape`, else a resident split's own — without it
    a GPU would be asked for 2048 examples, too many ResNet-50 activations at 224²."""
    was = model.training
    model.eval()
    out = []
    if input_shape is None and hasattr(split, "x"): input_shape = tuple(split.x.shape[1:])
    batch_size = batch_size or eval_batch_size(model, input_shape)
    with torch.inference_mode():
        for xb, yb, _ in split.batches(batch_size, shuffle=False, augment=False):
            p = F.softmax(model(xb).float(), dim=1)
            p[torch.arange(len(yb), device=p.device), yb] -= 1
            out.append(p.norm(dim=1).cpu())
    model.train(was)
    return torch.cat(out)


# %% [markdown]
# A perfect, confident model scores 0; a model that outputs the uniform distribution scores √(1 − 1/C) on every
# example; a confidently wrong one √2.

# %%
from pruning_repro.tensors import TensorSplit
y = torch.tensor([0, 1, 2, 1])
split = TensorSplit(torch.eye(3)[y], y, torch.arange(4))
class Lookup(torch.nn.Module):
    def __init__(self, scale): super().__init__(); self.scale = scale
    def forward(self, x): return self.scale * x
test_close(el2n_of(Lookup(100.0), split), torch.zeros(4), eps=1e-6)
test_close(el2n_of(Lookup(0.0), split), torch.full((4,), (1 - 1 / 3) ** 0.5), eps=1e-6)
wrong = TensorSplit(torch.eye(3)[[1]], torch.tensor([0]), torch.arange(1))   # confidently predicts class 1, label 0
test_close(el2n_of(Lookup(100.0), wrong), torch.tensor([2 ** 0.5]), eps=1e-6)


# %%
#| export
def el2n_specs(spec: RunSpec, n_models: int = 10, fraction: float = 0.1) -> dict[int, RunSpec]:
    "The N partially trained replicas of `spec` whose scores are averaged: {model index: RunSpec}."
    if n_models < 1: raise ConfigError(f"n_models must be >= 1, got {n_models}")
    if not 0 < fraction <= 1: raise ConfigError(f"fraction of training must be in (0, 1], got {fraction}")
    epochs = max(1, int(round(fraction * spec.train.epochs)))
    train = replace(spec.train, epochs=epochs)
    prune = replace(spec.prune, levels=0, rewind_epoch=0, strategy="none", rewind="lr")
    base = replace(spec, train=train, prune=prune)
    # replicas 1..N: streams of init and data order distinct from the run whose examples they score (replica 0),
    # so no EL2N model is the first epochs of the dense model it is compared with
    return {n: replace(base, replica=n + 1) for n in range(n_models)}


# %% [markdown]
# The replicas share the data of the base run and differ from each other only in their random streams:

# %%
from pruning_repro.config import get_bench
base = get_bench("resnet20_c10").run_spec(0.3, seed=1)
reps = list(el2n_specs(base).values())
test_eq(len(reps), 10)
test_eq({r.train.epochs for r in reps}, {16})                      # 10% of 160 epochs
test_eq({(r.data, r.seed) for r in reps}, {(base.data, base.seed)})
test_eq(len({r.hash() for r in reps}), 10)
# no replica shares the init or data-order stream of the run it scores (replica 0): none is its first epochs
assert base.stream("init") not in {r.stream("init") for r in reps}
assert not {base.stream("order:0")} & {r.stream("order:0") for r in reps}
b = get_bench("resnet50_imagenet")
test_eq({r.train.epochs for r in el2n_specs(b.run_spec(0.15, 0), b.el2n_models, b.el2n_fraction).values()}, {20})


# %%
#| export
def el2n_keys(spec: RunSpec, n_models: int, key: RunKey | None = None) -> list[RunKey]:
    """The study keys of `spec`'s EL2N models, one per model index: `key` (the run's place in a study) with algorithm
    'EL2N' and `k` the index; without a key, the run named by its hash's first 8 characters."""
    key = key or RunKey(f"run {spec.hash()[:8]}", "LR rewinding", spec.data.noise, spec.seed)
    return [replace(key, algorithm="EL2N", k=n) for n in range(n_models)]


# %%
test_eq([str(k) for k in el2n_keys(get_bench("lenet_mnist1d").run_spec(0.2, 1), 2,
                                   RunKey("lenet_mnist1d", "LR rewinding", 0.2, 1))],
        ["lenet_mnist1d/EL2N/p=0.2/seed=1/k=0", "lenet_mnist1d/EL2N/p=0.2/seed=1/k=1"])


# %%
#| export
def el2n_scores(spec: RunSpec, store: Store | None = None, n_models: int = 10, fraction: float = 0.1,
                runtime: Runtime | None = None, key: RunKey | None = None) -> torch.Tensor:
    """EL2N score of every training example of `spec` (on the labels used), computed once and stored. Its models
    train under `el2n_keys(spec, n_models, key)`: `key`, the run's place in a study, with algorithm 'EL2N' and the
    model's index, as a section's sweep names them; `runtime` says how (its device and workers)."""
    store = store or Store()
    el2n_specs(spec, n_models, fraction)               # validates before anything is written
    name = f"el2n_n{n_models}_k{fraction:g}"
    store.init_run(spec)
    if store.has_extra(spec, name):
        try: return store.load_extra(spec, name)["el2n"]
        except CorruptRun: pass                                   # recompute below
    specs = el2n_specs(spec, n_models, fraction)
    run_many(dict(zip(el2n_keys(spec, n_models, key), specs.values())), store, runtime=runtime)
    device = torch.device(run_device(spec, runtime and runtime.device))   # where the scoring runs: as the models trained
    data = load_data(spec.data, spec.seed, device)
    record_data(spec, store, data)
    total = torch.zeros(len(data.train))
    for s in specs.values():
        model = build_model(s.model, data.info).to(device)
        model.load_state_dict(store.load_state(s, 0)[0])
        total += el2n_of(model, data.train, input_shape=data.info.input_shape)
    scores = total / n_models
    store.save_extra(spec, name, {"el2n": scores})
    return scores
