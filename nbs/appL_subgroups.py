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
# # App. L Learning algorithms and subgroup training loss — Figures 18, 19, 20
#
# §3 looked at pruning's effect on the training loss of EL2N-percentile subgroups at two sparsities; App. L shows it
# at five evenly spaced sparsities per noise level (Fig. 18), and the same for extended dense training at five
# evenly spaced training times (Fig. 19) and width down-scaling at five evenly spaced widths (Fig. 20), always
# relative to the standard dense model. The paper: pruning **lowers** subgroup losses at low sparsity (better
# training) and **raises** them at high sparsity (regularization) — the claim C4; EDT only lowers them; WD only
# raises them.
#
# ```
# papermill nbs/appL_subgroups.ipynb out.ipynb -p bench lenet_fashion_e60_l5
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
milestones = 5              # evenly spaced sparsities / training times / widths shown

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import subgroup_deltas, subgroup_extremes
from pruning_repro.el2n import el2n_scores
from pruning_repro.plots import fig_subgroups, save_figure, save_table
from pruning_repro.rules import claim_line
from pruning_repro.algorithms import algorithm_runs
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_section
from pruning_repro.width import weights_remaining, width_steps

load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appL_subgroups", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
if int(subgroups) < 2 or int(milestones) < 1: raise ValueError("subgroups must be >= 2 and milestones >= 1")
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) pruning, EDT, WD and the EL2N models

# %%
t0 = time.time()
train_section("appL_subgroups", B, seeds, noise_levels, store, runtime, trained)
scores = {(p, s): el2n_scores(B.run_spec(p, s), store, B.el2n_models, B.el2n_fraction, runtime=runtime).numpy()
          for p in noise_levels for s in seeds}
print(f"ready in {time.time() - t0:.0f} s")


# %% [markdown]
# ## Subgroup deltas at evenly spaced milestones
#
# Pruning and EDT: levels 1 … L, evenly spaced; WD: widths k = 1 … K of its own sequence (the k-th width is r^k,
# `width.width_steps` steps spanning the same weights-remaining range as pruning), evenly spaced. The reference is
# always the standard dense model (IMP level 0) of the same noise level and seed. `milestone` numbers the columns.

# %%
def evenly(last): return sorted({int(round(x)) for x in np.linspace(1, last, int(milestones))}) if last else []
steps, width_ks = evenly(B.prune.levels), evenly(width_steps(B))
rows = []
for p in noise_levels:
    runs = algorithm_runs(B, p, seeds)
    for s in seeds:
        dense_spec = B.run_spec(p, s)
        base = store.load_per_example(dense_spec, 0)["train_loss"].numpy()
        of = lambda name: {key.k: spec for key, spec in runs[name].items() if key.seed == s}
        members = {"pruning": [(k, of("LR rewinding")[None], k) for k in steps],
                   "EDT": [(k, of("EDT")[None], k) for k in steps],
                   "WD": [(k, of("WD")[k], 0) for k in width_ks]}
        for algo, lst in members.items():
            for i, (k, spec, level) in enumerate(lst):
                loss = store.load_per_example(spec, level)["train_loss"].numpy()
                m = store.metrics(spec, level)
                wr = 100 * m["density"] if algo != "WD" else weights_remaining(spec)
                for j, d in enumerate(subgroup_deltas(loss, base, scores[(p, s)], subgroups)):
                    rows.append(dict(algorithm=algo, noise=p, seed=s, milestone=i, step=k, subgroup=j, delta=d,
                                     weights_remaining=wr, test_err=m["test_err"], epochs_total=m["epochs_total"]))
deltas = pd.DataFrame(rows)


# %%
def grid(algo, fig_no, caption, name):
    d = deltas[deltas.algorithm == algo]
    cols = sorted(d.milestone.unique())
    fig, axes = plt.subplots(len(noise_levels), len(cols), figsize=(3.3 * len(cols), 2.6 * len(noise_levels)),
                             squeeze=False, sharey="row")
    for i, p in enumerate(noise_levels):
        for j, k in enumerate(cols):
            g = d[(d.noise == p) & (d.milestone == k)]
            tt = (f"TT={g.epochs_total.mean() / B.train.epochs:.0f}×" if algo == "EDT" else f"WR={g.weights_remaining.mean():.3g}%")
            fig_subgroups(g, f"{p:.0%}: E={100 * g.test_err.mean():.2f}%, {tt}", ax=axes[i, j], ylabel="Δ loss")
            axes[i, j].get_legend().remove(); axes[i, j].title.set_fontsize(8)
    fig.suptitle(f"Fig. {fig_no} — {bench}: {caption} (rows: noise levels)"); fig.tight_layout()
    save_figure(fig, out, name)
    return fig

fig18 = grid("pruning", 18, "pruning's effect on subgroup training loss", "fig18_subgroups_pruning")
fig18

# %%
fig19 = grid("EDT", 19, "extended dense training's effect on subgroup training loss", "fig19_subgroups_edt")
fig19

# %%
fig20 = grid("WD", 20, "width down-scaling's effect on subgroup training loss", "fig20_subgroups_wd")
fig20

# %% [markdown]
# ## The numbers behind the figures, and C4
#
# Per algorithm, noise level and milestone: the mean change of the training loss over all examples (mean over
# seeds), over the top 20% and the bottom 80% of the EL2N subgroups (§3's statistic), and how many of the subgroups
# are lower / higher than dense (App. L's "almost all example subgroups": C4 asks 18 of 20).

# %%
keys = ["algorithm", "noise", "milestone", "step"]
summ = (deltas.groupby(keys).agg(weights_remaining=("weights_remaining", "mean"),
                                 training_time=("epochs_total", lambda e: e.mean() / B.train.epochs),
                                 test_err=("test_err", lambda e: 100 * e.mean())).reset_index()
        .merge(subgroup_extremes(deltas, keys), on=keys))
save_table(summ, out, "tableL_subgroup_loss_change",
           f"{bench}: training-loss change vs the dense model per algorithm and milestone, {len(seeds)} seeds")
display(summ)

# %% [markdown]
# ## What this bench shows

# %%
lines = [claim_line("C4", summ)]
for p in noise_levels:
    e = summ[(summ.algorithm == "EDT") & (summ.noise == p)]; w = summ[(summ.algorithm == "WD") & (summ.noise == p)]
    lines.append(f"- {p:.0%} noise: EDT lowers the loss at {(e.mean_delta < 0).sum()} of {len(e)} training times "
                 f"(paper: all); WD raises it at {(w.mean_delta > 0).sum()} of {len(w)} widths (paper: all).")
display(Markdown("\n".join(lines)))
