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

from pruning_repro.config import Bench, PruneSpec, RunSpec
from pruning_repro.data import data_info
from pruning_repro.models import build_model, count_params

# %%
#| hide
from fastcore.test import test_eq, test_close


# %%
#| export
def width_specs(bench: Bench, noise: float, seed: int, steps: int | None = None, ratio: float = 0.8,
                equalized: bool = False) -> dict[str, RunSpec]:
    "Specs of the width sequence 1, ratio, ratio², ... (`steps` + 1 models; default: as many as pruning levels)."
    steps = bench.prune.levels if steps is None else steps
    # a width-k model trained once is the dense root (`imp.dense_root`) of its equalized variant, which only adds
    # the second cycle: both use the canonical dense PruneSpec
    prune = PruneSpec(levels=0, rewind_epoch=bench.prune.rewind_epoch)
    if equalized: prune = PruneSpec(strategy="none", fraction=bench.prune.fraction, levels=1, rewind="lr",
                                    rewind_epoch=bench.prune.rewind_epoch)
    out = {}
    for k in range(steps + 1):
        model = replace(bench.model, width=bench.model.width * ratio ** k)
        out[f"{bench.name}/wd{'-eq' if equalized else ''}/p={noise:g}/seed={seed}/k={k}"] = \
            bench.run_spec(noise, seed, model=model, prune=prune)
    return out

def weights_remaining(spec: RunSpec, reference_width: float = 1.0) -> float:
    "Prunable weights of `spec`'s model as a % of the same architecture at `reference_width`."
    info = data_info(spec.data.dataset)
    def n(w):
        m = build_model(replace(spec.model, width=w), info)
        return count_params(m, m.prunable_names())
    return 100 * n(spec.model.width) / n(reference_width)

def width_results(results: dict[str, pd.DataFrame], specs: dict[str, RunSpec]) -> pd.DataFrame:
    "One row per width model (its final level), with noise, seed, width and % weights remaining."
    rows = []
    for k, df in results.items():
        s = specs[k]
        rows.append(df.iloc[-1].to_dict() | {"noise": s.data.noise, "seed": s.seed, "width": s.model.width,
                                             "weights_remaining": weights_remaining(s)})
    return pd.DataFrame(rows).sort_values(["noise", "seed", "width"], ascending=[True, True, False]).reset_index(drop=True)


# %% [markdown]
# LeNet-300-100's prunable weights are its two hidden layers (784·300 + 300·100); at width 0.8 they are
# 784·240 + 240·80 = 207,360 of 265,200 = 78.2%, close to the 80% of a pruning level; the square law makes later
# steps shrink faster than pruning's 0.8ᵏ only when both dimensions scale, which here the input dimension does not.

# %%
from pruning_repro.config import get_bench
b = get_bench("lenet_mnist")
sp = width_specs(b, 0.15, 0, steps=3)
test_eq([s.model.width for s in sp.values()], [1.0, 0.8, 0.8 ** 2, 0.8 ** 3])
test_eq({s.prune.levels for s in sp.values()}, {0})
test_eq({s.prune.levels for s in width_specs(b, 0.15, 0, steps=1, equalized=True).values()}, {1})
test_close(weights_remaining(list(sp.values())[1]), 100 * 207_360 / 265_200, eps=1e-6)
pd.DataFrame({"width": [s.model.width for s in sp.values()], "% weights": [weights_remaining(s) for s in sp.values()]})
