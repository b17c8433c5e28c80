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
# # §1 Introduction — Figure 1: pruning vs augmented training (1a), and loss by EL2N subgroup (1b)
#
# **Fig. 1a.** The *augmented training algorithm* is IMP with LR rewinding modified to no longer remove weights:
# the dense model is retrained with the replayed schedule as many times as IMP has levels (this package's EDT,
# §5.1). Plotted level by level, pruning's x-axis is % weights remaining (bottom) and augmented training's is
# training epochs (top). The paper (VGG-16, CIFAR-10): augmented training generalizes like pruning over a range of
# sparsities (shaded) — so size reduction alone does not explain pruning's benefit.
#
# **Fig. 1b.** Loss(sparse) − loss(dense) per EL2N-percentile subgroup at a low sparsity (left: the optimum) and at
# a high one (right: the sparsest level still better than dense by the match rule). The paper: at low sparsity pruning *lowers*
# training loss, most on influential (high-EL2N) examples; at high sparsity it *raises* it, again most on them.
#
# ```
# papermill nbs/sec1_intro.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# ```

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: no label noise, as in Figure 1
figures_dir = None          # None: the checkout's figures/; outputs go to <figures_dir>/<bench>[_<scale>]/
store_dir = None            # None: $PRUNING_REPRO_STORE or ~/.pruning_repro/store
precision = None            # None: the bench's (fp32); "bf16": bfloat16 autocast (GPUs), outputs in <bench>_bf16/
runtime = None              # how to train: runtime.Runtime's fields, e.g. {"workers": 2} (None: from $PRUNING_REPRO_*)
trained = False             # True: the command executing this notebook has just trained its runs (not checked again)
subgroups = 20              # M, the number of EL2N-percentile subgroups

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import paired_by_level, study_subgroup_deltas, subgroup_extremes
from pruning_repro.el2n import el2n_scores
from pruning_repro.plots import fig_subgroups, save_figure, save_table
from pruning_repro.rules import claim_line
from pruning_repro.results import algorithm_frames
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import imp_runs, train_section

# bad parameters or missing data: one clear error, nothing written
load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "sec1_intro", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
if int(subgroups) < 2: raise ValueError(f"subgroups must be >= 2, got {subgroups!r}")
p0 = noise_levels[0]
print(f"{B.name} at scale {scale!r}: noise {p0:.0%}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) IMP, augmented training (EDT) and the EL2N models

# %%
t0 = time.time()
train_section("sec1_intro", B, seeds, [p0], store, runtime, trained)
frames = algorithm_frames(B, [p0], seeds, store, ("LR rewinding", "EDT"))
imp = imp_runs(B, seeds, [p0])
scores = {k: el2n_scores(v, store, B.el2n_models, B.el2n_fraction, runtime=runtime).numpy() for k, v in imp.items()}
print(f"ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 1a: pruning (squares, bottom axis) vs augmented training (circles, top axis)
#
# Shaded: the pruned levels (not the shared dense model) where the two match under the paper's rule (per-seed
# difference |mean| < std).

# %%
lr, edt = frames["LR rewinding"], frames["EDT"]
pair = paired_by_level(edt, lr)
s_lr = lr.groupby("level").agg(m=("test_err", "mean"), s=("test_err", "std"), w=("weights_remaining", "mean"))
s_edt = edt.groupby("level").agg(m=("test_err", "mean"), s=("test_err", "std"), e=("epochs_total", "mean"))
fig1a, ax = plt.subplots(figsize=(6, 4))
for lv in pair[(pair.verdict == "match") & (pair.level > 0)].level: ax.axvspan(lv - 0.5, lv + 0.5, color="C2", alpha=0.15, lw=0)
ax.errorbar(s_lr.index, 100 * s_lr.m, 100 * s_lr.s.fillna(0), fmt="-s", ms=4, capsize=2, label="pruning (LR rewinding)")
ax.errorbar(s_edt.index, 100 * s_edt.m, 100 * s_edt.s.fillna(0), fmt="--o", ms=4, capsize=2, label="augmented training")
ax.set_xticks(s_lr.index); ax.set_xticklabels([f"{w:.3g}" for w in s_lr.w], rotation=45, fontsize=7)
ax.set_xlabel("% weights remaining (pruning)"); ax.set_ylabel("test error (%)")
top = ax.secondary_xaxis("top"); top.set_ticks(s_edt.index); top.set_xticklabels([f"{e:.0f}" for e in s_edt.e], fontsize=7)
top.set_xlabel("training epochs (augmented training)")
ax.set_title(f"Fig. 1a — {bench}, {p0:.0%} noise", fontsize=10); ax.legend(fontsize=8)
fig1a.tight_layout()
save_figure(fig1a, out, "fig01a_pruning_vs_augmented_training")
fig1a_table = pair.rename(columns={"a_mean": "augmented_test_err_mean", "a_std": "augmented_test_err_std",
                                   "b_mean": "pruning_test_err_mean", "b_std": "pruning_test_err_std"})
fig1a_table["pruning_weights_remaining"] = fig1a_table.level.map(s_lr.w)   # the sparsity pruning reached at the level
save_table(fig1a_table, out, "fig01a_pruning_vs_augmented_training",
           f"{bench}: augmented training (EDT) − pruning test error (%) per level, {len(seeds)} seeds")
fig1a

# %% [markdown]
# ## Figure 1b: a low (optimal) and a high sparsity

# %%
opt = study_subgroup_deltas(imp, store, scores, "optimal", subgroups)
high = study_subgroup_deltas(imp, store, scores, "highest_better", subgroups)
fig1b, axes = plt.subplots(1, 2, figsize=(11, 3.6))
if len(opt): fig_subgroups(opt, f"low sparsity (optimal, {opt.weights_remaining.mean():.1f}% weights)", ax=axes[0])
else: axes[0].set_axis_off(); axes[0].set_title("the dense model is optimal (seed-mean validation error)")
if len(high):
    fig_subgroups(high, f"high sparsity (sparsest better than dense, {high.weights_remaining.mean():.1f}% weights)",
                  ax=axes[1])
else: axes[1].set_axis_off(); axes[1].set_title("no sparse level beats dense on test error")
fig1b.suptitle(f"Fig. 1b — {bench}: loss(sparse) − loss(dense) per EL2N subgroup")
fig1b.tight_layout()
save_figure(fig1b, out, "fig01b_subgroup_loss_low_high")
both = pd.concat([opt, high])
if len(both):
    save_table(both.groupby(["which", "subgroup"]).agg(delta_mean=("delta", "mean"), delta_std=("delta", "std"),
               weights_remaining=("weights_remaining", "mean"), n_seeds=("seed", "nunique")).reset_index(),
               out, "fig01b_subgroup_loss", f"{bench}: mean (sparse − dense) train loss per EL2N subgroup")
fig1b

# %% [markdown]
# ## What this bench shows

# %%
lines = [claim_line("Fig. 1a", fig1a_table)]
m = pair[(pair.verdict == "match") & (pair.level > 0)]   # level 0 is the same dense model for both
lines.append(f"- Fig. 1a: augmented training matches pruning at {len(m)} of {len(pair) - 1} pruned levels "
             f"(pruning at {', '.join(f'{s_lr.w[lv]:.3g}%' for lv in m.level)} weights); mean difference over all levels "
             f"{pair['diff_mean'].mean():+.2f} points. Paper (VGG-16): matching over a range of sparsities.")
for f, name, sign in ((opt, "low (optimal) sparsity", -1), (high, "high sparsity", +1)):
    if not len(f): lines.append(f"- Fig. 1b, {name}: no such level."); continue
    e = subgroup_extremes(f).iloc[0]; t, l = e.top_delta, e.bottom_delta
    ok = t * sign > 0 and abs(t) > abs(l)
    lines.append(f"- Fig. 1b, {name} ({f.weights_remaining.mean():.1f}% weights): top-20% EL2N {t:+.4f}, bottom-80% "
                 f"{l:+.4f}; the paper's {'decrease' if sign < 0 else 'increase'} concentrated on high-EL2N examples "
                 f"{'holds' if ok else 'does not hold'} here.")
display(Markdown("\n".join(lines)))
