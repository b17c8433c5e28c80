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
# # App. D Leaving out pruning-affected examples — Figure 9
#
# Pruning to a level lowers the training loss of some examples more than others. Take the top K% (K = 20) whose
# loss decreased most — the **top-improved examples** — and train a dense model without them (TIE); train another
# without a random set of the same size (RND). If the top-improved examples are the ones that matter for
# generalization, leaving them out hurts more: TIE's test error is above RND's. The paper: averaged over the
# sparsities where pruning improves generalization (green band), TIE − RND = 0.78 (LeNet/MNIST), 0.77
# (ResNet-20), 0.34 (VGG-16), 0.69 (ResNet-50) points; no difference for ResNet-32/CIFAR-100.
#
# ```
# papermill nbs/appD_leave_out.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# ```

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: no label noise, as in the paper's Figure 9
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

from pruning_repro.analysis import improving_levels, improving_range, paired_by_level
from pruning_repro.paper import APPENDIX_TEXT
from pruning_repro.plots import pct_axis, save_figure, save_table
from pruning_repro.rules import claim_line
from pruning_repro.results import dependent_frame
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_with_retrainings

load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appD_leave_out", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) IMP, then the TIE and RND dense models of every level

# %%
t0 = time.time()
imp, retrain, traj = train_with_retrainings("appD_leave_out", B, seeds, noise_levels, store, runtime, trained)
dense = dependent_frame(retrain, store, traj)
print(f"{len(imp)} trajectories and {len(retrain)} retrained dense models ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 9: TIE vs RND test error as a function of the sparsity at which the examples are selected

# %%
fig9, axes = plt.subplots(1, len(noise_levels), figsize=(5.6 * len(noise_levels), 3.9), squeeze=False)
tables = []
for ax, p in zip(axes[0], noise_levels):
    d = dense[dense.noise == p]
    t = paired_by_level(d[d.kind == "TIE"], d[d.kind == "RND"]).assign(noise=p)
    t["improving"] = t.level.isin(improving_levels(traj[traj.noise == p]))   # pruning beats dense there (green band)
    tables.append(t)
    band = improving_range(traj[traj.noise == p])
    if band: ax.axvspan(band[0] * 1.08, band[1] / 1.08, color="C2", alpha=0.15, lw=0, label="pruning improves")
    for kind, mk, col in (("TIE", "o", "C3"), ("RND", "s", "C0")):
        g = d[d.kind == kind].groupby("level").agg(m=("test_err", "mean"), s=("test_err", "std"),
                                                    w=("weights_remaining", "mean"))
        ax.errorbar(g.w, 100 * g.m, 100 * g.s.fillna(0), fmt=f"-{mk}", ms=4, capsize=2, color=col, label=kind)
    pct_axis(ax); ax.set_xlabel("% weights remaining at selection")
    ax.set_ylabel("test error of the dense model (%)"); ax.set_title(f"{bench}, {p:.0%} noise", fontsize=10)
    ax.legend(fontsize=8)
fig9.suptitle("Fig. 9 — dense models without the top-20% improved (TIE)\nor without 20% random examples (RND)", fontsize=10)
fig9.tight_layout()
save_figure(fig9, out, "fig09_tie_vs_rnd")
table = pd.concat(tables, ignore_index=True).rename(columns={"a_mean": "TIE_test_err_mean", "a_std": "TIE_test_err_std",
                                                           "b_mean": "RND_test_err_mean", "b_std": "RND_test_err_std"})
save_table(table, out, "fig09_tie_vs_rnd",
           f"{bench}: test error (%) of dense models without TIE / RND examples per selection level, {len(seeds)} seeds")
display(table)
fig9

# %% [markdown]
# ## What this bench shows

# %%
lines = [claim_line("App. D", table)]
for p in noise_levels:
    t = table[table.noise == p]
    band = improving_range(traj[traj.noise == p])
    inside = t[(t.weights_remaining <= band[0]) & (t.weights_remaining >= band[1])] if band else t.iloc[:0]
    scope = inside if len(inside) else t
    lines.append(f"- {p:.0%} noise: TIE − RND averaged over {'the levels where pruning improves generalization' if len(inside) else 'all levels (pruning improves at none)'} "
                 f"= {scope['diff_mean'].mean():+.2f} points ({(scope.verdict == 'differ').sum()} of {len(scope)} levels differ by the match rule); "
                 f"over all levels {t['diff_mean'].mean():+.2f}. The paper's {B.paper_label}: {APPENDIX_TEXT['appD_tie_minus_rnd'].get(B.family, 'n/a')} — "
                 f"the top-improved examples {'matter more than random ones here' if scope['diff_mean'].mean() > 0 else 'do not matter more than random ones here'}.")
display(Markdown("\n".join(lines)))
