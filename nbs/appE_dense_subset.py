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
# # App. E Leaving out noisy examples — Figure 10 and Table 8
#
# §4: at the optimal sparsity under label noise, pruning raises the training loss of a subgroup made mostly of
# noisy examples. A hyperparameter-free way to raise the dense model's loss on the same examples is to leave out
# the examples the sparse model misclassifies: a **dense-subset** model is a dense model trained only on the
# examples the model of a pruning level classifies correctly, for the same number of gradient steps (each epoch is
# given the full data set's step count, so the learning-rate schedule is unchanged). The paper: dense-subset test
# error tracks the sparse models' across sparsities, and the optimal dense-subset model matches or beats the
# optimally sparse one (Fig. 10, Table 8).
#
# ```
# papermill nbs/appE_dense_subset.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# ```

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: the bench's noisy levels (App. E is about label noise)
figures_dir = None          # None: the checkout's figures/; outputs go to <figures_dir>/<bench>[_<scale>]/
store_dir = None            # None: $PRUNING_REPRO_STORE or ~/.pruning_repro/store
precision = None            # None: the bench's (fp32); "bf16": bfloat16 autocast (GPUs), outputs in <bench>_bf16/
runtime = None              # how to train: runtime.Runtime's fields, e.g. {"workers": 2} (None: from $PRUNING_REPRO_*)
trained = False             # True: the command executing this notebook has just trained its runs (not checked again)

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import dense_subset_table
from pruning_repro.paper import paper_table
from pruning_repro.plots import noise_colors, pct_axis, save_figure, save_table
from pruning_repro.rules import claim_line
from pruning_repro.results import dependent_frame
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_with_retrainings

load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appE_dense_subset", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) IMP, then one dense-subset model per level, the dense level 0 included
#
# A level whose model classifies every training example correctly leaves nothing out: it has no dense-subset model.

# %%
t0 = time.time()
imp, subsets, traj = train_with_retrainings("appE_dense_subset", B, seeds, noise_levels, store, runtime, trained)
ds = dependent_frame(subsets, store, traj)
print(f"{len(imp)} trajectories and {len(subsets)} dense-subset models ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 10: dense-subset models (circles, solid) vs sparse models (squares, dashed)

# %%
fig10, ax = plt.subplots(figsize=(6, 4))
cols = noise_colors(noise_levels)
for p in noise_levels:
    s = traj[traj.noise == p].groupby("level").agg(m=("test_err", "mean"), w=("weights_remaining", "mean"))
    ax.plot(s.w, 100 * s.m, "--s", ms=3.5, color=cols[p], lw=1, label=f"sparse, {p:.0%}")
    d = ds[ds.noise == p].groupby("level").agg(m=("test_err", "mean"), sd=("test_err", "std"), w=("weights_remaining", "mean"))
    if len(d): ax.errorbar(d.w, 100 * d.m, 100 * d.sd.fillna(0), fmt="-o", ms=3.5, capsize=2, color=cols[p],
                           label=f"dense-subset, {p:.0%}")
pct_axis(ax); ax.set_ylabel("test error (%)")
ax.set_title(f"Fig. 10 — {bench}: dense-subset (o) vs sparse (□) models", fontsize=10); ax.legend(fontsize=7, ncol=2)
fig10.tight_layout()
save_figure(fig10, out, "fig10_dense_subset_vs_sparse")
fig10

# %% [markdown]
# ## Table 8: dense vs optimal, for pruning (LR) and dense-subset (DS) models
#
# "0% sparsity" is the model at level 0: the dense model for LR, and for DS the dense-subset model that leaves out what
# the dense model misclassifies. "Optimal": the level with the lowest validation error averaged over seeds, every
# level (0 included) a candidate, each seed's model at that level reported. `verdict`: the match rule on DS optimal −
# LR optimal (`analysis.dense_subset_table`).

# %%
table8 = dense_subset_table(traj, ds)
save_table(table8, out, "table08_dense_subset", f"{bench}: test error (%) of pruning (LR) and dense-subset (DS) models, {len(seeds)} seeds")
display(table8)
print(f"Paper, Table 8 ({B.paper_label}):")
display(paper_table(8, B.family))

# %% [markdown]
# ## What this bench shows

# %%
lines = [claim_line("App. E", table8)]
for r in table8.itertuples():
    if r.verdict == "n/a": lines.append(f"- {r.noise:.0%} noise: no level leaves an example out."); continue
    lines.append(f"- {r.noise:.0%} noise: optimal dense-subset {r.DS_optimal_test_err_mean:.2f}% vs optimally sparse "
                 f"{r.LR_optimal_test_err_mean:.2f}% ({r.verdict}, {r.diff_mean:+.2f}): the dense-subset model "
                 f"{'matches or beats' if r.verdict == 'match' or r.diff_mean < 0 else 'falls behind'} pruning "
                 f"(paper: matches or beats it on every benchmark).")
display(Markdown("\n".join(lines)))
