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
# # App. C Size reduction does not explain pruning's benefits — Table 2 and Figure 8
#
# Six learning algorithms, each producing a family of models: IMP with LR rewinding, with weight rewinding, LR
# rewinding with SynFlow, SNIP or random weight selection, and the augmented algorithm EDT, which trains as long as
# pruning with the same cyclic schedule but removes nothing. Table 2 gives each family's model with the best
# validation error; Figure 8 plots every model. The paper (no label noise): EDT matches or exceeds every pruning
# algorithm on every benchmark except LeNet/MNIST, where weight rewinding is better — so the size reduction is not
# what makes pruned models generalize.
#
# ```
# papermill nbs/appC_algorithms.ipynb out.ipynb -p bench lenet_fashion_e60_l5
# papermill nbs/appC_algorithms.ipynb out.ipynb -p bench vgg16_c10 -p scale smoke
# ```

# %% tags=["parameters"]
bench = "lenet_fashion_e60_l5"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = [0.0]        # the paper's Table 2 and Figure 8 are without label noise
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

from pruning_repro.algorithms import table2_algorithms, versus_table
from pruning_repro.results import algorithm_frames
from pruning_repro.analysis import summarize
from pruning_repro.plots import fig_algorithm_curves, save_figure, save_table
from pruning_repro.study import Study
from pruning_repro.plugins import load_plugins
from pruning_repro.sections import start_section
from pruning_repro.sweep import train_section

# bad parameters or missing data: one clear error, nothing written
load_plugins()       # the plugins this command named (its benches, models): before the Study names one
B, seeds, noise_levels, out, store, runtime = start_section(
    "appC_algorithms", Study(bench, scale, seeds, noise_levels, store_dir, figures_dir, precision), runtime)
NAMES = table2_algorithms()       # App. C's six (the registry of `17_algorithms`)
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds}, {B.prune.levels} levels -> {out}")

# %% [markdown]
# ## Train (or load) the six families

# %%
t0 = time.time()
train_section("appC_algorithms", B, seeds, noise_levels, store, runtime, trained)
frames = algorithm_frames(B, noise_levels, seeds, store, NAMES)
print(f"{sum(len(v) for v in frames.values())} models ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Table 2: test error of each family's model with the lowest validation error

# %%
tables = []
for p in noise_levels:
    t = versus_table(frames, NAMES, [p], B.family)
    tables.append(t)
    save_table(t, out, f"table02_algorithms_p{p:g}", f"{bench}, {p:.0%} label noise: optimal test error (%) per "
               f"learning algorithm, {len(seeds)} seeds; paper: {B.paper_label}")
    display(Markdown(f"**{p:.0%} label noise**")); display(t)

# %% [markdown]
# ## Figure 8: every model of every family, against % weights remaining (pruning) and training epochs (all)

# %%
for p in noise_levels:
    curves = {n: summarize(f.query("noise == @p"), ("test_err", "val_err")) for n, f in frames.items()}
    fig8, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    fig_algorithm_curves({n: c for n, c in curves.items() if n != "EDT"}, "weights_remaining", "by sparsity",
                         by_noise=False, ax=a)
    fig_algorithm_curves(curves, "epochs_total", "by training epochs", by_noise=False, ax=b)
    fig8.suptitle(f"Fig. 8 — {bench}, {p:.0%} label noise: test error of each learning algorithm's models")
    fig8.tight_layout()
    save_figure(fig8, out, f"fig08_algorithms_p{p:g}")
    display(fig8); plt.close(fig8)

# %% [markdown]
# ## What this bench shows

# %%
lines = []
for t in tables:
    p, e = t.noise.iloc[0], t.set_index("algorithm")
    prun = e.drop(index="EDT")
    best = prun.optimal_test_err_mean.idxmin()
    beaten_by = [a for a, r in prun.iterrows() if r.optimal_test_err_mean < e.loc["EDT", "optimal_test_err_mean"]]
    lines.append(f"- {p:.0%} noise: EDT {e.loc['EDT', 'optimal_test_err_mean']:.2f}% vs LR rewinding "
                 f"{e.loc['LR rewinding', 'optimal_test_err_mean']:.2f}% ({e.loc['EDT', 'verdict']}); best pruning "
                 f"algorithm {best} {prun.loc[best, 'optimal_test_err_mean']:.2f}%. Pruning algorithms with a lower mean "
                 f"than EDT: {', '.join(beaten_by) or 'none'} (the paper: none, except weight rewinding on LeNet/MNIST).")
display(Markdown("\n".join(lines)))
