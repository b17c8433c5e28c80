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
# # Analysis: optimal sparsity, the match rule, noisy vs original partitions
#
# > From stored trajectories to the numbers the paper reports.

# %%
#| default_exp analysis

# %% [markdown]
# Definitions from §2:
#
# * the **optimally sparse model** is the one with the best *validation* error along a pruning trajectory; its
#   sparsity is the **optimal sparsity**; generalization is the *test* error. Each seed picks its own optimum, and
#   results are reported as mean ± standard deviation over seeds (3 in the paper);
# * two results **match** unless the mean over seeds of their difference is at least one standard deviation (of
#   that difference) away from zero; then they **differ**. We use the sample standard deviation (ddof = 1);
#   with a single seed nothing can be concluded and the rule answers `"n/a"`.
#
# §4 splits the training set into the **noisy** partition (labels changed by the noise) and the **original** one and
# compares their mean training loss for the dense and the optimally sparse model (Figure 4, Table 11).

# %%
#| export
from __future__ import annotations

import numpy as np
import pandas as pd

# %%
#| hide
from fastcore.test import test_eq, test_close


# %% [markdown]
# ## Collecting trajectories
#
# `trajectories` turns stored runs (`{label: RunSpec}` plus the results the store returns) into one long frame: a row
# per (noise, seed, level) with `weights_remaining` in percent.

# %%
#| export
def trajectories(results: dict, specs: dict) -> pd.DataFrame:
    "Long frame of IMP results: columns noise, seed, level, weights_remaining (%) and every stored metric."
    frames = []
    for k, df in results.items():
        s = specs[k]
        frames.append(df.assign(noise=s.data.noise, seed=s.seed, rewind=s.prune.rewind, strategy=s.prune.strategy,
                                weights_remaining=100 * df["density"]))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["noise", "seed", "level"]).reset_index(drop=True)

def summarize(df: pd.DataFrame, metrics=("test_err", "val_err", "train_loss", "noisy_loss", "original_loss"),
              by=("noise", "level")) -> pd.DataFrame:
    "Mean and std over seeds of `metrics`, per (noise, level), with the mean % weights remaining."
    g = df.groupby(list(by))
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["weights_remaining"] = g["weights_remaining"].mean()
    if "epochs_total" in df: out["epochs_total"] = g["epochs_total"].mean()
    out["n_seeds"] = g["seed"].nunique()
    return out.reset_index()


# %% [markdown]
# ## Optimal sparsity

# %%
#| export
def optimal_rows(df: pd.DataFrame, by=("noise", "seed")) -> pd.DataFrame:
    "Per (noise, seed): the level with the lowest validation error (the least pruned one on ties)."
    idx = df.sort_values("level").groupby(list(by))["val_err"].idxmin()
    return df.loc[idx].reset_index(drop=True)

def dense_rows(df: pd.DataFrame) -> pd.DataFrame:
    "Per (noise, seed): level 0, the dense model."
    return df[df.level == 0].reset_index(drop=True)

def optimal_level_of_mean(summary: pd.DataFrame) -> pd.DataFrame:
    "Per noise level: the level whose *mean* validation error over seeds is lowest (the star in Figures 3 and 4)."
    idx = summary.sort_values("level").groupby("noise")["val_err_mean"].idxmin()
    return summary.loc[idx].reset_index(drop=True)


# %% [markdown]
# ## The match rule

# %%
#| export
def compare(a, b) -> dict:
    "The paper's rule on paired per-seed results `a`, `b`: mean and std of a−b, and 'match' / 'differ' / 'n/a'."
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2: return {"diff_mean": float(d.mean()) if d.size else float("nan"), "diff_std": float("nan"), "verdict": "n/a"}
    m, s = float(d.mean()), float(d.std(ddof=1))
    return {"diff_mean": m, "diff_std": s, "verdict": "differ" if abs(m) >= s and abs(m) > 0 else "match"}

def verdict(a, b) -> str: return compare(a, b)["verdict"]


# %%
test_eq(verdict([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]), "differ")   # constant difference of -1, std 0
test_eq(verdict([1.0, 2.0, 3.0], [1.5, 1.5, 1.5]), "match")    # differences -0.5, 0.5, 1.5: mean 0.5 < std 1
test_eq(verdict([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]), "match")    # identical
test_eq(verdict([1.0], [2.0]), "n/a")
test_close(compare([3, 4, 5], [1, 1, 1])["diff_mean"], 3.0)


# %% [markdown]
# ## Formatting mean ± std

# %%
#| export
def mean_std(x, scale: float = 1.0, digits: int = 2) -> str:
    "'m±s' of the values `x` (sample std), multiplied by `scale`."
    x = np.asarray(x, dtype=float) * scale
    s = x.std(ddof=1) if x.size > 1 else 0.0
    return f"{x.mean():.{digits}f}±{s:.{digits}f}"


# %% [markdown]
# ## Table 11: noisy vs original partitions, dense vs optimally sparse

# %%
#| export
def partition_table(df: pd.DataFrame) -> pd.DataFrame:
    "Table 11 analogue: per noise > 0 and partition, dense and optimally sparse mean training loss over seeds."
    dense, best = dense_rows(df), optimal_rows(df)
    rows = []
    for p in sorted(df.noise.unique()):
        if p == 0: continue
        d, o = dense[dense.noise == p].sort_values("seed"), best[best.noise == p].sort_values("seed")
        for part in ("noisy", "original"):
            a, b = d[f"{part}_loss"].to_numpy(), o[f"{part}_loss"].to_numpy()
            c = compare(b, a)
            rows.append({"noise": p, "partition": part.capitalize(), "dense": mean_std(a), "sparse": mean_std(b),
                         "diff": round(c["diff_mean"], 2), "verdict": c["verdict"],
                         "dense_mean": a.mean(), "sparse_mean": b.mean(),
                         "weights_remaining": mean_std(o.weights_remaining, digits=1), "n_seeds": len(a)})
    return pd.DataFrame(rows)

def generalization_table(df: pd.DataFrame) -> pd.DataFrame:
    "Table 6 analogue: dense vs optimally sparse test error (%) per noise, mean±std over seeds, with the match rule."
    dense, best = dense_rows(df), optimal_rows(df)
    rows = []
    for p in sorted(df.noise.unique()):
        d, o = dense[dense.noise == p].sort_values("seed"), best[best.noise == p].sort_values("seed")
        c = compare(o.test_err.to_numpy(), d.test_err.to_numpy())
        rows.append({"noise": p, "dense_test_err": mean_std(d.test_err, 100), "sparse_test_err": mean_std(o.test_err, 100),
                     "diff": round(100 * c["diff_mean"], 2), "verdict": c["verdict"],
                     "optimal_weights_remaining": mean_std(o.weights_remaining, digits=1), "n_seeds": len(d)})
    return pd.DataFrame(rows)


# %% [markdown]
# A constructed example: two seeds, one noise level, three levels. The optimum of each seed is its lowest validation
# error; the partition table pairs dense and optimum per seed.

# %%
df = pd.DataFrame({"noise": 0.3, "seed": [0, 0, 0, 1, 1, 1], "level": [0, 1, 2] * 2,
                   "weights_remaining": [100, 80, 64] * 2,
                   "val_err": [0.30, 0.20, 0.25, 0.30, 0.28, 0.22], "test_err": [0.31, 0.21, 0.26, 0.29, 0.27, 0.23],
                   "noisy_loss": [0.1, 2.0, 2.5, 0.2, 1.0, 3.0], "original_loss": [0.05, 0.1, 0.2, 0.05, 0.1, 0.3]})
test_eq(optimal_rows(df).level.tolist(), [1, 2])
t11 = partition_table(df)
test_close(t11.loc[0, "dense_mean"], 0.15); test_close(t11.loc[0, "sparse_mean"], 2.5)
test_eq(t11.loc[0, "verdict"], "differ")
test_eq(generalization_table(df).loc[0, "sparse_test_err"], "22.00±1.41")
t11[["noise", "partition", "dense", "sparse", "diff", "verdict"]]


# %% [markdown]
# ## Which sparsities to look at (§3, App. L)
#
# §3 measures per-example losses "at two sparsities of interest: the sparsity that achieves the best generalization,
# and the highest sparsity that still attains better generalization than the dense model"; Appendix L adds evenly
# spaced sparsities. Per trajectory (one noise level and seed): the optimum is chosen on *validation* error (§2);
# "better generalization than dense" compares *test* errors, the paper's definition of generalization.

# %%
#| export
def chosen_levels(traj: pd.DataFrame, n_even: int = 5) -> dict:
    "For one trajectory: the optimal level, the sparsest level still beating dense on test error, and evenly spaced levels."
    t = traj.sort_values("level")
    dense_err = t[t.level == 0].test_err.iloc[0]
    optimal = int(t.loc[t.val_err.idxmin(), "level"])
    better = t[(t.level > 0) & (t.test_err < dense_err)]
    highest = int(better.level.max()) if len(better) else None
    last = int(t.level.max())
    even = sorted({int(round(x)) for x in np.linspace(1, last, n_even)}) if last >= 1 else []
    return {"optimal": optimal, "highest_better": highest, "even": even}


# %% [markdown]
# ## EL2N subgroups (§3, Figures 2, 5, 18–20)
#
# The training set is split into M = 20 subgroups of equal size by EL2N percentile (0–5%, 5–10%, …); for each we
# report the mean training-loss difference *algorithm − dense* of its examples (negative: the algorithm fits them
# better).

# %%
#| export
def el2n_subgroups(scores, m: int = 20) -> np.ndarray:
    "Subgroup index 0..m-1 of every example by EL2N percentile (equal-size groups, ties broken by position)."
    scores = np.asarray(scores, dtype=float)
    ranks = np.empty(len(scores), dtype=int)
    ranks[np.argsort(scores, kind="stable")] = np.arange(len(scores))
    return (ranks * m) // len(scores)

def subgroup_deltas(loss_algo, loss_dense, scores, m: int = 20) -> np.ndarray:
    "Mean (algorithm − dense) training loss per EL2N subgroup, lowest EL2N first."
    g = el2n_subgroups(scores, m)
    d = np.asarray(loss_algo, dtype=float) - np.asarray(loss_dense, dtype=float)
    return np.bincount(g, weights=d, minlength=m) / np.bincount(g, minlength=m)


# %%
sc = np.arange(40)[::-1]                  # example i has score 39-i
test_eq(el2n_subgroups(sc, 20)[:4].tolist(), [19, 19, 18, 18])
dl = subgroup_deltas(np.where(sc >= 30, 2.0, 1.0), np.ones(40), sc, m=4)   # only the top quarter got worse
test_eq(dl.tolist(), [0.0, 0.0, 0.0, 1.0])


# %% [markdown]
# Figures 1b, 2, 5 and 18 apply this to whole studies: for every trajectory, the per-example training loss of the
# model at a chosen level (Appendix L's choices: the `optimal` one by validation error, the `highest_better` one —
# sparsest still beating dense on test error — or the `last`), minus the dense model's, averaged in the 20
# EL2N subgroups of that run's training set. `scores` maps a trajectory's label to its EL2N scores (`el2n_scores`).

# %%
#| export
def study_subgroup_deltas(specs: dict, store, scores: dict, which: str = "optimal", m: int = 20) -> pd.DataFrame:
    """Long frame (noise, seed, which, level, weights_remaining, test_err, subgroup, delta) of the mean
    (level − dense) training loss per EL2N subgroup, for every trajectory in `specs` ({label: RunSpec})."""
    if which not in ("optimal", "highest_better", "last"):
        raise ValueError(f"which must be 'optimal', 'highest_better' or 'last', got {which!r}")
    rows = []
    for label, spec in specs.items():
        res = store.results(spec)
        ch = chosen_levels(res)
        lv = int(res.level.max()) if which == "last" else ch[which]
        if lv is None or lv == 0: continue           # no sparse level of that kind: nothing to compare
        dense = store.load_per_example(spec, 0)["train_loss"]
        sparse = store.load_per_example(spec, lv)["train_loss"]
        r = res.set_index("level").loc[lv]
        for g, d in enumerate(subgroup_deltas(sparse, dense, scores[label], m)):
            rows.append({"noise": spec.data.noise, "seed": spec.seed, "which": which, "level": lv,
                         "weights_remaining": 100 * r.density, "test_err": r.test_err, "subgroup": g, "delta": d})
    return pd.DataFrame(rows)


# %% [markdown]
# ## Most-affected examples (App. K)
#
# Appendix K ranks examples by the **geometric mean over the chosen sparsities** of their loss change, with negative
# changes clipped to 1e-5 (its footnotes 8, 9), the change being the sparse model's loss minus the dense model's:
# most-worsened = largest geometric mean of the increase; most-improved = the same on the decrease; least-affected =
# smallest geometric mean of the absolute change. A geometric mean is small as soon as one factor is: an example
# untouched at one of the sparsities counts as little affected, as the paper's definition implies.

# %%
#| export
def geometric_mean_change(changes, mode: str = "worsened", floor: float = 1e-5) -> np.ndarray:
    "Per example (columns = examples, rows = sparsities): geometric mean of the clipped loss change."
    c = np.atleast_2d(np.asarray(changes, dtype=float))
    if mode == "worsened": v = c
    elif mode == "improved": v = -c
    elif mode == "affected": v = np.abs(c)
    else: raise ValueError(f"mode must be 'worsened', 'improved' or 'affected', got {mode!r}")
    return np.exp(np.log(np.clip(v, floor, None)).mean(axis=0))

def top_examples(changes, k: int, mode: str = "worsened") -> np.ndarray:
    "Indices of the `k` most worsened / improved examples, or (mode='least') the `k` least affected."
    if mode == "least": return np.argsort(geometric_mean_change(changes, "affected"), kind="stable")[:k]
    return np.argsort(-geometric_mean_change(changes, mode), kind="stable")[:k]


# %%
ch = np.array([[1.0, -1.0, 0.01, 4.0], [4.0, -4.0, -0.01, 0.0]])   # 2 sparsities x 4 examples
test_close(geometric_mean_change(ch)[0], 2.0)                        # sqrt(1*4)
test_eq(top_examples(ch, 1).tolist(), [0])                          # ex. 3 is worse at one sparsity only: clipped
test_eq(top_examples(ch, 1, "improved").tolist(), [1])
test_eq(top_examples(ch, 1, "least").tolist(), [3])   # |change| 4 and 0: the geometric mean is ~0 (paper's definition)
test_eq(top_examples(ch[:1], 1, "least").tolist(), [2])


# %% [markdown]
# ## Overlap of affected sets (App. I, Table 3)
#
# The Jaccard index |A ∩ B| / |A ∪ B| of the top-10% most-affected examples under pruning and under width
# down-scaling, against the chance level of two random sets of the same size: with k of n examples each, the
# expected intersection is k²/n, so chance ≈ (k²/n) / (2k − k²/n).

# %%
#| export
def jaccard(a, b) -> float:
    "Jaccard index of two sets of example indices."
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / len(a | b) if (a or b) else 1.0

def jaccard_chance(k: int, n: int) -> float:
    "Jaccard index expected for two independent uniformly random k-subsets of n items (ratio of expectations)."
    inter = k * k / n
    return inter / (2 * k - inter)

def top_fraction(values, fraction: float = 0.1) -> np.ndarray:
    "Indices of the largest `fraction` of `values`."
    k = max(1, int(round(fraction * len(values))))
    return np.argsort(-np.asarray(values, dtype=float), kind="stable")[:k]


# %%
test_close(jaccard([1, 2, 3], [2, 3, 4]), 0.5)
test_eq(jaccard([], []), 1.0)
rng = np.random.default_rng(0)
sim = np.mean([jaccard(rng.choice(1000, 100, replace=False), rng.choice(1000, 100, replace=False)) for _ in range(300)])
assert abs(sim - jaccard_chance(100, 1000)) < 0.01, (sim, jaccard_chance(100, 1000))
test_eq(sorted(top_fraction([5, 1, 9, 3, 7, 2, 8, 0, 6, 4], 0.2).tolist()), [2, 6])


# %% [markdown]
# ## Comparing learning algorithms (Tables 2, 9, 10)
#
# For each algorithm, every seed picks its model with the best validation error along its family (pruning levels,
# EDT cycles or widths) and reports its test error; the table gives mean ± std over seeds, where the optimum lies
# (% weights remaining, and training time in units of the standard training run), and the match rule against a
# reference algorithm (LR rewinding in the paper).

# %%
#| export
def algorithm_table(frames: dict[str, pd.DataFrame], reference: str | None = None) -> pd.DataFrame:
    """Optimal test error per algorithm. `frames` maps an algorithm name to its long frame (columns seed, val_err,
    test_err, weights_remaining and optionally epochs_total); rows of one seed are one family of models."""
    reference = reference or next(iter(frames))
    best = {k: df.loc[df.groupby("seed")["val_err"].idxmin()].sort_values("seed") for k, df in frames.items()}
    rows = []
    for k, b in best.items():
        c = compare(b.test_err.to_numpy(), best[reference].test_err.to_numpy()) if k != reference else {"verdict": "—", "diff_mean": 0.0}
        e0 = frames[k].epochs_total.min() if "epochs_total" in frames[k] else np.nan
        rows.append({"algorithm": k, "optimal_test_err": mean_std(b.test_err, 100),
                     "optimal_weights_remaining": mean_std(b.weights_remaining, digits=1),
                     "training_time": mean_std(b.epochs_total / e0, digits=1) if "epochs_total" in b else "",
                     f"diff_vs_{reference}": round(100 * c["diff_mean"], 2), "verdict": c["verdict"],
                     "test_err_mean": b.test_err.mean(), "n_seeds": len(b)})
    return pd.DataFrame(rows)


# %%
fa = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "val_err": [.3, .2, .3, .2, .3, .2], "test_err": [.3, .20, .3, .21, .3, .19],
                   "weights_remaining": [100, 80] * 3, "epochs_total": [1, 2] * 3})
fb = fa.assign(test_err=fa.test_err + 0.05)
tab = algorithm_table({"LR": fa, "EDT": fb})
test_eq(tab.verdict.tolist(), ["—", "differ"]); test_eq(tab.optimal_test_err[0], "20.00±1.00")
tab[["algorithm", "optimal_test_err", "optimal_weights_remaining", "training_time", "verdict"]]


# %% [markdown]
# ## Paired comparisons along a sweep, and the range where pruning helps
#
# Appendices D, E and K retrain dense models once per pruning level (or width) and compare two of them — TIE vs
# RND, TW vs Rand, dense-subset vs sparse — level by level. `paired_by_level` applies the match rule at every level
# over the seeds; `improving_range` is the green band of Figures 9 and 17: the % weights remaining where the mean
# pruned test error is below the mean dense test error.

# %%
#| export
def paired_by_level(a: pd.DataFrame, b: pd.DataFrame, metric: str = "test_err", on=("level",)) -> pd.DataFrame:
    """Per `on` value: mean ± std of `a` and `b` over seeds and the match rule on their per-seed difference a − b
    (both frames have columns seed, `on`, `metric` and weights_remaining), in % when the metric is an error."""
    on = list(on)
    m = a.merge(b, on=on + ["seed"], suffixes=("_a", "_b"))
    scale = 100 if metric.endswith("err") else 1
    rows = []
    for key, g in m.groupby(on):
        g = g.sort_values("seed")
        c = compare(g[f"{metric}_a"].to_numpy(), g[f"{metric}_b"].to_numpy())
        rows.append({**dict(zip(on, key if isinstance(key, tuple) else (key,))),
                     "weights_remaining": g["weights_remaining_a"].mean() if "weights_remaining_a" in g else np.nan,
                     "a": mean_std(g[f"{metric}_a"], scale), "b": mean_std(g[f"{metric}_b"], scale),
                     "a_mean": scale * g[f"{metric}_a"].mean(), "b_mean": scale * g[f"{metric}_b"].mean(),
                     "diff": scale * c["diff_mean"], "diff_std": scale * c["diff_std"], "verdict": c["verdict"],
                     "n_seeds": len(g)})
    return pd.DataFrame(rows)

def improving_range(traj: pd.DataFrame) -> tuple[float, float] | None:
    "(highest, lowest) % weights remaining of the pruned levels whose mean test error beats the mean dense one."
    s = traj.groupby("level").agg(test_err=("test_err", "mean"), weights_remaining=("weights_remaining", "mean"))
    better = s[(s.index > 0) & (s.test_err < s.loc[0, "test_err"])]
    return (float(better.weights_remaining.max()), float(better.weights_remaining.min())) if len(better) else None


# %%
_a = pd.DataFrame({"seed": [0, 1, 2, 0, 1, 2], "level": [1, 1, 1, 2, 2, 2], "test_err": [.10, .11, .12, .2, .2, .2],
                   "weights_remaining": [80] * 3 + [64] * 3})
_p = paired_by_level(_a, _a.assign(test_err=_a.test_err - 0.02))
test_eq(_p.verdict.tolist(), ["differ", "differ"]); assert abs(_p["diff"][0] - 2.0) < 1e-9
_t = pd.DataFrame({"seed": 0, "level": [0, 1, 2, 3], "test_err": [.2, .18, .19, .25], "weights_remaining": [100, 80, 64, 51.2]})
test_eq(improving_range(_t), (80.0, 64.0))
