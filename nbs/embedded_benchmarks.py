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
# # Embedded benchmarks: calibration, and the paper's claims on a CPU
#
# > Which embedded benchmark shows the paper's effects in CPU minutes, how it was chosen, and — claim by claim, 3
# > seeds — what it shows. Not exported: this notebook documents `pruning_repro.config`'s `lenet_fashion` entry.
#
# Most users first run `make reproduce`, which runs every section notebook on the default embedded bench. It must
# (a) need no download, (b) finish within about 20 minutes on 2 CPU cores, and (c) sit in the paper's regime, so that
# the claims C1–C6 of the design can be seen under the paper's match rule with 3 seeds fixed in advance (0, 1, 2).
#
# **The regime.** The paper's effects under label noise (§4) need a dense model that *memorizes* the noisy labels
# (near-zero training loss on them) and an IMP trajectory that reaches sparsities where the pruned model no longer
# can. Without noise (§3), the effect is "better training": pruning's extra retraining lowers the training loss.

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from pruning_repro.config import get_bench
from pruning_repro.report import claims

ROOT = Path.cwd() if (Path.cwd() / "bench").is_dir() else Path.cwd().parent     # run from nbs/ or the checkout
CAL = ROOT / "bench" / "results" / "calibration.csv"
FIG = ROOT / "figures" / "lenet_fashion"

# %% [markdown]
# ## What was tried
#
# **Earlier probes** (`../shared/notes/embedded-probes.md`, one seed, the paper's LeNet recipe: Adam 1.2e-3, 60
# epochs per level, batch 128, 20% per level, LR / weight rewinding):
#
# | data | noise | algorithm | dense test | best test (weights) | verdict |
# |---|---|---|---|---|---|
# | MNIST-1D, 9k train, MLP | 0% | LR | 24.7 | 23.5 (32.8%) | small gain |
# | MNIST-1D, 9k train, MLP | 15% | LR | 39.4 | 39.4 (80%) | no gain: an MLP cannot fit MNIST-1D's shifts, far from the regime |
# | MNIST-1D, 9k train, MLP | 15% | WR | 39.4 | 35.7 (10.7%), not picked by validation | — |
# | MNIST-1D, 9k train, MLP | 30% / 60% | LR | 51.2 / 72.6 | 52.1 / 73.4 | no gain |
# | Fashion-MNIST, 20k train | 15% | LR | 22.5 | 20.8 (32.8%, val-selected) | gain, but the noisy/original gap opens only below 5% weights |
# | Fashion-MNIST, 20k train | 15% | WR | 22.5 | 21.1 (16.8%, val-selected) | — |
#
# and single-seed probes of the 60-epoch recipe on Fashion-MNIST subsamples (5k / 10k / 20k training images; the
# table in `00_config`): only the 5k subsample memorizes the noise within 60 epochs, and the regularization regime
# appears only below ~1% of the weights, so IMP must reach 0.3%.
#
# **Candidates with 3 seeds** (`python -m bench.calibrate <candidate> --store <store>`: IMP with LR rewinding,
# weight rewinding (WR) and extended dense training (EDT) at every noise level; optimal = lowest validation error;
# `verdict_vs_dense` / `verdict_vs_lr` are the paper's match rule):

# %%
cal = pd.read_csv(CAL)
cols = ["candidate", "algorithm", "noise", "dense_test_err", "optimal_test_err", "verdict_vs_dense",
        "optimal_weights_remaining", "diff_vs_lr", "verdict_vs_lr", "optimal_noisy_loss", "optimal_original_loss",
        "seconds_per_run"]
cal[cols]

# %% [markdown]
# Reading the table:
#
# * `fashion5k_e60_f20_L26` — the paper's LeNet recipe on 5k Fashion-MNIST (now bench `lenet_fashion_e60`): every
#   effect measured shows (C1 at 15/30/60%, C3, WR ≫ LR, EDT worse under noise), but a trajectory is 27 levels × 60
#   epochs (≈ 220 s of one core): the whole study would take hours on 2 cores. Its WR/EDT cells at 15% and 60% were
#   not trained.
# * `fashion5k_e20_f50_L9` — 20 epochs per level and 50% pruned per level (9 levels to 0.2%): ≈ 21 s per trajectory,
#   10× cheaper. At 30% and 60% noise the optimum beats dense clearly, noisy loss ends far above original loss, WR
#   beats LR, EDT is worse than LR; without noise EDT matches LR. At **15% noise LR rewinding gains nothing**: in 20
#   epochs the dense model has not memorized the noisy labels (noisy loss 1.44), so there is nothing for pruning to
#   undo — validation picks the dense model on every seed.
# * `fashion2500_e40_f50_L9` — the same number of steps on half the examples, so twice the passes over each: the
#   dense model now memorizes the noise (15%: noisy loss 0.07), yet at 15% LR rewinding still gains nothing (22.64 →
#   22.66), test errors are higher throughout, and EDT at 0% noise no longer differs from LR. Not better.
#
# **Chosen:** `fashion5k_e20_f50_L9` as `lenet_fashion`, at noise levels **0, 30% and 60%**. The 15% level is left
# out of the default reproduction for time (each noise level costs a quarter of the study) and because on these
# settings it does not show C1 — as measured above, and said here rather than hidden. The 60-epoch recipe stays
# available as `lenet_fashion_e60` (all four noise levels) for anyone with the hours.

# %%
b = get_bench("lenet_fashion")
display(Markdown(f"`lenet_fashion`: {b.description}. Data {b.data}; training {b.train}; pruning {b.prune}; noise "
                 f"levels {b.noise_levels}; EL2N from {b.el2n_models} models × {b.el2n_fraction:.0%} of training."))

# %% [markdown]
# ## The claims on the calibrated bench (3 seeds: 0, 1, 2)
#
# `make reproduce` (= `pruning-repro reproduce --bench lenet_fashion`; measured on this 2-core CPU with an empty run
# store: 816 s, i.e. 13.6 minutes, for 399 runs, 162 retrainings and the 11 notebooks) wrote `figures/lenet_fashion/` and its
# `REPORT.md`; the table below is `pruning_repro.report.claims` on those files (the rules are in `16_report`).

# %%
if FIG.is_dir():
    c = claims(FIG)
    display(c[["claim", "statement", "status", "evidence"]])
else:
    print(f"{FIG} does not exist: run `make reproduce` first")


# %%
def show(*names):
    "The tables of a claim, read from the bench's outputs (the figure is linked in the text above)."
    for n in names:
        p = FIG / n
        if p.suffix == ".png" and p.exists(): display(Image(str(p), width=640))
        elif p.suffix == ".md" and p.exists(): display(Markdown(p.read_text()))
        else: print(f"missing: {p.name}")


# %% [markdown]
# ### C1 — with label noise the optimally sparse model beats dense, more so at higher noise (Fig. 3, Table 6)
#
# ![fig03_test_error_vs_sparsity.png](../figures/lenet_fashion/fig03_test_error_vs_sparsity.png)

# %%
show("table06_dense_vs_optimal_test_error.md")

# %% [markdown]
# ### C2 — without noise EDT matches pruning, with noise EDT is worse (Fig. 6, Table 5)
#
# ![fig06_edt_vs_pruning.png](../figures/lenet_fashion/fig06_edt_vs_pruning.png)

# %%
show("table05_edt_vs_pruning.md")

# %% [markdown]
# ### C3 — at the optimum, noisy examples' loss rises far above original examples' (Fig. 4, Table 11)
#
# ![fig04_train_loss_noisy_vs_original.png](../figures/lenet_fashion/fig04_train_loss_noisy_vs_original.png)

# %%
show("table11_partition_loss.md")

# %% [markdown]
# ### C4 — low sparsity lowers training loss, high sparsity raises it (App. L, Fig. 18)
#
# ![fig18_subgroups_pruning.png](../figures/lenet_fashion/fig18_subgroups_pruning.png)

# %%
show("tableL_subgroup_loss_change.md")

# %% [markdown]
# ### C5 — width down-scaling regularizes like pruning under noise; affected sets overlap above chance (Fig. 7, Tables 7, 3)
#
# ![fig07_wd_vs_pruning.png](../figures/lenet_fashion/fig07_wd_vs_pruning.png)

# %%
show("table07_wd_vs_pruning.md", "table03_jaccard_pruning_vs_width.md")

# %% [markdown]
# ### C6 — weight rewinding mitigates noise better than LR rewinding (Fig. 14, Table 9)
#
# ![fig14_weight_vs_lr_rewinding.png](../figures/lenet_fashion/fig14_weight_vs_lr_rewinding.png)

# %%
show("table09_weight_rewinding.md")
