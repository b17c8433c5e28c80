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
# # Tutorial: the paper's analysis on your own model
#
# > A data set and a model that are not in the paper, label noise, IMP with LR and weight rewinding, extended dense training, width down-scaling, EL2N subgroups and the paper's match rule — in a few minutes on a CPU.
#
# Everything below uses the package's public pieces; nothing here is specific to the paper's benchmarks. The data set
# is 3,000 examples of MNIST-1D (generated, no download) and the model a small 1-D convolutional network — neither
# is in the paper. Registrations made in a notebook live in this process: we train with one worker here; to train
# with several processes or on Slurm, put the same calls in a module and name it with `--plugins` (`19_plugins`).

# %%
import tempfile
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from torch import nn
from fastcore.test import test_eq

from pruning_repro.algorithms import algorithm_runs, versus_table
from pruning_repro.results import algorithm_frames, results_table
from pruning_repro.analysis import generalization_table, optimal_level_of_mean, study_subgroup_deltas, summarize, trajectories
from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, register
from pruning_repro.data import DataInfo, load_raw, register_dataset
from pruning_repro.el2n import el2n_scores
from pruning_repro.executors import run_many
from pruning_repro.runtime import Runtime
from pruning_repro.models import register_model
from pruning_repro.plots import fig_algorithm_curves, fig_subgroups, fig_test_error, to_markdown
from pruning_repro.store import Store
from pruning_repro.sweep import imp_runs


# %% [markdown]
# ## 1. Your data set, your model, your bench
#
# A data set is a function returning training and test tensors (already normalised) and its `DataInfo`; a model is
# any `nn.Module` factory of `(info, width)` — the paper's rule picks the prunable tensors (conv and linear weights;
# here the output layer is pruned too). A bench bundles them with the training and pruning recipe: 8 epochs of Adam
# per level, half of the remaining weights pruned per level, 5 levels (3% of the weights left).

# %%
def mnist1d_3k(n_generated):
    x, y, xt, yt = load_raw("mnist1d", 3000)          # the generator of MNIST-1D, 3,000 examples
    return x, y, xt, yt

def cnn1d(info, width):
    c = max(1, round(32 * width))
    return nn.Sequential(nn.Conv1d(1, c, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(c, c, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(4), nn.Flatten(),
                         nn.Linear(4 * c, info.num_classes))

register_dataset("tutorial_mnist1d", DataInfo(10, (1, 40), (0.0,), (1.0,)), mnist1d_3k)
register_model("tutorial_cnn1d", cnn1d, prune_output=True, output_name="7")
B = register(Bench(name="tutorial", data=DataSpec("tutorial_mnist1d", n_val=300), model=ModelSpec("tutorial_cnn1d"),
                   train=TrainSpec(epochs=8, batch_size=64, optimizer="adam", lr=3e-3),
                   prune=PruneSpec(fraction=0.5, levels=5), noise_levels=(0.0, 0.3), family="M-LeNet",
                   description="tutorial: a 1-D CNN on 3,000 MNIST-1D examples", embedded=True,
                   el2n_models=2, el2n_fraction=0.25))
SEEDS, NOISE, store = (0, 1), B.noise_levels, Store(tempfile.mkdtemp())

# %% [markdown]
# ## 2. Train: IMP (LR and weight rewinding), extended dense training, width down-scaling, EL2N models
#
# `algorithm_runs` names the runs of each registered learning algorithm; `run_many` trains what the store lacks
# (all seven algorithm families share each dense model). The store keeps every level, so running this cell again
# trains nothing.

# %%
names = ["LR rewinding", "weight rewinding", "EDT", "WD"]
runs = {k: v for p in NOISE for r in algorithm_runs(B, p, SEEDS, names).values() for k, v in r.items()}
run_many(runs, store, workers=1, progress=False)
frames = algorithm_frames(B, NOISE, SEEDS, store, names)
test_eq(sorted(frames["LR rewinding"].level.unique()), list(range(6)))
len(runs)

# %% [markdown]
# ## 3. Does pruning beat the dense model under label noise? (§4, Fig. 3, Table 6)
#
# One optimal sparsity per noise level, chosen on the validation error averaged over seeds; "differ" is the paper's
# match rule on the per-seed differences.

# %%
traj = frames["LR rewinding"]
summary = summarize(traj)
fig_test_error(summary, optimal_level_of_mean(summary), "tutorial: test error vs sparsity")

# %%
gen = generalization_table(traj)
print(to_markdown(gen))
test_eq(list(gen.noise), [0.0, 0.3])

# %% [markdown]
# ## 4. Learning algorithms side by side (App. C, §5, App. J)

# %%
fig_algorithm_curves({n: summarize(frames[n], ("test_err", "val_err"), by=("noise", "width") if n == "WD" else
                                   ("noise", "level")) for n in names}, "weights_remaining", "tutorial, by noise")

# %%
print(to_markdown(versus_table(frames, names, NOISE, B.family)))

# %% [markdown]
# ## 5. Which examples does pruning change? EL2N subgroups (§3, Fig. 5)
#
# EL2N scores from `el2n_models` partially trained replicas; the loss change of the optimally sparse model against
# the dense one, per EL2N-percentile subgroup.

# %%
imp = imp_runs(B, SEEDS, [0.3])
scores = {k: el2n_scores(v, store, B.el2n_models, B.el2n_fraction, Runtime(workers=1), key=k).numpy() for k, v in imp.items()}
deltas = study_subgroup_deltas(imp, store, scores, "optimal")
fig_subgroups(deltas, "tutorial, 30% noise: loss(optimal) − loss(dense)") if len(deltas) else "dense is optimal"

# %% [markdown]
# ## 6. Results out of the store
#
# Every stored level of the study as one tidy frame (`pruning-repro export` writes the same as CSV or Parquet).

# %%
res = results_table(B, store, ["sec5_isolating"], SEEDS)
res[["algorithm", "noise", "seed", "k", "level", "density", "test_err", "spec.model.width"]].head()
