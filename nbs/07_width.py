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
# # Width down-scaling
#
# > Dense models whose width shrinks by 0.8 per step (§5.2), and the equalized variant trained like one-shot pruning (App. I).

# %%
#| default_exp width

# %% [markdown]
# §5.2 isolates *size reduction* from the rest of pruning: "we train a sequence of dense models using the standard
# number of training epochs, where the next model in the sequence has 80% of the width of the model preceding it.
# This width scaling ratio mimics our sparsity schedule". Appendix I adds an **equalized** variant, which trains each
# down-scaled model "for the same number of gradient steps and using the same learning rate schedule as one-shot
# pruning": the standard run, then a second pass from the rewind epoch to the end, replaying the schedule.
#
# Both are plain IMP runs of the store with the `none` heuristic (nothing is removed): `levels=0` is standard
# training, `levels=1` replays the schedule once more from the rewind epoch — the one-shot pruning budget. So width
# runs share the store, the resume logic and the per-example outputs of every other run.
#
# The x-axis of Figures 11–13 is the number of weights *relative to the full-width model*: prunable weights of the
# down-scaled model over those of the full model.

# %%
#| export
from __future__ import annotations

from dataclasses import replace

import pandas as pd

import functools

import torch

from pruning_repro.config import Bench, ConfigError, ModelSpec, PruneSpec, RunKey, RunSpec
from pruning_repro.data import data_info
from pruning_repro.models import MODELS, count_params

# %%
#| hide
from fastcore.test import test_eq, test_close


# %%
#| export
def width_steps(bench: Bench, ratio: float | None = None) -> int:
    """Steps of the width down-scaling sequence ('WD', §5.2; ratio `ratio`, default the bench's
    `width_sequence_ratio`) that span the pruning range: the fewest whose last model has no more prunable weights than
    IMP's last level keeps (`(1 − fraction)^levels`), or, where the width cannot shrink the model that far (every
    hidden layer down to one unit), the first step there."""
    ratio = bench.width_sequence_ratio if ratio is None else ratio
    if not 0 < ratio < 1: raise ConfigError(f"width ratio must be in (0, 1), got {ratio}")
    d, target = bench.data.dataset, 100 * (1 - bench.prune.fraction) ** bench.prune.levels
    base, floor = _prunable(bench.model, d), _prunable(replace(bench.model, width=1e-9), d)
    k = 0
    while True:
        k += 1
        n = _prunable(replace(bench.model, width=bench.model.width * ratio ** k), d)
        if 100 * n / base <= target or n == floor: return k

def width_specs(bench: Bench, noise: float, seed: int, steps: int | None = None, ratio: float | None = None,
                equalized: bool = False) -> dict[RunKey, RunSpec]:
    """Specs of the width sequence 1, r, r², ... (`steps` + 1 models): r the bench's `width_sequence_ratio` (0.8 on
    the paper's benches, §5.2), `steps` by default `width_steps(bench)`, so the sequence spans the weights-remaining
    range of the bench's IMP trajectory. Keyed `RunKey(algorithm='WD')` (the paper's name for width down-scaling), or
    'WS (equalized)' with `equalized`."""
    ratio = bench.width_sequence_ratio if ratio is None else ratio
    steps = width_steps(bench, ratio) if steps is None else steps
    # a width-k model trained once is the dense root (`imp.dense_root`) of its equalized variant, which only adds
    # the second cycle: both use the canonical dense PruneSpec
    prune = PruneSpec(levels=0, rewind_epoch=bench.prune.rewind_epoch)
    if equalized: prune = PruneSpec(strategy="none", fraction=bench.prune.fraction, levels=1, rewind="lr",
                                    rewind_epoch=bench.prune.rewind_epoch)
    out = {}
    for k in range(steps + 1):
        model = replace(bench.model, width=bench.model.width * ratio ** k)
        out[RunKey(bench.name, "WS (equalized)" if equalized else "WD", noise, seed, k=k)] = \
            bench.run_spec(noise, seed, model=model, prune=prune)
    return out

@functools.lru_cache(maxsize=None)
def _prunable(model: ModelSpec, dataset: str) -> int:
    "Prunable weights of `model` on `dataset`, counted on the meta device (no memory, no initialisation)."
    with torch.device("meta"): m = MODELS[model.arch](data_info(dataset), model.width)
    return count_params(m, m.prunable_names())

def weights_remaining(spec: RunSpec, reference_width: float = 1.0) -> float:
    "Prunable weights of `spec`'s model as a % of the same architecture at `reference_width`."
    d = spec.data.dataset
    return 100 * _prunable(spec.model, d) / _prunable(replace(spec.model, width=reference_width), d)

def width_results(results: dict[str, pd.DataFrame], specs: dict[str, RunSpec]) -> pd.DataFrame:
    "One row per width model (its final level), with noise, seed, width and % weights remaining."
    rows = []
    for k, df in results.items():
        s = specs[k]
        rows.append(df.iloc[-1].to_dict() | {"noise": s.data.noise, "seed": s.seed, "width": s.model.width,
                                             "weights_remaining": weights_remaining(s)})
    return pd.DataFrame(rows).sort_values(["noise", "seed", "width"], ascending=[True, True, False]).reset_index(drop=True)


# %% [markdown]
# ## Training time equalized (App. I)
#
# App. I compares width down-scaling with **one-shot pruning** at equal training: one-shot pruning removes, in one
# step from the trained dense model, as many weights as the k-th width lacks, then retrains once (the dense model
# plus one cycle); the equalized width-k model trains for the same two cycles (`width_specs(equalized=True)`: EDT of
# the width-k model for one level). `results.equalized_models` reads both families from the store into one frame.

# %%
#| export
def oneshot_runs(b: Bench, noise: float, seed: int) -> dict[RunKey, RunSpec]:
    "One-shot pruning (App. I) to the size of each down-scaled width (k ≥ 1 of `width_specs`)."
    from pruning_repro.imp import oneshot_spec
    return {RunKey(b.name, "one-shot", noise, seed, k=k): oneshot_spec(b.run_spec(noise, seed), weights_remaining(ws) / 100)
            for k, ws in enumerate(width_specs(b, noise, seed).values()) if k > 0}



# %%
from pruning_repro.config import get_bench
_b = get_bench("lenet_mnist", "smoke")
_o = oneshot_runs(_b, 0.1, 0)
test_eq(len(_o), width_steps(_b))
test_eq({s.prune.levels for s in _o.values()}, {1})
test_close(1 - list(_o.values())[0].prune.fraction, weights_remaining(list(width_specs(_b, 0.1, 0).values())[1]) / 100)

# %% [markdown]
# LeNet-300-100's prunable weights are its two hidden layers (784·300 + 300·100); at width 0.8 they are
# 784·240 + 240·80 = 207,360 of 265,200 = 78.2%, close to the 80% of a pruning level; the square law makes later
# steps shrink faster than pruning's 0.8ᵏ only when both dimensions scale, which here the input dimension does not.

# %%
from pruning_repro.config import get_bench
b = get_bench("lenet_mnist")
sp = width_specs(b, 0.15, 0, steps=3)
test_eq([s.model.width for s in sp.values()], [1.0, 0.8, 0.64, 0.512])          # canonical: 0.8 ** 2 is 0.64
test_eq({s.prune.levels for s in sp.values()}, {0})
test_eq({s.prune.levels for s in width_specs(b, 0.15, 0, steps=1, equalized=True).values()}, {1})
test_close(weights_remaining(list(sp.values())[1]), 100 * 207_360 / 265_200, eps=1e-6)

# %% [markdown]
# **The sequence spans the pruning range.** §5.2 shrinks the width by 0.8 per step because "this width scaling ratio
# mimics our sparsity schedule, where the pruned model always has 80% of the remaining weights": the ratio is the
# fraction of weights a pruning level keeps (`Bench.width_sequence_ratio`: 0.8 on the paper's benches, 0.5 on `lenet_fashion`,
# which halves the weights per level). The number of steps is then the bench's, not the number of pruning levels: a
# conv net's weights fall with width² (0.64 per step at 0.8), LeNet's about linearly (the 784 inputs stay), so
# `width_steps` takes the fewest steps whose smallest model is at most as large as IMP's last level. On
# `lenet_fashion` the old default (0.8 over 9 steps) stopped at 13% of the weights while pruning reaches 0.2%.

# %%
rows = []
for name in ("lenet_fashion", "lenet_mnist", "resnet20_c10", "vgg16_c10", "resnet32_c100", "resnet50_imagenet"):
    bb = get_bench(name)
    last = list(width_specs(bb, 0.0, 0).values())[-1]
    rows.append({"bench": name, "ratio": bb.width_sequence_ratio, "steps": width_steps(bb),
                 "WD smallest (% weights)": weights_remaining(last, bb.model.width),
                 "IMP last level (% weights)": 100 * (1 - bb.prune.fraction) ** bb.prune.levels})
spans = pd.DataFrame(rows)
# every WD sequence reaches IMP's last level within one step's factor (LeNet stops where its layers are one unit wide)
for r in spans.itertuples():
    assert r._4 <= r._5 or r.bench == "lenet_fashion", r
    assert r._4 < 2 * r._5, r
test_eq(width_steps(get_bench("resnet20_c10")), 11)        # 0.64¹¹ = 0.73% ≤ 0.92% < 0.64¹⁰
old_last = weights_remaining(list(width_specs(get_bench("lenet_fashion"), 0.0, 0, steps=9, ratio=0.8).values())[-1])
assert old_last > 10                                        # the old default stopped near 12%
spans
pd.DataFrame({"width": [s.model.width for s in sp.values()], "% weights": [weights_remaining(s) for s in sp.values()]})
