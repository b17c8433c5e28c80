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
# # App. K A closer look at the examples pruning affects most — Figures 16, 17 and Table 4
#
# **K.1.** Three sets of 20 training examples, ranked by the geometric mean over the chosen sparsities of their
# training-loss change after pruning relative to the dense model, each change first averaged over seeds:
# *most worsened* (loss increase, at sparsities that improve generalization and raise training loss — or, where
# none exists, as for LeNet, ResNet-32 and ResNet-50 in the paper, at sparsities that raise it and *preserve*
# generalization, within 2 points of the dense test error),
# *most improved* (loss decrease, at sparsities that improve generalization and lower training loss) and
# *least affected* (|change|, at sparsities within 2 points of the dense test error). Negative changes are set to
# 1e-5 before the geometric mean (the paper's footnotes 8, 9). Table 4 lists the sparsities used. The paper: most
# worsened / improved examples are atypical, some mislabelled; least affected ones are canonical (Fig. 16).
#
# **K.2.** Per pruning level, two dense models on 40% subsamples that share a random base and differ in 1% of the
# data: the 1% *top-worsened* examples (TW) or 1% random ones (Rand). The paper (ResNet-20, VGG-16 on CIFAR-10):
# TW generalizes worse, by 0 to 0.35 and 0 to 0.54 points inside the range where pruning helps (Fig. 17).
#
# ```
# papermill nbs/appK_examples.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# ```

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = None         # None: no label noise
figures_dir = None          # None: the checkout's figures/; outputs go to <figures_dir>/<bench>[_<scale>]/
store_dir = None            # None: $PRUNING_REPRO_STORE or ~/.pruning_repro/store
precision = None            # None: the bench's (fp32); "bf16": bfloat16 autocast (GPUs), outputs in <bench>_bf16/
runtime = None              # how to train: runtime.Runtime's fields, e.g. {"workers": 2} (None: from $PRUNING_REPRO_*)
trained = False             # True: the command executing this notebook has just trained its runs (not checked again)
n_examples = 20             # examples shown per category

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import example_selection_levels, improving_range, paired_by_level, rank_examples
from pruning_repro.data import CLASS_NAMES
from pruning_repro.leave_out import example_images, loss_changes
from pruning_repro.paper import APPENDIX_TEXT
from pruning_repro.plots import pct_axis, example_grid, save_figure, save_table
from pruning_repro.results import dependent_frame
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import K2_BENCHES, train_with_retrainings

load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appK_examples", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
if int(n_examples) < 1: raise ValueError(f"n_examples must be >= 1, got {n_examples!r}")
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds} -> {out}")

# %% [markdown]
# ## Train (or load) IMP, then the TW / Rand subsample models of every level

# %%
t0 = time.time()
imp, sub, traj = train_with_retrainings("appK_examples", B, seeds, noise_levels, store, runtime, trained)
print(f"{len(imp)} trajectories and {len(sub)} subsample models ready in {time.time() - t0:.0f} s")


# %% [markdown]
# ## Table 4: the sparsities each selection uses
#
# On the seed-averaged curves (`analysis.example_selection_levels`): most improved where pruning improves
# generalization (match rule) and lowers the training loss; most worsened where it improves generalization and raises
# the loss — or, when no such sparsity exists (LeNet, ResNet-32 and ResNet-50 in the paper), where it raises the loss
# and preserves generalization (test error at most 2 points above dense); least affected over every preserving
# sparsity. `most worsened from` says which rule chose.

# %%
def fmt_range(levels, w):
    if not levels: return "none"
    hi, lo = w[min(levels)], w[max(levels)]
    return f"{hi:.3g}%" if hi == lo else f"{hi:.3g}–{lo:.3g}%"

sel, t4 = {}, []
for p in noise_levels:
    t = traj[traj.noise == p]
    sel[p], w = example_selection_levels(t), t.groupby("level").weights_remaining.mean()
    t4.append({"noise": p, **{k: fmt_range(sel[p][k], w) for k in ("most worsened", "most improved", "least affected")},
               "most worsened from": sel[p]["worsened_from"]})
table4 = pd.DataFrame(t4)
save_table(table4, out, "table04_selection_sparsities", f"{bench}: % weights remaining at which each set is selected")
table4

# %% [markdown]
# ## Figure 16: most worsened, most improved and least affected examples
#
# Each example's loss change at each chosen sparsity is averaged over the seeds that train on it, then examples are
# ranked by the geometric mean over the sparsities (`analysis.rank_examples`). Title: the label used in training;
# "label/prediction" in red where the majority prediction of the models at the chosen sparsities differs from it.

# %%
MODES = {"most worsened": "worsened", "most improved": "improved", "least affected": "least"}
figs16, listing = {}, []
for p in noise_levels:
    specs = [B.run_spec(p, s) for s in seeds]
    w = traj[traj.noise == p].groupby("level").weights_remaining.mean()
    for cat, mode in MODES.items():
        levels = sel[p][cat]
        if not levels: listing.append({"noise": p, "category": cat, "examples": "no sparsity qualifies"}); continue
        ids = rank_examples([loss_changes(spec, store, levels) for spec in specs], int(n_examples), mode)
        x, y, pr = example_images(specs, store, ids, levels)
        name = f"fig16_{cat.replace(' ', '_')}_p{p:g}"
        f = example_grid(x, y, pr, class_names=CLASS_NAMES.get(B.data.dataset),
                         title=f"Fig. 16 — {bench}, {p:.0%} noise: {cat} examples ({fmt_range(levels, w)})", ncols=10)
        save_figure(f, out, name); figs16[name] = f; display(f)
        listing.append({"noise": p, "category": cat, "examples": len(x), "mislabelled_or_mispredicted": int((y != pr).sum())})
display(pd.DataFrame(listing))

# %% [markdown]
# ## Figure 17: dense models on subsamples with the top-worsened examples (TW) vs random ones (Rand)

# %%
if not sub:   # App. K.2 runs where the paper ran it (ResNet-20, VGG-16 on CIFAR-10) and on the embedded benches
    table17 = None
    print(f"App. K.2 is not run on {bench}: the paper ran it on {', '.join(K2_BENCHES)} only (and embedded benches, as an extra).")
else:
    if B.name not in K2_BENCHES: print(f"{bench}: App. K.2 is an extra here (the paper ran it on {', '.join(K2_BENCHES)}).")
    kd = dependent_frame(sub, store, traj)
    fig17, axes = plt.subplots(1, len(noise_levels), figsize=(5.6 * len(noise_levels), 3.8), squeeze=False)
    t17 = []
    for ax, p in zip(axes[0], noise_levels):
        d = kd[kd.noise == p]
        t = paired_by_level(d[d.kind == "TW"], d[d.kind == "Rand"]).assign(noise=p)
        t17.append(t)
        band = improving_range(traj[traj.noise == p])
        if band: ax.axvspan(band[0] * 1.08, band[1] / 1.08, color="C2", alpha=0.15, lw=0, label="pruning improves")
        ax.errorbar(t.weights_remaining, t.diff_mean, t.diff_std.fillna(0), fmt="-o", ms=4, capsize=2, label="TW − Rand")
        ax.axhline(0, color="k", lw=0.6)
        pct_axis(ax); ax.set_xlabel("% weights remaining at selection")
        ax.set_ylabel("test error difference (points)"); ax.set_title(f"{p:.0%} noise", fontsize=10); ax.legend(fontsize=8)
    fig17.suptitle(f"Fig. 17 — {bench}: top-worsened (TW)\nvs random (Rand) subsamples", fontsize=10); fig17.tight_layout()
    save_figure(fig17, out, "fig17_top_worsened_vs_random")
    table17 = pd.concat(t17, ignore_index=True).rename(columns={"a_mean": "TW_test_err_mean", "a_std": "TW_test_err_std",
                                                                 "b_mean": "Rand_test_err_mean", "b_std": "Rand_test_err_std"})
    save_table(table17, out, "fig17_top_worsened_vs_random",
               f"{bench}: test error (%) of dense models on 40% subsamples with the top-1% worsened (TW) or 1% random examples")
    display(table17)
    display(fig17)

# %% [markdown]
# ## What this bench shows

# %%
lines = []
for p in (noise_levels if table17 is not None else []):
    t = table17[table17.noise == p]
    band = improving_range(traj[traj.noise == p])
    inside = t[(t.weights_remaining <= band[0]) & (t.weights_remaining >= band[1])] if band else t.iloc[:0]
    rng = f"{inside['diff_mean'].min():+.2f} to {inside['diff_mean'].max():+.2f}" if len(inside) else "n/a (pruning improves at no level)"
    lines.append(f"- {p:.0%} noise: TW − Rand inside the improving range {rng} points; over all levels mean "
                 f"{t['diff_mean'].mean():+.2f} ({(t.verdict == 'differ').sum()} of {len(t)} levels differ). The paper's "
                 f"{B.paper_label}: {APPENDIX_TEXT['appK_tw_minus_rand'].get(B.family, 'not reported')}.")
display(Markdown("\n".join(lines)))
