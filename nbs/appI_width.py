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
# # App. I Pruning vs width down-scaling — Figures 11, 12, 13 and Table 3
#
# §5.2 found that width down-scaling (WD) generalizes like pruning under label noise. App. I looks closer:
#
# * **Fig. 11** — the §5.2 curves per noise level: IMP with LR rewinding (LRR) vs WD, test error vs weights.
# * **Fig. 12** — with training time equalized: **one-shot pruning** (train, prune to the target size at once,
#   retrain once) vs WD models trained for the same steps with the same cyclic schedule (two cycles). One-shot
#   targets are the sizes of the down-scaled widths, so every pair has the same number of weights.
# * **Fig. 13** — loss(algorithm) − loss(standard dense) per EL2N subgroup at each algorithm's optimal size.
# * **Table 3** — Jaccard similarity of the 10% of examples whose training loss each algorithm changes most
#   (relative to the dense model); two random 10% sets have about 0.05. The paper: 0.11–0.74, well above chance.
#
# ```
# papermill nbs/appI_width.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# ```

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
subgroups = 20              # M, the number of EL2N-percentile subgroups
top = 0.1                   # the fraction of most-affected examples compared by Jaccard similarity

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import (jaccard, jaccard_chance, ms_text, optimal_key, stats, subgroup_deltas, summarize,
                                    top_fraction)
from pruning_repro.el2n import el2n_scores
from pruning_repro.paper import paper_table
from pruning_repro.plots import fig_algorithm_curves, fig_subgroups, save_figure, save_table
from pruning_repro.results import algorithm_frames
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_section
from pruning_repro.results import equalized_models

load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appI_width", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
if not 0 < float(top) < 1: raise ValueError(f"top must be a fraction in (0, 1), got {top!r}")
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) IMP, WD, one-shot pruning, equalized WD and the EL2N models

# %%
t0 = time.time()
train_section("appI_width", B, seeds, noise_levels, store, runtime, trained)
frames = algorithm_frames(B, noise_levels, seeds, store, ("LR rewinding", "WD"))
eq = equalized_models(B, noise_levels, seeds, store)
scores = {(p, s): el2n_scores(B.run_spec(p, s), store, B.el2n_models, B.el2n_fraction, runtime=runtime).numpy()
          for p in noise_levels for s in seeds}
print(f"{len(eq)} equalized models ready in {time.time() - t0:.0f} s")


# %% [markdown]
# ## Figures 11 and 12

# %%
def per_noise(curves_of, title, name):
    fig, axes = plt.subplots(1, len(noise_levels), figsize=(4.6 * len(noise_levels), 3.8), squeeze=False)
    for ax, p in zip(axes[0], noise_levels):
        fig_algorithm_curves(curves_of(p), "weights_remaining", f"{p:.0%} label noise", by_noise=False, ax=ax)
    fig.suptitle(title); fig.tight_layout()
    save_figure(fig, out, name)
    return fig

lr_c = summarize(frames["LR rewinding"], ("test_err", "val_err"))
width_c = summarize(frames["WD"], ("test_err", "val_err"), by=("noise", "width"))
fig11 = per_noise(lambda p: {"LRR": lr_c[lr_c.noise == p], "WD": width_c[width_c.noise == p]},
                  f"Fig. 11 — {bench}: pruning (LRR) vs width down-scaling (WD)", "fig11_lrr_vs_wd")
fig11

# %%
eq_c = {a: summarize(g.assign(level=g.k), ("test_err", "val_err")) for a, g in eq.groupby("algorithm")}
fig12 = per_noise(lambda p: {a: c[c.noise == p] for a, c in eq_c.items()},
                  f"Fig. 12 — {bench}: one-shot pruning (□) vs width down-scaling (o), training time equalized",
                  "fig12_oneshot_vs_ws_equalized")
save_table(pd.concat([c.assign(algorithm=a) for a, c in eq_c.items()]), out, "fig12_oneshot_vs_ws_equalized",
           f"{bench}: test error of one-shot pruning and equalized width down-scaling per size (k), {len(seeds)} seeds")
fig12

# %% [markdown]
# ## Figure 13 and Table 3: what each algorithm does to the training examples at its optimal size
#
# Per noise level and algorithm, the optimal size is the one (k ≥ 1: the full-size model changes nothing) with the
# lowest validation error averaged over seeds — one size per noise level, as for pruning. Each seed's model of that
# size: its per-example training loss minus the standard dense model's gives the subgroup deltas (Fig. 13) and the
# top-10% most changed examples (|Δ loss|, Table 3).

# %%
reduced = eq[eq.k >= 1]
best_k = {key: optimal_key(g, "k") for key, g in reduced.groupby(["noise", "algorithm"])}
sub_rows, jac_rows = [], []
for (p, s), g in reduced.groupby(["noise", "seed"]):
    base = store.load_per_example(B.run_spec(p, s), 0)["train_loss"].numpy()
    tops = {}
    for a, ga in g.groupby("algorithm"):
        best = ga[ga.k == best_k[(p, a)]].iloc[0]
        loss = store.load_per_example(best.spec, best.level)["train_loss"].numpy()
        for j, d in enumerate(subgroup_deltas(loss, base, scores[(p, s)], subgroups)):
            sub_rows.append(dict(algorithm=a, noise=p, seed=s, subgroup=j, delta=d,
                                 weights_remaining=best.weights_remaining, test_err=best.test_err))
        tops[a] = top_fraction(np.abs(loss - base), top)
    a, b = tops.values()
    jac_rows.append(dict(noise=p, seed=s, jaccard=jaccard(a, b), chance=jaccard_chance(len(a), len(base))))
sub, jac = pd.DataFrame(sub_rows), pd.DataFrame(jac_rows)

fig13, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for ax, (a, g) in zip(axes, sub.groupby("algorithm")):
    fig_subgroups(g, f"{a} at its optimal size", ax=ax, ylabel="loss(algorithm) − loss(dense)")
fig13.suptitle(f"Fig. 13 — {bench}: subgroup loss change at the optimal sparsity / width"); fig13.tight_layout()
save_figure(fig13, out, "fig13_subgroup_loss_oneshot_vs_ws")
fig13

# %%
table3 = pd.DataFrame([{"noise": p, **stats("jaccard", g.jaccard), "chance": g.chance.mean(), "n_seeds": g.seed.nunique()}
                       for p, g in jac.groupby("noise")])
table3["above_chance"] = table3.jaccard_mean > 2 * table3.chance
save_table(table3, out, "table03_jaccard_pruning_vs_width",
           f"{bench}: Jaccard similarity of the top {top:.0%} examples most affected by one-shot pruning and by "
           f"width down-scaling (optimal sizes), {len(seeds)} seeds")
display(table3)
print(f"Paper, Table 3 ({B.paper_label}):"); display(paper_table(3, B.family))

# %% [markdown]
# ## What this bench shows

# %%
lines = []
for p in noise_levels:
    e = reduced[reduced.noise == p]
    best = e[[k == best_k[(p, a)] for a, k in zip(e.algorithm, e.k)]].groupby("algorithm").test_err
    t = table3[table3.noise == p].iloc[0]
    lines.append(f"- {p:.0%} noise: optimal one-shot {100 * best.mean()['one-shot']:.2f}% vs equalized WS "
                 f"{100 * best.mean()['WS (equalized)']:.2f}% test error; Jaccard of the top-{top:.0%} affected sets "
                 f"{ms_text(t.jaccard_mean, t.jaccard_std)} vs chance {t.chance:.3f} — {'well above' if t.above_chance else 'not clearly above'} chance.")
display(Markdown("\n".join(lines)))
