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
# # Learning algorithms: one registry
#
# > Every learning algorithm the paper compares — its name, how it changes a run, how it is drawn, and where the paper reports it — defined once.

# %%
#| default_exp algorithms

# %% [markdown]
# App. C compares six ways to produce a family of models from one dense run (Table 2), §5 and App. I add width
# down-scaling (Tables 5, 7), App. J isolates weight rewinding and the weight-selection heuristic (Tables 9, 10).
# Each is an **`Algorithm`**: IMP with some fields of its `PruneSpec` changed (LR rewinding changes nothing; weight
# rewinding sets `rewind='weight'`; SynFlow, SNIP and random set the `strategy`; EDT prunes with `'none'`) — its
# `family` is `IMP` — or the width down-scaling sequence of `07_width` (the paper's "WD"; `family` `WIDTH`). The entry also says how figures draw it (marker, line) and which rows of the
# paper's tables report it, so the paper's number printed beside ours comes from the same place. A new algorithm —
# a new weight-selection heuristic, say — is one `prune.register_strategy` call and one `register_algorithm` call;
# every section, sweep and table then knows it.

# %%
#| export
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pruning_repro.config import ConfigError, RunKey, add_unique

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close

# %%
#| export
IMP, WIDTH = "imp", "width"   # an algorithm's family: an IMP trajectory per seed, or the width sequence (`07_width`)

@dataclass(frozen=True)
class Algorithm:
    """A learning algorithm: IMP with `prune` fields changed (`family` `IMP`), or the width down-scaling sequence
    (`family` `WIDTH`, which sets no `prune` field); its plot style and paper rows."""
    name: str
    prune: dict = field(default_factory=dict)   # PruneSpec fields an IMP algorithm sets
    marker: str = "o"
    line: str = "-"
    paper: tuple = ()          # ((table number, row label), ...): where the paper reports it, first found wins
    table2: bool = True        # one of App. C's six (Table 2)
    family: str = IMP          # IMP: one IMP trajectory per seed; WIDTH: one dense run per width and seed

    def __post_init__(self):
        if self.family not in (IMP, WIDTH):
            raise ConfigError(f"algorithm family must be {IMP!r} or {WIDTH!r}, got {self.family!r}")
        if self.family == WIDTH and self.prune:
            raise ConfigError(f"the width sequence sets no PruneSpec field, got {self.prune!r}")

ALGORITHMS: dict[str, Algorithm] = {}

def register_algorithm(a: Algorithm) -> Algorithm:
    "Add an algorithm to the registry; its name is its key everywhere."
    return add_unique(ALGORITHMS, a.name, a, "algorithm")

for _a in (Algorithm("LR rewinding", {}, "s", "-", ((9, "LR"), (2, "LR rewinding"))),
           Algorithm("weight rewinding", {"rewind": "weight"}, "^", "-.", ((9, "WR"), (2, "weight rewinding"))),
           Algorithm("SynFlow", {"strategy": "synflow"}, "D", ":", ((10, "SynFlow"), (2, "SynFlow"))),
           Algorithm("SNIP", {"strategy": "snip"}, "v", ":", ((2, "SNIP"),)),
           Algorithm("random", {"strategy": "random"}, "x", ":", ((10, "Random"), (2, "random"))),
           Algorithm("EDT", {"strategy": "none"}, "o", "--", ((5, "EDT"), (2, "EDT"))),
           Algorithm("WD", {}, "o", "--", ((7, "WD"),), table2=False, family=WIDTH)):   # WD: width down-scaling
    register_algorithm(_a)

APPJ_ALGORITHMS = ("LR rewinding", "weight rewinding", "SynFlow", "random")   # App. J: rewinding and selection
STYLES = {"LRR": ("s", "-"), "one-shot": ("s", "-"), "magnitude": ("s", "-"), "WS (equalized)": ("o", "--")}

def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]

def style(name: str) -> tuple[str, str]:
    "(marker, line) of an algorithm, or of one of the figures' short names (`STYLES`); ('o', '-') otherwise."
    a = ALGORITHMS.get(name)
    return (a.marker, a.line) if a else STYLES.get(name, ("o", "-"))

def table2_algorithms() -> tuple[str, ...]:
    "App. C's algorithms (Table 2, Fig. 8): every registered one but width down-scaling."
    return tuple(n for n, a in ALGORITHMS.items() if a.table2)


# %%
test_eq(tuple(ALGORITHMS), ("LR rewinding", "weight rewinding", "SynFlow", "SNIP", "random", "EDT", "WD"))
test_eq(table2_algorithms(), ("LR rewinding", "weight rewinding", "SynFlow", "SNIP", "random", "EDT"))
test_eq((style("SynFlow"), style("LRR"), style("new one")), (("D", ":"), ("s", "-"), ("o", "-")))
test_fail(lambda: get_algorithm("magic"), contains="unknown algorithm")
test_eq([n for n, a in ALGORITHMS.items() if a.family == WIDTH], ["WD"])
test_fail(lambda: Algorithm("x", {"rewind": "weight"}, family=WIDTH), contains="sets no PruneSpec field")
test_fail(lambda: Algorithm("x", family="oneshot"), contains="family must be")


# %% [markdown]
# ## The runs of an algorithm
#
# At one noise level, an algorithm's family of models is one IMP trajectory per seed (its spec the bench's with the
# algorithm's `prune` fields), or for width down-scaling one dense run per width and seed.

# %%
#| export
def algorithm_runs(b, noise: float, seeds, names=None) -> dict[str, dict]:
    "{algorithm: {RunKey: RunSpec}} of the registered algorithms `names` (default all) at one noise level."
    from pruning_repro.width import width_specs
    out = {}
    for name in (names or ALGORITHMS):
        a = get_algorithm(name)
        if a.family == WIDTH: out[name] = {k: v for s in seeds for k, v in width_specs(b, noise, s).items()}
        else: out[name] = {RunKey(b.name, name, noise, s): b.run_spec(noise, s, prune=replace(b.prune, **a.prune))
                           for s in seeds}
    return out



# %%
from pruning_repro.config import get_bench
_b = get_bench("lenet_mnist", "smoke")
_r = algorithm_runs(_b, 0.1, (0, 1))
test_eq(_r["SynFlow"][RunKey("lenet_mnist", "SynFlow", 0.1, 1)].prune.strategy, "synflow")
test_eq(_r["weight rewinding"][RunKey("lenet_mnist", "weight rewinding", 0.1, 0)].prune.rewind, "weight")
test_eq({k.k for k in _r["WD"]}, set(range(len(_r["WD"]) // 2)))
test_eq(len({v.hash() for runs in _r.values() for v in runs.values()}), sum(len(v) for v in _r.values()))


# %% [markdown]
# ## The paper's number beside ours
#
# The paper reports an algorithm in several tables; `paper_values` takes, per algorithm, the first of its `paper`
# rows that the paper has for the bench's family at that noise level.

# %%
#| export
def paper_values(family: str, noise: float, names=None) -> pd.DataFrame:
    "Columns algorithm, paper_mean, paper_std (test error %) for `family` at `noise` (NaN where the paper has none)."
    from pruning_repro.paper import PAPER_TABLES
    rows = []
    for name in (names or ALGORITHMS):
        m = s = np.nan
        for number, label in get_algorithm(name).paper:
            t = PAPER_TABLES[number]
            col = [c for c in t.columns if c not in ("family", "noise", "mean", "std")][0]
            t = t[(t.family == family) & (t[col] == label) & ((t.noise - noise).abs() < 1e-9)]
            if len(t): m, s = float(t["mean"].iloc[0]), float(t["std"].iloc[0]); break
        rows.append({"algorithm": name, "paper_mean": m, "paper_std": s})
    return pd.DataFrame(rows)

def versus_table(frames: dict, names, noise_levels, family: str, reference: str = "LR rewinding") -> pd.DataFrame:
    """Per noise level, the optimal test error of each algorithm in `names` (`analysis.algorithm_table`) with the
    match rule against `reference` and against the dense models (`dense_diff_*`), the dense model's test error and
    the paper's value for `family`."""
    from pruning_repro.analysis import algorithm_table
    rows = []
    for p in noise_levels:
        ref = frames[reference]
        d = ref[(ref.noise == p) & (ref.level == 0)]
        t = algorithm_table({n: frames[n][frames[n].noise == p] for n in names}, reference=reference, dense=d)
        dense = 100 * d.test_err.mean()
        rows.append(t.merge(paper_values(family, p, names), on="algorithm", how="left")
                    .assign(noise=p, dense_test_err=dense))
    t = pd.concat(rows, ignore_index=True)
    return t[["noise", "algorithm", *[c for c in t.columns if c not in ("noise", "algorithm")]]]


# %%
pv = paper_values("C10-VGG-16", 0.6).set_index("algorithm")
test_close(pv.loc["weight rewinding", ["paper_mean", "paper_std"]].tolist(), [23.80, 0.15])   # Table 9
test_close(pv.loc["EDT", "paper_mean"], 59.46); test_close(pv.loc["WD", "paper_mean"], 26.76)  # Tables 5, 7
assert np.isnan(pv.loc["SNIP", "paper_mean"])                                  # SNIP only in Table 2 (no noise)
test_close(paper_values("C10-VGG-16", 0.0).set_index("algorithm").loc["SNIP", "paper_mean"], 6.1)
_f = pd.DataFrame({"noise": 0.0, "seed": [0, 0, 1, 1], "level": [0, 1] * 2, "val_err": [.3, .2] * 2,
                   "test_err": [.3, .2, .3, .22], "weights_remaining": [100, 80] * 2})
vt = versus_table({"LR rewinding": _f, "EDT": _f.assign(test_err=_f.test_err + .01)}, ["LR rewinding", "EDT"], [0.0],
                  "M-LeNet")
test_close(vt.diff_mean.tolist(), [0.0, 1.0]); test_close(vt.dense_test_err.tolist(), [30.0, 30.0])
test_close(vt.paper_mean.tolist(), [1.82, 1.8])
test_close(vt.dense_diff_mean.tolist(), [-9.0, -8.0])            # each optimum against the dense models, per seed
vt
