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

# %%

# %% [markdown]
# # Report: every figure and table of a bench, and the paper's claims C1–C6
#
# > `pruning-repro report --bench B` reads what the section notebooks wrote to `figures/<bench>/` and writes
# > `figures/<bench>/REPORT.md`: the list of figures and tables with the paper item each regenerates, and for each
# > claim of the paper (C1–C6 of the design) whether it holds on this bench, with the numbers that decide it.

# %%
#| default_exp report

# %% [markdown]
# The claims, and the rule applied to the tables (mean ± std over seeds; "differ" is the paper's match rule:
# |mean of the per-seed differences| ≥ their std):
#
# | claim | paper | table read | holds when |
# |---|---|---|---|
# | C1 | with label noise the optimally sparse model beats dense, more so at higher noise (Fig. 3) | `table06_…` | at every noise > 0 the optimum differs from dense and is lower, and the gain grows with the noise |
# | C2 | without noise EDT matches pruning, with noise EDT is worse (Fig. 6, Table 5) | `table05_…` | EDT matches (or beats) LR rewinding at 0%, and differs and is worse at every noise > 0 |
# | C3 | at the optimal sparsity noisy examples' loss rises far above original examples' (Fig. 4, Table 11) | `table11_…` | at every noise > 0 the noisy partition's loss rises from dense to the optimum and ends at least twice the original partition's |
# | C4 | low sparsity lowers training loss, high sparsity raises it (App. L) | `tableL_…` | at every noise level the least sparse milestone lowers the mean training loss and the sparsest raises it |
# | C5 | width down-scaling regularizes like pruning under noise; top-10% affected sets overlap above chance (Tables 7, 3) | `table07_…`, `table03_…` | at every noise > 0 WD's optimum matches LR rewinding's or is within 2.1 points (the paper's largest gap), and every Jaccard index is above twice the chance level |
# | C6 | weight rewinding mitigates noise better than LR rewinding (Table 9) | `table09_…` | at every noise > 0 weight rewinding's optimum differs from LR rewinding's and is lower |
#
# A claim is **holds**, **holds in part** (some noise levels), **does not hold**, or **not run** (its section has not
# written its table).

# %%
#| export
from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd

# %%
#| hide
import tempfile
from fastcore.test import test_eq

# %%
#| export
CLAIMS = {
    "C1": "with label noise the optimally sparse model beats dense, more so at higher noise (Fig. 3)",
    "C2": "without noise EDT matches pruning, with noise EDT is worse (Fig. 6, Table 5)",
    "C3": "at the optimal sparsity noisy examples' loss rises far above original examples' loss (Fig. 4, Table 11)",
    "C4": "low sparsity lowers train loss (better training), high sparsity raises it (App. L, Fig. 18)",
    "C5": "width down-scaling regularizes like pruning under noise; top-10% affected sets overlap above chance (Tables 7, 3)",
    "C6": "weight rewinding mitigates noise better than LR rewinding (Table 9)",
}

def _read(folder: Path, name: str) -> pd.DataFrame | None:
    p = folder / f"{name}.csv"
    return pd.read_csv(p) if p.exists() else None

def _mean(cell) -> float:
    "The mean of a table cell written as 'mean±std' (or a plain number)."
    return float(str(cell).split("±")[0])

def _status(oks: list[bool]) -> str:
    if not oks: return "not run"
    return "holds" if all(oks) else ("holds in part" if any(oks) else "does not hold")

def claim_c1(folder: Path) -> dict:
    t = _read(folder, "table06_dense_vs_optimal_test_error")
    if t is None: return {"status": "not run", "evidence": "sec4_noise has not written table06"}
    n = t[t.noise > 0].sort_values("noise")
    oks = [r.verdict == "differ" and r["diff"] < 0 for _, r in n.iterrows()]
    growing = bool((n["diff"].diff().dropna() <= 0).all())
    st = _status(oks)
    if st == "holds" and not growing: st = "holds in part"
    ev = "; ".join(f"{r.noise:.0%}: dense {r.dense_test_err} → optimum {r.sparse_test_err} ({r['diff']:+.2f}, {r.verdict})"
                   for _, r in n.iterrows())
    return {"status": st, "evidence": ev + f"; gain {'grows' if growing else 'does not grow'} with the noise"}

def claim_c2(folder: Path) -> dict:
    t = _read(folder, "table05_edt_vs_pruning")
    if t is None: return {"status": "not run", "evidence": "sec5_isolating has not written table05"}
    e = t[t.algorithm == "EDT"].sort_values("noise")
    oks, ev = [], []
    for _, r in e.iterrows():
        d = r["diff_vs_LR rewinding"]
        ok = (r.verdict == "match" or d < 0) if r.noise == 0 else (r.verdict == "differ" and d > 0)
        oks.append(ok); ev.append(f"{r.noise:.0%}: EDT {r.optimal_test_err} vs LR ({d:+.2f}, {r.verdict})")
    return {"status": _status(oks), "evidence": "; ".join(ev)}

def claim_c3(folder: Path) -> dict:
    t = _read(folder, "table11_partition_loss")
    if t is None: return {"status": "not run", "evidence": "sec4_noise has not written table11"}
    oks, ev = [], []
    for p, g in t.groupby("noise"):
        nz, og = g[g.partition == "Noisy"].iloc[0], g[g.partition == "Original"].iloc[0]
        ok = _mean(nz["sparse"]) > _mean(nz["dense"]) and _mean(nz["sparse"]) >= 2 * _mean(og["sparse"])
        oks.append(ok); ev.append(f"{p:.0%}: noisy {nz['dense']} → {nz['sparse']}, original {og['dense']} → {og['sparse']}")
    return {"status": _status(oks), "evidence": "; ".join(ev)}

def claim_c4(folder: Path) -> dict:
    t = _read(folder, "tableL_subgroup_loss_change")
    if t is None: return {"status": "not run", "evidence": "appL_subgroups has not written tableL"}
    oks, ev = [], []
    for p, g in t[t.algorithm == "pruning"].groupby("noise"):
        g = g.sort_values("milestone")
        lo, hi = g.iloc[0], g.iloc[-1]
        oks.append(lo.mean_delta < 0 < hi.mean_delta)
        ev.append(f"{p:.0%}: Δloss {lo.mean_delta:+.3f} at {lo.weights_remaining:.3g}% weights, {hi.mean_delta:+.3f} at "
                  f"{hi.weights_remaining:.3g}%")
    return {"status": _status(oks), "evidence": "; ".join(ev)}

def claim_c5(folder: Path) -> dict:
    t7, t3 = _read(folder, "table07_wd_vs_pruning"), _read(folder, "table03_jaccard_pruning_vs_width")
    if t7 is None or t3 is None: return {"status": "not run", "evidence": "sec5_isolating / appI_width have not written tables 7 and 3"}
    oks, ev = [], []
    for _, r in t7[(t7.algorithm == "WD") & (t7.noise > 0)].sort_values("noise").iterrows():
        d = r["diff_vs_LR rewinding"]
        oks.append(r.verdict == "match" or d <= 2.1)
        ev.append(f"{r.noise:.0%}: WD {r.optimal_test_err} vs LR ({d:+.2f}, {r.verdict})")
    for _, r in t3.sort_values("noise").iterrows():
        oks.append(r.jaccard_mean > 2 * r.chance)
        ev.append(f"Jaccard {r.noise:.0%}: {r.jaccard} (chance {r.chance:.3f})")
    return {"status": _status(oks), "evidence": "; ".join(ev)}

def claim_c6(folder: Path) -> dict:
    t = _read(folder, "table09_weight_rewinding")
    if t is None: return {"status": "not run", "evidence": "appJ_ablations has not written table09"}
    w = t[(t.algorithm == "weight rewinding") & (t.noise > 0)].sort_values("noise")
    oks = [r.verdict == "differ" and r["diff_vs_LR rewinding"] < 0 for _, r in w.iterrows()]
    ev = "; ".join(f"{r.noise:.0%}: WR {r.optimal_test_err} vs LR ({r['diff_vs_LR rewinding']:+.2f}, {r.verdict})"
                   for _, r in w.iterrows())
    return {"status": _status(oks), "evidence": ev}

CHECKS = {"C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5, "C6": claim_c6}

def claims(folder) -> pd.DataFrame:
    "One row per claim: its statement, status and evidence, from the tables in `folder`."
    folder = Path(folder)
    return pd.DataFrame([{"claim": c, "statement": CLAIMS[c], **CHECKS[c](folder)} for c in CLAIMS])


# %% [markdown]
# Every output file maps to the paper item it regenerates, by the prefix of its name.

# %%
#| export
ITEMS = {"fig01a": "Figure 1a", "fig01b": "Figure 1b", "fig02": "Figure 2", "fig03": "Figure 3", "fig04": "Figure 4",
         "fig05": "Figure 5", "fig06": "Figure 6", "fig07": "Figure 7", "fig08": "Figure 8", "fig09": "Figure 9",
         "fig10": "Figure 10", "fig11": "Figure 11", "fig12": "Figure 12", "fig13": "Figure 13", "fig14": "Figure 14",
         "fig15": "Figure 15", "fig16": "Figure 16", "fig17": "Figure 17", "fig18": "Figure 18", "fig19": "Figure 19",
         "fig20": "Figure 20", "table02": "Table 2", "table03": "Table 3", "table04": "Table 4", "table05": "Table 5",
         "table06": "Table 6", "table07": "Table 7", "table08": "Table 8", "table09": "Table 9", "table10": "Table 10",
         "table11": "Table 11", "tableL": "App. L numbers (C4)"}

def outputs(folder) -> pd.DataFrame:
    "Figures (PNG) and tables (CSV) in `folder`, with the paper item of each."
    rows = []
    for p in sorted(Path(folder).glob("*")):
        if p.suffix not in (".png", ".csv") or p.name.startswith("."): continue
        key = p.stem.split("_")[0]
        rows.append({"file": p.name, "kind": "figure" if p.suffix == ".png" else "table",
                     "paper": ITEMS.get(key, "")})
    return pd.DataFrame(rows, columns=["file", "kind", "paper"])

def write_report(bench: str, folder) -> Path:
    "Write `<folder>/REPORT.md` for `bench` (atomically); returns its path."
    from pruning_repro.plots import to_markdown
    folder = Path(folder)
    if not folder.is_dir():
        from pruning_repro.config import ConfigError
        raise ConfigError(f"no outputs for {bench!r}: {folder} does not exist (run `pruning-repro reproduce --bench {bench}` first)")
    c, o = claims(folder), outputs(folder)
    nbs = sorted(p.name for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    text = [f"# {bench}: regenerated figures and tables, and the paper's claims",
            "", f"Written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `pruning-repro report` from the tables in "
            f"this folder. Executed notebooks: {', '.join(nbs) or 'none'}.", "",
            "## Claims (C1–C6 of the design)", "", to_markdown(c), "",
            "## Figures and tables", "", to_markdown(o)]
    out = folder / "REPORT.md"
    tmp = folder / ".REPORT.md.tmp"
    tmp.write_text("\n".join(text)); tmp.replace(out)
    return out


# %% [markdown]
# A folder holding only the §4 tables: C1 and C3 are decided, the other claims are "not run".

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    pd.DataFrame({"noise": [0.0, 0.3, 0.6], "dense_test_err": ["15±1", "27±2", "46±1"], "sparse_test_err": ["15±0", "24±1", "33±1"],
                  "diff": [-0.5, -3.2, -13.6], "verdict": ["match", "differ", "differ"]}).to_csv(d / "table06_dense_vs_optimal_test_error.csv", index=False)
    pd.DataFrame({"noise": [0.3, 0.3], "partition": ["Noisy", "Original"], "dense": ["1.56±0.05", "0.38±0.03"],
                  "sparse": ["2.92±0.18", "0.77±0.08"]}).to_csv(d / "table11_partition_loss.csv", index=False)
    c = claims(d)
    test_eq(c.status.tolist(), ["holds", "not run", "holds", "not run", "not run", "not run"])
    write_report("demo", d)
    assert "| C1 |" in (d / "REPORT.md").read_text()
c[["claim", "status", "evidence"]]
