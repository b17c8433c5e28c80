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
# # Results: the store read into frames
#
# > Every reading of stored runs into a pandas frame, in one place: the families of models of each learning algorithm, the retrainings of App. D, E and K, the equalized comparison of App. I, and the whole study as one tidy table.

# %%
#| default_exp results

# %% [markdown]
# The store holds runs (`09_store`); the study says which runs a section needs, keyed by `config.RunKey`
# (`14_sweep`). Analyses (`10_analysis`) and figures want frames of numbers. The functions here turn one into the
# other, read the store only and train nothing; every frame has the key's fields (noise, seed, ...) as columns.

# %%
#| export
from __future__ import annotations

import dataclasses

import pandas as pd

from pruning_repro import algorithms
from pruning_repro.config import RunKey, RunSpec
from pruning_repro.sweep import SECTION_AFTER, check_sections, dependent_runs, section_noise, study_runs
from pruning_repro.width import oneshot_runs, weights_remaining, width_specs

# %%
#| hide
from fastcore.test import test_eq


# %%
#| export
def algorithm_frames(b, noise_levels, seeds, store, names=None) -> dict:
    """{algorithm: long frame of its stored results over `noise_levels` and `seeds`}: one row per pruning level
    (`analysis.trajectories`), for width down-scaling one row per width (`width.width_results`). Reads the store."""
    from pruning_repro.analysis import trajectories
    from pruning_repro.width import width_results
    names = tuple(names or algorithms.ALGORITHMS)      # the registry as it is now (a plugin may have added to it)
    out = {n: [] for n in names}
    for p in noise_levels:
        runs = algorithms.algorithm_runs(b, p, seeds, names)
        for n in names:
            res = {k: store.results(v) for k, v in runs[n].items()}
            width = algorithms.get_algorithm(n).family == algorithms.WIDTH
            out[n].append(width_results(res, runs[n]) if width else trajectories(res, runs[n]))
    return {n: pd.concat(v, ignore_index=True) for n, v in out.items()}

def dependent_frame(runs: dict[RunKey, RunSpec], store, traj=None):
    """One row per retraining of `dependent_runs` (`runs`, {RunKey: RunSpec}): its key's noise, seed, level and kind
    — TIE/RND, TW/Rand, or '' — and its stored test/val error and number of left-out examples, with the % weights
    remaining of the level it was selected at when the IMP trajectories `traj` (`analysis.trajectories`) are given.
    Reads the store."""
    rows = []
    for key, spec in runs.items():
        r = store.results(spec).iloc[-1]
        rows.append({"noise": key.noise, "seed": key.seed, "level": key.level, "kind": key.kind,
                     "test_err": r.test_err, "val_err": r.val_err, "n_left_out": len(spec.data.exclude_ids)})
    df = pd.DataFrame(rows, columns=["noise", "seed", "level", "kind", "test_err", "val_err", "n_left_out"])
    if traj is not None: df = df.merge(traj[["noise", "seed", "level", "weights_remaining"]], on=["noise", "seed", "level"])
    return df

def equalized_models(b, noise_levels, seeds, store) -> pd.DataFrame:
    """One row per model of the equalized comparison (`algorithm` 'one-shot' or 'WS (equalized)'): noise, seed, k,
    spec, the level holding it, test and validation error, % weights remaining. Every model trains for the same two
    cycles, k = 0 of one-shot too: the full-size model trained for a second cycle (the equalized width-1 model, i.e.
    EDT's level 1), not the dense model of one cycle."""
    rows = []
    for p in noise_levels:
        for s in seeds:
            full = next(iter(width_specs(b, p, s, equalized=True).values()))     # k = 0: width 1, two cycles
            d = store.results(full).iloc[-1]
            rows.append(dict(algorithm="one-shot", noise=p, seed=s, k=0, spec=full, level=1, test_err=d.test_err,
                             val_err=d.val_err, weights_remaining=100.0))
            for k, spec in enumerate(oneshot_runs(b, p, s).values(), start=1):
                r = store.results(spec).iloc[-1]
                rows.append(dict(algorithm="one-shot", noise=p, seed=s, k=k, spec=spec, level=1, test_err=r.test_err,
                                 val_err=r.val_err, weights_remaining=100 * r.density))
            for k, spec in enumerate(width_specs(b, p, s, equalized=True).values()):
                r = store.results(spec).iloc[-1]
                rows.append(dict(algorithm="WS (equalized)", noise=p, seed=s, k=k, spec=spec, level=1,
                                 test_err=r.test_err, val_err=r.val_err, weights_remaining=weights_remaining(spec)))
    return pd.DataFrame(rows)

def results_table(b, store, sections=None, seeds=(0, 1, 2), noise_levels=None):
    """One row per stored level of every run of the study of bench `b` (first stage, and the second once named).
    What it cannot export is listed in the frame's `attrs["left_out"]`, one line each: a run not trained or a level
    damaged (a later `sweep` recomputes it), and the App. D/E/K retrainings of a (noise, seed) whose IMP run is
    incomplete — they are named by that run's per-example results; those of the other (noise, seed) are exported."""
    first = study_runs(b, sections, seeds, noise_levels)
    runs, left = dict(first), []
    for sec in check_sections(sections):
        if sec not in SECTION_AFTER: continue
        for p in section_noise(sec, b, noise_levels):
            for s in seeds:
                if store.is_complete(b.run_spec(p, s)): runs.update(dependent_runs(sec, b, [s], [p], store))
                else: left.append(f"{sec}: the retrainings selected at noise {p:g}, seed {s} (their IMP run "
                                  f"{b.run_spec(p, s).hash()[:16]} is incomplete or damaged)")
    rows = []
    for key, spec in runs.items():
        k = dataclasses.asdict(key); k["selected_at"] = k.pop("level")
        d = spec.to_dict()
        d["data"]["n_excluded"] = len(d["data"].pop("exclude_ids", ()))          # ids are in the store, not here
        flat = {f"spec.{c}": (str(v) if isinstance(v, (list, tuple)) else v)
                for c, v in pd.json_normalize(d, sep=".").iloc[0].items()}
        done = store.levels_done(spec)
        missing = [lv for lv in range(spec.prune.levels + 1) if lv not in done]
        for lv in done:
            if not store.level_ok(spec, lv): missing.append(lv); continue
            m = store.metrics(spec, lv)
            m.pop("sha256", None); m.pop("numerics", None); wb = m.pop("written_by", {}) or {}
            rows.append({**k, "run": spec.hash()[:16], **flat, **m, "level": lv, "host": wb.get("host")})
        if missing: left.append(f"{key}: " + ("not trained" if len(missing) == spec.prune.levels + 1 else
                                              f"level(s) {', '.join(map(str, sorted(missing)))} missing or damaged"))
    t = pd.DataFrame(rows)
    t.attrs["left_out"] = left
    return t


# %% [markdown]
# Writing the table: through a hidden temporary file beside `out`, renamed when whole (a reader never sees half a
# table, and a failed write leaves nothing behind). Parquet stores integers as 64-bit: a column of Python integers
# (seeds are any non-negative integer) becomes unsigned 64-bit when it fits, else decimal text, never an overflow.

# %%
#| export
def _parquet_safe(t: pd.DataFrame) -> pd.DataFrame:
    "`t` with every object column of integers made a type Parquet holds: uint64 when it fits, else decimal text."
    t = t.copy()
    for c in t.columns:
        if t[c].dtype != object: continue
        v = t[c].dropna()
        if not len(v) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v): continue
        fits = all(0 <= x < 2**64 for x in v) and len(v) == len(t)
        t[c] = t[c].astype("uint64") if fits else t[c].map(lambda x: None if x is None else str(x))
    return t

def write_table(t: pd.DataFrame, out, format: str = "csv"):
    "Write `t` to `out` as CSV or Parquet, atomically; on any failure no file (temporary or partial) is left."
    import os
    from pathlib import Path
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if format == "csv": t.to_csv(tmp, index=False)
        else: _parquet_safe(t).to_parquet(tmp, index=False)
        tmp.replace(out)
    except (OverflowError, ValueError, TypeError) as e:        # pyarrow's ArrowInvalid / ArrowTypeError among them
        tmp.unlink(missing_ok=True)
        from pruning_repro.config import ConfigError
        raise ConfigError(f"cannot write {out} as {format}: {type(e).__name__}: {str(e)[:200]} (try --format csv)"
                          ) from None
    except OSError as e:                                       # a full disk: named by the file asked for
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(out)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


# %%
import importlib.util, tempfile as _tf
from pathlib import Path as _P
_d = _P(_tf.mkdtemp())
write_table(pd.DataFrame({"seed": [0, 1]}), _d / "c.csv"); (_d / "c.csv").unlink()
if importlib.util.find_spec("pyarrow"):
  write_table(pd.DataFrame({"seed": [0, 2**64 - 1], "x": [1, 2]}), _d / "a.parquet", "parquet")
  test_eq(pd.read_parquet(_d / "a.parquet").seed.tolist(), [0, 2**64 - 1])
  write_table(pd.DataFrame({"seed": [2**70, 1]}, dtype=object), _d / "b.parquet", "parquet")   # beyond 64 bits: text
  test_eq(pd.read_parquet(_d / "b.parquet").seed.tolist(), [str(2**70), "1"])
  test_eq(sorted(p.name for p in _d.iterdir()), ["a.parquet", "b.parquet"])


# %% [markdown]
# Where `pruning-repro export` writes: the file named, or `results.<format>` inside a folder named, else inside the
# study's figures folder; refused before anything is read when the format's writer is missing or the folder cannot be
# written.

# %%
#| export
def export_target(out, default, format: str = "csv"):
    """The file an export writes: `out` (a folder: `results.<format>` inside it), else `default` (a folder) / that
    name; `ConfigError` for Parquet without pyarrow, a folder where the file should be, or an unwritable folder."""
    import importlib.util
    from pathlib import Path
    from pruning_repro.config import ConfigError
    from pruning_repro.store import check_writable
    if format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ConfigError("--format parquet needs pyarrow (pip install pyarrow); or use --format csv")
    out = Path(out) if out else Path(default) / f"results.{format}"
    if out.is_dir(): out = out / f"results.{format}"      # a folder named: the table goes inside it
    if out.is_dir(): raise ConfigError(f"--out {out} is a folder: name the file to write")
    check_writable(out.parent, "output folder")
    return out


# %%
test_eq(export_target(_d, "unused"), _d / "results.csv")
test_eq(export_target(None, _d, "csv"), _d / "results.csv")
if importlib.util.find_spec("pyarrow"): test_eq(export_target(_d / "t.parquet", "unused", "parquet"), _d / "t.parquet")

# %% [markdown]
# A smoke study of §3 on MNIST-1D, trained into a temporary store, read back four ways.

# %%
import tempfile
from pruning_repro.config import get_bench
from pruning_repro.store import Store
from pruning_repro.sweep import train_section
from pruning_repro.runtime import Runtime
_b, _st = get_bench("lenet_mnist1d", "smoke"), Store(tempfile.mkdtemp())
train_section("sec5_isolating", _b, (0,), (0.3,), _st, Runtime(workers=1))
_f = algorithm_frames(_b, (0.3,), (0,), _st, ("LR rewinding", "WD"))
test_eq(list(_f["LR rewinding"].level), list(range(_b.prune.levels + 1)))
test_eq(_f["WD"].weights_remaining.iloc[0], 100.0)
_t = results_table(_b, _st, ["sec5_isolating"], (0,), (0.3,))
test_eq(set(_t.algorithm), {"LR rewinding", "EDT", "WD"}); test_eq(_t.attrs["left_out"], [])
_t[["algorithm", "noise", "seed", "k", "level", "density", "test_err"]].head()
