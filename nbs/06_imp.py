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
# # Iterative magnitude pruning with learning-rate rewinding
#
# > IMP (§2): train, remove 20% of the remaining weights, rewind the learning rate (or the weights too), repeat —
# > one stored level at a time, resumable.

# %%
#| default_exp imp

# %% [markdown]
# The paper studies **IMP with learning-rate rewinding** (Renda et al. 2020), §2:
#
# 1. train a network to completion (level 0: the *dense* model);
# 2. remove a fraction (20%) of the smallest-magnitude remaining weights;
# 3. reset the learning rate to its value at an earlier epoch `t` (0 for LeNet, 10 otherwise) and train again from
#    epoch `t` to the end of the schedule, **keeping the weights**;
# 4. repeat 2–3.
#
# Appendix J.1 compares **weight rewinding** (Frankle & Carbin): step 3 also resets the surviving weights to their
# values at epoch `t`. Both are `PruneSpec.rewind` (`'lr'` or `'weight'`).
#
# Every level is a separate stored result (`09_store`): a rerun skips finished levels, a killed run resumes at the
# first missing level. The data order of level `k` comes from a generator seeded by (seed, k), so a resumed run
# is identical to an uninterrupted one on CPU.
#
# Level 0 does not depend on how later levels prune, so every variant at one (noise, seed) — LR or weight
# rewinding, SynFlow, SNIP, random, EDT, one-shot at any density — shares it: it is trained once, in the variant's
# **dense root** run (`dense_root`), and copied into each variant with its checksums. A study of seven learning
# algorithms thus trains each dense model once instead of seven times.

# %%
#| export
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
import multiprocessing as mp

import pandas as pd
import torch
from tqdm.auto import tqdm

from dataclasses import replace
from pathlib import Path

from pruning_repro.config import PruneSpec, RunSpec, check_workers, derive_seed
from pruning_repro.data import data_info, load_data
from pruning_repro.models import build_model, check_model
from pruning_repro.prune import density, full_masks, prune_masks
from pruning_repro.store import CorruptRun, Store
from pruning_repro.train import Diverged, Runtime, _progress_enabled, eval_metrics, state_copy, train

# %%
#| hide
import tempfile
from fastcore.test import test_eq
from pruning_repro.config import get_bench


# %%
#| export
def default_device() -> torch.device:
    "CUDA when available (or `$PRUNING_REPRO_DEVICE`), else CPU."
    return torch.device(os.environ.get("PRUNING_REPRO_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))

def _generator(spec: RunSpec, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(spec.seed, spec.stream(purpose)))

def run_imp(spec: RunSpec, store: Store | None = None, device=None, progress: bool | None = None,
            label: str = "", data=None, runtime: Runtime | None = None) -> pd.DataFrame:
    """Train the dense model and every pruning level of `spec` that the store lacks; return one row per level.
    `runtime` (how to train; default resolved from the environment here, once) goes down to every level."""
    store = store or Store()
    runtime = runtime or Runtime.from_env()
    device = torch.device(device) if device is not None else default_device()
    label = str(label)                      # a study's `RunKey`, or any label: stored in spec.json, shown in bars
    if store.is_complete(spec): return store.results(spec)      # reading needs no lock: a read-only store works
    check_model(spec.model, data_info(spec.data.dataset))       # a model it cannot build: one error, nothing written
    data = data if data is not None else load_data(spec.data, spec.seed, device)   # bad data: likewise, before writing
    store.init_run(spec, label)
    with store.lock(spec):
        todo = [lv for lv in range(spec.prune.levels + 1) if not store.level_ok(spec, lv)]
        if todo:      # the first damaged or missing level and every later one (they depend on it) are recomputed
            store.discard_level(spec, todo[0]); todo = list(range(todo[0], spec.prune.levels + 1))
        record_data(spec, store, data)                  # (again, when its record was damaged or removed)
        bar = tqdm(todo, desc=label or spec.hash()[:8], disable=not _progress_enabled(progress))
        for level in bar:
            try: _run_level(spec, store, level, data, device, progress, runtime)
            except Diverged as e: raise Diverged(f"run {label or spec.hash()[:12]} ({store.run_dir(spec)}), {e}") from None
            bar.set_postfix(val_err=f"{store.metrics(spec, level)['val_err']:.3f}")
    return store.results(spec)

def record_data(spec: RunSpec, store: Store, data) -> None:
    "Store, once per run, what the analyses need of its data: noisy mask, clean and used labels, example ids."
    if not store.extra_ok(spec, "data"):
        store.save_extra(spec, "data", {"noisy": data.noisy.to(torch.uint8), "clean_y": data.clean_y,
                                        "train_y": data.train.y.cpu(), "train_ids": data.train.ids})

def dense_root(spec: RunSpec) -> RunSpec:
    """The run whose level 0 `spec` shares. Level 0 (dense training to the end, with the rewind checkpoint) depends
    on the data, model, training, seed, replica and rewind epoch only — not on how later levels prune — so every
    learning algorithm (weight / LR rewinding, SynFlow, SNIP, random, EDT, one-shot) at one (noise, seed) shares it."""
    # the canonical dense PruneSpec; a spec stored before `snip_per_class` (None) keeps its stored root
    snip = PruneSpec.snip_per_class if spec.prune.snip_per_class is not None else None
    return replace(spec, prune=PruneSpec(levels=0, rewind_epoch=spec.prune.rewind_epoch, snip_per_class=snip))

def _copy_file(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp); os.replace(tmp, dst)

def _share_level0(spec: RunSpec, store: Store, data, device, progress, runtime) -> None:
    "Level 0 of `spec` from its dense root: trained there once (under the root's lock), then copied, checksums and all."
    root = dense_root(spec)
    store.init_run(root, "dense")
    with store.lock(root):
        if store.level_ok(root, 0):      # the root is copied into every variant: verify it whole before copying
            try: store.load_state(root, 0); store.load_per_example(root, 0); store.load_extra(root, "rewind")
            except CorruptRun: store.discard_level(root, 0)
        if not store.level_ok(root, 0):
            record_data(root, store, data)
            _run_level(root, store, 0, data, device, progress, runtime)
        src, dst = store.level_dir(root, 0), store.level_dir(spec, 0)
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "per_example.safetensors", "metrics.json"):   # metrics.json last: it commits
            _copy_file(src / f, dst / f)
        for f in ("rewind.safetensors", "rewind.sha256"):
            _copy_file(store.run_dir(root) / f, store.run_dir(spec) / f)

def _run_level(spec: RunSpec, store: Store, level: int, data, device, progress, runtime) -> None:
    t, p = spec.train, spec.prune
    store.clean_partial(spec, level)                    # a killed writer's temporary files
    if level == 0 and p.levels > 0 and dense_root(spec) != spec:      # a dense-only run needs no sharing
        return _share_level0(spec, store, data, device, progress, runtime)
    model = build_model(spec.model, data.info, spec.seed, spec.stream("init")).to(device)
    inner = False if progress is None else progress
    if level == 0:
        masks = full_masks(model)
        r = train(model, data, t, generator=_generator(spec, "order:0"), checkpoint_epoch=p.rewind_epoch,
                  progress=inner, desc="level 0", runtime=runtime)
        store.save_extra(spec, "rewind", r["checkpoint"])
        epochs_total = t.epochs
    else:
        try: state, prev_masks = store.load_state(spec, level - 1)
        except CorruptRun:  # the previous level cannot be trusted: recompute it first
            store.discard_level(spec, level - 1)
            _run_level(spec, store, level - 1, data, device, progress, runtime)
            state, prev_masks = store.load_state(spec, level - 1)
        model.load_state_dict(state)
        ctx = {"generator": _generator(spec, f"prune:{level}"), "data": data,      # the heuristics' settings
               "synflow_rounds": p.synflow_rounds, "snip_per_class": p.snip_per_class}  # are the spec's

        masks = prune_masks(model, prev_masks, p.fraction, p.strategy, ctx)
        if p.rewind == "weight": model.load_state_dict(store.load_extra(spec, "rewind"))
        dev_masks = {k: v.to(device) for k, v in masks.items()}
        r = train(model, data, t, generator=_generator(spec, f"order:{level}"), start_epoch=p.rewind_epoch,
                  masks=dev_masks, progress=inner, desc=f"level {level}", runtime=runtime)
        epochs_total = store.metrics(spec, level - 1)["epochs_total"] + t.epochs - p.rewind_epoch
    metrics, per_ex = eval_metrics(model, data)
    metrics.update(density=density(masks), train_seconds=r["seconds"], epochs=r["epochs"], steps=r["steps"],
                   epochs_total=epochs_total, written_by={"host": socket.gethostname(), "pid": os.getpid()})
    store.save_level(spec, level, metrics, per_ex, state_copy(model), masks)


# %% [markdown]
# **One-shot pruning** (App. I) is the same procedure with a single level: train the dense model, remove
# `1 − density` of the prunable weights at once, retrain from the rewind epoch.

# %%
#| export
def oneshot_spec(spec: RunSpec, density: float) -> RunSpec:
    "One-shot pruning of `spec` to `density` (fraction of prunable weights kept), then one retraining pass."
    from dataclasses import replace
    from pruning_repro.config import ConfigError
    if not 0 < density < 1: raise ConfigError(f"target density must be in (0, 1), got {density}")
    return replace(spec, prune=replace(spec.prune, levels=1, fraction=1 - density))


# %%
test_eq(oneshot_spec(get_bench("lenet_mnist").run_spec(0.1, 0), 0.05).prune.levels, 1)

# %%
# one dense model shared by every variant: the EDT run copies level 0 that the IMP run trained, bit for bit
_b = get_bench("lenet_mnist1d", "smoke")
with tempfile.TemporaryDirectory() as _d:
    _st, _a = Store(_d), _b.run_spec(0.3, 0)
    _e = replace(_a, prune=replace(_a.prune, strategy="none"))
    test_eq(dense_root(_a), dense_root(_e))
    run_imp(_a, _st, device="cpu", progress=False); run_imp(_e, _st, device="cpu", progress=False)
    test_eq(_st.metrics(_a, 0)["test_err"], _st.metrics(_e, 0)["test_err"])
    test_eq(_st.metrics(_a, 0)["written_by"], _st.metrics(_e, 0)["written_by"])   # trained once
    assert all(torch.equal(x, y) for x, y in zip(_st.load_state(_a, 0)[0].values(), _st.load_state(_e, 0)[0].values()))
    assert _st.metrics(_e, 1)["epochs_total"] == 2 * _b.train.epochs


# %% [markdown]
# ## Many runs at once
#
# A section needs one IMP trajectory per (noise, seed); they are independent. On a CPU with few cores, small models
# train fastest **one process per core with one thread each**, so `run_many` spreads missing runs over a process
# pool (`workers`, default: the number of cores) and shows one progress bar over finished runs. Runs already
# complete are not scheduled. With `workers=1` everything runs in this process, with per-level progress bars.

# %%
#| export
def run_job(spec_dict: dict, root: str, label, threads: int | None = None, device: str | None = None,
            runtime: Runtime | None = None) -> dict:
    "Train one run (every missing level) into the store at `root`, in this process; returns where and how long."
    from pruning_repro.plugins import load_plugins
    load_plugins()                                      # a worker or Slurm job imports the plugins its parent named
    threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None
    if threads: torch.set_num_threads(threads)
    spec, st, t0 = RunSpec.from_dict(spec_dict), Store(root), time.time()
    before = len(st.levels_done(spec))
    run_imp(spec, st, device=device, progress=False, label=label, runtime=runtime)
    return {"label": str(label), "host": socket.gethostname(), "job": os.environ.get("SLURM_JOB_ID"),
            "levels_trained": len(st.levels_done(spec)) - before, "seconds": round(time.time() - t0, 2)}

def run_pool(specs: dict[str, RunSpec], store: Store, workers: int | None = None, device=None,
             progress: bool | None = None, runtime: Runtime | None = None) -> tuple[list[dict], dict[str, BaseException]]:
    """The one local process pool (used by `run_many`, the sections and `sweep --executor local`): every run of
    `specs` in a spawned process, `workers` at a time (default one per core, `cores // workers` threads each).
    Progress counts finished levels, read from the store. Returns (`run_job` reports, {label: exception})."""
    device = str(torch.device(device) if device is not None else default_device())
    runtime = runtime or Runtime.from_env()          # resolved here, once, and given to every worker
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or cores, len(specs)))
    threads = max(1, cores // workers)
    total = sum(s.prune.levels + 1 for s in specs.values())
    done = lambda: sum(len(store.levels_done(s)) for s in specs.values())
    bar = tqdm(total=total, initial=done(), desc=f"levels of {len(specs)} runs ({workers} workers)", unit="level",
               disable=not _progress_enabled(progress))
    finished, failed = [], {}
    ex = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    with _terminating_on_sigterm():
        try:
            futs = {ex.submit(run_job, s.to_dict(), str(store.root), k, threads, device, runtime): k
                    for k, s in specs.items()}
            pending = set(futs)
            while pending:
                ready, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                for f in ready:
                    try: finished.append(f.result())
                    except Exception as e: failed[futs[f]] = e
                bar.update(done() - bar.n)
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM) or failing: the workers must not outlive the pool. Finished levels are
            # in the store; a level a worker was writing is recomputed by the next run (`Store.clean_partial`).
            for proc in list((getattr(ex, "_processes", None) or {}).values()): proc.terminate()
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        finally: bar.close()
    ex.shutdown(wait=True)
    return finished, failed

@contextlib.contextmanager
def _terminating_on_sigterm():
    "Within: SIGTERM raises `SystemExit` in the main thread (so the pool's cleanup runs), as Ctrl-C does."
    import signal, threading
    if threading.current_thread() is not threading.main_thread(): yield; return
    def stop(signum, frame): raise SystemExit(128 + signum)
    old = signal.signal(signal.SIGTERM, stop)
    try: yield
    finally: signal.signal(signal.SIGTERM, old)

def run_many(specs: dict[str, RunSpec], store: Store | None = None, workers: int | None = None,
             device=None, progress: bool | None = None, runtime: Runtime | None = None) -> dict[str, pd.DataFrame]:
    """Complete every run of `specs` ({label: spec}) that the store lacks (in this process for one worker or one
    run, else in `run_pool`); a failed run raises its error. Returns the results by label."""
    store, runtime, workers = store or Store(), runtime or Runtime.from_env(), check_workers(workers)
    device = torch.device(device) if device is not None else default_device()
    missing = {k: s for k, s in specs.items() if not store.is_complete(s)}
    if missing: store.check_writable()     # one clear error before any training, not a traceback after it
    if device.type != "cpu": workers = 1   # one accelerator: runs go one after another
    if len(missing) == 1 or (missing and (workers or os.cpu_count() or 1) <= 1):
        for k, s in tqdm(missing.items(), desc="runs", disable=not _progress_enabled(progress)):
            run_imp(s, store, device, progress, label=k, runtime=runtime)
    elif missing:
        _, failed = run_pool(missing, store, workers, device, progress, runtime)
        if failed: raise next(iter(failed.values()))        # a failed run stops the caller with its error
    return {k: store.results(s) for k, s in specs.items()}


# %% [markdown]
# A smoke run on synthetic data, through the real store: three levels, densities 1 → 0.8 → 0.64, the rewind
# checkpoint kept, and a second call trains nothing (it returns the stored rows unchanged).

# %%
from dataclasses import replace
from pruning_repro.config import get_bench, PruneSpec
from pruning_repro.data import Data, DataInfo, TensorSplit

def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 16, generator=g); y = (x[:, 0, :4].sum(1) > 0).long()
    s = TensorSplit(x, y, torch.arange(n))
    return Data(s, s, s, y, torch.zeros(n, dtype=torch.bool), DataInfo(2, (1, 16), (0.,), (1.,)))

spec = get_bench("lenet_mnist", "smoke").run_spec(0.0, seed=0)
spec = replace(spec, prune=replace(spec.prune, levels=2))
with tempfile.TemporaryDirectory() as tmp:
    st = Store(tmp)
    res = run_imp(spec, st, "cpu", progress=False, data=toy_data())
    test_eq(res.level.tolist(), [0, 1, 2])
    assert abs(res.density.iloc[2] - 0.64) < 1e-3
    assert st.has_extra(spec, "rewind")
    mtime = (st.level_dir(spec, 2) / "metrics.json").stat().st_mtime_ns
    again = run_imp(spec, st, "cpu", progress=False, data=toy_data())
    test_eq((st.level_dir(spec, 2) / "metrics.json").stat().st_mtime_ns, mtime)
res[["level", "density", "train_err", "val_err", "epochs_total"]]

# %% [markdown]
# An IMP trajectory at a glance: a smoke run of `lenet_mnist1d` (generated data) pruned for 6 levels, each point a
# level. Its errors mean nothing at this size; the shape of the plot is what the sections draw for each bench.

# %%
import matplotlib.pyplot as plt
_spec = get_bench("lenet_mnist1d", "smoke").run_spec(0.3, seed=0)
_spec = replace(_spec, prune=replace(_spec.prune, levels=6))
with tempfile.TemporaryDirectory() as tmp:
    traj = run_imp(_spec, Store(tmp), "cpu", progress=False)
fig, ax = plt.subplots(figsize=(6, 2.8))
for col in ("train_err", "val_err", "test_err"): ax.plot(100 * traj.density, 100 * traj[col], "-o", ms=3, label=col)
ax.set_xscale("log"); ax.invert_xaxis(); ax.set_xlabel("% weights remaining"); ax.set_ylabel("error (%)")
ax.legend(fontsize=7); fig.tight_layout()
test_eq(traj.level.tolist(), list(range(7)))
