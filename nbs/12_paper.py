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
# # The paper's reported numbers
#
# > Appendix M's tables as pandas frames, so every regenerated table can print the paper's row beside ours.

# %%
#| default_exp paper

# %% [markdown]
# The numbers below are transcribed from Appendix M of the paper (mean ± std over 3 seeds). They are data to compare
# against, never used to produce our results. Benchmarks are named as in the paper's tables (`M-LeNet`,
# `C10-ResNet20`, `C10-VGG-16`, `C100-ResNet32`, `I-ResNet50`); each bench of the registry names its `family`.

# %%
#| export
from __future__ import annotations

import re

import pandas as pd

# %%
#| hide
from fastcore.test import test_eq, test_close


# %%
#| export
def _parse(text: str, columns: list[str]) -> pd.DataFrame:
    "Rows of 'family | noise levels | label | m±s/m±s/...' into one row per (family, label, noise)."
    rows = []
    for line in text.strip().splitlines():
        fam, noises, label, vals = [c.strip() for c in line.split("|")]
        for p, v in zip(noises.split("/"), vals.split("/")):
            m, s = re.match(r"([-\d.]+)±([-\d.]+)", v).groups()
            rows.append(dict(zip(columns, [fam, label])) | {"noise": float(p) / 100, "mean": float(m), "std": float(s)})
    return pd.DataFrame(rows)


# %% [markdown]
# ## Table 6: pruning's impact on generalization (test error, %)

# %%
#| export
TABLE6 = _parse("""
M-LeNet | 0/5/10/15 | Weight rewinding, sparse | 1.5±0.1/3.7±0.3/4.2±0.1/4.4±0.2
M-LeNet | 0/5/10/15 | LR rewinding, sparse | 1.8±0.1/5.2±0.1/7.6±0.3/10.0±0.6
M-LeNet | 0/5/10/15 | Dense | 2.1±0.2/5.3±0.2/9.1±0.2/13.4±0.3
C10-ResNet20 | 0/15/30/60 | Weight rewinding, sparse | 8.1±0.3/13.1±0.2/15.4±0.2/24.5±0.5
C10-ResNet20 | 0/15/30/60 | LR rewinding, sparse | 7.7±0.1/13.0±0.4/16.0±0.1/25.4±0.1
C10-ResNet20 | 0/15/30/60 | Dense | 8.2±0.1/13.6±0.3/18.4±0.4/40.3±0.4
C10-VGG-16 | 0/15/30/60 | Weight rewinding, sparse | 6.2±0.1/12.0±0.3/14.8±0.4/23.8±0.2
C10-VGG-16 | 0/15/30/60 | LR rewinding, sparse | 5.9±0.1/12.5±0.3/15.5±0.1/25.5±0.3
C10-VGG-16 | 0/15/30/60 | Dense | 6.6±0.0/17.5±0.2/31.5±0.6/62.7±0.6
C100-ResNet32 | 0/15/30/60 | Weight rewinding, sparse | 30.6±0.4/38.7±0.6/42.9±0.1/54.7±0.5
C100-ResNet32 | 0/15/30/60 | LR rewinding, sparse | 29.9±0.3/38.8±0.7/43.9±0.3/55.8±0.5
C100-ResNet32 | 0/15/30/60 | Dense | 30.3±0.2/38.9±0.3/44.0±0.6/61.0±0.4
""", ["family", "model"])

# %% [markdown]
# ## Table 11: training loss on the noisy / original partitions, dense vs optimally sparse

# %%
#| export
TABLE11 = _parse("""
M-LeNet | 5/10/15 | Noisy, dense | 0.46±0.06/0.53±0.04/0.59±0.0
M-LeNet | 5/10/15 | Noisy, sparse | 0.2±0.13/3.83±0.06/3.5±0.17
M-LeNet | 5/10/15 | Original, dense | 0.02±0.0/0.03±0.01/0.05±0.01
M-LeNet | 5/10/15 | Original, sparse | 0.01±0.0/0.24±0.01/0.36±0.04
C10-ResNet20 | 15/30/60 | Noisy, dense | 2.63±0.06/2.52±0.01/2.21±0.01
C10-ResNet20 | 15/30/60 | Noisy, sparse | 3.18±0.27/3.1±0.03/2.61±0.0
C10-ResNet20 | 15/30/60 | Original, dense | 0.18±0.0/0.34±0.0/0.77±0.01
C10-ResNet20 | 15/30/60 | Original, sparse | 0.26±0.03/0.55±0.02/1.16±0.0
C10-VGG-16 | 15/30/60 | Noisy, dense | 0.06±0.01/0.12±0.01/0.27±0.01
C10-VGG-16 | 15/30/60 | Noisy, sparse | 3.28±0.39/2.99±0.1/2.55±0.01
C10-VGG-16 | 15/30/60 | Original, dense | 0.03±0.01/0.07±0.0/0.14±0.01
C10-VGG-16 | 15/30/60 | Original, sparse | 0.31±0.02/0.53±0.01/1.17±0.04
C100-ResNet32 | 15/30/60 | Noisy, dense | 4.19±0.03/4.25±0.04/4.02±0.02
C100-ResNet32 | 15/30/60 | Noisy, sparse | 5.71±0.04/5.13±0.34/4.94±0.04
C100-ResNet32 | 15/30/60 | Original, dense | 0.43±0.0/0.66±0.01/1.24±0.02
C100-ResNet32 | 15/30/60 | Original, sparse | 0.81±0.01/1.05±0.16/2.13±0.03
I-ResNet50 | 15 | Noisy, dense | 7.53±0.03
I-ResNet50 | 15 | Noisy, sparse | 7.34±0.04
I-ResNet50 | 15 | Original, dense | 0.56±0.0
I-ResNet50 | 15 | Original, sparse | 0.53±0.0
""", ["family", "row"])


# %%
#| export
def paper_table6(family: str) -> pd.DataFrame:
    "Table 6 for one benchmark family: rows = model type, columns = noise level, cells 'm±s' (test error %)."
    t = TABLE6[TABLE6.family == family]
    return t.assign(cell=t["mean"].map("{:.1f}".format) + "±" + t["std"].map("{:.1f}".format)) \
            .pivot(index="model", columns="noise", values="cell")

def paper_table11(family: str) -> pd.DataFrame:
    "Table 11 for one benchmark family in the layout of `analysis.partition_table`: noise, partition, dense, sparse, diff."
    t = TABLE11[TABLE11.family == family]
    rows = []
    for p in sorted(t.noise.unique()):
        for part in ("Noisy", "Original"):
            d = t[(t.noise == p) & (t.row == f"{part}, dense")].iloc[0]
            s = t[(t.noise == p) & (t.row == f"{part}, sparse")].iloc[0]
            rows.append({"noise": p, "partition": part, "dense": f"{d['mean']:g}±{d['std']:g}",
                         "sparse": f"{s['mean']:g}±{s['std']:g}", "diff": round(s["mean"] - d["mean"], 2)})
    return pd.DataFrame(rows)


# %%
test_close(TABLE6.query("family == 'C10-VGG-16' and model == 'Dense' and noise == 0.6")["mean"].item(), 62.7)
t = paper_table11("M-LeNet")
test_eq(t["diff"].tolist(), [-0.26, -0.01, 3.3, 0.21, 2.91, 0.31])   # the (Diff) column the paper prints
paper_table6("M-LeNet")
