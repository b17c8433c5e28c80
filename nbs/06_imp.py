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
# # Iterative magnitude pruning with learning-rate rewinding
#
# > IMP (§2): train, remove 20% of the remaining weights, rewind the learning rate (or the weights too), repeat — one stored level at a time, resumable.

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
#
# A level stopped in the middle (a Slurm job at its time limit, or preempted) resumes from its in-level snapshot
# (`26_snapshots`); many runs at once go to the local process pool (`executors.run_many`, `18_executors`). This
# chapter is the algorithm alone: `run_imp` for a run, `train_level` for one of its levels.

# %%
#| export
from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import sys

import pandas as pd
import torch
from tqdm import tqdm

from collections.abc import Hashable
from dataclasses import replace
from pathlib import Path

from pruning_repro.config import ConfigError, PruneSpec, RunSpec, derive_seed
from pruning_repro.study import check_spec
from pruning_repro.data import load_data
from pruning_repro.distributed import RankFailed, World
from pruning_repro.models import build_model
from pruning_repro.placement import run_device
from pruning_repro.prune import (ScoringContext, builtin_strategy, density, full_masks, prune_masks, strategy_scores,
                                 strategy_settings)
from pruning_repro.snapshots import PREEMPTION, Snapshots, parent_checksum, unpack_snapshot
from pruning_repro.store import CorruptRun, Store, strict_json
from pruning_repro.forward import precision_flags
from pruning_repro.train import Diverged, Segment, eval_metrics, state_copy, train
from pruning_repro.runtime import Runtime

# %%
#| hide
import tempfile
from fastcore.test import test_eq
from pruning_repro.config import get_bench


# %%
#| export
def _generator(spec: RunSpec, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(spec.seed, spec.stream(purpose)))

def _locked(store: Store, spec: RunSpec, world: World):
    "The run's lock, held by rank 0 alone (the other ranks of a data-parallel run follow its decisions)."
    return store.lock(spec) if world.main else contextlib.nullcontext()

def run_imp(spec: RunSpec, store: Store | None = None, device=None, label: Hashable = "", data=None,
            runtime: Runtime | None = None, world: World | None = None) -> pd.DataFrame:
    """Train the dense model and every pruning level of `spec` that the store lacks; return one row per level.
    `runtime` (how to train, with a bar over the levels when its `progress` says so, and on which device when `device`
    is None; default `Runtime()`) goes down to every level. `world`: the ranks of a data-parallel run
    (`23_distributed`, each on its own device), None for this process alone; `data`: the run's data already loaded."""
    store = store or Store()
    runtime = runtime or Runtime()
    device = runtime.device if device is None else device
    if world is None: world = World(device=torch.device(run_device(spec, device)))   # the package's one device rule
    device, label = world.device, str(label)   # label: a study's `RunKey`, or any label: stored in spec.json, in bars
    if world.main_value(lambda: store.is_complete(spec)): return store.results(spec)   # reading needs no lock
    check_spec(spec)            # an unknown name, a model it cannot build: one error, nothing written
    data = data if data is not None else load_data(spec.data, spec.seed, device)   # bad data: likewise, before writing
    check_data(data, spec.data.dataset)
    check_strategy(spec, data, device)          # a plugin heuristic's bad scores: one error before the dense level
    if world.main: store.init_run(spec, label)
    with _locked(store, spec, world):
        todo = world.main_value(lambda: _levels_todo(spec, store, data, device))
        bar = tqdm(todo, desc=label or spec.hash()[:8], disable=not (world.main and runtime.progress))
        for level in bar:
            try: train_level(spec, store, level, data, runtime, world)
            except Diverged as e: raise Diverged(f"run {label or spec.hash()[:12]} ({store.run_dir(spec)}), {e}") from None
            except torch.distributed.DistError as e:        # a peer died inside a gradient all-reduce
                raise RankFailed(f"run {label or spec.hash()[:12]}, level {level}: a rank of this data-parallel run is "
                                 f"gone ({str(e)[:200]}); finished levels and the last in-level snapshot are stored: "
                                 f"rerun to resume") from None
            if world.main: bar.set_postfix(val_err=f"{store.metrics(spec, level)['val_err']:.3f}")
    world.barrier()
    return store.results(spec)

def _levels_todo(spec: RunSpec, store: Store, data, device) -> list[int]:
    """The levels to train: the first one whose weights or metrics are damaged or missing, and every later one (they
    depend on it). What can be recomputed without training is repaired here: a damaged per-example file of a whole
    level is re-evaluated from the level's weights; a damaged rewind point is copied again from the dense root
    (else level 0 is retrained); the data record is written again."""
    run = f"run {spec.hash()[:16]}"
    todo = store.levels_to_train(spec)
    if todo and (store.level_dir(spec, todo[0]) / "metrics.json").exists():      # stored once, now damaged
        _note(f"{run}, level {todo[0]}: {', '.join(sorted(store.damaged(spec, todo[0])))} damaged: recomputed, with "
              f"the {len(todo) - 1} level(s) after it")
    if todo: store.discard_level(spec, todo[0])
    if (not todo or todo[0] > 0) and not store.extra_ok(spec, "rewind"):
        if _recopy_rewind(spec, store): _note(f"{run}: rewind.safetensors damaged: copied again from its dense root")
        else:
            _note(f"{run}: rewind.safetensors damaged: the run is recomputed from its dense level")
            todo = list(range(spec.prune.levels + 1)); store.discard_level(spec, 0)
    for lv in range(todo[0] if todo else spec.prune.levels + 1):
        if "per_example.safetensors" in store.damaged(spec, lv):
            _note(f"{run}, level {lv}: per_example.safetensors damaged: re-evaluated from the level's weights")
            reevaluate_level(spec, store, lv, data, device)
    if store.has_extra(spec, "data") and not store.extra_ok(spec, "data"):
        _note(f"{run}: data.safetensors damaged: written again")
    record_data(spec, store, data)                      # (again, when its record was damaged or removed)
    return todo

def _note(msg: str) -> None:
    "Say on stderr what a run repairs (a damaged file met): the user learns of the damage, not only of its cure."
    print(f"note: {msg}", file=sys.stderr, flush=True)

def _recopy_rewind(spec: RunSpec, store: Store) -> bool:
    "Restore `spec`'s rewind point from its dense root when the root holds the same dense model; whether it did."
    root = dense_root(spec)
    if root == spec or not (store.level_ok(root, 0) and store.extra_ok(root, "rewind")): return False
    if store.metrics(root, 0)["sha256"] != store.metrics(spec, 0)["sha256"]: return False
    for f in ("rewind.safetensors", "rewind.sha256"): _copy_file(store.run_dir(root) / f, store.run_dir(spec) / f)
    return store.extra_ok(spec, "rewind")

def reevaluate_level(spec: RunSpec, store: Store, level: int, data, device) -> None:
    """Recompute the per-example file (and the evaluation metrics) of a stored level from its checksummed weights:
    the same evaluation the level ran when it was trained, so on one machine the same bytes."""
    state, _ = store.load_state(spec, level)
    model = build_model(spec.model, data.info, spec.seed, spec.stream("init")).to(device)
    model.load_state_dict(state)
    metrics, per_ex = eval_metrics(model, data)
    metrics = check_level(metrics, per_ex, {}, data, f"run {spec.hash()[:12]}, level {level} (re-evaluated)")
    store.save_per_example(spec, level, per_ex, metrics)

def check_data(data, name: str = "the data set") -> None:
    """One error before any training when a split is empty or holds non-finite inputs (its errors would be 0/0 and
    its losses NaN, stored as a finished level)."""
    for split in ("train", "val", "test"):
        s = getattr(data, split)
        if len(s) == 0: raise ConfigError(f"the {split} split of {name} is empty: nothing to train on or evaluate")
        x = getattr(s, "x", None)
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            n = int((~torch.isfinite(x)).flatten(1).any(1).sum())
            raise ConfigError(f"the {split} split of {name} has {n} example(s) with non-finite (NaN or inf) inputs")

def _prune_context(spec: RunSpec, level: int, data) -> ScoringContext:
    "What a pruning heuristic is given: the level's generator, the data, and its strategy's settings (the spec's)."
    return ScoringContext(_generator(spec, f"prune:{level}"), data, strategy_settings(spec.prune))

def check_strategy(spec: RunSpec, data, device) -> None:
    """A registered (plugin) pruning strategy scores the initial model once, checked (`prune.strategy_scores`), before
    the dense level trains: its first real use is at level 1, after the longest level of the run. The package's own
    heuristics are not re-checked."""
    if spec.prune.levels == 0 or builtin_strategy(spec.prune.strategy): return
    model = build_model(spec.model, data.info, spec.seed, spec.stream("init")).to(device)
    strategy_scores(model, full_masks(model), spec.prune.strategy, _prune_context(spec, 0, data))

def _empty_partition(metric: str, data) -> bool:
    """Whether `metric` averages over an empty part of the training set: `noisy_*` when no label is noisy,
    `original_*` when every one is (App. E's dense subset of a memorizing model can hold noisy examples only)."""
    if metric.startswith("noisy_"): return not bool(data.noisy.any())
    if metric.startswith("original_"): return bool(data.noisy.all())
    return False

def check_level(metrics: dict, per_example: dict, state: dict, data, where: str) -> dict:
    """A level's results before they are stored: every metric a finite number (a partition's metrics are undefined,
    stored as null, when the partition is empty: `_empty_partition`), the per-example arrays and the weights finite;
    else `Diverged` and nothing is stored. Returns the metrics as they are stored."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            if _empty_partition(k, data): out[k] = None; continue
            raise Diverged(f"{where}: the evaluation gave {k} = {v} (non-finite outputs); nothing was stored")
        out[k] = v
    for what, tensors in (("per-example result", per_example), ("weight", state)):
        bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad: raise Diverged(f"{where}: the {what} {bad[0]!r} holds non-finite values; nothing was stored")
    strict_json(out)
    return out


# %%
from types import SimpleNamespace
from fastcore.test import test_fail
_nan = float("nan")
_m = {"test_err": 0.5, "noisy_loss": 0.1, "original_loss": _nan, "noisy_err": 0.0, "original_err": _nan}
_all_noisy = SimpleNamespace(noisy=torch.ones(5, dtype=torch.bool))     # a dense subset of memorized examples only
test_eq(check_level(_m, {}, {}, _all_noisy, "demo")["original_loss"], None)
test_fail(lambda: check_level(_m, {}, {}, SimpleNamespace(noisy=torch.tensor([True, False])), "demo"),
          contains="original_loss = nan")                                # both parts present: NaN is a divergence
test_fail(lambda: check_level({**_m, "test_err": _nan}, {}, {}, _all_noisy, "demo"), contains="test_err = nan")


# %%
#| export
def record_data(spec: RunSpec, store: Store, data) -> None:
    "Store, once per run, what the analyses need of its data: noisy mask, clean and used labels, example ids."
    if not store.extra_ok(spec, "data"):
        store.save_extra(spec, "data", {"noisy": data.noisy.to(torch.uint8), "clean_y": data.clean_y,
                                        "train_y": data.train.y.cpu(), "train_ids": data.train.ids})

def dense_root(spec: RunSpec) -> RunSpec:
    """The run whose level 0 `spec` shares. Level 0 (dense training to the end, with the rewind checkpoint) depends
    on the data, model, training, seed, replica and rewind epoch only — not on how later levels prune — so every
    learning algorithm (weight / LR rewinding, SynFlow, SNIP, random, EDT, one-shot) at one (noise, seed) shares it.
    Its pruning part is the dense default of every field the spec's stored form holds: a field a spec stored before
    it lacks, its root lacks too, so both keep the hashes they were stored under."""
    d, dense = spec.to_dict(), PruneSpec(levels=0, rewind_epoch=spec.prune.rewind_epoch)
    d["prune"] = {k: getattr(dense, k) for k in d["prune"]}
    return RunSpec.from_dict(d)

def _copy_file(src: Path, dst: Path) -> None:
    "Copy under a temporary name, then rename; a failed copy (a full disk) leaves no temporary behind."
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try: shutil.copyfile(src, tmp); os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True); raise

def _root_trained(root: RunSpec, store: Store) -> bool:
    "Whether the dense root's level 0 and rewind point are stored whole (copied into every variant: verified first)."
    if store.level_ok(root, 0) and store.extra_ok(root, "rewind"): return True
    store.discard_level(root, 0)
    return False

def _share_level0(spec: RunSpec, store: Store, data, runtime, world) -> None:
    "Level 0 of `spec` from its dense root: trained there once (under the root's lock), then copied, checksums and all."
    root = dense_root(spec)
    if world.main: store.init_run(root, "dense")
    with _locked(store, root, world):
        if not world.main_value(lambda: _root_trained(root, store)):
            if world.main: record_data(root, store, data)
            train_level(root, store, 0, data, runtime, world)
        if not world.main: return
        src, dst = store.level_dir(root, 0), store.level_dir(spec, 0)
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "per_example.safetensors", "metrics.json"):   # metrics.json last: it commits
            _copy_file(src / f, dst / f)
        for f in ("rewind.safetensors", "rewind.sha256"):
            _copy_file(store.run_dir(root) / f, store.run_dir(spec) / f)

def _level_start(spec: RunSpec, store: Store, level: int, model, data) -> dict | None:
    """Rank 0's decision of how `level` starts: from its in-level snapshot when one was taken from the same weights,
    else from the previous level's weights pruned by the spec's heuristic (and rewound, for weight rewinding); None
    when the previous level cannot be trusted (it is discarded, to be recomputed first)."""
    p = spec.prune
    try:
        parent = parent_checksum(store, spec, level)
        snap = store.load_snapshot(spec, level)
        if snap is not None and snap[1].get("parent") == parent: return {"resume": unpack_snapshot(*snap)}
        store.discard_snapshot(spec, level)             # none, damaged, or taken from other weights
        if level == 0: return {"state": None, "masks": full_masks(model)}
        state, prev_masks = store.load_state(spec, level - 1)
    except CorruptRun:
        store.discard_level(spec, level - 1); return None
    model.load_state_dict(state)
    masks = prune_masks(model, prev_masks, p.fraction, p.strategy, _prune_context(spec, level, data))
    if p.rewind == "weight": state = store.load_extra(spec, "rewind")
    return {"state": state, "masks": masks}

def train_level(spec: RunSpec, store: Store, level: int, data, runtime, world) -> None:
    """Train `level` of `spec` into the store, in this process (every rank of `world`): from its in-level snapshot
    (`26_snapshots`) when one matches, else from the previous level pruned (and rewound), the level before first
    when that one cannot be trusted; the level's results are checked, then stored by rank 0. `run_imp` calls it for
    each missing level; the benchmarks (`bench/`) time it directly. It trains on `world`'s device."""
    t, p, device = spec.train, spec.prune, world.device
    if world.main: store.clean_partial(spec, level)     # a killed writer's temporary files
    if level == 0 and p.levels > 0 and dense_root(spec) != spec:      # a dense-only run needs no sharing
        return _share_level0(spec, store, data, runtime, world)
    model = world.prepare(build_model(spec.model, data.info, spec.seed, spec.stream("init")).to(device))
    start = world.main_value(lambda: _level_start(spec, store, level, model, data))
    if start is None:                                   # the previous level cannot be trusted: recomputed first
        train_level(spec, store, level - 1, data, runtime, world)
        start = world.main_value(lambda: _level_start(spec, store, level, model, data))
        if start is None: raise CorruptRun(f"level {level - 1} of run {spec.hash()[:12]} ({store.run_dir(spec)}) "
                                           f"was recomputed but cannot be read back")
    resume = start.get("resume")
    masks = resume["masks"] if resume else start["masks"]
    state = resume["model"] if resume else start["state"]
    if state is not None: model.load_state_dict(state)
    snapshots = Snapshots(store, spec, level, runtime.checkpoint_min, masks) if world.main else None
    if level == 0: seg = Segment(_generator(spec, "order:0"), checkpoint_epoch=p.rewind_epoch)
    else: seg = Segment(_generator(spec, f"order:{level}"), p.rewind_epoch, {k: v.to(device) for k, v in masks.items()})
    seg = replace(seg, resume=resume, name=f"level {level}")
    with PREEMPTION.training():      # no bar per epoch: `run_imp`'s bar counts the levels
        r = train(model, data, t, seg, replace(runtime, progress=False), world, snapshots)
    with precision_flags(t.precision, device):       # evaluated in the precision it trained in (TF32 or not)
        metrics, per_ex = eval_metrics(model, data, world=world)     # each rank its part; every rank the whole arrays
    state = state_copy(model)
    metrics = check_level(metrics, per_ex, state, data, f"level {level}")   # every rank: the same arrays, one verdict
    if not world.main: return
    if level == 0: store.save_extra(spec, "rewind", r["checkpoint"])
    epochs_total = t.epochs if level == 0 else store.metrics(spec, level - 1)["epochs_total"] + t.epochs - p.rewind_epoch
    who = {"host": socket.gethostname(), "pid": os.getpid(), "ranks": world.size}
    if resume: who["resumed_at_step"] = resume["step"]
    metrics.update(density=density(masks), train_seconds=r["seconds"], epochs=r["epochs"], steps=r["steps"],
                   epochs_total=epochs_total, written_by=who,
                   numerics=r["numerics"])              # device, versions, precision, TF32 flags, compiled or not
    store.save_level(spec, level, metrics, per_ex, state, masks)


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
    run_imp(_a, _st, device="cpu", runtime=Runtime(progress=False)); run_imp(_e, _st, device="cpu", runtime=Runtime(progress=False))
    test_eq(_st.metrics(_a, 0)["test_err"], _st.metrics(_e, 0)["test_err"])
    test_eq(_st.metrics(_a, 0)["written_by"], _st.metrics(_e, 0)["written_by"])   # trained once
    assert all(torch.equal(x, y) for x, y in zip(_st.load_state(_a, 0)[0].values(), _st.load_state(_e, 0)[0].values()))
    assert _st.metrics(_e, 1)["epochs_total"] == 2 * _b.train.epochs

# %% [markdown]
# A smoke run on synthetic data, through the real store: three levels, densities 1 → 0.8 → 0.64, the rewind
# checkpoint kept, and a second call trains nothing (it returns the stored rows unchanged).

# %%
from dataclasses import replace
from pruning_repro.config import get_bench, PruneSpec
from pruning_repro.data import Data, DataInfo
from pruning_repro.tensors import TensorSplit

def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 16, generator=g); y = (x[:, 0, :4].sum(1) > 0).long()
    s = TensorSplit(x, y, torch.arange(n))
    return Data(s, s, s, y, torch.zeros(n, dtype=torch.bool), DataInfo(2, (1, 16), (0.,), (1.,)))

spec = get_bench("lenet_mnist", "smoke").run_spec(0.0, seed=0)
spec = replace(spec, prune=replace(spec.prune, levels=2))
with tempfile.TemporaryDirectory() as tmp:
    st = Store(tmp)
    res = run_imp(spec, st, "cpu", runtime=Runtime(progress=False), data=toy_data())
    test_eq(res.level.tolist(), [0, 1, 2])
    assert abs(res.density.iloc[2] - 0.64) < 1e-3
    assert st.has_extra(spec, "rewind")
    mtime = (st.level_dir(spec, 2) / "metrics.json").stat().st_mtime_ns
    again = run_imp(spec, st, "cpu", runtime=Runtime(progress=False), data=toy_data())
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
    traj = run_imp(_spec, Store(tmp), "cpu", runtime=Runtime(progress=False))
fig, ax = plt.subplots(figsize=(6, 2.8))
for col in ("train_err", "val_err", "test_err"): ax.plot(100 * traj.density, 100 * traj[col], "-o", ms=3, label=col)
ax.set_xscale("log"); ax.invert_xaxis(); ax.set_xlabel("% weights remaining"); ax.set_ylabel("error (%)")
ax.legend(fontsize=7); fig.tight_layout()
test_eq(traj.level.tolist(), list(range(7)))
