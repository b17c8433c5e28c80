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
# # In-level snapshots and preemption
#
# > A level that is stopped in the middle (a Slurm job at its time limit, or preempted) resumes from its last snapshot, bit-identical to a level that was never stopped.

# %%
#| default_exp snapshots

# %% [markdown]
# A level is the unit of storage (`09_store`), but not of resumption: ResNet-50 trains 90 epochs per level (§2's
# schedule for ImageNet), more than most clusters let one job run. A Slurm job that reaches its time limit is
# signalled shortly before it is killed, and submitit requeues it; the requeued job must not lose the hours the level
# had trained. This chapter holds the two pieces that make that work, apart from the IMP algorithm (`06_imp`), which
# only uses them:
#
# * **`Snapshots`**: while a level trains, when to store where the training stands (every few minutes, or at once),
#   as named tensors and JSON (`pack_snapshot`), and how a rerun starts from it (`unpack_snapshot`);
# * **`PREEMPTION`**: the handler that stands in front of the scheduler's for the preemption signal. The signal
#   cannot act at once — the step in progress would be lost, and a snapshot taken in the middle of a step would hold
#   half-updated weights — so while a level trains it is only marked pending; the training loop takes a snapshot after
#   the step in progress, and then the scheduler's handler (submitit's requeue) runs.
#
# A rerun starts the level from its snapshot when the snapshot was taken from the same starting weights, and the
# result is bit-identical on a CPU to a run that was never interrupted (`tests/test_distributed.py`).

# %%
#| export
from __future__ import annotations

import contextlib
import time

import torch

from pruning_repro.config import RunSpec
from pruning_repro.store import Store

# %%
#| hide
import json
import signal
import tempfile
from fastcore.test import test_eq
from pruning_repro.config import get_bench


# %% [markdown]
# ## Resuming inside a level
#
# While a level trains, `Snapshots` asks after every step whether a snapshot is due —
# every `Runtime.checkpoint_min` minutes (`$PRUNING_REPRO_CHECKPOINT_MIN`, `--checkpoint-min`; default 30), or at
# once when a preemption is pending — and stores where the training stands (`Store.save_snapshot`): the weights,
# the optimizer's state, the data-order generator's state and the stream's position (so a snapshot may fall in the
# middle of an epoch), the rewind point once taken, the level's masks, and the checksum of the weights the level
# started from. A rerun starts the level from its snapshot when that checksum still matches, and the result is
# bit-identical on a CPU to a run that was never interrupted (`tests/test_distributed.py`). Only tensors and JSON
# are written: the optimizer's state is flattened into named tensors, nothing is pickled.

# %%
#| export
def _flat(prefix: str, tensors: dict | None) -> dict:
    return {f"{prefix}.{k}": v for k, v in (tensors or {}).items()}

def _unflat(prefix: str, tensors: dict) -> dict:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


# %%
test_eq(_unflat("a", {**_flat("a", {"w": 1, "b.c": 2}), **_flat("ab", {"x": 3})}), {"w": 1, "b.c": 2})


# %%
#| export
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


# %% [markdown]
# A state as `train` hands it over, after one step of SGD with momentum (the optimizer's state is a tensor per
# parameter): every tensor gets a name, and the meta is plain JSON.

# %%
_m = torch.nn.Linear(3, 2)
_opt = torch.optim.SGD(_m.parameters(), lr=0.1, momentum=0.9)
_m(torch.randn(4, 3)).sum().backward(); _opt.step()
_masks = {"weight": torch.ones(2, 3)}
_state = {"model": _m.state_dict(), "rewind": None, "optimizer": _opt.state_dict(),
          "generator": torch.Generator().manual_seed(1).get_state(), "epoch": 1, "step": 5, "seconds": 0.5,
          "stream": {"plan": None, "pos": 3, "taken": 1}}
_tensors, _meta = pack_snapshot(_state, _masks)
test_eq(sorted(_tensors), ["generator", "mask.weight", "model.bias", "model.weight", "opt.0.momentum_buffer",
                           "opt.1.momentum_buffer"])
test_eq(json.loads(json.dumps(_meta))["step"], 5)


# %%
#| export
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


# %%
_back = unpack_snapshot(_tensors, _meta)
_opt2 = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
_opt2.load_state_dict(_back["optimizer"])                   # the optimizer takes the state back as it was
assert all(torch.equal(a, b) for a, b in zip(_back["model"].values(), _state["model"].values()))
assert torch.equal(_opt2.state_dict()["state"][0]["momentum_buffer"], _opt.state_dict()["state"][0]["momentum_buffer"])
test_eq((_back["masks"]["weight"].dtype, _back["rewind"], _back["stream"]), (torch.float32, None, _state["stream"]))


# %% [markdown]
# A snapshot belongs to the weights its level started from: the checksum of the previous level's weights ('' for the
# dense level). A snapshot taken from other weights (the previous level was recomputed since) is discarded.

# %%
#| export
def parent_checksum(store: Store, spec: RunSpec, level: int) -> str:
    "The checksum of the weights `level` starts from (the previous level's; '' for the dense level)."
    return store.metrics(spec, level - 1)["sha256"]["model.safetensors"] if level > 0 else ""


# %%
_spec = get_bench("lenet_mnist1d", "smoke").run_spec(0.0, 0)
test_eq(parent_checksum(Store(tempfile.mkdtemp()), _spec, 0), "")


# %% [markdown]
# ## Preemption
#
# A Slurm job that reaches its time limit, or is preempted, receives `SIGUSR2` shortly before
# (`--signal`, submitit's `signal_delay_s`); submitit's handler then requeues the job. `PREEMPTION.install` (called
# in each Slurm job, `27_slurm`) puts a handler in front of submitit's: while a level trains, the signal only
# marks a preemption as pending; the training loop takes a snapshot after the step in progress and then lets
# submitit requeue the job, so the requeued job loses nothing. Outside training (loading data, evaluating) the
# signal goes to submitit at once. A preempted job gets `SIGTERM` instead (Slurm sends `SIGUSR2` only at the time
# limit, unless the cluster sets `PreemptParameters=send_user_signal`), then `SIGKILL` after the partition's
# `GraceTime`: `PREEMPTION.install` stands in front of a handler for `SIGTERM` too (`27_slurm.SlurmRun`), so
# the level in training snapshots after its step in progress before the job leaves.

# %%
#| export
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
# A signal during training waits (here for the end of training, where no snapshot came first); outside training it
# acts at once. (A preemption of its own, not the process-wide `PREEMPTION`, and the signal's handler put back.)

# %%
_p, _got, _old = _Preemption(), [], signal.getsignal(signal.SIGUSR1)
try:
    _p.install(signal.SIGUSR1, lambda s, f: _got.append(s))
    with _p.training():
        signal.raise_signal(signal.SIGUSR1)
        test_eq((_got, _p.pending is not None), ([], True))     # pending: the step in progress goes on
    test_eq((_got, _p.pending), ([signal.SIGUSR1], None))         # handed over when training ended
    signal.raise_signal(signal.SIGUSR1)
    test_eq(len(_got), 2)                                          # outside training: at once
finally: signal.signal(signal.SIGUSR1, _old)


# %%
#| export
class Snapshots:
    "When to snapshot a level's training (every `minutes`; at once when a preemption is pending) and where."
    def __init__(self, store: Store, spec: RunSpec, level: int, minutes: float | None, masks: dict):
        self.store, self.spec, self.level, self.minutes, self.masks = store, spec, level, minutes, masks
        self.parent, self.last, self.saved = parent_checksum(store, spec, level), time.monotonic(), 0

    def due(self) -> bool:
        if PREEMPTION.pending is not None: return True
        return self.minutes is not None and time.monotonic() - self.last >= 60 * self.minutes

    def save(self, state: dict) -> None:
        tensors, meta = pack_snapshot(state, self.masks)
        self.store.save_snapshot(self.spec, self.level, tensors, {**meta, "parent": self.parent})
        self.last, self.saved = time.monotonic(), self.saved + 1
        PREEMPTION.act()                    # a pending preemption: hand over to the scheduler's handler now


# %% [markdown]
# Never due without an interval (`None`), always due at 0 minutes; a saved snapshot is read back with the checksum of
# the weights its level started from, and unpacks to the state it was given.

# %%
_st = Store(tempfile.mkdtemp())
test_eq((Snapshots(_st, _spec, 0, None, _masks).due(), Snapshots(_st, _spec, 0, 0, _masks).due()), (False, True))
_snaps = Snapshots(_st, _spec, 0, 0, _masks)
_snaps.save(_state)
test_eq((_st.snapshot_levels(_spec), _snaps.saved, _st.load_snapshot(_spec, 0)[1]["parent"]), ([0], 1, ""))
assert torch.equal(unpack_snapshot(*_st.load_snapshot(_spec, 0))["model"]["weight"], _state["model"]["weight"])
