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
# # App. J Ablations — weight rewinding (Figure 14, Table 9) and weight selection heuristics (Figure 15, Table 10)
#
# IMP is several design choices at once; App. J varies two of them, without and with label noise (Tables 9 and 10
# have a 0% column; its runs are those of App. C).
#
# * **J.1 Rewinding weights.** Weight rewinding (Frankle & Carbin) resets the surviving weights to their values at
#   the rewind epoch after each pruning step; LR rewinding keeps them. The paper: weight rewinding improves
#   generalization under noise more than LR rewinding (e.g. LeNet 15%: 4.41 vs 9.96) — the claim C6.
# * **J.2 Weight selection heuristics.** Magnitude, SynFlow (data-free, iterative) and random selection inside the
#   same IMP loop with LR rewinding. The paper: the heuristic matters, but none is best everywhere.
#
# ```
# papermill nbs/appJ_ablations.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# ```

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: every noise level of the bench, 0% included (Tables 9, 10 have a 0% column)
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

from pruning_repro.algorithms import APPJ_ALGORITHMS, versus_table
from pruning_repro.results import algorithm_frames
from pruning_repro.analysis import summarize
from pruning_repro.paper import paper_table
from pruning_repro.plots import fig_algorithm_curves, save_figure, save_table
from pruning_repro.rules import claim_line
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_section

load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appJ_ablations", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) the four variants of IMP

# %%
t0 = time.time()
train_section("appJ_ablations", B, seeds, noise_levels, store, runtime, trained)
frames = algorithm_frames(B, noise_levels, seeds, store, APPJ_ALGORITHMS)
curves = {k: summarize(v, ("test_err", "val_err")) for k, v in frames.items()}
print(f"ready in {time.time() - t0:.0f} s")


# %% [markdown]
# ## Figures 14 and 15

# %%
def panel(names, title, name):
    fig, axes = plt.subplots(1, len(noise_levels), figsize=(4.6 * len(noise_levels), 3.8), squeeze=False)
    for ax, p in zip(axes[0], noise_levels):
        fig_algorithm_curves({n: curves[n][curves[n].noise == p] for n in names}, "weights_remaining",
                             f"{p:.0%} label noise", by_noise=False, ax=ax)
        c = curves["LR rewinding"]
        d = c[(c.noise == p) & (c.level == 0)].test_err_mean.iloc[0]
        ax.axhline(100 * d, color="k", ls="--", lw=0.8, label="dense")
    fig.suptitle(title); fig.tight_layout()
    save_figure(fig, out, name)
    return fig

fig14 = panel(["LR rewinding", "weight rewinding"], f"Fig. 14 — {bench}: weight rewinding vs LR rewinding",
              "fig14_weight_vs_lr_rewinding")
fig14

# %%
fig15 = panel(["LR rewinding", "SynFlow", "random"],
              f"Fig. 15 — {bench}: magnitude (LR rewinding) vs SynFlow vs random selection", "fig15_selection_heuristics")
fig15

# %% [markdown]
# ## Tables 9 and 10: optimal test error (picked by validation error), with the paper's row

# %%
table = lambda names: versus_table(frames, names, noise_levels, B.family)
t9, t10 = table(["LR rewinding", "weight rewinding"]), table(["LR rewinding", "SynFlow", "random"])
t10["algorithm"] = t10.algorithm.replace({"LR rewinding": "magnitude"})
save_table(t9, out, "table09_weight_rewinding", f"{bench}: optimal test error (%), weight vs LR rewinding, "
           f"{len(seeds)} seeds; paper: {B.paper_label}")
save_table(t10, out, "table10_selection_heuristics", f"{bench}: optimal test error (%) per weight-selection heuristic "
           f"(LR rewinding), {len(seeds)} seeds; paper: {B.paper_label}")
display(t9); print(f"Paper, Table 9 ({B.paper_label}):"); display(paper_table(9, B.family))
display(t10); print(f"Paper, Table 10 ({B.paper_label}):"); display(paper_table(10, B.family))

# %% [markdown]
# ## What this bench shows

# %%
lines = [claim_line("C6", t9), claim_line("App. J.2", t10)]
for p in noise_levels:
    t = t10[t10.noise == p].set_index("algorithm")
    best = t.optimal_test_err_mean.idxmin()
    lines.append(f"- {p:.0%} noise, selection heuristics: best is {best} ({t.loc[best, 'optimal_test_err_mean']:.2f}%); "
                 + ", ".join(f"{a} {t.loc[a, 'optimal_test_err_mean']:.2f}%" for a in t.index if a != best) + ".")
display(Markdown("\n".join(lines)))
