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
# # Plots and table files
#
# > One function per kind of figure, and writers for figures (PNG + PDF) and tables (CSV + markdown).

# %%
#| default_exp plots

# %% [markdown]
# Figures 3 and 4 share a layout: a quantity against **% weights remaining** on a log axis running from 100% down
# (the direction of pruning), one colour per label-noise level, mean over seeds with a ±1 std band, the dense model
# as a horizontal dashed line (Figure 3) and the optimal sparsity — the level with the best mean validation error —
# marked with a star.

# %%
#| export
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pruning_repro.algorithms import style
from pruning_repro.analysis import ms_text

# %%
#| hide
import tempfile
from fastcore.test import test_eq


# %%
#| export
def noise_colors(noises):
    cmap = plt.get_cmap("viridis")
    noises = sorted(noises)
    return {p: cmap(i / max(1, len(noises) - 1) * 0.85) for i, p in enumerate(noises)}

def pct_axis(ax):
    ax.set_xscale("log")
    ax.invert_xaxis()
    ticks = [100, 51.2, 26.2, 13.4, 6.9, 3.5, 1.8, 0.9, 0.5, 0.2]
    ax.set_xticks(ticks); ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("% weights remaining")

def fig_test_error(summary: pd.DataFrame, optimal: pd.DataFrame, title: str = "") -> plt.Figure:
    "Figure 3: test error (%) vs % weights remaining per noise level; dense dashed, optimum starred."
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    cols = noise_colors(summary.noise.unique())
    for p, g in summary.groupby("noise"):
        g = g.sort_values("level")
        x, m, s = g.weights_remaining, 100 * g.test_err_mean, 100 * g.test_err_std.fillna(0)
        ax.plot(x, m, "-o", ms=3, color=cols[p], label=f"{p:.0%}")
        ax.fill_between(x, m - s, m + s, color=cols[p], alpha=0.2, lw=0)
        ax.axhline(m.iloc[0], color=cols[p], ls="--", lw=1)
        o = optimal[optimal.noise == p].iloc[0]
        ax.plot(o.weights_remaining, 100 * o.test_err_mean, "*", ms=14, color=cols[p], mec="k", mew=0.6)
    pct_axis(ax)
    ax.set_ylabel("test error (%)")
    ax.set_title(title)
    ax.legend(title="label noise", fontsize=8)
    fig.tight_layout()
    return fig

def fig_partition_loss(summary: pd.DataFrame, optimal: pd.DataFrame, title: str = "") -> plt.Figure:
    "Figure 4: training loss on noisy (solid) and original (dashed) examples vs % weights remaining; optimum starred."
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    cols = noise_colors(summary.noise.unique())
    for p, g in summary.groupby("noise"):
        if p == 0: continue
        g = g.sort_values("level")
        x = g.weights_remaining
        ax.plot(x, g.noisy_loss_mean, "-", color=cols[p], label=f"{p:.0%} noisy")
        ax.plot(x, g.original_loss_mean, "--", color=cols[p], label=f"{p:.0%} original")
        o = optimal[optimal.noise == p].iloc[0]
        for k in ("noisy_loss_mean", "original_loss_mean"):
            ax.plot(o.weights_remaining, o[k], "*", ms=12, color=cols[p], mec="k", mew=0.6)
    pct_axis(ax)
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


# %% [markdown]
# ## Writing files
#
# Figures go to PNG (for reading) and PDF (for papers); tables to CSV (for code) and markdown (for reading). Markdown is
# written here rather than through `DataFrame.to_markdown`, which needs the optional `tabulate` package. Writes are
# atomic: a reader never sees half a file.

# %%
#| export
def save_figure(fig: plt.Figure, folder, name: str) -> list[Path]:
    """Save `fig` as `<folder>/<name>.png` and `.pdf`; returns the paths. The figure is then closed, so a notebook shows
    it once, where it displays it (the inline backend would otherwise draw every open figure again at the cell end)."""
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        p = folder / f"{name}.{ext}"
        tmp = folder / f".{name}.{os.getpid()}.tmp.{ext}"     # per process: two commands on one folder never collide
        fig.savefig(tmp, dpi=150)
        tmp.replace(p); out.append(p)
    plt.close(fig)
    return out

def to_markdown(df: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured markdown table of `df` (index dropped). A quantity given as `<x>_mean` and `<x>_std` columns
    (`analysis.stats`) is written once, as 'm±s' under `<x>`, by `analysis.ms_text` (the one place numbers become
    that text)."""
    cols, out = [str(c) for c in df.columns], {}
    for c in cols:
        base = c[:-5] if c.endswith("_mean") else c[:-4] if c.endswith("_std") else None
        if base is None or f"{base}_mean" not in cols or f"{base}_std" not in cols: out[c] = df[c].tolist(); continue
        if c.endswith("_std"): continue
        out[base] = [ms_text(m, s, digits) for m, s in zip(df[f"{base}_mean"], df[f"{base}_std"])]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)
    lines = ["| " + " | ".join(out) + " |", "|" + "---|" * len(out)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in zip(*out.values())]
    return "\n".join(lines) + "\n"

def save_table(df: pd.DataFrame, folder, name: str, title: str = "", digits: int = 2) -> list[Path]:
    "Save `df` as `<folder>/<name>.csv` (numbers) and `.md` (with an optional title line; 'm±s' to `digits` decimals)."
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / f"{name}.csv", folder / f"{name}.md"
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    df.to_csv(tmp, index=False); tmp.replace(csv)
    tmp.write_text((f"**{title}**\n\n" if title else "") + to_markdown(df, digits)); tmp.replace(md)
    return [csv, md]


# %%
test_eq(to_markdown(pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})), "| a | b |\n|---|---|\n| 1 | 0.5 |\n| 2 | 0.25 |\n")
# a mean and its std become one 'm±s' cell, only here
test_eq(to_markdown(pd.DataFrame({"x_mean": [1.0], "x_std": [0.5], "v": ["match"]})), "| x | v |\n|---|---|\n| 1.00±0.50 | match |\n")

# %% [markdown]
# A picture of the layout on made-up numbers (two noise levels, the 15% one improving with pruning):

# %%
lv = np.arange(8)
demo = pd.concat([pd.DataFrame({"noise": p, "level": lv, "weights_remaining": 100 * 0.8 ** lv,
                                "test_err_mean": e, "test_err_std": 0.005, "val_err_mean": e,
                                "noisy_loss_mean": nl, "original_loss_mean": ol})
                  for p, e, nl, ol in [(0.0, 0.10 + 0.002 * lv, np.nan * lv, 0.1 + 0 * lv),
                                       (0.15, 0.20 - 0.03 * np.sin(lv / 2.5), 0.3 + 0.4 * lv, 0.1 + 0.03 * lv)]])
opt = demo.loc[demo.groupby("noise")["val_err_mean"].idxmin()]
fig = fig_test_error(demo, opt, "made-up numbers")
with tempfile.TemporaryDirectory() as tmp:
    test_eq([p.suffix for p in save_figure(fig, tmp, "fig03")], [".png", ".pdf"])
fig


# %% [markdown]
# ## Subgroup loss differences (Figures 1b, 2, 5, 18–20)
#
# Bars: mean over seeds of the (algorithm − dense) training loss in each of the 20 EL2N-percentile subgroups, lowest
# EL2N on the left; error bars one std over seeds; one colour per noise level. Below zero the algorithm fits the
# subgroup better than the dense model.

# %%
#| export
def fig_subgroups(frame: pd.DataFrame, title: str = "", ax=None, ylabel: str = "loss(sparse) − loss(dense)") -> plt.Figure:
    "Grouped bars of `frame` (from `analysis.study_subgroup_deltas`): mean ± std over seeds per subgroup and noise."
    fig, ax = (plt.subplots(figsize=(6.4, 3.6)) if ax is None else (ax.figure, ax))
    noises = sorted(frame.noise.unique())
    cols = noise_colors(noises)
    m = int(frame.subgroup.max()) + 1
    w = 0.8 / max(1, len(noises))
    for i, p in enumerate(noises):
        g = frame[frame.noise == p].groupby("subgroup").delta.agg(["mean", "std"]).reindex(range(m))
        wr = frame[frame.noise == p].weights_remaining.mean()
        ax.bar(np.arange(m) + (i - (len(noises) - 1) / 2) * w, g["mean"], w, yerr=g["std"].fillna(0),
               color=cols[p], label=f"{p:.0%} ({wr:.1f}% w.)", error_kw=dict(lw=0.6))
    ax.axhline(0, color="k", lw=0.6)
    step = 100 // m
    ax.set_xticks(range(0, m, 2)); ax.set_xticklabels([f"{k * step}-{(k + 1) * step}" for k in range(0, m, 2)],
                                                      rotation=45, fontsize=7)
    ax.set_xlabel("EL2N percentile subgroup"); ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(title="label noise (weights)", fontsize=7, title_fontsize=7)
    fig.tight_layout()
    return fig


# %%
_f = pd.DataFrame([{"noise": p, "seed": s, "subgroup": g, "delta": (g - 10) * 0.1 + s * 0.01, "weights_remaining": 20.0}
                   for p in (0.0, 0.3) for s in (0, 1) for g in range(20)])
_fig = fig_subgroups(_f, "synthetic: loss rises with EL2N")
assert len(_fig.axes[0].patches) == 40
_fig


# %% [markdown]
# ## Example grids (App. K)
#
# The most-worsened, most-improved and least-affected examples are shown with the label used for training and the
# clean label (they differ for a noisy example): images as a grid, 1-D signals (MNIST-1D) as small line plots.

# %%
#| export
def example_grid(x, labels, clean=None, title: str = "", ncols: int = 8, class_names=None) -> plt.Figure:
    "A grid of examples `x` (N,C,H,W images or N,1,L signals) titled by their labels (`used/clean` if they differ)."
    import torch
    x = torch.as_tensor(x).detach().cpu().float()
    n = len(x); ncols = min(ncols, n); nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows + (0.3 if title else 0)), squeeze=False)
    name = (lambda c: class_names[int(c)]) if class_names else (lambda c: str(int(c)))
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]); ax.set_yticks([])
        if i >= n: ax.axis("off"); continue
        e = x[i]
        if e.dim() == 2 and e.shape[0] == 1 or e.dim() == 1: ax.plot(e.flatten().numpy(), lw=1)
        else:
            img = e.permute(1, 2, 0) if e.shape[0] in (1, 3) else e
            img = (img - img.min()) / (img.max() - img.min() + 1e-8)
            ax.imshow(img.squeeze(-1).numpy() if img.shape[-1] == 1 else img.numpy(), cmap="gray")
        lab = name(labels[i]) if clean is None or int(clean[i]) == int(labels[i]) else f"{name(labels[i])}/{name(clean[i])}"
        ax.set_title(lab, fontsize=7, color="k" if clean is None or int(clean[i]) == int(labels[i]) else "C3")
    if title: fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# %%
import torch
g = example_grid(torch.randn(10, 1, 28, 28), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], clean=[0, 1, 2, 3, 4, 5, 6, 7, 8, 0],
                 title="images: the last one is noisy (label used / clean label)")
test_eq(len(g.axes), 16)
g

# %%
example_grid(torch.randn(6, 1, 40).cumsum(-1), [1, 2, 3, 4, 5, 6], title="1-D signals (MNIST-1D)")


# %% [markdown]
# ## Two algorithms on one axis (Figures 6, 7, 8)
#
# §5 and App. C compare families of models from different algorithms: test error against training time (EDT vs
# pruning, Fig. 6) or against % weights remaining (width down-scaling vs pruning, Fig. 7; every algorithm, Fig. 8).
# One colour per noise level, one marker and line style per algorithm, mean ± std over seeds.

# %%
#| export
def fig_algorithm_curves(curves: dict[str, pd.DataFrame], x: str = "weights_remaining", title: str = "",
                         by_noise: bool = True, ax=None) -> plt.Figure:
    """Test error (%) vs `x` ('weights_remaining' or 'epochs_total') for each algorithm in `curves` ({name: frame with
    noise, x, test_err_mean, test_err_std}); colours are noise levels (or algorithms when `by_noise` is False)."""
    fig, ax = (plt.subplots(figsize=(5.6, 3.9)) if ax is None else (ax.figure, ax))
    noises = sorted({p for c in curves.values() for p in c.noise.unique()})
    cols = noise_colors(noises)
    for i, (name, c) in enumerate(curves.items()):
        mk, ls = style(name)
        for p, g in c.groupby("noise"):
            g = g.sort_values(x, ascending=x != "weights_remaining")
            m, s = 100 * g.test_err_mean, 100 * g.test_err_std.fillna(0)
            col = cols[p] if by_noise else f"C{i}"
            lab = (f"{name}, {p:.0%}" if len(noises) > 1 else name) if by_noise or p == noises[0] else None
            ax.plot(g[x], m, ls, marker=mk, ms=3.5, color=col, label=lab, lw=1)
            ax.fill_between(g[x], m - s, m + s, color=col, alpha=0.12, lw=0)
    if x == "weights_remaining": pct_axis(ax)
    else: ax.set_xlabel("training epochs")
    ax.set_ylabel("test error (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2 if len(noises) * len(curves) > 6 else 1)
    fig.tight_layout()
    return fig


# %%
_c = lambda off: pd.DataFrame({"noise": [0.0] * 3 + [0.3] * 3, "weights_remaining": [100, 80, 64] * 2,
                               "epochs_total": [2, 4, 6] * 2, "test_err_mean": np.r_[.1, .09, .08, .3, .25, .2] + off,
                               "test_err_std": [0.01] * 6})
f = fig_algorithm_curves({"LR rewinding": _c(0), "EDT": _c(0.02)}, "epochs_total", "EDT vs pruning (toy numbers)")
test_eq(len(f.axes[0].lines), 4)
f
