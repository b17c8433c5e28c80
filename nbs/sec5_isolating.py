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
# # §5 Isolating extended training time and size reduction — Figures 6, 7 and Tables 5, 7
#
# Pruning with LR rewinding does two things at once: it trains longer (every level replays the schedule) and it
# removes weights. §5 takes them apart:
#
# * **extended dense training** (EDT, §5.1) keeps the retraining and drops the weight removal: the dense model is
#   trained for as many epochs as IMP, with the same cyclic schedule. The paper: EDT matches pruning without label
#   noise and falls behind it with noise (Fig. 6, Table 5) — pruning's *regularization* is what helps under noise;
# * **width down-scaling** (WD, §5.2) keeps the size reduction and drops the retraining: dense models of widths
#   1, 0.8, 0.64, … each trained once. The paper: WD regularizes like pruning under noise (within 2.1 points) but
#   falls behind it without noise (Fig. 7, Table 7) — pruning's *better training* is what helps without noise.
#
# ```
# papermill nbs/sec5_isolating.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# papermill nbs/sec5_isolating.ipynb out.ipynb -p bench resnet20_c10 -p scale smoke
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

# %%
import time

import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.algorithms import versus_table
from pruning_repro.results import algorithm_frames
from pruning_repro.analysis import summarize
from pruning_repro.paper import paper_ranges, paper_table
from pruning_repro.plots import fig_algorithm_curves, save_figure, save_table
from pruning_repro.rules import claim_line
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_section

# bad parameters or missing data: one clear error, nothing written
load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "sec5_isolating", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds}, {B.prune.levels} levels / widths -> {out}")

# %% [markdown]
# ## Train (or load) IMP, EDT and the width sequence

# %%
t0 = time.time()
train_section("sec5_isolating", B, seeds, noise_levels, store, runtime, trained)
frames = algorithm_frames(B, noise_levels, seeds, store, ("LR rewinding", "EDT", "WD"))
curves = {"LR rewinding": summarize(frames["LR rewinding"], ("test_err", "val_err")),
          "EDT": summarize(frames["EDT"], ("test_err", "val_err")),
          "WD": summarize(frames["WD"], ("test_err", "val_err"), by=("noise", "width"))}
print(f"{sum(len(v) for v in frames.values())} models ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 6: extended dense training (circles) vs pruning (squares), test error vs training epochs

# %%
fig6 = fig_algorithm_curves({"LR rewinding": curves["LR rewinding"], "EDT": curves["EDT"]}, "epochs_total",
                            f"Fig. 6 — {bench}: EDT (o, dashed) vs pruning (□), by training epochs")
save_figure(fig6, out, "fig06_edt_vs_pruning")
fig6

# %% [markdown]
# ## Figure 7: width down-scaling (circles) vs pruning (squares), test error vs % weights remaining

# %%
fig7 = fig_algorithm_curves({"LR rewinding": curves["LR rewinding"], "WD": curves["WD"]}, "weights_remaining",
                            f"Fig. 7 — {bench}: width down-scaling (o, dashed) vs pruning (□)")
save_figure(fig7, out, "fig07_wd_vs_pruning")
fig7

# %% [markdown]
# ## Tables 5 and 7: optimal test error (model picked by validation error), EDT / WD vs LR rewinding
#
# Per noise level, each family's best model by validation error (EDT's among its extended models, levels ≥ 1); `verdict` is the paper's rule on the per-seed
# differences against LR rewinding (differ when |mean| ≥ std). The paper's value for the same benchmark family is
# beside ours (empty where the paper has no row: e.g. no LeNet row at 30% noise).

# %%
# EDT's level 0 is the dense model (C1 compares it already): Table 5 takes EDT's optimum over its extended models
extended = {**frames, "EDT": frames["EDT"][frames["EDT"].level >= 1]}
t5 = versus_table(extended, ["LR rewinding", "EDT"], noise_levels, B.family)
t7 = versus_table(frames, ["LR rewinding", "WD"], noise_levels, B.family).assign(**paper_ranges(B.family))
save_table(t5, out, "table05_edt_vs_pruning", f"{bench}: optimal test error (%), extended dense training vs LR "
           f"rewinding, {len(seeds)} seeds; paper: {B.paper_label}")
save_table(t7, out, "table07_wd_vs_pruning", f"{bench}: optimal test error (%), width down-scaling vs LR rewinding, "
           f"{len(seeds)} seeds; paper: {B.paper_label}")
display(t5); display(t7)
print(f"Paper, Tables 5 and 7 ({B.paper_label}):")
display(paper_table(5, B.family)); display(paper_table(7, B.family))

# %% [markdown]
# ## What this bench shows

# %%
lines = [claim_line("C2", t5)]
for r in t7[t7.algorithm == "WD"].itertuples():
    full = frames["WD"].query("noise == @r.noise")
    full = 100 * full[full.width == full.width.max()].test_err.mean()
    lines.append(f"- {r.noise:.0%} noise: WD's optimum {r.optimal_test_err_mean:.2f}% at {r.optimal_weights_remaining_mean:.3g}% "
                 f"weights ({r.verdict} vs LR rewinding, {r.diff_mean:+.2f}); {r.optimal_test_err_mean - full:+.2f} points "
                 f"against its full-width model.")
display(Markdown("\n".join(lines)))
