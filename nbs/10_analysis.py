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
# # Analysis: optimal sparsity, the match rule, noisy vs original partitions
#
# > From stored trajectories to the numbers the paper reports.

# %%
#| default_exp analysis

# %% [markdown]
# Definitions from §2:
#
# * the **optimally sparse model** is the one with the best *validation* error along a pruning trajectory; its
#   sparsity is the **optimal sparsity**; generalization is the *test* error. The paper reports one optimal sparsity
#   per benchmark and noise level (the star of Figures 3 and 4; "ResNet20 on CIFAR-10 at 83.22% sparsity"), so we
#   choose it **once, on the validation curve averaged over seeds**, and report every seed's model at that sparsity
#   as mean ± standard deviation over seeds (3 in the paper);
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
from fastcore.test import test_eq, test_close, test_fail


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

def summarize(df: pd.DataFrame, metrics=("test_err", "val_err", "train_loss", "noisy_loss", "original_loss",
                                         "noisy_err"), by=("noise", "level")) -> pd.DataFrame:
    "Mean and std over seeds of `metrics` (those `df` has), per (noise, level), with the mean % weights remaining."
    g = df.groupby(list(by))
    out = g[[m for m in metrics if m in df]].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["weights_remaining"] = g["weights_remaining"].mean()
    if "epochs_total" in df: out["epochs_total"] = g["epochs_total"].mean()
    out["n_seeds"] = g["seed"].nunique()
    return out.reset_index()


# %% [markdown]
# ## Optimal sparsity

# %% [markdown]
# The paper picks one optimum per curve by validation error (§2: "The *optimally sparse model* is the model pruned
# to the sparsity at which it achieves the best validation error"), and every place that marks an optimum uses this one rule: Table 6's optimally sparse row, the
# star of Figures 3 and 4, App. I's best width.

# %%
#| export
def best_of_means(means: pd.Series, complete: pd.Series | None = None, ascending: bool = True, what: str = "level"):
    """The one optimum rule: the index value (a pruning level; a width) of the lowest mean validation error `means`.
    Only values every seed has compete (`complete`, a boolean Series on the same index: a mean over fewer seeds is not
    the same curve); a NaN never wins; on ties the first in index order (`ascending`: the least pruned level)."""
    m = (means if complete is None else means[complete]).dropna().sort_index(ascending=ascending)
    if m.empty: raise ValueError(f"no {what} has a validation error for every seed")
    return m.index[int(np.argmin(m.to_numpy()))]


# %%
_m = pd.Series([0.3, 0.2, 0.2, 0.1], index=[0, 1, 2, 3])
test_eq(best_of_means(_m), 3)
test_eq(best_of_means(_m, pd.Series([True, True, True, False], index=_m.index)), 1)   # ties: the least pruned
test_eq(best_of_means(_m.iloc[:3], ascending=False), 2)
test_fail(lambda: best_of_means(_m * np.nan), contains="no level")


# %%
#| export
def optimal_key(df: pd.DataFrame, key: str = "level", ascending: bool = True):
    "`best_of_means` of the per-seed rows `df`: the `key` value whose validation error averaged over the seeds is lowest."
    g = df.groupby(key)
    return best_of_means(g["val_err"].mean(), g["seed"].nunique() == df["seed"].nunique(), ascending, key)

def optimal_rows(df: pd.DataFrame, key: str = "level", ascending: bool = True, by=("noise",)) -> pd.DataFrame:
    "Per `by` group (a noise level): every seed's row at the one `optimal_key` of the group's seed-averaged curve."
    groups = df.groupby(list(by)) if by else [((), df)]
    rows = [g[g[key] == optimal_key(g, key, ascending)] for _, g in groups]
    return pd.concat(rows).sort_values([*by, "seed"]).reset_index(drop=True)

def dense_rows(df: pd.DataFrame) -> pd.DataFrame:
    "Per (noise, seed): level 0, the dense model."
    return df[df.level == 0].reset_index(drop=True)


# %%
#| export
def optimal_level_of_mean(summary: pd.DataFrame) -> pd.DataFrame:
    """Per noise level, the row of `summary` (`summarize`'s) at the optimum (the star in Figures 3 and 4): the same
    `best_of_means` rule as `optimal_key` on the per-seed rows, so the star is Table 6's optimum."""
    rows = []
    for _, g in summary.groupby("noise"):
        s = g.set_index("level")
        full = s["n_seeds"] == s["n_seeds"].max() if "n_seeds" in s else None
        rows.append(g[g.level == best_of_means(s["val_err_mean"], full)])
    return pd.concat(rows).reset_index(drop=True)


# %%
_df = pd.DataFrame({"noise": 0.1, "seed": [0, 0, 0, 1, 1], "level": [0, 1, 2, 0, 1],
                    "val_err": [0.3, 0.25, 0.1, 0.3, 0.25], "test_err": 0.3, "weights_remaining": [100, 80, 64, 100, 80]})
# level 2 has one seed of two: its mean (0.1) is not the curve's; both rules skip it
test_eq(optimal_level_of_mean(summarize(_df)).level.tolist(), [1])   # the old idxmin picked 2
test_eq(optimal_key(_df), 1)


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
# ## Mean and standard deviation over seeds, as numbers
#
# Tables keep numbers: a quantity over seeds is two columns, `<name>_mean` and `<name>_std` (sample std; 0 with one
# seed), and a comparison is `diff_mean`, `diff_std` and the `verdict`. "m±s" text is written only where a table
# becomes markdown (`plots.to_markdown`), with `mean_std`.

# %%
#| export
def stats(name: str, x, scale: float = 1.0) -> dict:
    "{`name`_mean, `name`_std} of the values `x` (sample std, 0 for one value), multiplied by `scale`."
    x = np.asarray(x, dtype=float) * scale
    return {f"{name}_mean": float(x.mean()) if x.size else np.nan,
            f"{name}_std": float(x.std(ddof=1)) if x.size > 1 else 0.0}

def comparison(a, b, scale: float = 1.0) -> dict:
    "The match rule on paired per-seed `a` − `b`, as numbers: diff_mean, diff_std (× `scale`) and the verdict."
    c = compare(a, b)
    return {"diff_mean": scale * c["diff_mean"], "diff_std": scale * c["diff_std"], "verdict": c["verdict"]}

def ms_text(m: float, s: float, digits: int | None = 2, signed: bool = False) -> str:
    """The one 'm±s' text (markdown only: numbers stay numbers until written): `digits` decimals, or None for the
    shortest form (`:g`, the paper's transcriptions); `signed`: the mean with its sign (a difference); a NaN std
    leaves '±s' out, a NaN mean gives ''."""
    f = (lambda v, sg="": f"{v:{sg}g}") if digits is None else (lambda v, sg="": f"{v:{sg}.{digits}f}")
    return "" if m != m else f(m, "+" * signed) if s != s else f"{f(m, '+' * signed)}±{f(s)}"

def mean_std(x, scale: float = 1.0, digits: int = 2) -> str:
    "`ms_text` of the values `x` (sample std), multiplied by `scale`."
    st = stats("x", x, scale)
    return ms_text(st["x_mean"], st["x_std"], digits)


# %%
test_close(list(stats("err", [0.1, 0.3], 100).values()), [20.0, 14.1421356])
test_eq(stats("x", [2.0]), {"x_mean": 2.0, "x_std": 0.0})
test_eq(comparison([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], 100)["verdict"], "differ")
test_eq(mean_std([0.1, 0.3], 100), "20.00±14.14")
test_eq((ms_text(1.5, 0.1, None), ms_text(6.6, 0.0, 1), ms_text(2.0, np.nan), ms_text(np.nan, 1.0)),
        ("1.5±0.1", "6.6±0.0", "2.00", ""))
test_eq((ms_text(-1.954, 0.861, signed=True), ms_text(0.1, 0.05, signed=True)), ("-1.95±0.86", "+0.10±0.05"))


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
            rows.append({"noise": p, "partition": part.capitalize(), **stats("dense", a), **stats("sparse", b),
                         **comparison(b, a), **stats("weights_remaining", o.weights_remaining), "n_seeds": len(a)})
        # §4: "the gap between the average training loss ... on original versus noisy examples widens beyond the
        # dense model": the per-seed gap noisy − original, dense and at the optimum, paired by seed
        a = d.noisy_loss.to_numpy() - d.original_loss.to_numpy(); b = o.noisy_loss.to_numpy() - o.original_loss.to_numpy()
        rows.append({"noise": p, "partition": "Gap", **stats("dense", a), **stats("sparse", b), **comparison(b, a),
                     **stats("weights_remaining", o.weights_remaining), "n_seeds": len(a)})
    return pd.DataFrame(rows)

def generalization_table(df: pd.DataFrame) -> pd.DataFrame:
    "Table 6 analogue: dense vs optimally sparse test error (%) per noise, mean±std over seeds, with the match rule."
    dense, best = dense_rows(df), optimal_rows(df)
    rows = []
    for p in sorted(df.noise.unique()):
        d, o = dense[dense.noise == p].sort_values("seed"), best[best.noise == p].sort_values("seed")
        rows.append({"noise": p, **stats("dense_test_err", d.test_err, 100), **stats("sparse_test_err", o.test_err, 100),
                     **comparison(o.test_err.to_numpy(), d.test_err.to_numpy(), 100),
                     **stats("optimal_weights_remaining", o.weights_remaining), "n_seeds": len(d),
                     "optimal_level": int(o.level.iloc[0]), "last_level": int(df[df.noise == p].level.max())})
    return pd.DataFrame(rows)


# %% [markdown]
# A constructed example: two seeds, one noise level, three levels. The optimum of each seed is its lowest validation
# error; the partition table pairs dense and optimum per seed.

# %%
df = pd.DataFrame({"noise": 0.3, "seed": [0, 0, 0, 1, 1, 1], "level": [0, 1, 2] * 2,
                   "weights_remaining": [100, 80, 64] * 2,
                   "val_err": [0.30, 0.20, 0.25, 0.30, 0.28, 0.22], "test_err": [0.31, 0.21, 0.26, 0.29, 0.27, 0.23],
                   "noisy_loss": [0.1, 2.0, 2.5, 0.2, 1.0, 3.0], "original_loss": [0.05, 0.1, 0.2, 0.05, 0.1, 0.3]})
# seed 0's own optimum is level 1, seed 1's level 2; the seed-mean validation curve (0.30, 0.24, 0.235) picks
# level 2 for both: one sparsity per noise level, as the paper reports it
test_eq(optimal_rows(df).level.tolist(), [2, 2])
test_eq(optimal_key(df), 2)
t11 = partition_table(df)
test_close(t11.loc[0, "dense_mean"], 0.15); test_close(t11.loc[0, "sparse_mean"], 2.75)
test_eq(t11.loc[0, "verdict"], "differ")
# the gap rows: dense gaps 0.05, 0.15; optimum gaps 2.3, 2.7 -> widened by 2.4 on average
g = t11[t11.partition == "Gap"].iloc[0]
test_close(g.dense_mean, 0.1); test_close(g.sparse_mean, 2.5); test_eq(g.verdict, "differ")
g6 = generalization_table(df).iloc[0]
test_close((g6.sparse_test_err_mean, g6.sparse_test_err_std, g6.diff_mean), (24.5, 2.1213203, -5.5))
test_eq(optimal_rows(df.assign(val_err=[0.3, 0.2, 0.2] * 2)).level.tolist(), [1, 1])   # ties: the least pruned
t11[["noise", "partition", "dense_mean", "dense_std", "sparse_mean", "sparse_std", "diff_mean", "verdict"]]


# %% [markdown]
# ## Which sparsities to look at (§3, §4, App. K, App. L)
#
# §3 measures per-example losses "at two sparsities of interest: the sparsity that achieves the best generalization,
# and the highest sparsity that still attains better generalization than the dense model". Both are chosen once per
# noise level on the curves averaged over seeds, so every figure and table (Fig. 1b, 2, 5, 13, App. K, L, Tables 4,
# 6, 11) speaks of the same model: the optimum on the mean *validation* error (§2); "better generalization than the
# dense model" on *test* error (the paper's definition of generalization), decided by the paper's **match rule**:
# a level improves when its per-seed test errors, paired with the dense model's, differ from them (|mean| ≥ std of
# the differences) with a negative mean. The **improving range** (green in Figures 9 and 17) is the set of those
# levels; with one seed the rule cannot decide, and a lower test error counts.

# %%
#| export
def improving_levels(traj: pd.DataFrame) -> list[int]:
    "Levels ≥ 1 of one noise level's trajectories (several seeds) whose test error beats dense by the match rule."
    dense = traj[traj.level == 0].set_index("seed").test_err
    out = []
    for lv, g in traj[traj.level > 0].groupby("level"):
        g = g.set_index("seed").test_err
        if not dense.index.isin(g.index).all(): continue    # a level some seed lacks is not on the mean curve
        c = compare(g[dense.index].to_numpy(), dense.to_numpy())
        if c["diff_mean"] < 0 and c["verdict"] in ("differ", "n/a"): out.append(int(lv))
    return out

def selected_levels(traj: pd.DataFrame) -> pd.DataFrame:
    """Per noise level: the `optimal` level (lowest mean validation error, least pruned on ties), the `improving`
    levels (match rule on test error against dense), the `highest_better` one (the sparsest improving level, or
    None), with the mean % weights remaining of each chosen level."""
    rows = []
    for p, t in traj.groupby("noise"):
        w = t.groupby("level").weights_remaining.mean()
        opt, imp = int(optimal_key(t)), improving_levels(t)
        high = max(imp) if imp else None
        rows.append({"noise": p, "optimal": opt, "optimal_weights": w[opt], "improving": tuple(imp),
                     "highest_better": high, "highest_better_weights": w[high] if high is not None else np.nan})
    out = pd.DataFrame(rows).set_index("noise", drop=False)
    out["highest_better"] = pd.Series([r["highest_better"] for r in rows], index=out.index, dtype=object)  # None stays
    return out


# %%
_t = pd.DataFrame({"noise": 0.0, "seed": [0, 1, 2] * 4, "level": np.repeat([0, 1, 2, 3], 3),
                   "weights_remaining": np.repeat([100.0, 80, 64, 51.2], 3),
                   "val_err": [.10, .10, .10, .08, .09, .08, .09, .07, .12, .11, .12, .11],
                   "test_err": [.10, .11, .10, .08, .09, .09, .09, .12, .08, .11, .12, .11]})
# level 1 beats dense on every seed (differ); level 2 is better on average but not by the rule (match); level 3 worse
test_eq(improving_levels(_t), [1])
sel = selected_levels(_t).loc[0.0]
test_eq((sel.optimal, sel.highest_better, sel.improving), (1, 1, (1,)))
test_eq(improving_levels(_t[_t.seed == 2]), [1, 2])     # one seed: the rule cannot decide, a lower error counts
# a level some seed lacks is not on the seed-averaged curve, and a NaN validation error never wins
_m = _t[~((_t.level == 3) | ((_t.level == 1) & (_t.seed == 0)))]
test_eq((optimal_key(_m), improving_levels(_m)), (2, []))
test_eq(optimal_key(_t.assign(val_err=np.where(_t.level == 1, np.nan, _t.val_err))), 2)
test_eq(selected_levels(pd.concat([_t, _t.assign(noise=0.3, test_err=0.2)])).highest_better.tolist(), [1, None])
sel


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
# Figures 1b, 2 and 5 apply this to whole studies: for every trajectory, the per-example training loss of the
# model at the level `selected_levels` chose for its noise level (the `optimal` one, the `highest_better` one) or the
# `last`, minus the dense model's, averaged in the 20 EL2N subgroups of that run's training set. Every seed is read at
# the same level, so the mean over seeds is the mean of one sparsity. `scores` maps a trajectory's label to its
# EL2N scores (`el2n_scores`).

# %%
#| export
def study_subgroup_deltas(specs: dict, store, scores: dict, which: str = "optimal", m: int = 20) -> pd.DataFrame:
    """Long frame (noise, seed, which, level, weights_remaining, test_err, subgroup, delta) of the mean
    (level − dense) training loss per EL2N subgroup, for every trajectory in `specs` ({label: RunSpec})."""
    if which not in ("optimal", "highest_better", "last"):
        raise ValueError(f"which must be 'optimal', 'highest_better' or 'last', got {which!r}")
    results = {label: store.results(spec) for label, spec in specs.items()}
    sel = selected_levels(trajectories(results, specs))        # one level per noise level, for every seed
    rows = []
    for label, spec in specs.items():
        res = results[label]
        lv = int(res.level.max()) if which == "last" else sel.loc[spec.data.noise, which]
        if lv is None or pd.isna(lv) or lv == 0: continue     # no sparse level of that kind: nothing to compare
        lv = int(lv)
        dense = store.load_per_example(spec, 0)["train_loss"]
        sparse = store.load_per_example(spec, lv)["train_loss"]
        r = res.set_index("level").loc[lv]
        for g, d in enumerate(subgroup_deltas(sparse, dense, scores[label], m)):
            rows.append({"noise": spec.data.noise, "seed": spec.seed, "which": which, "level": lv,
                         "weights_remaining": 100 * r.density, "test_err": r.test_err, "subgroup": g, "delta": d})
    return pd.DataFrame(rows, columns=["noise", "seed", "which", "level", "weights_remaining", "test_err", "subgroup",
                                       "delta"])


# %% [markdown]
# Every figure of subgroup deltas is summarised the same way, in the paper's words. §3: "the average magnitude of
# pruning's effect on examples with the top 20% EL2N scores is 3.5-71x that on examples with the bottom 80%" —
# `top_delta` is the mean change over the top 20% of the subgroups, `bottom_delta` over the other 80%. §3 again: "for
# all subgroups, the average training loss of the pruned model either matches or improves over the dense model" —
# `n_match_or_lower` counts the subgroups whose seed-mean change is below its std over seeds (the match rule: not
# worse). App. L: pruning lowers (raises) "the average training loss on almost all example subgroups" — `n_lower`
# and `n_higher` count the subgroups whose seed-mean change is negative (positive). `n_subgroups` is M.

# %%
#| export
def subgroup_extremes(frame: pd.DataFrame, by=(), fraction: float = 0.2) -> pd.DataFrame:
    """Per `by` group of a subgroup-delta frame (columns subgroup, delta, one row per seed and subgroup): the mean
    delta over all subgroups (`mean_delta`), over the top `fraction` of EL2N subgroups (`top_delta`) and over the
    rest (`bottom_delta`), and the counts of subgroups lower / higher / matching-or-lower (see above)."""
    cols = ["mean_delta", "top_delta", "bottom_delta", "n_subgroups", "n_lower", "n_higher", "n_match_or_lower"]
    def one(g):
        by_sub = g.groupby("subgroup").delta
        d, s = by_sub.mean(), by_sub.std().fillna(0.0)
        k = max(1, int(round(fraction * len(d))))
        return pd.Series({"mean_delta": d.mean(), "top_delta": d.iloc[-k:].mean(),
                          "bottom_delta": d.iloc[:-k].mean() if len(d) > k else float("nan"),
                          "n_subgroups": len(d), "n_lower": int((d < 0).sum()), "n_higher": int((d > 0).sum()),
                          "n_match_or_lower": int(((d < s) | (d <= 0)).sum())})
    if not by: return one(frame).to_frame().T if len(frame) else pd.DataFrame(columns=cols)
    return frame.groupby(list(by)).apply(one, include_groups=False).reset_index()


# %%
_f = pd.DataFrame({"noise": 0.0, "seed": np.repeat([0, 1], 10), "subgroup": list(range(10)) * 2,
                   "delta": list(np.arange(10.0) - 1) * 2})
_e = subgroup_extremes(_f, ("noise",)).iloc[0]
# deltas -1..8: top 20% = {7, 8}, bottom 80% = -1..6; one lower, eight higher, one zero (matches)
test_eq((_e.mean_delta, _e.top_delta, _e.bottom_delta), (3.5, 7.5, 2.5))
test_eq((_e.n_subgroups, _e.n_lower, _e.n_higher, _e.n_match_or_lower), (10, 1, 8, 2))
test_eq(subgroup_extremes(_f).iloc[0].top_delta, 7.5)
# a subgroup worse in the mean but within its std over seeds matches (the paper's rule)
_g = pd.DataFrame({"seed": [0, 1, 2], "subgroup": 0, "delta": [0.3, -0.2, 0.2]})
test_eq(subgroup_extremes(_g).iloc[0].n_match_or_lower, 1)


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
# **The sparsities each set is measured at (Table 4).** K.1 measures most-*improved* examples where pruning improves
# generalization and lowers the training loss, and most-*worsened* ones where it improves generalization and
# *raises* the loss. "For LeNet on MNIST, ResNet32 on CIFAR-100 and ResNet50 on ImageNet benchmarks, however, no
# such sparsities exist. We therefore choose to measure per-example training loss after pruning to sparsities with
# an increased overall training loss and generalization that is no worse than that of the dense models by 2%" — the
# *preserving* sparsities, which also define the least-affected set. "Improves" is the match rule
# (`improving_levels`); the losses and errors compared are the means over seeds.

# %%
#| export
def example_selection_levels(traj: pd.DataFrame, tolerance: float = 0.02) -> dict:
    """App. K.1 for one noise level's trajectories: {'most worsened', 'most improved', 'least affected': levels ≥ 1,
    'worsened_from': 'improving' | 'preserving'} — most worsened falls back to the generalization-preserving
    sparsities (test error at most `tolerance` above dense) when no improving one raises the training loss."""
    s = traj.groupby("level").agg(test_err=("test_err", "mean"), train_loss=("train_loss", "mean"))
    d, sp = s.loc[0], s[s.index > 0]
    improving = set(improving_levels(traj))
    preserving = [int(lv) for lv in sp[sp.test_err <= d.test_err + tolerance].index]
    up = [int(lv) for lv in sp[sp.train_loss > d.train_loss].index]
    worsened = [lv for lv in up if lv in improving]
    source = "improving"
    if not worsened: worsened, source = [lv for lv in up if lv in preserving], "preserving"
    return {"most worsened": worsened, "worsened_from": source, "least affected": preserving,
            "most improved": [int(lv) for lv in sp[sp.train_loss < d.train_loss].index if lv in improving]}

def seed_mean_changes(per_seed) -> tuple[np.ndarray, np.ndarray]:
    """`per_seed`: one (example ids, loss changes [sparsities × examples]) per seed. Returns the sorted ids of every
    example and its loss change at each sparsity averaged over the seeds that train on it."""
    ids = np.concatenate([np.asarray(i) for i, _ in per_seed])
    ch = np.concatenate([np.atleast_2d(np.asarray(c, dtype=float)) for _, c in per_seed], axis=1)
    uniq, inv = np.unique(ids, return_inverse=True)
    n = np.bincount(inv)
    return uniq, np.stack([np.bincount(inv, weights=row) / n for row in ch])

def rank_examples(per_seed, k: int, mode: str = "worsened") -> np.ndarray:
    "Ids of the `k` most worsened / improved (or, mode='least', least affected) examples, seeds averaged first."
    ids, mean = seed_mean_changes(per_seed)
    return ids[top_examples(mean, k, mode)]


# %%
_k = pd.DataFrame({"seed": [0, 1, 2] * 4, "level": np.repeat([0, 1, 2, 3], 3),
                   "test_err": [.10, .11, .10, .08, .09, .09, .10, .11, .11, .15, .16, .15],
                   "train_loss": np.repeat([.5, .3, .6, .9], 3)})
# level 1 improves and lowers the loss; level 2 raises it and preserves (+0.3 points): no improving level raises it
sel = example_selection_levels(_k)
test_eq(sel, {"most worsened": [2], "worsened_from": "preserving", "least affected": [1, 2], "most improved": [1]})
test_eq(example_selection_levels(_k.assign(train_loss=np.repeat([.5, .6, .6, .9], 3)))["worsened_from"], "improving")
# seeds averaged before ranking: example 7 is worsened a lot on one seed only, example 5 moderately on both
per_seed = [(np.array([5, 7, 9]), np.array([[1.0, 3.0, 0.0]])), (np.array([9, 5, 7]), np.array([[0.0, 1.2, -2.9]]))]
ids, m = seed_mean_changes(per_seed)
test_eq(ids.tolist(), [5, 7, 9]); test_close(m[0], [1.1, 0.05, 0.0])
test_eq(rank_examples(per_seed, 1).tolist(), [5])       # pooling seeds would have picked 7 (3.0)


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
def algorithm_table(frames: dict[str, pd.DataFrame], reference: str | None = None,
                    dense: pd.DataFrame | None = None) -> pd.DataFrame:
    """Optimal test error per algorithm. `frames` maps an algorithm name to its long frame (columns seed, val_err,
    test_err, weights_remaining and optionally epochs_total) at one noise level; rows of one seed are one family of
    models, indexed by `level` (or by `width` for width down-scaling). The optimal member is chosen once on the
    seed-averaged validation curve (`optimal_rows`), and every seed's model at it is reported. With `dense` (the
    dense models, columns seed and test_err) each optimum is also compared with them (`dense_diff_*`)."""
    reference = reference or next(iter(frames))
    def best_of(df):
        key = "width" if "width" in df else "level"
        return optimal_rows(df, key, ascending=key == "level", by=("noise",) if "noise" in df else ())
    best = {k: best_of(df).sort_values("seed") for k, df in frames.items()}
    rows = []
    for k, b in best.items():
        ref = best[reference]
        c = comparison(b.test_err.to_numpy(), ref.test_err.to_numpy(), 100) if k != reference else \
            {"diff_mean": 0.0, "diff_std": 0.0, "verdict": "—"}
        e0 = frames[k].epochs_total.min() if "epochs_total" in frames[k] else np.nan
        time = stats("training_time", b.epochs_total / e0) if "epochs_total" in b else \
            {"training_time_mean": np.nan, "training_time_std": np.nan}
        vs_dense = {} if dense is None else {f"dense_{n}": v for n, v in comparison(
            b.test_err.to_numpy(), dense.sort_values("seed").test_err.to_numpy(), 100).items()}
        rows.append({"algorithm": k, **stats("optimal_test_err", b.test_err, 100),
                     **stats("optimal_weights_remaining", b.weights_remaining), **time, "reference": reference, **c,
                     "n_seeds": len(b), **vs_dense})
    return pd.DataFrame(rows)


# %%
fa = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "level": [0, 1] * 3, "val_err": [.3, .2, .3, .2, .3, .2],
                   "test_err": [.3, .20, .3, .21, .3, .19], "weights_remaining": [100, 80] * 3, "epochs_total": [1, 2] * 3})
fb = fa.assign(test_err=fa.test_err + 0.05)
tab = algorithm_table({"LR": fa, "EDT": fb})
test_eq(tab.verdict.tolist(), ["—", "differ"]); test_close(tab.loc[0, ["optimal_test_err_mean", "optimal_test_err_std"]].tolist(), [20.0, 1.0])
test_close(tab.loc[1, "diff_mean"], 5.0)
# width down-scaling: the family is indexed by width, the widest model first on ties
fw = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "width": [1.0, 0.8] * 3, "val_err": [.2, .2, .3, .2, .3, .2],
                   "test_err": [.3, .25, .3, .24, .3, .26], "weights_remaining": [100, 64] * 3})
test_close(algorithm_table({"LR": fa, "WD": fw}).optimal_test_err_mean[1], 25.0)
tab[["algorithm", "optimal_test_err_mean", "optimal_test_err_std", "training_time_mean", "diff_mean", "verdict"]]


# %% [markdown]
# ## Table 8: dense-subset models (App. E)
#
# Per noise level: the dense model and the optimally sparse one (LR rewinding), the dense-subset model of the dense
# level ("0% sparsity") and the optimal dense-subset model (every level a candidate), with the match rule on
# DS optimal − LR optimal. `ds` has one row per dense-subset run: noise, seed, level, val_err, test_err,
# weights_remaining of the level that chose its subset (`sweep.dependent_frame`).

# %%
#| export
def dense_subset_table(traj: pd.DataFrame, ds: pd.DataFrame) -> pd.DataFrame:
    "Table 8 from the IMP trajectories `traj` and the dense-subset runs `ds`: test errors in %, numbers only."
    rows = []
    for p, t in traj.groupby("noise"):
        d, lr_opt = ds[ds.noise == p], optimal_rows(t)
        row = {"noise": p, **stats("LR_dense_test_err", t[t.level == 0].test_err, 100),
               **stats("LR_optimal_test_err", lr_opt.test_err, 100),
               **stats("LR_optimal_weights_remaining", lr_opt.weights_remaining)}
        if len(d):
            d0, d_opt = d[d.level == 0], optimal_rows(d)
            lr = lr_opt[lr_opt.seed.isin(d_opt.seed)]
            row |= {**stats("DS_dense_test_err", d0.test_err, 100), **stats("DS_optimal_test_err", d_opt.test_err, 100),
                    **stats("DS_optimal_weights_remaining", d_opt.weights_remaining),
                    **comparison(d_opt.test_err.to_numpy(), lr.test_err.to_numpy(), 100)}
        else: row["verdict"] = "n/a"          # no level left any example out
        rows.append(row)
    return pd.DataFrame(rows)


# %%
_tr = pd.DataFrame({"noise": 0.3, "seed": [0, 1] * 3, "level": np.repeat([0, 1, 2], 2), "val_err": [.3, .3, .2, .2, .25, .25],
                    "test_err": [.3, .32, .2, .22, .25, .27], "weights_remaining": np.repeat([100.0, 80, 64], 2)})
_ds = _tr.assign(test_err=_tr.test_err - 0.05, val_err=[.3, .3, .25, .25, .1, .1])
t8 = dense_subset_table(_tr, _ds).iloc[0]
test_close([t8.LR_optimal_test_err_mean, t8.DS_dense_test_err_mean, t8.DS_optimal_test_err_mean, t8.diff_mean],
           [21.0, 26.0, 21.0, 0.0])
test_eq((t8.DS_optimal_weights_remaining_mean, t8.verdict), (64.0, "match"))
test_eq(dense_subset_table(_tr, _ds.iloc[:0]).verdict.tolist(), ["n/a"])


# %% [markdown]
# ## Paired comparisons along a sweep, and the range where pruning helps
#
# Appendices D, E and K retrain dense models once per pruning level (or width) and compare two of them — TIE vs
# RND, TW vs Rand, dense-subset vs sparse — level by level. `paired_by_level` applies the match rule at every level
# over the seeds; `improving_range` is the green band of Figures 9 and 17: the % weights remaining of the levels where
# pruning improves on the dense model by the match rule (`improving_levels`).

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
        rows.append({**dict(zip(on, key if isinstance(key, tuple) else (key,))),
                     "weights_remaining": g["weights_remaining_a"].mean() if "weights_remaining_a" in g else np.nan,
                     **stats("a", g[f"{metric}_a"], scale), **stats("b", g[f"{metric}_b"], scale),
                     **comparison(g[f"{metric}_a"].to_numpy(), g[f"{metric}_b"].to_numpy(), scale), "n_seeds": len(g)})
    return pd.DataFrame(rows)

def improving_range(traj: pd.DataFrame) -> tuple[float, float] | None:
    "(highest, lowest) mean % weights remaining of one noise level's `improving_levels` (match rule), or None."
    lv = improving_levels(traj)
    if not lv: return None
    w = traj[traj.level.isin(lv)].groupby("level").weights_remaining.mean()
    return float(w.max()), float(w.min())


# %%
_a = pd.DataFrame({"seed": [0, 1, 2, 0, 1, 2], "level": [1, 1, 1, 2, 2, 2], "test_err": [.10, .11, .12, .2, .2, .2],
                   "weights_remaining": [80] * 3 + [64] * 3})
_p = paired_by_level(_a, _a.assign(test_err=_a.test_err - 0.02))
test_eq(_p.verdict.tolist(), ["differ", "differ"]); assert abs(_p["diff_mean"][0] - 2.0) < 1e-9
_t = pd.DataFrame({"seed": 0, "level": [0, 1, 2, 3], "test_err": [.2, .18, .19, .25], "weights_remaining": [100, 80, 64, 51.2]})
test_eq(improving_range(_t), (80.0, 64.0))
