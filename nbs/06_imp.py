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

# %%
#| export
from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
import multiprocessing as mp

import pandas as pd
import torch
from tqdm import tqdm

from dataclasses import replace
from pathlib import Path

from pruning_repro.config import ConfigError, PruneSpec, RunSpec, check_spec, check_workers, derive_seed
from pruning_repro.data import load_data
from pruning_repro.distributed import RankFailed, World, launched_world
from pruning_repro.models import build_model
from pruning_repro.placement import check_fits, pin_worker, plan_slots, run_device, visible_gpus
from pruning_repro.prune import builtin_strategy, density, full_masks, prune_masks, strategy_scores
from pruning_repro.store import CorruptRun, Store, strict_json
from pruning_repro.train import Diverged, Runtime, _progress_enabled, eval_metrics, precision_flags, state_copy, train

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

def _locked(store: Store, spec: RunSpec, world: World):
    "The run's lock, held by rank 0 alone (the other ranks of a data-parallel run follow its decisions)."
    return store.lock(spec) if world.main else contextlib.nullcontext()

def run_imp(spec: RunSpec, store: Store | None = None, device=None, progress: bool | None = None,
            label: str = "", data=None, runtime: Runtime | None = None, world: World | None = None) -> pd.DataFrame:
    """Train the dense model and every pruning level of `spec` that the store lacks; return one row per level.
    `runtime` (how to train; default resolved from the environment here, once) goes down to every level. `world`:
    the ranks of a data-parallel run (`23_distributed`, each on its own device), None for this process alone."""
    store = store or Store()
    runtime = runtime or Runtime.from_env()
    if world is None: world = World(device=torch.device(device) if device is not None else default_device())
    device, label = world.device, str(label)   # label: a study's `RunKey`, or any label: stored in spec.json, in bars
    if world.main_value(lambda: store.is_complete(spec)): return store.results(spec)   # reading needs no lock
    check_spec(spec)            # an unknown name, a model it cannot build: one error, nothing written
    data = data if data is not None else load_data(spec.data, spec.seed, device)   # bad data: likewise, before writing
    check_data(data, spec.data.dataset)
    check_strategy(spec, data, device)          # a plugin heuristic's bad scores: one error before the dense level
    if world.main: store.init_run(spec, label)
    with _locked(store, spec, world):
        todo = world.main_value(lambda: _levels_todo(spec, store, data, device))
        bar = tqdm(todo, desc=label or spec.hash()[:8], disable=not (world.main and _progress_enabled(progress)))
        for level in bar:
            try: _run_level(spec, store, level, data, device, progress, runtime, world)
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

def _prune_context(spec: RunSpec, level: int, data) -> dict:
    "What a pruning heuristic is given: its generator, the data, and its settings (the spec's)."
    p = spec.prune
    return {"generator": _generator(spec, f"prune:{level}"), "data": data,
            "synflow_rounds": p.synflow_rounds, "snip_per_class": p.snip_per_class}

def check_strategy(spec: RunSpec, data, device) -> None:
    """A registered (plugin) pruning strategy scores the initial model once, checked (`prune.strategy_scores`), before
    the dense level trains: its first real use is at level 1, after the longest level of the run. The package's own
    heuristics are not re-checked."""
    if spec.prune.levels == 0 or builtin_strategy(spec.prune.strategy): return
    model = build_model(spec.model, data.info, spec.seed, spec.stream("init")).to(device)
    strategy_scores(model, full_masks(model), spec.prune.strategy, _prune_context(spec, 0, data))

def check_level(metrics: dict, per_example: dict, state: dict, data, where: str) -> dict:
    """A level's results before they are stored: every metric a finite number (the noisy partition's are undefined,
    stored as null, when no label is noisy), the per-example arrays and the weights finite; else `Diverged` and
    nothing is stored. Returns the metrics as they are stored."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            if k.startswith("noisy_") and not bool(data.noisy.any()): out[k] = None; continue
            raise Diverged(f"{where}: the evaluation gave {k} = {v} (non-finite outputs); nothing was stored")
        out[k] = v
    for what, tensors in (("per-example result", per_example), ("weight", state)):
        bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad: raise Diverged(f"{where}: the {what} {bad[0]!r} holds non-finite values; nothing was stored")
    strict_json(out)
    return out

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

def _share_level0(spec: RunSpec, store: Store, data, device, progress, runtime, world) -> None:
    "Level 0 of `spec` from its dense root: trained there once (under the root's lock), then copied, checksums and all."
    root = dense_root(spec)
    if world.main: store.init_run(root, "dense")
    with _locked(store, root, world):
        if not world.main_value(lambda: _root_trained(root, store)):
            if world.main: record_data(root, store, data)
            _run_level(root, store, 0, data, device, progress, runtime, world)
        if not world.main: return
        src, dst = store.level_dir(root, 0), store.level_dir(spec, 0)
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "per_example.safetensors", "metrics.json"):   # metrics.json last: it commits
            _copy_file(src / f, dst / f)
        for f in ("rewind.safetensors", "rewind.sha256"):
            _copy_file(store.run_dir(root) / f, store.run_dir(spec) / f)

def _parent(store: Store, spec: RunSpec, level: int) -> str:
    "The checksum of the weights `level` starts from (the previous level's; '' for the dense level)."
    return store.metrics(spec, level - 1)["sha256"]["model.safetensors"] if level > 0 else ""

def _level_start(spec: RunSpec, store: Store, level: int, model, data) -> dict | None:
    """Rank 0's decision of how `level` starts: from its in-level snapshot when one was taken from the same weights,
    else from the previous level's weights pruned by the spec's heuristic (and rewound, for weight rewinding); None
    when the previous level cannot be trusted (it is discarded, to be recomputed first)."""
    p = spec.prune
    try:
        parent = _parent(store, spec, level)
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

def _run_level(spec: RunSpec, store: Store, level: int, data, device, progress, runtime, world) -> None:
    t, p = spec.train, spec.prune
    if world.main: store.clean_partial(spec, level)     # a killed writer's temporary files
    if level == 0 and p.levels > 0 and dense_root(spec) != spec:      # a dense-only run needs no sharing
        return _share_level0(spec, store, data, device, progress, runtime, world)
    model = world.prepare(build_model(spec.model, data.info, spec.seed, spec.stream("init")).to(device))
    start = world.main_value(lambda: _level_start(spec, store, level, model, data))
    if start is None:                                   # the previous level cannot be trusted: recomputed first
        _run_level(spec, store, level - 1, data, device, progress, runtime, world)
        start = world.main_value(lambda: _level_start(spec, store, level, model, data))
        if start is None: raise CorruptRun(f"level {level - 1} of run {spec.hash()[:12]} ({store.run_dir(spec)}) "
                                           f"was recomputed but cannot be read back")
    resume = start.get("resume")
    masks = resume["masks"] if resume else start["masks"]
    state = resume["model"] if resume else start["state"]
    if state is not None: model.load_state_dict(state)
    snapshots = Snapshots(store, spec, level, runtime.checkpoint_min, masks) if world.main else None
    inner = False if progress is None else progress
    common = dict(progress=inner, desc=f"level {level}", runtime=runtime, world=world, resume=resume,
                  snapshots=snapshots)
    with PREEMPTION.training():
        if level == 0:
            r = train(model, data, t, generator=_generator(spec, "order:0"), checkpoint_epoch=p.rewind_epoch, **common)
        else:
            r = train(model, data, t, generator=_generator(spec, f"order:{level}"), start_epoch=p.rewind_epoch,
                      masks={k: v.to(device) for k, v in masks.items()}, **common)
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
# ## Resuming inside a level
#
# A level is the unit of storage, but not of resumption: ResNet-50 trains 90 epochs per level, more than most
# clusters let one job run. While a level trains, `Snapshots` asks after every step whether a snapshot is due —
# every `Runtime.checkpoint_min` minutes (`$PRUNING_REPRO_CHECKPOINT_MIN`, `--checkpoint-min`; default 30), or at
# once when a preemption is pending — and stores where the training stands (`Store.save_snapshot`): the weights,
# the optimizer's state, the data-order generator's state and the stream's position (so a snapshot may fall in the
# middle of an epoch), the rewind point once taken, the level's masks, and the checksum of the weights the level
# started from. A rerun starts the level from its snapshot when that checksum still matches, and the result is
# bit-identical on a CPU to a run that was never interrupted (`tests/test_distributed.py`). Only tensors and JSON
# are written: the optimizer's state is flattened into named tensors, nothing is pickled.
#
# **Preemption.** A Slurm job that reaches its time limit, or is preempted, receives `SIGUSR2` shortly before
# (`--signal`, submitit's `signal_delay_s`); submitit's handler then requeues the job. `PREEMPTION.install` (called
# in each Slurm job, `18_executors`) puts a handler in front of submitit's: while a level trains, the signal only
# marks a preemption as pending; the training loop takes a snapshot after the step in progress and then lets
# submitit requeue the job, so the requeued job loses nothing. Outside training (loading data, evaluating) the
# signal goes to submitit at once. A preempted job gets `SIGTERM` instead (Slurm sends `SIGUSR2` only at the time
# limit, unless the cluster sets `PreemptParameters=send_user_signal`), then `SIGKILL` after the partition's
# `GraceTime`: `PREEMPTION.install` stands in front of a handler for `SIGTERM` too (`18_executors.SlurmRun`), so
# the level in training snapshots after its step in progress before the job leaves.

# %%
#| export
def _flat(prefix: str, tensors: dict | None) -> dict:
    return {f"{prefix}.{k}": v for k, v in (tensors or {}).items()}

def _unflat(prefix: str, tensors: dict) -> dict:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

def pack_snapshot(state: dict, masks: dict) -> tuple[dict, dict]:
    "What `train` hands to `Snapshots.save`, as (named tensors, JSON-able meta); the optimizer's state flattened."
    opt = state["optimizer"]
    tensors = {**_flat("model", state["model"]), **_flat("rewind", state["rewind"]),
               **{f"mask.{k}": v.to(torch.uint8) for k, v in masks.items()}, "generator": state["generator"]}
    for pid, st in opt["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v): tensors[f"opt.{pid}.{name}"] = v
    stream = state["stream"]
    tensors |= _flat("plan", stream["plan"])
    meta = {"epoch": state["epoch"], "step": state["step"], "seconds": state["seconds"],
            "param_groups": opt["param_groups"], "has_rewind": state["rewind"] is not None,
            "has_plan": stream["plan"] is not None, "pos": stream["pos"], "taken": stream["taken"]}
    return tensors, meta

def unpack_snapshot(tensors: dict, meta: dict) -> dict:
    "The inverse of `pack_snapshot`: the `resume` state of `train`, with the level's masks."
    opt_state: dict = {}
    for k, v in _unflat("opt", tensors).items():
        pid, name = k.split(".", 1)
        opt_state.setdefault(int(pid), {})[name] = v
    return {"model": _unflat("model", tensors), "rewind": _unflat("rewind", tensors) if meta["has_rewind"] else None,
            "masks": {k: v.float() for k, v in _unflat("mask", tensors).items()}, "generator": tensors["generator"],
            "optimizer": {"state": opt_state, "param_groups": meta["param_groups"]},
            "epoch": meta["epoch"], "step": meta["step"], "seconds": meta["seconds"],
            "stream": {"plan": _unflat("plan", tensors) if meta["has_plan"] else None, "pos": meta["pos"],
                       "taken": meta["taken"]}}

class Snapshots:
    "When to snapshot a level's training (every `minutes`; at once when a preemption is pending) and where."
    def __init__(self, store: Store, spec: RunSpec, level: int, minutes: float | None, masks: dict):
        self.store, self.spec, self.level, self.minutes, self.masks = store, spec, level, minutes, masks
        self.parent, self.last, self.saved = _parent(store, spec, level), time.monotonic(), 0

    def due(self) -> bool:
        if PREEMPTION.pending is not None: return True
        return self.minutes is not None and time.monotonic() - self.last >= 60 * self.minutes

    def save(self, state: dict) -> None:
        tensors, meta = pack_snapshot(state, self.masks)
        self.store.save_snapshot(self.spec, self.level, tensors, {**meta, "parent": self.parent})
        self.last, self.saved = time.monotonic(), self.saved + 1
        PREEMPTION.act()                    # a pending preemption: hand over to the scheduler's handler now

class _Preemption:
    "A preemption signal received while a level trains waits for the next snapshot; otherwise it acts at once."
    def __init__(self): self.pending, self._training, self._handlers = None, 0, {}

    def install(self, signum: int, handler=None) -> None:
        """Stand in front of `handler` for `signum` (default: the current handler of `signum` — submitit's requeue,
        in a Slurm job): while a level trains the signal waits for the next snapshot, then `handler` runs."""
        import signal
        self._handlers[int(signum)] = signal.getsignal(signum) if handler is None else handler
        def on_signal(sig, frame):
            if self._training: self.pending = (sig, frame)
            else: self._call(sig, frame)
        signal.signal(signum, on_signal)

    def _call(self, sig, frame):
        h = self._handlers.get(int(sig))
        if callable(h): h(sig, frame)

    def act(self) -> None:
        if self.pending is not None:
            sig, frame = self.pending
            self.pending = None
            self._call(sig, frame)           # submitit: requeue the job, then exit

    @contextlib.contextmanager
    def training(self):
        self._training += 1
        try: yield
        finally:
            self._training -= 1
            if not self._training: self.act()   # the signal came after the last step: act now

PREEMPTION = _Preemption()


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
#
# On a machine with GPUs the same pool places its workers on them (`24_placement`): `runs_per_gpu` workers per
# visible GPU (`--runs-per-gpu`, default 1), each pinned to its GPU and to its share of the CPUs before CUDA starts,
# so a study's runs fill every GPU instead of piling onto `cuda:0`. Runs whose model prefers the CPU (LeNet) go to a
# pool of CPU workers unless a GPU is asked for. Sections, `reproduce` and `sweep --executor local` all use this one
# pool.

# %%
#| export
def run_job(spec_dict: dict, root: str, label, threads: int | None = None, device: str | None = None,
            runtime: Runtime | None = None) -> dict:
    """Train one run (every missing level) into the store at `root`, in this process; returns where and how long.
    Launched as several tasks (torchrun, or a Slurm job of `--tasks-per-node` × `--nodes`), the run is
    data-parallel over them (`23_distributed`)."""
    from pruning_repro.plugins import load_plugins
    load_plugins()                                      # a worker or Slurm job imports the plugins its parent named
    from pruning_repro import placement
    if placement.SLOT is not None:                      # a pool worker keeps its slot's share (`pin_worker`), not the
        threads = threads or placement.SLOT.threads     # whole allocation's SLURM_CPUS_PER_TASK: no oversubscription
    else: threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None
    if threads: torch.set_num_threads(threads)
    spec, st, t0 = RunSpec.from_dict(spec_dict), Store(root), time.time()
    before = len(st.levels_done(spec))
    with launched_world(device) as world:
        run_imp(spec, st, device=device, progress=False, label=label, runtime=runtime, world=world)
    return {"label": str(label), "host": socket.gethostname(), "job": os.environ.get("SLURM_JOB_ID"),
            "ranks": world.size if world else 1, "levels_trained": len(st.levels_done(spec)) - before,
            "seconds": round(time.time() - t0, 2)}

def pool_slots(specs: dict[str, RunSpec], workers: int | None = None, device=None,
               runs_per_gpu: int = 1) -> tuple[list, dict[str, str]]:
    """The workers a local pool starts for `specs` (`placement.plan_slots`) and each run's device as its worker sees
    it: with any run on CUDA, `runs_per_gpu` workers per visible GPU (each sees its GPU alone, as 'cuda'; the runs
    that prefer the CPU train on the CPU in them); otherwise one worker per core of the allocation (or `workers`).
    Refused (`placement.check_fits`) when a run's training step × `runs_per_gpu` would not fit in a GPU's memory."""
    gpus = visible_gpus()
    devices = {k: run_device(s, device, bool(gpus)) for k, s in specs.items()}
    cuda = sorted({d for d in devices.values() if d.startswith("cuda")})
    if cuda and not gpus: raise ConfigError(f"{cuda[0]} was asked for, but this machine shows no GPU")
    if any(d != "cuda" for d in cuda):                  # one GPU named: the pool uses that one alone
        idx = {int(d.split(":")[1]) for d in cuda}
        if len(idx) > 1 or max(idx) >= len(gpus):
            raise ConfigError(f"device {cuda[-1]} does not name one of the {len(gpus)} visible GPUs")
        gpus = [gpus[idx.pop()]]
    devices = {k: "cuda" if d.startswith("cuda") else d for k, d in devices.items()}
    slots = plan_slots(gpus if cuda else [], runs_per_gpu, None if cuda else workers)
    # a run whose step does not fit its GPU (ResNet-50 at batch 768): one error now, not one per run at its first step
    check_fits({k: s for k, s in specs.items() if devices[k] == "cuda"}, runs_per_gpu)
    return slots, devices

def run_pool(specs: dict[str, RunSpec], store: Store, workers: int | None = None, device=None,
             progress: bool | None = None, runtime: Runtime | None = None,
             job=None) -> tuple[list[dict], dict[str, BaseException]]:
    """The one local process pool (used by `run_many`, the sections and `sweep --executor local`): every run of
    `specs` in a spawned worker pinned to its slot (`pool_slots`: its GPU or its CPUs), as many at a time as there
    are slots. Progress counts finished levels, read from the store. Returns (`job` reports, {label: exception});
    `job` is `run_job` unless told (a test's stand-in)."""
    runtime = runtime or Runtime.from_env()          # resolved here, once, and given to every worker
    job = job or run_job
    slots, devices = pool_slots(specs, workers, device, runtime.runs_per_gpu)
    slots = slots[:len(specs)]
    total = sum(s.prune.levels + 1 for s in specs.values())
    done = lambda: sum(len(store.levels_done(s)) for s in specs.values())
    where = f"{len({s.gpu for s in slots})} GPUs" if slots[0].gpu is not None else "CPU"
    bar = tqdm(total=total, initial=done(), desc=f"levels of {len(specs)} runs ({len(slots)} workers, {where})",
               unit="level", disable=not _progress_enabled(progress))
    finished, failed = [], {}
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for s in slots: queue.put(s)
    ex = ProcessPoolExecutor(len(slots), mp_context=ctx, initializer=pin_worker, initargs=(queue,))
    with _terminating_on_sigterm():
        try:
            futs = {ex.submit(job, s.to_dict(), str(store.root), k, None, devices[k], runtime): k
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
            # in the store; a level a worker was writing resumes from its last snapshot (`Store.clean_partial`).
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
    """Complete every run of `specs` ({label: spec}) that the store lacks: in this process when there is one run or
    one slot, else in `run_pool`; a failed run raises its error. Returns the results by label."""
    store, runtime, workers = store or Store(), runtime or Runtime.from_env(), check_workers(workers)
    missing = {k: s for k, s in specs.items() if not store.is_complete(s)}
    for s in missing.values(): check_spec(s)   # every name known, every model buildable: before the first run trains
    if missing: store.check_writable()     # one clear error before any training, not a traceback after it
    if missing:
        slots, devices = pool_slots(missing, workers, device, runtime.runs_per_gpu)
        if len(missing) == 1 or len(slots) == 1:
            for k, s in tqdm(missing.items(), desc="runs", disable=not _progress_enabled(progress)):
                run_imp(s, store, run_device(s, device), progress, label=k, runtime=runtime)
        else:
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
