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
# papermill nbs/appC_algorithms.ipynb out.ipynb -p bench lenet_fashion
# papermill nbs/appC_algorithms.ipynb out.ipynb -p bench vgg16_c10 -p scale smoke
# ```

# %% tags=["parameters"]
bench = "lenet_fashion"     # a name from pruning_repro.config.BENCHES
scale = "full"              # "full" or "smoke"
seeds = [0, 1, 2]
noise_levels = [0.0]        # the paper's Table 2 and Figure 8 are without label noise
figures_dir = None          # None: the checkout's figures/; outputs go to <figures_dir>/<bench>[_<scale>]/
workers = None              # training processes (None: one per core)
store_dir = None            # None: $PRUNING_REPRO_STORE or ~/.pruning_repro/store

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.analysis import algorithm_table, summarize
from pruning_repro.cli import section_setup
from pruning_repro.imp import run_many
from pruning_repro.paper import paper_algorithms
from pruning_repro.plots import fig_algorithm_curves, save_figure, save_table
from pruning_repro.store import Store
from pruning_repro.sweep import algorithm_frames, section_runs

# bad parameters or missing data: one clear error, nothing written
B, seeds, noise_levels, out = section_setup(bench, scale, seeds, noise_levels, figures_dir)
NAMES = ("LR rewinding", "weight rewinding", "SynFlow", "SNIP", "random", "EDT")
print(f"{B.name} at scale {scale!r}: noise {noise_levels}, seeds {seeds}, {B.prune.levels} levels -> {out}")

# %% [markdown]
# ## Train (or load) the six families

# %%
t0, store = time.time(), Store(store_dir)
run_many(section_runs("appC_algorithms", B, seeds, noise_levels), store, workers=workers)
frames = algorithm_frames(B, noise_levels, seeds, store, NAMES)
print(f"{sum(len(v) for v in frames.values())} models ready in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Table 2: test error of each family's model with the lowest validation error

# %%
tables = []
for p in noise_levels:
    t = algorithm_table({n: f.query("noise == @p") for n, f in frames.items()}, reference="LR rewinding")
    t = t.merge(paper_algorithms(B.family, p).rename(columns={"paper": f"paper ({B.paper_label})"}), on="algorithm",
                how="left")
    tables.append(t.assign(noise=p))
    save_table(t.drop(columns="test_err_mean"), out, f"table02_algorithms_p{p:g}",
               f"{bench}, {p:.0%} label noise: optimal test error (%) per learning algorithm, {len(seeds)} seeds")
    display(Markdown(f"**{p:.0%} label noise**")); display(t.drop(columns="test_err_mean"))

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
    p = t.noise.iloc[0]
    edt = t[t.algorithm == "EDT"].iloc[0]
    prun = t[t.algorithm != "EDT"]
    best = prun.loc[prun.test_err_mean.idxmin()]
    beaten_by = [r.algorithm for r in prun.itertuples() if r.test_err_mean < edt.test_err_mean]
    lines.append(f"- {p:.0%} noise: EDT {edt.optimal_test_err} vs LR rewinding "
                 f"{t[t.algorithm == 'LR rewinding'].iloc[0].optimal_test_err} ({edt.verdict}); best pruning "
                 f"algorithm {best.algorithm} {best.optimal_test_err}. Pruning algorithms with a lower mean than EDT: "
                 f"{', '.join(beaten_by) or 'none'} (the paper: none, except weight rewinding on LeNet/MNIST).")
display(Markdown("\n".join(lines)))
