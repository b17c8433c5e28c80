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
# # Rules: the paper's claims as one table
#
# > Each claim of the paper that a section regenerates: its words, quoted; the rule that decides it, in words; the tables it reads; and the function of their numbers that returns one case per thing the sentence asserts, with its margin.

# %%
#| default_exp rules

# %% [markdown]
# ## How a claim is decided
#
# Each claim is one entry of a rule table (`CLAIMS`): the paper's sentence, quoted; the rule, in words; the tables it
# reads (by file stem); and a function of those tables' numbers that returns one **case** per thing the sentence
# asserts (a noise level, a milestone, a comparison). A claim **holds** when every case holds, **holds in part** when
# some do, **does not hold** when none do, and is **not run** when a table it reads has not been written.
#
# A case is **not tested** when the bench does not reach what the paper's sentence is about: App. L's "higher
# sparsities" are "8.59% to 0.92% weights remaining", and a trajectory that stops at 32.8% has no such milestone;
# App. D averages "within the sparsities where generalization improves", and a bench where pruning improves at no
# level has no such range. Such a case neither holds nor fails: the claim's status is decided by the cases that were
# tested and says how many were not ("holds (3 of 6 cases not tested)"), and a claim with no tested case is
# **not tested**.
#
# The paper's test of two results is its match rule (§2): "any real-valued results of two experiments differ if
# and only if the mean difference between three independent runs ... is at least one standard deviation away from
# zero, otherwise ... the results match". On a difference a − b with mean m and std s over seeds, three rules follow:
#
# | the paper says a … b | rule | margin (in units of s) |
# |---|---|---|
# | beats (is lower than) | m ≤ −s | (−m − s) / s |
# | is worse than (higher) | m ≥ s | (m − s) / s |
# | matches or beats | m < s | (s − m) / s |
# | matches or is worse | m > −s | (m + s) / s |
# | matches | \|m\| < s | (s − \|m\|) / s |
#
# The **margin** says how far the deciding difference clears its threshold: positive when the case holds, negative
# when it fails, near 0 when one seed could flip it — so a fragile verdict is visible. Counts ("almost all of 20
# subgroups": at least 18) have the margin count − 18, in subgroups; ratios (3.5×) the ratio minus the threshold.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from pruning_repro.analysis import ms_text

# %%
#| hide
import tempfile
from fastcore.test import test_eq, test_close


# %%
#| export
@dataclass(frozen=True)
class Case:
    """One thing a claim asserts, decided: whether it holds (`None`: not tested, the bench does not reach it), the
    numbers (markdown) and the margin (in `unit`)."""
    ok: bool | None
    evidence: str
    margin: float
    unit: str = "std"

    def text(self) -> str:
        if self.ok is None: return f"{self.evidence} [not tested]"
        return f"{self.evidence} [{'✓' if self.ok else '✗'} margin {_margin_text(self.margin, self.unit)}]"

def untested(evidence: str) -> Case:
    "A case the bench does not reach (e.g. no milestone at the paper's high sparsities): neither holds nor fails."
    return Case(None, evidence, math.nan)

def _margin_text(m: float, unit: str) -> str:
    if math.isnan(m): return "n/a"
    if math.isinf(m): return f"{'+' if m > 0 else '−'}∞ {unit} (std 0)"
    return f"{m:+.2f} {unit}"

STD_FLOOR = 1e-5     # a std below this is float32 rounding of equal values (tables print 2–3 decimals): no spread

def _std_margin(x: float, s: float) -> float:
    """x / s, the distance beyond a threshold in units of the std; ±inf when s is 0 or below `STD_FLOOR` (all seeds
    agree: a margin of 400,000 std from a float32 rounding error would say nothing)."""
    if not s or math.isnan(s) or s < STD_FLOOR: return math.inf if x > 0 else (-math.inf if x < 0 else 0.0)
    return x / s

def beats(m, s) -> tuple[bool, float]:
    "a beats b (lower is better): m ≤ −s and m < 0."
    return (m <= -s and m < 0), _std_margin(-m - s, s)

def worse(m, s) -> tuple[bool, float]:
    "a is worse than b: m ≥ s and m > 0."
    return (m >= s and m > 0), _std_margin(m - s, s)

def matches_or_beats(m, s) -> tuple[bool, float]:
    "a matches b or beats it: not worse, m < s (or both exactly equal)."
    return (m < s or m <= 0), _std_margin(s - m, s) if m > 0 or s > 0 else math.inf

def matches_or_worse(m, s) -> tuple[bool, float]:
    "a matches b or is worse: not better, m > −s."
    return (m > -s or m >= 0), _std_margin(m + s, s) if m < 0 or s > 0 else math.inf

def matches(m, s) -> tuple[bool, float]:
    "a matches b: |m| < s (or identical)."
    return (abs(m) < s or m == 0), _std_margin(s - abs(m), s) if m or s > 0 else math.inf


# %%
test_eq(beats(-3.0, 1.0), (True, 2.0)); test_eq(beats(-0.5, 1.0), (False, -0.5))
test_eq(worse(2.0, 1.0), (True, 1.0)); test_eq(worse(0.5, 1.0)[0], False)
test_eq(matches_or_beats(-5.0, 1.0), (True, 6.0)); test_eq(matches_or_beats(1.5, 1.0), (False, -0.5))
test_eq(matches_or_worse(-1.5, 1.0), (False, -0.5)); test_eq(matches(0.2, 1.0), (True, 0.8))
test_eq(beats(-1.0, 0.0), (True, math.inf))               # every seed improved by exactly 1: std 0
test_eq(matches_or_beats(1.0, 2.1e-6), (False, -math.inf))  # 1.00 in every seed up to float32 rounding: no spread
test_eq(Case(True, "x", 0.25).text(), "x [✓ margin +0.25 std]")
test_eq(untested("no milestone at ≤ 8.59% weights").text(), "no milestone at ≤ 8.59% weights [not tested]")


# %% [markdown]
# Helpers shared by the rules: "m±s" of a row's `<name>_mean`/`<name>_std` columns, one case from a paired-difference
# row (`diff_mean`, `diff_std`, as `analysis.compare` writes it), and the count rule.

# %%
#| export
def _ms(r, name: str, digits: int = 2) -> str:
    "The 'm±s' text of the `name`_mean / `name`_std columns of row `r` (evidence is markdown)."
    return ms_text(r[f"{name}_mean"], r[f"{name}_std"], digits)

def _unit(margin: float, s: float) -> str:
    """The margin's unit: 'std', said to have no spread when the margin is 0 for want of one (a difference of 0 in
    every seed, 0±0: neither side of the threshold; an infinite margin says 'std 0' itself)."""
    return "std (0±0: equal in every seed, no spread)" if margin == 0 and not s >= STD_FLOOR else "std"

def _diff(r, test, what: str) -> Case:
    "A case from a row's paired difference (diff_mean ± diff_std) under one of the rules above."
    m, s = float(r.diff_mean), float(r.diff_std)
    ok, margin = test(m, s)
    return Case(ok, f"{what} ({ms_text(r.diff_mean, r.diff_std, signed=True)})", margin, _unit(margin, s))

def _almost_all(n: int, total: int, what: str, fraction: float = 0.9) -> Case:
    "'almost all' of `total` subgroups: at least 90% of them (18 of the paper's 20)."
    need = math.ceil(fraction * total)
    return Case(n >= need, f"{what}: {n}/{total} subgroups (need {need})", float(n - need), "subgroups")

def _noisy(t):
    return t[t.noise > 0].sort_values("noise")

def _vs_lr(t, algorithm):
    return t[t.algorithm == algorithm].sort_values("noise")


# %% [markdown]
# A difference of 0 in every seed (e.g. width down-scaling whose optimum is the full width, the dense model itself)
# has no spread to measure a margin in: its margin is 0, and the text says why.

# %%
test_eq(_diff(pd.Series({"diff_mean": 0.0, "diff_std": 0.0}), beats, "WD vs dense").text(),
        "WD vs dense (+0.00±0.00) [✗ margin +0.00 std (0±0: equal in every seed, no spread)]")
test_eq(_diff(pd.Series({"diff_mean": -1.0, "diff_std": 0.5}), beats, "x").unit, "std")
test_eq(_diff(pd.Series({"diff_mean": 0.0, "diff_std": 0.0}), matches_or_beats, "x").text(),
        "x (+0.00±0.00) [✓ margin +∞ std (std 0)]")

# %% [markdown]
# ## The claims
#
# **C0** (§1 contribution 1, §3, Fig. 2a) — no noise: the optimally sparse model beats dense; at that sparsity the
# training loss of (almost) every EL2N subgroup matches or improves on dense's; the effect is concentrated on the
# top 20% EL2N examples, 3.5× (the paper's lowest ratio) or more the bottom 80%'s.

# %%
#| export
C0_QUOTE = ("\"We find that pruning may lead to better training, improving the training loss, as well as the "
            "generalization over the dense model at optimal sparsity.\" (§1) — \"at the sparsity that achieves the best "
            "generalization, for all subgroups, the average training loss of the pruned model either matches or "
            "improves over the dense model\" — \"the average magnitude of pruning's effect on examples with the top 20% "
            "EL2N ... scores is 3.5-71x that on examples with the bottom 80% EL2N scores\" (§3)")

def _c0(t6, f2):
    out = []
    r = t6[t6.noise == 0]
    if not len(r): return [Case(False, "no 0% row in Table 6", math.nan)]
    r = r.iloc[0]
    out.append(_diff(r, beats, f"0%: dense {_ms(r, 'dense_test_err')} → optimum {_ms(r, 'sparse_test_err')} at "
                               f"{r.optimal_weights_remaining_mean:.3g}% weights beats dense"))
    g = f2[f2.which == "optimal"].sort_values("subgroup") if "which" in f2 else f2.iloc[:0]
    if not len(g):
        return out + [Case(False, "the optimum is the dense model: no subgroup change at an optimal sparsity", math.nan)]
    d, s = g.delta_mean.to_numpy(), g.delta_std.fillna(0).to_numpy()
    out.append(_almost_all(int(((d < s) | (d <= 0)).sum()), len(d), "subgroups whose loss matches or improves"))
    k = max(1, round(0.2 * len(d)))
    top, bottom = abs(d[-k:].mean()), abs(d[:-k].mean())
    ratio = top / bottom if bottom > 0 else math.inf
    out.append(Case(ratio >= 3.5, f"|Δloss| top-20% EL2N {top:.4f} vs bottom-80% {bottom:.4f}: {ratio:.1f}× (need 3.5×)",
                    ratio - 3.5, "×"))
    return out


# %% [markdown]
# **C1** (§4, Fig. 3, Table 6) — with noise, the optimally sparse model beats dense at every noise level, "more so"
# as the noise grows (the gain at each noise level is at least the previous one's; margin: the growth in units of
# the two gains' combined std √(s₁² + s₂²)), and the optimum sits where the paper's do: not the dense model, not the
# last level trained (the trajectory did not reach its optimum), and inside the family's range of Table 4
# (`paper.OPTIMUM_RANGE`; margin in % weights remaining is shown as text).

# %%
#| export
C1_QUOTE = ("\"Figure 3 shows that, in the presence of random label noise, the generalization of the optimally sparse "
            "models is better than that of the dense models\" — \"The extent of pruning's generalization improvement at "
            "the optimal sparsity grows as the portion of label noise increases\" (§4)")

def _in_range(r) -> Case:
    w, lvl = float(r.optimal_weights_remaining_mean), int(r.get("optimal_level", -1))
    last, hi, lo = int(r.get("last_level", -1)), float(r.get("paper_range_high", 100.0)), float(r.get("paper_range_low", 1.0))
    ok = lvl != 0 and lvl != last and lo <= w <= hi and w >= 1.0
    where = "the dense model" if lvl == 0 else ("the last level" if lvl == last else f"level {lvl} of {last}")
    return Case(ok, f"{r.noise:.0%}: optimum at {w:.3g}% weights ({where}, the family's range {hi:g}–{lo:g}%)",
                float(min(math.log(hi / w), math.log(w / lo)) / math.log(1 / 0.8)) if w > 0 else -math.inf,
                "levels of 20%")

def _c1(t6):
    n = _noisy(t6)
    out = []
    for _, r in n.iterrows():
        out.append(_diff(r, beats, f"{r.noise:.0%}: dense {_ms(r, 'dense_test_err')} → optimum "
                                   f"{_ms(r, 'sparse_test_err')} beats dense"))
        out.append(_in_range(r))
    rows = list(n.itertuples())
    for a, b in zip(rows, rows[1:]):
        growth, s = a.diff_mean - b.diff_mean, math.hypot(a.diff_std, b.diff_std)
        out.append(Case(growth >= 0, f"gain grows {a.noise:.0%} → {b.noise:.0%}: {-a.diff_mean:.2f} → {-b.diff_mean:.2f}",
                        _std_margin(growth, s)))
    return out


# %% [markdown]
# **C2** (§5.1, Fig. 6, Table 5) — extended dense training (EDT): without noise it matches pruning (or beats it),
# with noise it is worse. Judged on EDT's extended models (levels ≥ 1; its level 0 is the dense model, which C1
# already compares), so `table05` holds EDT's optimum over levels ≥ 1.

# %%
#| export
C2_QUOTE = ("\"The two algorithms produce models with similar generalization on standard datasets without random label "
            "noise ... However, on benchmarks with random label noise, extended dense training underperforms "
            "pruning\" (§5.1)")

def _c2(t5):
    return [_diff(r, matches_or_beats if r.noise == 0 else worse,
                  f"{r.noise:.0%}: EDT {_ms(r, 'optimal_test_err')} vs LR rewinding "
                  f"{'matches or beats' if r.noise == 0 else 'is worse'}") for _, r in _vs_lr(t5, "EDT").iterrows()]


# %% [markdown]
# **C3** (§4, Fig. 4, Table 11) — at the optimal sparsity the gap between the training loss on noisy and on
# original examples widens beyond the dense model's: per seed, gap = noisy − original loss; the optimum's gap is
# higher than dense's by the match rule (`table11`'s `Gap` rows).

# %%
#| export
C3_QUOTE = ("\"the gap between the average training loss of the sparse model on original versus noisy examples widens "
            "beyond the dense model, indicating that pruning leads to additional regularization\" (§4)")

def _c3(t11):
    g = t11[t11.partition == "Gap"].sort_values("noise")
    if not len(g): return [Case(False, "no Gap rows in Table 11 (written by an older version)", math.nan)]
    return [_diff(r, worse, f"{r.noise:.0%}: noisy − original loss, dense {_ms(r, 'dense')} → optimum "
                            f"{_ms(r, 'sparse')} widens") for _, r in g.iterrows()]


# %% [markdown]
# **C4** (App. L, Fig. 18) — at low sparsity pruning lowers the training loss of almost all subgroups, at high
# sparsity raises it for almost all: at each noise level, the least sparse milestone has ≥ 18 of 20 subgroups lower,
# the sparsest ≥ 18 of 20 higher. The paper names the two ranges only by example, on ResNet-20: low is "80% to
# 26.21% weights remaining", high "8.59% to 0.92%". So the low case needs a milestone with at least 26.21% of the
# weights and the high case one with at most 8.59% (`C4_LOW`, `C4_HIGH`); a milestone in neither range decides
# nothing: a bench whose trajectory stops at 32.8% has not reached the sparsities where the paper sees the
# regularization, and its high-sparsity cases are **not tested** (they are not failures: at 26.21% the paper's
# ResNet-20 still lowers the loss).

# %%
#| export
C4_QUOTE = ("\"at low sparsities, pruning's effect is to improve training loss on almost all example subgroups ... "
            "Pruning to higher sparsities, pruning's regularization effect dominates – pruning increases training loss "
            "across all example subgroups\" — low: \"80% to 26.21% weights remaining\", high: \"8.59% to 0.92% weights "
            "remaining\" (App. L, CIFAR-10-ResNet20)")

C4_LOW, C4_HIGH = 26.21, 8.59   # % weights remaining: App. L's low range ends, its high range starts (ResNet-20)

def _c4(tl):
    out = []
    if "n_lower" not in tl: return [Case(False, "no subgroup counts in the App. L table (an older version)", math.nan)]
    for p, g in tl[tl.algorithm == "pruning"].groupby("noise"):
        g = g.sort_values("milestone")
        lo, hi = g.iloc[0], g.iloc[-1]
        w_lo, w_hi = float(lo.weights_remaining), float(hi.weights_remaining)
        out.append(_almost_all(int(lo.n_lower), int(lo.n_subgroups), f"{p:.0%}, {w_lo:.3g}% weights: lower")
                   if w_lo >= C4_LOW else
                   untested(f"{p:.0%}: the least sparse milestone keeps {w_lo:.3g}% of the weights, below the paper's "
                            f"low sparsities (80% to {C4_LOW}%)"))
        out.append(_almost_all(int(hi.n_higher), int(hi.n_subgroups), f"{p:.0%}, {w_hi:.3g}% weights: higher")
                   if w_hi <= C4_HIGH else
                   untested(f"{p:.0%}: the sparsest milestone keeps {w_hi:.3g}% of the weights ({int(hi.n_higher)}/"
                            f"{int(hi.n_subgroups)} subgroups higher), short of the paper's high sparsities "
                            f"({C4_HIGH}% to 0.92%)"))
    return out


# %% [markdown]
# **C5** (§5.2, Fig. 7, Tables 7, 3) — width down-scaling (WD): under noise it "significantly improves
# generalization" (beats dense) and its optimum minus pruning's lies in the family's range (LeNet −4 to +0.4
# points; `paper.WIDTH_MINUS_PRUNING`), widened by the difference's std; without noise it under-performs pruning (the
# match rule allows a match: "matches or is worse"); the top-10% affected sets of WD and pruning overlap above chance
# (Jaccard minus chance at least one std).

# %%
#| export
C5_QUOTE = ("\"When training with random label noise, width down-scaling has notable regularization effects and "
            "significantly improves generalization, similar to pruning ... pruning does better on LeNet ... by -4 "
            "(pruning does worse) to 0.4%\" — \"without random label noise, width down-scaling under-performs pruning\" "
            "(§5.2) — Table 3: Jaccard similarity of top 10% affected examples vs \"a baseline similarity index of 0.05\"")

def _c5(t7, t3):
    out = []
    for _, r in _vs_lr(t7, "WD").iterrows():
        if r.noise == 0:
            out.append(_diff(r, matches_or_worse, f"0%: WD {_ms(r, 'optimal_test_err')} vs LR rewinding matches or "
                                                  "under-performs"))
            continue
        if "dense_diff_mean" in r:
            d, ds = float(r.dense_diff_mean), float(r.dense_diff_std)
            ok, m = beats(d, ds)
            out.append(Case(ok, f"{r.noise:.0%}: WD {_ms(r, 'optimal_test_err')} beats dense {r.dense_test_err:.2f} "
                                f"({ms_text(d, ds, signed=True)})", m, _unit(m, ds)))
        lo, hi = float(r.get("paper_wd_gap_low", -math.inf)), float(r.get("paper_wd_gap_high", math.inf))
        m, s = float(r.diff_mean), float(r.diff_std)
        ok = lo - s <= m <= hi + s
        out.append(Case(ok, f"{r.noise:.0%}: WD − LR {ms_text(m, s, signed=True)} within the family's range [{lo:g}, {hi:+g}] ± std",
                        _std_margin(min(m - (lo - s), (hi + s) - m), s)))
    for _, r in t3.sort_values("noise").iterrows():
        x, s = r.jaccard_mean - r.chance, r.jaccard_std
        out.append(Case(x >= s and x > 0, f"Jaccard {r.noise:.0%}: {_ms(r, 'jaccard', 3)} vs chance {r.chance:.3f}",
                        _std_margin(x - s, s)))
    return out


# %% [markdown]
# **C6** (App. J.1, Table 9) — weight rewinding beats LR rewinding under noise.

# %%
#| export
C6_QUOTE = ("\"Notably, weight rewinding is better at mitigating random label noise than learning rate rewinding\" "
            "(App. J.1, Table 9)")

def _c6(t9):
    return [_diff(r, beats, f"{r.noise:.0%}: weight rewinding {_ms(r, 'optimal_test_err')} beats LR rewinding")
            for _, r in _noisy(_vs_lr(t9, "weight rewinding")).iterrows()]


# %% [markdown]
# **App. D** (Fig. 9) — without noise, dense models trained without the top-20% pruning-improved examples (TIE) are
# worse than those without a random 20% (RND), "averaging within the sparsities where generalization improves": the
# mean of TIE − RND over those levels, against the root-mean-square of their per-level stds.
#
# **App. E** (Table 8) — dense models trained on the examples the sparse model classifies correctly (dense subset,
# DS) match or beat pruning under noise.
#
# **App. J.2** (Table 10) — random weight selection matches or beats magnitude selection under noise.
#
# **Fig. 1a** (§1) — augmented training (EDT) matches pruning at every level keeping more than 1% of the weights.

# %%
#| export
APPD_QUOTE = ("\"averaging within the sparsities where generalization improves ..., excluding top-improved examples "
              "hurts generalization more than excluding a random subset of examples of the same size\" (App. D)")
APPE_QUOTE = ("Table 8: “Dense Subset” models \"matches or exceeds the generalization performance achieved by "
              "pruning\"")
APPJ2_QUOTE = "\"random pruning is particularly effective at mitigating random label noise\" (App. J.2)"
FIG1A_QUOTE = ("\"Retraining ... exactly as done in pruning, but without removing any weights produces models with "
               "similar generalization as pruning to the shaded range of weights remaining\" (Fig. 1a)")

def _appd(t):
    t = t[t.noise == 0]
    if not len(t): return [Case(False, "no 0% rows", math.nan)]
    inside = t[t.improving.astype(bool)] if "improving" in t else t.iloc[:0]
    if not len(inside): return [untested("0%: pruning improves on dense at no level of this bench, so the paper's "
                                         "range to average over is empty")]
    m, s = float(inside.diff_mean.mean()), float((inside.diff_std ** 2).mean() ** 0.5)
    ok, margin = worse(m, s)
    return [Case(ok, f"0%: TIE − RND over the {len(inside)} improving levels ({inside.weights_remaining.max():.3g}–"
                     f"{inside.weights_remaining.min():.3g}% weights): {ms_text(m, s, signed=True)} (TIE worse)", margin)]

def _appe(t8):
    return [_diff(r, matches_or_beats, f"{r.noise:.0%}: DS {_ms(r, 'DS_optimal_test_err')} vs LR "
                                       f"{_ms(r, 'LR_optimal_test_err')} matches or beats") for _, r in _noisy(t8).iterrows()]

def _appj2(t10):
    return [_diff(r, matches_or_beats, f"{r.noise:.0%}: random {_ms(r, 'optimal_test_err')} vs magnitude matches or beats")
            for _, r in _noisy(_vs_lr(t10, "random")).iterrows()]

def _fig1a(t):
    w = "pruning_weights_remaining" if "pruning_weights_remaining" in t else "weights_remaining"
    t = t[(t.level >= 1) & (t[w] > 1.0)]
    return [_diff(r, matches, f"level {int(r.level)} (pruning at {r[w]:.3g}% weights): EDT "
                              f"{_ms(r, 'augmented_test_err')} vs pruning {_ms(r, 'pruning_test_err')} matches")
            for _, r in t.iterrows()]


# %% [markdown]
# The rule table. `tables` are file stems under `figures/<bench>/`; a claim whose tables are absent is "not run".

# %%
#| export
@dataclass(frozen=True)
class Claim:
    "One of the paper's claims: short statement, the paper's words, the rule in words, its tables and its function."
    statement: str
    quote: str
    rule_text: str
    tables: tuple[str, ...]
    rule: Callable[..., list[Case]]

CLAIMS = {
    "C0": Claim("without noise the optimally sparse model beats dense, by better training concentrated on "
                "influential examples (§3, Fig. 2a)", C0_QUOTE,
                "0%: optimum beats dense (m ≤ −s); ≥ 18/20 subgroups match or improve (m < s); |top 20%| ≥ 3.5× |bottom 80%|",
                ("table06_dense_vs_optimal_test_error", "fig02_subgroup_loss"), _c0),
    "C1": Claim("with label noise the optimally sparse model beats dense, more so at higher noise (Fig. 3, Table 6)",
                C1_QUOTE, "each noise > 0: optimum beats dense (m ≤ −s), optimum neither dense nor the last level and "
                "inside the family's Table 4 range (≥ 1%); the gain does not shrink as the noise grows",
                ("table06_dense_vs_optimal_test_error",), _c1),
    "C2": Claim("without noise EDT matches pruning, with noise EDT is worse (Fig. 6, Table 5)", C2_QUOTE,
                "EDT's optimum over its extended models (levels ≥ 1) vs LR rewinding's: 0% m < s; each noise > 0 m ≥ s",
                ("table05_edt_vs_pruning",), _c2),
    "C3": Claim("at the optimal sparsity the noisy − original training-loss gap widens beyond dense's (Fig. 4, Table 11)",
                C3_QUOTE, "each noise > 0: per-seed gap (noisy − original loss) at the optimum minus dense's, m ≥ s",
                ("table11_partition_loss",), _c3),
    "C4": Claim("low sparsity lowers the training loss of almost all subgroups, high sparsity raises it (App. L, Fig. 18)",
                C4_QUOTE, "each noise level: least sparse milestone (≥ 26.21% weights) ≥ 18/20 subgroups lower; "
                "sparsest (≤ 8.59% weights) ≥ 18/20 higher; a milestone outside its range: not tested",
                ("tableL_subgroup_loss_change",), _c4),
    "C5": Claim("width down-scaling regularizes like pruning under noise, under-performs it without; affected sets "
                "overlap above chance (Tables 7, 3)", C5_QUOTE,
                "each noise > 0: WD beats dense (m ≤ −s) and WD − LR within the family's range ± s; 0%: WD − LR m > −s; "
                "Jaccard − chance ≥ its std", ("table07_wd_vs_pruning", "table03_jaccard_pruning_vs_width"), _c5),
    "C6": Claim("weight rewinding mitigates noise better than LR rewinding (Table 9)", C6_QUOTE,
                "each noise > 0: WR − LR m ≤ −s", ("table09_weight_rewinding",), _c6),
    "App. D": Claim("leaving out pruning-improved examples hurts more than leaving out random ones (Fig. 9)", APPD_QUOTE,
                    "0%: mean TIE − RND over the levels where pruning improves on dense ≥ rms of their stds; "
                    "no such level: not tested",
                    ("fig09_tie_vs_rnd",), _appd),
    "App. E": Claim("dense models on the sparse model's correct examples match or beat pruning under noise (Table 8)",
                    APPE_QUOTE, "each noise > 0: DS − LR m < s", ("table08_dense_subset",), _appe),
    "App. J.2": Claim("random weight selection matches or beats magnitude under noise (Table 10)", APPJ2_QUOTE,
                      "each noise > 0: random − magnitude m < s", ("table10_selection_heuristics",), _appj2),
    "Fig. 1a": Claim("augmented training (EDT) generalizes like pruning over the range of sparsities (Fig. 1a)",
                     FIG1A_QUOTE, "each level ≥ 1 with > 1% weights: |EDT − pruning| < s",
                     ("fig01a_pruning_vs_augmented_training",), _fig1a),
}

def _status(oks: list[bool | None]) -> str:
    "holds / holds in part / does not hold over the tested cases, with how many were not tested; 'not run' if none."
    if not oks: return "not run"
    tested = [ok for ok in oks if ok is not None]
    if not tested: return "not tested"
    base = "holds" if all(tested) else ("holds in part" if any(tested) else "does not hold")
    n = len(oks) - len(tested)
    return f"{base} ({n} of {len(oks)} cases not tested)" if n else base

def _weakest(cases: list[Case]) -> str:
    "The smallest margin among the cases that decide the claim (std-unit margins first), as text."
    if not cases: return ""
    finite = [c for c in cases if not math.isnan(c.margin)]
    if not finite: return "n/a"
    std = [c for c in finite if c.unit == "std"] or finite
    w = min(std, key=lambda c: c.margin)
    return _margin_text(w.margin, w.unit)

def check(key: str, *tables: pd.DataFrame) -> dict:
    "Decide claim `key` on its tables (in `CLAIMS[key].tables` order): {'status', 'margin', 'evidence', 'cases'}."
    cases = CLAIMS[key].rule(*tables)
    return {"status": _status([c.ok for c in cases]), "margin": _weakest(cases),
            "evidence": "; ".join(c.text() for c in cases), "cases": cases}

def claim_line(key: str, *tables: pd.DataFrame) -> str:
    "A markdown line stating claim `key` and what its rule says on these tables (for the section notebooks)."
    r = check(key, *tables)
    return f"- {key} ({CLAIMS[key].statement}): **{r['status']}** (weakest margin {r['margin']}) — {r['evidence']}."


# %% [markdown]
# A status counts only the tested cases and says how many were not: a bench that stops short of the paper's high
# sparsities leaves C4's high cases open instead of failing them.

# %%
test_eq(_status([True, None, True, None]), "holds (2 of 4 cases not tested)")
test_eq(_status([True, False, None]), "holds in part (1 of 3 cases not tested)")
test_eq(_status([None, None]), "not tested"); test_eq(_status([]), "not run"); test_eq(_status([False]), "does not hold")
_l = lambda w, hi: pd.DataFrame({"algorithm": "pruning", "noise": 0.0, "milestone": [0, 1], "weights_remaining": [80.0, w],
                                 "n_subgroups": 20, "n_lower": [20, 0], "n_higher": [0, hi]})
test_eq(check("C4", _l(32.8, 0))["status"], "holds (1 of 2 cases not tested)")   # 32.8% is not a high sparsity
test_eq(check("C4", _l(5.0, 0))["status"], "holds in part")                      # 5% is, and nothing rose
