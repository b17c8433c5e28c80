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
# # Placing runs on a machine's GPUs and cores
#
# > Where each run trains, and how the local process pool spreads its workers over the GPUs and CPUs a machine
# > (or a job's allocation) has.

# %%
#| default_exp placement

# %% [markdown]
# A study is hundreds of independent runs. On a CPU the package's pool (`06_imp.run_pool`) runs one process per
# core. On a GPU node the same rule would start dozens of processes, each with a CUDA context and its own resident
# copy of the data on GPU 0 — out of memory, with the other GPUs idle. Placement decides three things:
#
# 1. **the device of a run** (`run_device`): what the user asked for (`--device`, `$PRUNING_REPRO_DEVICE`), else a
#    GPU when the machine has one and the model gains from it (`models.prefers_gpu`), else the CPU. LeNet-300-100
#    stays on the CPU unless a GPU is asked for: its steps are too small for a GPU;
# 2. **the workers' slots** (`plan_slots`): with GPUs, `runs_per_gpu` workers per visible GPU, handed out
#    round-robin so that a few runs spread over all GPUs first; without, one worker per core (or `workers`). The
#    CPUs of this process's allocation (`os.sched_getaffinity`: what Slurm or `taskset` gave it, not the node's
#    cores) are split between the workers, contiguous and disjoint;
# 3. **pinning before CUDA starts** (`pin_worker`): a worker takes its slot from a queue as its first act and sets
#    `CUDA_VISIBLE_DEVICES` to its one GPU (an empty list for a CPU worker), its CPU affinity and its thread count,
#    before anything in it touches CUDA. Every worker then sees its GPU as `cuda:0`, and the data loaders size their
#    processes by the CPUs it was given. This module imports nothing heavy at the top, so that nothing can start
#    CUDA before the slot is taken.

# %%
#| export
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from pruning_repro.config import ConfigError

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## The device of a run

# %%
#| export
def requested_device(device=None) -> str | None:
    "The device asked for: `device`, else `$PRUNING_REPRO_DEVICE`, else None ('auto' counts as not asked)."
    d = device if device is not None else os.environ.get("PRUNING_REPRO_DEVICE")
    return None if d in (None, "", "auto") else str(d)

def run_device(spec, device=None, gpus: bool | None = None) -> str:
    """Where run `spec` trains: the device asked for; else 'cuda' when GPUs are visible (`gpus`, default: asked of
    torch) and the model prefers a GPU; else 'cpu'."""
    asked = requested_device(device)
    if asked is not None:
        import torch
        try: return str(torch.device(asked))
        except RuntimeError: raise ConfigError(f"unknown device {asked!r}; use cpu, cuda or cuda:<index>") from None
    from pruning_repro.data import data_info
    from pruning_repro.models import prefers_gpu
    if gpus is None: gpus = bool(visible_gpus())
    return "cuda" if gpus and prefers_gpu(spec.model, data_info(spec.data.dataset)) else "cpu"

def visible_gpus(environ=None, count: int | None = None) -> list[str]:
    """The GPUs this process may use, named as `CUDA_VISIBLE_DEVICES` names them (indices or UUIDs); without the
    variable, `count` (default: torch's device count) of them."""
    e = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in e:
        return [g.strip() for g in e["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and not g.strip().startswith("-")]
    if count is None:
        import torch
        count = torch.cuda.device_count()
    return [str(i) for i in range(count)]


# %%
from pruning_repro.config import get_bench
lenet, r50 = get_bench("lenet_mnist").run_spec(), get_bench("resnet50_imagenet").run_spec()
test_eq([run_device(lenet, gpus=True), run_device(r50, gpus=True), run_device(r50, gpus=False)], ["cpu", "cuda", "cpu"])
test_eq(run_device(lenet, "cuda", gpus=True), "cuda")         # a GPU asked for: LeNet goes there too
test_eq(visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}), ["2", "3"])
test_eq(visible_gpus({"CUDA_VISIBLE_DEVICES": ""}), [])
test_eq(visible_gpus({}, count=4), ["0", "1", "2", "3"])


# %% [markdown]
# ## Slots

# %%
#| export
@dataclass(frozen=True)
class Slot:
    "One worker's share of the machine: its GPU (as `CUDA_VISIBLE_DEVICES` names it; None: none), CPUs and threads."
    gpu: str | None
    cpus: tuple
    threads: int

def allocated_cpus() -> list[int]:
    "The CPUs this process may run on (its affinity: a Slurm job's allocation, a `taskset`, a pool worker's share)."
    try: return sorted(os.sched_getaffinity(0))
    except AttributeError: return list(range(os.cpu_count() or 1))     # no affinity on this OS

def plan_slots(gpus: list[str], runs_per_gpu: int = 1, workers: int | None = None,
               cpus: list[int] | None = None) -> list[Slot]:
    """The workers of a local pool: `runs_per_gpu` per GPU of `gpus` (round-robin: worker i on GPU i mod n), or,
    without GPUs, `workers` (default one per CPU); the CPUs split between them, contiguous and disjoint while there
    are enough (shared round-robin when there are more workers than CPUs)."""
    cpus = list(cpus if cpus is not None else allocated_cpus())
    if isinstance(runs_per_gpu, bool) or not isinstance(runs_per_gpu, int) or runs_per_gpu < 1:
        raise ConfigError(f"runs per GPU must be an integer >= 1, got {runs_per_gpu!r}")
    n = len(gpus) * runs_per_gpu if gpus else (workers or len(cpus))
    shares = [cpus[i * len(cpus) // n:(i + 1) * len(cpus) // n] or [cpus[i % len(cpus)]] for i in range(n)]
    return [Slot(gpus[i % len(gpus)] if gpus else None, tuple(c), len(c)) for i, c in enumerate(shares)]


# %%
# 4 GPUs (faked), 2 runs on each, 16 CPUs: 8 workers, the first 4 on 4 different GPUs, 2 CPUs each
s = plan_slots(["0", "1", "2", "3"], 2, cpus=list(range(16)))
test_eq([x.gpu for x in s], ["0", "1", "2", "3"] * 2)
test_eq([x.cpus for x in s[:2]], [(0, 1), (2, 3)]); test_eq({x.threads for x in s}, {2})
test_eq(len(set(c for x in s for c in x.cpus)), 16)                     # disjoint, all used
# no GPU: one worker per CPU of the allocation (here 3 of them), or as many as asked
test_eq(plan_slots([], cpus=[4, 5, 6]), [Slot(None, (4,), 1), Slot(None, (5,), 1), Slot(None, (6,), 1)])
test_eq(plan_slots([], workers=2, cpus=[0, 1, 2, 3]), [Slot(None, (0, 1), 2), Slot(None, (2, 3), 2)])
test_eq(len(plan_slots(["0"], 3, cpus=[0, 1])), 3)                      # more workers than CPUs: shared
test_fail(lambda: plan_slots(["0"], 0), contains="runs per GPU")

# %% [markdown]
# ## Pinning a worker

# %%
#| export
SLOT: Slot | None = None      # this worker's slot, once pinned

def pin_worker(slots) -> None:
    """A pool worker's initializer: take a slot from the queue `slots` and pin this process to it — its GPU made the
    only visible one (none for a CPU slot), its CPUs, its threads — before anything starts CUDA."""
    global SLOT
    slot = slots.get()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError("CUDA was started in this worker before it was pinned to its GPU")
    os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu if slot.gpu is not None else ""
    try: os.sched_setaffinity(0, slot.cpus)
    except (AttributeError, OSError): pass          # no affinity on this OS, or CPUs outside our cgroup
    import torch
    torch.set_num_threads(slot.threads)
    SLOT = slot

def worker_view() -> dict:
    "What this process was given: visible GPUs, CPUs, threads, and whether CUDA has started (a pool worker's report)."
    import torch
    return {"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "cpus": allocated_cpus(),
            "threads": torch.get_num_threads(), "cuda_started": torch.cuda.is_initialized(), "pid": os.getpid()}


# %% [markdown]
# A real pool of two spawned workers (in a separate process, as a sweep starts it) on a machine faked to show GPU 7:

# %%
import json, subprocess, sys, textwrap
script = textwrap.dedent("""
    import json, multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from pruning_repro.placement import allocated_cpus, pin_worker, plan_slots, worker_view
    if __name__ == "__main__":
        ctx = mp.get_context("spawn")
        q, slots = ctx.Queue(), plan_slots(["7"], 2, cpus=allocated_cpus())
        for slot in slots: q.put(slot)
        with ProcessPoolExecutor(2, mp_context=ctx, initializer=pin_worker, initargs=(q,)) as ex:
            seen = [f.result() for f in [ex.submit(worker_view) for _ in range(4)]]
        print(json.dumps({"slots": [list(s.cpus) for s in slots], "seen": seen}))
""")
r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
assert r.returncode == 0, r.stderr[-2000:]
out = json.loads(r.stdout)
test_eq({s["gpus"] for s in out["seen"]}, {"7"})    # GPU 7 of the (faked) machine: the only one the workers see
assert not any(s["cuda_started"] for s in out["seen"])              # and CUDA not started by the pinning
assert all(s["cpus"] in out["slots"] for s in out["seen"])          # each worker on its own CPUs
out["seen"]
