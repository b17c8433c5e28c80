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
# # Embedded benchmarks: calibration, and the paper's claims on a CPU
#
# > Which embedded benchmark shows the paper's effects in CPU minutes, how it was chosen, and — claim by claim, 3
# > seeds — what it shows. Not exported: this notebook documents `pruning_repro.config`'s `lenet_fashion_e60_l5`
# > entry (issue 22) and its predecessor `lenet_fashion` (issue 5).
#
# Most users first run `make reproduce`, which runs every section notebook on the default embedded bench. It must
# need no download, and it must sit **in the paper's regime**, so that what `REPORT.md` decides is the paper's effect
# and not an artefact of a bench the paper never ran. Issue 22 made the regime measurable, on the committed run:
#
# * **(a)** the dense model has memorized its noisy labels: noisy-partition train loss ≤ 0.6 (the paper's LeNet
#   0.46–0.59, Table 11; VGG-16 0.06–0.27);
# * **(b)** at every noise level the validation optimum is neither the dense model nor the last level, and keeps
#   ≥ 1% of the weights (the paper's LeNet range, Table 4: 80–1.4%);
# * **(c)** Fig. 3's shape: between dense and the optimum no level's mean test error exceeds dense's by more than
#   dense's std;
# * **(d)** without noise the optimum beats dense by the paper's match rule;
# * **(e)** every claim of `rules.CLAIMS` holds, each with its margin;
# * **(f)** `make reproduce` on a fresh 2-core machine within 60 minutes.
#
# The levers: training-set size, LeNet width, epochs per level, fraction pruned per level, levels, noise levels (0%
# and 15% required), seeds (3, fixed before any result: 0, 1, 2).

# %%
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

from pruning_repro.config import get_bench
from pruning_repro.report import claims, regime

ROOT = Path.cwd() if (Path.cwd() / "bench").is_dir() else Path.cwd().parent     # run from nbs/ or the checkout
sys.path.insert(0, str(ROOT))
from bench.calibrate import CANDIDATES

CAL = ROOT / "bench" / "results" / "calibration.csv"
BENCH = "lenet_fashion_e60_l5"
FIG = ROOT / "figures" / BENCH

# %% [markdown]
# ## What was tried
#
# **Earlier probes** (one seed, the paper's LeNet recipe: Adam 1.2e-3, 60 epochs per level, batch 128, 20% per
# level): MNIST-1D with LeNet-300-100 gains nothing at 15% noise (39.4 → 39.4; an MLP cannot fit MNIST-1D's shifts);
# Fashion-MNIST on 10k / 20k training images memorizes the noise only partly in 60 epochs (the table in
# `00_config`).
#
# **Candidates** (`python -m bench.calibrate <candidate> --store <store>`, rows in `bench/results/calibration.csv`;
# every candidate tried, those that failed too): IMP with LR rewinding (and, for the first ones, weight rewinding
# and EDT) at each noise level; optimal = lowest seed-mean validation error; `verdict_vs_dense` is the paper's match
# rule. `optimal_level`, `largest_rise` (c, points) and `dense_noisy_err` were added to the table with issue 22.

# %%
cal = pd.read_csv(CAL)
cols = ["candidate", "algorithm", "noise", "n_seeds", "dense_test_err", "optimal_test_err", "diff_vs_dense",
        "verdict_vs_dense", "optimal_weights_remaining", "dense_noisy_loss", "dense_noisy_err", "optimal_noisy_loss",
        "optimal_level", "largest_rise", "dense_std", "seconds_per_run"]
cal[[c for c in cols if c in cal]]


# %% [markdown]
# ## The frontier: cost against the regime
#
# Per candidate (LR rewinding rows): the targets (a), (b), (d) it meets on its calibration seeds, against the
# estimated wall time of the whole study on 2 cores — the epochs of every run of every section and their
# retrainings (`plan.study_cost`, at 0% and the two highest noise levels calibrated: three, as every default), at
# the candidate's measured seconds per epoch (measured while other work shared the machine: an upper bound), with
# the 20% the notebooks, evaluation and EL2N scoring added in the first reproduction (24.5 min measured for 17.4k
# epochs of `lenet_fashion`).

# %%
def _mean(x):
    return float(str(x).split("±")[0]) if isinstance(x, str) and x else np.nan

def targets(rows):
    "Targets (a), (b), (d) of one candidate's LR-rewinding rows; None where a row does not say."
    noisy, zero = rows[rows.noise > 0], rows[rows.noise == 0]
    b = candidate_of(rows.candidate.iloc[0])
    last = 100 * (1 - b.prune.fraction) ** b.prune.levels
    w = rows.optimal_weights_remaining.map(_mean)
    return {"a": bool((noisy.dense_noisy_loss.map(_mean) <= 0.6).all()) if len(noisy) else None,
            "b": bool(((w < 99.9) & (w > last * 1.001) & (w >= 1.0)).all()),
            "d": bool(((zero.verdict_vs_dense == "differ") & (zero.diff_vs_dense < 0)).all()) if len(zero) else None}

def candidate_of(name):
    from bench.calibrate import candidate_bench
    return candidate_bench(name)

def study_minutes(name, noise_levels, seconds_per_run):
    "Estimated wall minutes of `make reproduce` for a candidate: study epochs × measured s/epoch × 1.2 / 2 cores."
    import tempfile
    from dataclasses import replace
    from pruning_repro.store import Store
    from pruning_repro.sweep import study_runs
    from pruning_repro.plan import study_cost
    b = replace(candidate_of(name), noise_levels=tuple(noise_levels))
    epochs = study_cost(study_runs(b), Store(tempfile.mkdtemp()))["epochs"]
    L, noisy = b.prune.levels, sum(p > 0 for p in noise_levels)
    epochs += (2 * L * 3 * 0.8 + (L + 1) * 3 * noisy * 0.8 + 2 * L * 3 * 0.4) * b.train.epochs   # App. D, E, K
    per_epoch = seconds_per_run / ((L + 1) * b.train.epochs)
    return epochs * per_epoch * 1.2 / 2 / 60

lr = cal[cal.algorithm == "LR rewinding"]
front = []
for name, rows in lr.groupby("candidate", sort=False):
    if name not in CANDIDATES: continue
    t = targets(rows)
    front.append({"candidate": name, "n_seeds": int(rows.n_seeds.max()), "noise": tuple(sorted(rows.noise)),
                  **t, "met": sum(bool(v) for v in t.values()),
                  "minutes": study_minutes(name, [0.0] + sorted(rows.noise[rows.noise > 0])[-2:],
                                           float(rows.seconds_per_run.iloc[0]))})
front = pd.DataFrame(front)
front

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.axvline(60, color="k", lw=0.8, ls="--"); ax.text(62, 0.1, "target (f): 60 min", fontsize=8)
for r in front.itertuples():
    ax.scatter(r.minutes, r.met, s=30 + 20 * r.n_seeds, color="C3" if r.candidate == "fashion5k_w1_e60_f20_L5" else "C0")
    ax.annotate(r.candidate, (r.minutes, r.met), fontsize=7, xytext=(4, 3), textcoords="offset points")
MEASURED = 35 + 43 / 60        # the committed fresh-clone `make reproduce` of the chosen bench (README)
chosen = front[front.candidate == "fashion5k_w1_e60_f20_L5"].met.iloc[0]
ax.scatter(MEASURED, chosen, marker="*", s=160, color="C3")
ax.annotate("measured", (MEASURED, chosen), fontsize=7, xytext=(-10, -12), textcoords="offset points")
ax.set_xscale("log"); ax.set_xlabel("estimated `make reproduce` wall time on 2 cores (min)")
ax.set_ylabel("regime targets met of (a) (b) (d)"); ax.set_yticks([0, 1, 2, 3])
ax.set_title("Embedded candidates: cost vs the paper's regime (red: chosen)", fontsize=10)
fig.tight_layout()

# %% [markdown]
# Reading the table and the frontier:
#
# * The **first bench** (`fashion5k_e20_f50_L9`, registered as `lenet_fashion`): 20 epochs per level do not let the
#   dense model memorize the noise (noisy loss 1.44–1.57: fails (a)); its noisy optima sit at the last level (0.2–0.4%
#   weights: fails (b)), and at 15% it gains nothing. The effects it shows at 30/60% undo memorization that IMP's own
#   extra training introduced.
# * The **paper's recipe on 5k images** (`fashion5k_e60_f20_L26`) meets (a) and shows C1 at 15% (−1.85, differ, at
#   64–80% weights) — but at 30/60% its optima are at 0.3% weights (fails (b)), and it costs 3.5–4.5 hours.
# * **Half width** (`fashion5k_w05_…`) is cheaper per level but on 3 seeds nothing differs from dense (the dense
#   test error varies by 0.9–1.5 points between seeds), and at 15% the optimum is dense. **40 epochs** (`…_e40_…`) do
#   not memorize 15% noise (dense noisy loss 0.77). **MNIST-1D** rises in test error between dense and the sparse
#   optimum (a double-descent bump: fails (c)).
# * **Chosen: `fashion5k_w1_e60_f20_L5`** = `lenet_fashion_e60_l5`: the paper's LeNet-300-100 and its recipe (60
#   epochs, 20% per level), 5 levels (to 32.8%), noise **0, 10, 15%**. On the calibration's 3 seeds it meets (a)
#   (dense noisy loss 0.10 / 0.21) and (b) (optima at 64%), (c) holds, and the optimum beats dense at 10% (−0.32) and
#   15% (−0.85) by the match rule; at 0% it matches (−0.36 ± 0.82: fails (d)). 5% noise gains nothing (−0.00, match),
#   which is why the grid is 0/10/15 — said here, not hidden. The levels stop at 32.8%: the committed reproduction
#   took 2022 s for about 31k epochs (0.065 s of wall time per epoch on this VM), so 6 levels would take ~40 min,
#   8 levels ~52 min — and 2-core machines differ (the first bench took 14 min on one and 24.5 on this one), so 5
#   levels keep (f) on a machine 1.6× slower than this one.
#
# **What no candidate within (f) reaches: the regularization regime.** On 5,000 examples LeNet keeps memorizing
# the noisy labels down to a few % of its weights (noisy loss 0.28 at 2.8% for half width, 0.00 at every optimum
# above), so the noisy optimum's gain is "better training", and §4's widened noisy − original gap (C3) cannot show;
# where the gap does open (below ~1% weights, `fashion5k_e60_f20_L26` at 30/60%), the optimum sits at the last
# level. The study that reaches it in the paper's range needs more data (20k images: 4× the epochs) or 26 levels
# (3.5–4.5 h) — `lenet_fashion_e60` is registered for whoever has the hours.

# %%
b = get_bench(BENCH)
display(Markdown(f"`{BENCH}`: {b.description}. Data {b.data}; training {b.train}; pruning {b.prune}; noise "
                 f"levels {b.noise_levels}; EL2N from {b.el2n_models} models × {b.el2n_fraction:.0%} of training."))

# %% [markdown]
# ## The committed run: regime and claims (3 seeds: 0, 1, 2)
#
# `make reproduce` (= `pruning-repro reproduce --bench lenet_fashion_e60_l5`) wrote `figures/lenet_fashion_e60_l5/`
# and its `REPORT.md`; below, `report.regime` and `report.claims` on those files (the rules, with the paper's
# sentences, are in `33_rules`; the wall time and what reproduces are in the README).

# %%
if FIG.is_dir():
    display(regime(FIG))
    c = claims(FIG)
    display(c[["claim", "status", "margin", "statement"]])
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
# ![fig03_test_error_vs_sparsity.png](../figures/lenet_fashion_e60_l5/fig03_test_error_vs_sparsity.png)

# %%
show("table06_dense_vs_optimal_test_error.md")

# %% [markdown]
# ### C3 — the noisy − original loss gap at the optimum against dense's (Fig. 4, Table 11)
#
# ![fig04_train_loss_noisy_vs_original.png](../figures/lenet_fashion_e60_l5/fig04_train_loss_noisy_vs_original.png)

# %%
show("table11_partition_loss.md")

# %% [markdown]
# ### C2, C5 — extended dense training and width down-scaling against pruning (Fig. 6, 7, Tables 5, 7, 3)
#
# ![fig06_edt_vs_pruning.png](../figures/lenet_fashion_e60_l5/fig06_edt_vs_pruning.png)
# ![fig07_wd_vs_pruning.png](../figures/lenet_fashion_e60_l5/fig07_wd_vs_pruning.png)

# %%
show("table05_edt_vs_pruning.md", "table07_wd_vs_pruning.md", "table03_jaccard_pruning_vs_width.md")

# %% [markdown]
# ### C4 — subgroup training loss at low and high sparsity (App. L, Fig. 18)
#
# ![fig18_subgroups_pruning.png](../figures/lenet_fashion_e60_l5/fig18_subgroups_pruning.png)

# %%
show("tableL_subgroup_loss_change.md")

# %% [markdown]
# ### C6 — weight rewinding against LR rewinding (Fig. 14, Table 9)
#
# ![fig14_weight_vs_lr_rewinding.png](../figures/lenet_fashion_e60_l5/fig14_weight_vs_lr_rewinding.png)

# %%
show("table09_weight_rewinding.md")
