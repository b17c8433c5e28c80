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
# # §4 Generalization improvement from additional regularization — Figures 3, 4, 5 and Table 11
#
# With random label noise, IMP with learning-rate rewinding produces sparse models that generalize better than the
# dense model (Figure 3), and at the optimal sparsity the training loss of the *noisy* examples rises far above that
# of the *original* ones (Figure 4, Table 11). This notebook regenerates both figures and the table for one bench:
#
# ```
# papermill nbs/sec4_noise.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# papermill nbs/sec4_noise.ipynb out.ipynb -p bench resnet20_c10 -p scale smoke
# ```
#
# It trains only the trajectories the run store lacks (one per noise level and seed), so a rerun trains nothing.

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: the bench's own levels
figures_dir = None          # None: the checkout's figures/; outputs go to <figures_dir>/<bench>[_<scale>]/
store_dir = None            # None: $PRUNING_REPRO_STORE or ~/.pruning_repro/store
precision = None            # None: the bench's (fp32); "bf16": bfloat16 autocast (GPUs), outputs in <bench>_bf16/
runtime = None              # how to train: runtime.Runtime's fields, e.g. {"workers": 2} (None: from $PRUNING_REPRO_*)
trained = False             # True: the command executing this notebook has just trained its runs (not checked again)

# %%
import time
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import (generalization_table, optimal_level_of_mean, partition_table, subgroup_extremes,
                                    summarize, trajectories)
from pruning_repro.rules import claim_line
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import imp_runs, train_section
from pruning_repro.paper import paper_ranges, paper_table6, paper_table11
from pruning_repro.plots import fig_partition_loss, fig_test_error, save_figure, save_table

# bad parameters or missing data: one clear error, nothing written
load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "sec4_noise", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
print(f"{B.name} ({B.description}) at scale {scale!r}: noise {noise_levels}, seeds {seeds}, "
      f"{B.prune.levels} pruning levels, {B.train.epochs} epochs per level -> {out}")

# %% [markdown]
# ## Train (or load) the trajectories

# %%
t0 = time.time()
train_section("sec4_noise", B, seeds, noise_levels, store, runtime, trained)  # IMP + EL2N models
specs = imp_runs(B, seeds, noise_levels)
df = trajectories({k: store.results(v) for k, v in specs.items()}, specs)
summary = summarize(df)
optimal = optimal_level_of_mean(summary)
print(f"{len(specs)} trajectories (and their EL2N models) ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 3: test error vs % weights remaining

# %%
fig3 = fig_test_error(summary, optimal, f"Fig. 3 — {bench}: test error vs sparsity")
save_figure(fig3, out, "fig03_test_error_vs_sparsity")
fig3

# %% [markdown]
# ## Figure 4: training loss on noisy (solid) and original (dashed) examples

# %%
if any(p > 0 for p in noise_levels):
    fig4 = fig_partition_loss(summary, optimal, f"Fig. 4 — {bench}: train loss, noisy vs original")
    save_figure(fig4, out, "fig04_train_loss_noisy_vs_original")
    display(fig4)

# %% [markdown]
# ## Generalization: dense vs optimally sparse (the paper's Table 6, LR rewinding rows)

# %%
gen = generalization_table(df).assign(**paper_ranges(B.family))   # the family's optimum range, for C1
save_table(gen, out, "table06_dense_vs_optimal_test_error", f"{bench}: test error (%) of dense vs optimally sparse (LR rewinding)")
save_table(summary, out, "fig03_fig04_curves", f"{bench}: per-level means and stds over seeds", digits=4)
display(gen)
print(f"Paper, Table 6 ({B.paper_label}), test error %:")
display(paper_table6(B.family))

# %% [markdown]
# ## Table 11: training loss on the noisy / original partitions, dense vs optimally sparse

# %%
if any(p > 0 for p in noise_levels):
    t11 = partition_table(df)
    save_table(t11, out, "table11_partition_loss",
               f"{bench}: cross-entropy on noisy/original partitions, dense vs optimally sparse")
    display(t11)
    print(f"Paper, Table 11 ({B.paper_label}):")
    display(paper_table11(B.family))

# %% [markdown]
# ## Figure 5: subgroup loss difference at the optimal sparsity, per noise level
#
# For the 20 EL2N-percentile subgroups (EL2N on the noisy labels used for training, from the bench's N models trained
# K% of the time): mean training loss of the optimally sparse model minus the dense model's. The paper: with noise
# the optimum *raises* training loss, most on high-EL2N (influential, often mislabeled) examples.

# %%
from pruning_repro.analysis import study_subgroup_deltas
from pruning_repro.el2n import el2n_scores
from pruning_repro.plots import fig_subgroups

noisy_specs = {k: v for k, v in specs.items() if v.data.noise > 0}
if noisy_specs:
    el2n = {k: el2n_scores(v, store, B.el2n_models, B.el2n_fraction, runtime=runtime).numpy()
            for k, v in noisy_specs.items()}
    fig5_frame = study_subgroup_deltas(noisy_specs, store, el2n, "optimal")
    if len(fig5_frame):
        fig5 = fig_subgroups(fig5_frame, f"Fig. 5 — {bench}: loss(optimally sparse) − loss(dense) per EL2N subgroup")
        save_figure(fig5, out, "fig05_subgroup_loss_noise")
        t5 = (fig5_frame.groupby(["noise", "subgroup"]).agg(delta_mean=("delta", "mean"), delta_std=("delta", "std"),
                                                            weights_remaining=("weights_remaining", "mean"))
              .reset_index())
        save_table(t5, out, "fig05_subgroup_loss_noise", f"{bench}: mean (sparse − dense) train loss per EL2N subgroup")
        display(fig5)
    else: print("Fig. 5: at every noisy level the seed-averaged validation error picks the dense model: no sparse optimum.")

# %% [markdown]
# ## What this bench shows
#
# The claims this section decides (their rules: `rules.CLAIMS`), and Fig. 5's concentration on high-EL2N examples.

# %%
lines = [claim_line("C1", gen)]
if any(p > 0 for p in noise_levels): lines.append(claim_line("C3", t11))
if noisy_specs and len(fig5_frame):
    for r in subgroup_extremes(fig5_frame, ("noise",)).itertuples():
        lines.append(f"- Fig. 5, {r.noise:.0%} noise: loss change top-20% EL2N {r.top_delta:+.3f}, bottom-80% "
                     f"{r.bottom_delta:+.3f} — increase concentrated on high-EL2N examples: "
                     f"{'holds' if r.top_delta > 0 and r.top_delta > abs(r.bottom_delta) else 'does not hold'}.")
display(Markdown("\n".join(lines)))
