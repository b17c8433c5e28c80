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

# %%

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
# papermill nbs/appE_dense_subset.ipynb out.ipynb -p bench lenet_fashion
# ```

# %% tags=["parameters"]
bench = "lenet_fashion"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: the bench's noisy levels (App. E is about label noise)
figures_dir = None          # None: the checkout's figures/; outputs go to <figures_dir>/<bench>[_<scale>]/
workers = None              # training processes (None: one per core)
store_dir = None            # None: $PRUNING_REPRO_STORE or ~/.pruning_repro/store

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import compare, mean_std, optimal_rows
from pruning_repro.cli import section_setup
from pruning_repro.paper import paper_table
from pruning_repro.plots import _noise_colors, _pct_axis, save_figure, save_table
from pruning_repro.store import Store
from pruning_repro.sweep import dependent_frame, section_noise, train_with_retrainings

B, seeds, given, out = section_setup(bench, scale, seeds, noise_levels, figures_dir)
noise_levels = section_noise("appE_dense_subset", B, given if noise_levels is not None else None)
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) IMP, then one dense-subset model per level, the dense level 0 included
#
# A level whose model classifies every training example correctly leaves nothing out: it has no dense-subset model.

# %%
t0, store = time.time(), Store(store_dir)
imp, subsets, traj = train_with_retrainings("appE_dense_subset", B, seeds, noise_levels, store, workers)
ds = dependent_frame(subsets, store, traj)
print(f"{len(imp)} trajectories and {len(subsets)} dense-subset models ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 10: dense-subset models (circles, solid) vs sparse models (squares, dashed)

# %%
fig10, ax = plt.subplots(figsize=(6, 4))
cols = _noise_colors(noise_levels)
for p in noise_levels:
    s = traj[traj.noise == p].groupby("level").agg(m=("test_err", "mean"), w=("weights_remaining", "mean"))
    ax.plot(s.w, 100 * s.m, "--s", ms=3.5, color=cols[p], lw=1, label=f"sparse, {p:.0%}")
    d = ds[ds.noise == p].groupby("level").agg(m=("test_err", "mean"), sd=("test_err", "std"), w=("weights_remaining", "mean"))
    if len(d): ax.errorbar(d.w, 100 * d.m, 100 * d.sd.fillna(0), fmt="-o", ms=3.5, capsize=2, color=cols[p],
                           label=f"dense-subset, {p:.0%}")
_pct_axis(ax); ax.set_ylabel("test error (%)")
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
# LR optimal.

# %%
rows = []
for p in noise_levels:
    t = traj[traj.noise == p]; d = ds[ds.noise == p]
    lr_dense, lr_opt = t[t.level == 0].sort_values("seed"), optimal_rows(t)
    row = {"noise": p, "LR, 0% sparsity": mean_std(lr_dense.test_err, 100), "LR, optimal": mean_std(lr_opt.test_err, 100),
           "LR optimal weights remaining": mean_std(lr_opt.weights_remaining, digits=1)}
    if len(d) == 0:
        rows.append({**row, "DS, 0% sparsity": "", "DS, optimal": "", "diff (DS − LR)": float("nan"), "verdict": "n/a"}); continue
    d0, d_opt = d[d.level == 0].sort_values("seed"), optimal_rows(d)
    both = lr_opt[lr_opt.seed.isin(d_opt.seed)]
    c = compare(d_opt.test_err.to_numpy(), both.test_err.to_numpy())
    rows.append({**row, "DS, 0% sparsity": mean_std(d0.test_err, 100) if len(d0) else "",
                 "DS, optimal": mean_std(d_opt.test_err, 100),
                 "DS optimal weights remaining": mean_std(d_opt.weights_remaining, digits=1),
                 "diff (DS − LR)": round(100 * c["diff_mean"], 2), "verdict": c["verdict"]})
table8 = pd.DataFrame(rows)
save_table(table8, out, "table08_dense_subset", f"{bench}: test error (%) of pruning (LR) and dense-subset (DS) models, {len(seeds)} seeds")
display(table8)
print(f"Paper, Table 8 ({B.paper_label}):")
display(paper_table(8, B.family))

# %% [markdown]
# ## What this bench shows

# %%
lines = []
for r in table8.to_dict("records"):
    if r["verdict"] == "n/a": lines.append(f"- {r['noise']:.0%} noise: no level leaves an example out."); continue
    d = r["diff (DS − LR)"]
    lines.append(f"- {r['noise']:.0%} noise: optimal dense-subset {r['DS, optimal']} vs optimally sparse {r['LR, optimal']} "
                 f"({r['verdict']}, {d:+.2f}): the dense-subset model "
                 f"{'matches or beats' if r['verdict'] == 'match' or d < 0 else 'falls behind'} pruning "
                 f"(paper: matches or beats it on every benchmark).")
display(Markdown("\n".join(lines)))
