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
# # Executors: training a study locally or on a Slurm cluster
#
# > `sweep` trains every run a study lacks, in the package's one local process pool (here) or as a Slurm job array (`27_slurm`); the study itself (which runs, two stages) is `14_sweep`'s.

# %%
#| default_exp executors

# %% [markdown]
# A study (`sweep.study_runs`, and the retrainings its results name: `sweep.train_study`) says *what* to train; this
# chapter says *where*: `sweep(..., executor="local" | "slurm")` hands every missing run to an executor — the one
# local process pool of the package (`run_pool`, below) or a Slurm job array (`27_slurm`) — and reports what finished
# and what failed.

# %%
#| export
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import socket
import time
from collections.abc import Hashable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd
import torch
from tqdm import tqdm

from fastcore.basics import patch

from pruning_repro.config import ConfigError, RunSpec
from pruning_repro.study import Study, check_spec
from pruning_repro.placement import check_fits, pin_worker, plan_slots, run_device, visible_gpus
from pruning_repro.store import Store
from pruning_repro.sweep import SECTION_AFTER, SECTIONS, train_study
from pruning_repro.runtime import Platform, Runtime, platform

if TYPE_CHECKING: from pruning_repro.slurm import SlurmOptions     # slurm imports this module

# %%
#| hide
import signal
import tempfile
from pathlib import Path
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Engines
#
# **local**: a process pool of `workers` processes (default: one per core, each with `cores // workers` threads —
# on this 2-core machine two 1-thread LeNet runs deliver 0.54 s of wall per epoch against 0.76 s for one 2-thread
# run, `bench/results/latest-cpu.md`). Processes are spawned, not forked, so no worker inherits a parent's threads.
#
# **slurm**: one submitit job array per sweep, one array element per run, each running `run_job` on its node:
# `27_slurm` (its resources, profiles, time limits and preemption).

# %%
#| export
EXECUTORS = ("local", "slurm")


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

# %% [markdown]
# ### One job
#
# `run_job` is what a worker executes, in a local process or on a Slurm node: it trains one run into the store (a
# no-op when it is complete) and reports where it ran.

# %%
#| export
def run_job(spec_dict: dict, root: str, label, threads: int | None = None, device: str | None = None,
            runtime: Runtime | None = None, platform: Platform | None = None) -> dict:
    """Train one run (every missing level) into the store at `root`, in this process, with `platform` (its parent's
    folders and loaders, given as a value; None: this process's) installed — a job's entry is an edge; returns where
    and how long. Launched as several tasks (torchrun, or a Slurm job of `--tasks-per-node` × `--nodes`), the run is
    data-parallel over them (`23_distributed`)."""
    from pruning_repro.distributed import launched_world
    from pruning_repro.runtime import platform as installed, using
    from pruning_repro.imp import run_imp               # imported when a run trains: the CLI starts without it
    from pruning_repro.plugins import load_plugins
    load_plugins()                                      # a worker or Slurm job imports the plugins its parent named
    from pruning_repro import placement
    if placement.SLOT is not None:                      # a pool worker keeps its slot's share (`pin_worker`), not the
        threads = threads or placement.SLOT.threads     # whole allocation's SLURM_CPUS_PER_TASK: no oversubscription
    else: threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None
    if threads: torch.set_num_threads(threads)
    spec, st, t0 = RunSpec.from_dict(spec_dict), Store(root), time.time()
    before = len(st.levels_done(spec))
    with using(platform or installed()), launched_world(device) as world:
        run_imp(spec, st, device, label, runtime=replace(runtime or Runtime(), progress=False), world=world)
    return {"label": str(label), "host": socket.gethostname(), "job": os.environ.get("SLURM_JOB_ID"),
            "ranks": world.size if world else 1, "levels_trained": len(st.levels_done(spec)) - before,
            "seconds": round(time.time() - t0, 2)}


# %%
from pruning_repro.config import get_bench
_tmp = Path(tempfile.mkdtemp())
_spec = get_bench("lenet_mnist1d", "smoke").run_spec(0.0, 0)
_r = run_job(_spec.to_dict(), str(_tmp / "one"), "one", device="cpu")
test_eq((_r["label"], _r["ranks"], _r["levels_trained"]), ("one", 1, _spec.prune.levels + 1))
test_eq(run_job(_spec.to_dict(), str(_tmp / "one"), "one", device="cpu")["levels_trained"], 0)   # complete: a no-op


# %% [markdown]
# ### The pool
#
# `pool_slots` says which workers the pool starts and where each run trains (`24_placement`); `run_pool` runs them;
# `run_many` is what the sections and the notebooks call.

# %%
#| export
def pool_slots(specs: dict[Hashable, RunSpec], workers: int | None = None, device=None,
               runs_per_gpu: int = 1) -> tuple[list, dict[Hashable, str]]:
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


# %%
# LeNet runs (they prefer the CPU, GPUs or not) go to CPU workers: as many as asked (default: one per core)
_slots, _devs = pool_slots({"a": _spec, "b": _spec}, workers=2)
test_eq((len(_slots), {s.gpu for s in _slots}, _devs), (2, {None}, {"a": "cpu", "b": "cpu"}))


# %%
#| export
def _levels_bar(specs: dict, store: Store, slots: list, progress: bool):
    "A bar over the levels of `specs`, counted from the store (finished levels), and the count it is updated to."
    total = sum(s.prune.levels + 1 for s in specs.values())
    done = lambda: sum(len(store.levels_done(s)) for s in specs.values())
    where = f"{len({s.gpu for s in slots})} GPUs" if slots[0].gpu is not None else "CPU"
    bar = tqdm(total=total, initial=done(), desc=f"levels of {len(specs)} runs ({len(slots)} workers, {where})",
               unit="level", disable=not progress)
    return bar, done

def _kill(ex: ProcessPoolExecutor) -> None:
    """Stop a pool now: its workers must not outlive it (Ctrl-C, SIGTERM, a failure). Finished levels are in the store;
    a level a worker was writing resumes from its last snapshot (`Store.clean_partial`)."""
    for proc in list((getattr(ex, "_processes", None) or {}).values()): proc.terminate()
    ex.shutdown(wait=True, cancel_futures=True)


# %%
#| export
def run_pool(specs: dict[Hashable, RunSpec], store: Store, runtime: Runtime | None = None,
             job=None) -> tuple[list[dict], dict[Hashable, BaseException]]:
    """The one local process pool (used by `run_many`, the sections and `sweep --executor local`): every run of
    `specs` in a spawned worker pinned to its slot (`pool_slots` for `runtime`'s workers, device and runs per GPU:
    its GPU or its CPUs), as many at a time as there are slots; `runtime` goes to every worker. Progress counts
    finished levels, read from the store. Returns (`job` reports, {key: exception}); `job` is `run_job` unless told
    (a test's stand-in)."""
    runtime, job = runtime or Runtime(), job or run_job
    slots, devices = pool_slots(specs, runtime.workers, runtime.device, runtime.runs_per_gpu)
    slots = slots[:len(specs)]
    bar, done = _levels_bar(specs, store, slots, runtime.progress)
    finished, failed = [], {}
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for s in slots: queue.put(s)
    ex = ProcessPoolExecutor(len(slots), mp_context=ctx, initializer=pin_worker, initargs=(queue,))
    with terminating_on_sigterm():
        try:
            futs = {ex.submit(job, s.to_dict(), str(store.root), k, None, devices[k], runtime, platform()): k
                    for k, s in specs.items()}
            pending = set(futs)
            while pending:
                ready, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                for f in ready:
                    try: finished.append(f.result())
                    except Exception as e: failed[futs[f]] = e
                bar.update(done() - bar.n)
        except BaseException:                           # interrupted (Ctrl-C, SIGTERM) or failing
            _kill(ex)
            raise
        finally: bar.close()
    ex.shutdown(wait=True)
    return finished, failed


# %% [markdown]
# `run_pool` spawns processes (each imports torch anew): the local sweep at the end of this chapter runs it with two
# workers, and `tests/test_distributed.py` and `tests/test_gpu_plan.py` check where it puts each run. It stops its
# workers when interrupted, on Ctrl-C or on `SIGTERM` (`terminating_on_sigterm`):

# %%
#| export
@contextlib.contextmanager
def terminating_on_sigterm():
    "Within: SIGTERM raises `SystemExit` in the main thread (so the pool's cleanup runs), as Ctrl-C does."
    import signal, threading
    if threading.current_thread() is not threading.main_thread(): yield; return
    def stop(signum, frame): raise SystemExit(128 + signum)
    old = signal.signal(signal.SIGTERM, stop)
    try: yield
    finally: signal.signal(signal.SIGTERM, old)


# %%
_old = signal.getsignal(signal.SIGTERM)
with terminating_on_sigterm():
    try: signal.raise_signal(signal.SIGTERM); _code = None
    except SystemExit as e: _code = e.code
test_eq((_code, signal.getsignal(signal.SIGTERM)), (128 + signal.SIGTERM, _old))


# %%
#| export
def run_many(specs: dict[Hashable, RunSpec], store: Store | None = None, workers: int | None = None,
             device=None, progress: bool | None = None, runtime: Runtime | None = None) -> dict[Hashable, pd.DataFrame]:
    """Complete every run of `specs` ({key: spec}: a study's `RunKey`s, or any hashable labels) that the store lacks,
    as `runtime` says (default `Runtime()`; `workers`, `device` and `progress`, when given, over its own): in this process when
    there is one run or one slot, else in `run_pool`; a failed run raises its error. Returns the results by key."""
    from pruning_repro.imp import run_imp
    given = {k: v for k, v in (("workers", workers), ("device", device), ("progress", progress)) if v is not None}
    store, runtime = store or Store(), replace(runtime or Runtime(), **given)     # validated by `Runtime`
    missing = {k: s for k, s in specs.items() if not store.is_complete(s)}
    for s in missing.values(): check_spec(s)   # every name known, every model buildable: before the first run trains
    if missing: store.check_writable()     # one clear error before any training, not a traceback after it
    if missing:
        slots, devices = pool_slots(missing, runtime.workers, runtime.device, runtime.runs_per_gpu)
        if len(missing) == 1 or len(slots) == 1:
            for k, s in tqdm(missing.items(), desc="runs", disable=not runtime.progress):
                run_imp(s, store, run_device(s, runtime.device), k, runtime=runtime)
        else:
            _, failed = run_pool(missing, store, runtime)
            if failed: raise next(iter(failed.values()))        # a failed run stops the caller with its error
    return {k: store.results(s) for k, s in specs.items()}


# %% [markdown]
# With one worker everything trains in this process: here one run that the store already holds and one it lacks.

# %%
_two = {"n0": _spec, "n3": get_bench("lenet_mnist1d", "smoke").run_spec(0.3, 0)}
_out = run_many(_two, Store(_tmp / "one"), workers=1, device="cpu", progress=False)   # "n0": the store has it
test_eq({k: v.level.tolist() for k, v in _out.items()}, {k: list(range(s.prune.levels + 1)) for k, s in _two.items()})


# %% [markdown]
# ### The sweep

# %%
#| export
@dataclass
class SweepReport:
    "What a sweep found, submitted and got back."
    executor: str
    runs: int                                   # runs in the study
    complete_before: int                        # already in the store: not submitted
    submitted: int
    finished: list = field(default_factory=list)   # run_job reports
    failed: dict = field(default_factory=dict)     # run key -> reason (and log)
    job_ids: list = field(default_factory=list)
    pending_stage: list = field(default_factory=list)  # sections whose retrainings wait for their first stage
    cost: dict | None = None                    # a dry run: what the missing runs would train (`plan.study_plan`)
    arrays: list = field(default_factory=list)  # Slurm: the size of each job array (split under MaxArraySize)

    @property
    def ok(self) -> bool: return not self.failed


# %%
#| export
@patch
def summary(self: SweepReport) -> str:
    "One line of what the sweep found, submitted and got back (and a dry run's cost plan below it)."
    hosts = sorted({r["host"] for r in self.finished})
    s = (f"{self.runs} runs in the study, {self.complete_before} already complete, {self.submitted} submitted "
         f"({self.executor}), {len(self.finished)} finished" + (f" on {', '.join(hosts)}" if hosts else ""))
    if self.arrays: s += f"; {len(self.arrays)} job array(s) of {', '.join(map(str, self.arrays))}"
    if self.cost is not None:
        c = self.cost
        flops = "an unknown number of FLOPs (a data set declares no sizes)" if c["flops"] is None else \
            f"{c['flops']:.3g} FLOPs (dense)"
        s += (f"; dry run: {c['runs']} runs would train {c['levels']} levels, {c['epochs']} epochs, {flops}")
    if self.pending_stage: s += (f"; the retrainings of {', '.join(self.pending_stage)} are named once their "
                                 f"first-stage runs are complete (run the sweep again)"
                                 + ("; the dry run counts them from the sections' rules" if self.cost else ""))
    if self.failed: s += f", {len(self.failed)} FAILED: " + "; ".join(f"{k}: {v}" for k, v in self.failed.items())
    if self.cost is not None and "sections" in self.cost:
        from pruning_repro.plan import plan_text
        s += "\n" + plan_text(self.cost)
    return s


# %%
_r = SweepReport("local", runs=5, complete_before=2, submitted=3, finished=[{"host": "n1"}, {"host": "n1"}],
                 failed={"k": "diverged"})
test_eq(_r.summary(), "5 runs in the study, 2 already complete, 3 submitted (local), 2 finished on n1, 1 FAILED: k: diverged")
test_eq((_r.ok, SweepReport("local", 1, 1, 0).ok), (False, True))


# %%
#| export
def sweep(study: Study, runtime: Runtime | None = None, executor: str = "local", slurm: SlurmOptions | None = None,
          dry_run: bool = False, throughput=None) -> SweepReport:
    """Train every run of `study` (bench × sections × seeds × noise levels, at its precision) that its store lacks,
    as `runtime` says (default `Runtime()`). A dry run reads no data: it counts what would be trained, the App. D/E/K
    retrainings included, per section, with hours from `throughput` (a results file, or 'probe':
    `plan.study_plan`) and, on Slurm, the arrays."""
    from pruning_repro.data import check_available
    from pruning_repro.plan import study_plan
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    runtime, (b, seeds, _) = runtime or Runtime(), study.resolved()
    sections, device = study.sections or SECTIONS, runtime.device
    if executor == "slurm":                             # (the Slurm executor, `27_slurm`, imports submitit)
        from pruning_repro.slurm import SlurmOptions, array_sizes, max_array_size, slurm_device, sweep_slurm
        slurm = slurm or SlurmOptions()
    if not dry_run: check_available(b.data)
    st, given = Store(study.store), study.noise_levels
    rep, wanted = SweepReport(executor, 0, 0, 0), []
    def execute(todo):
        wanted.append(len(todo))
        if executor == "slurm":                         # no GPU asked of Slurm for GPU runs: an error, not a surprise
            dev = slurm_device(todo, device, slurm)
            rep.arrays += array_sizes(len(todo), max_array_size())
        if dry_run: return
        st.check_writable()                                # before the first run, not after it failed
        rep.submitted += len(todo)
        if executor == "local": _sweep_local(todo, st, rep, runtime)
        else: sweep_slurm(todo, st, rep, slurm, dev, runtime)
    first, after = train_study(b, sections, seeds, given, st, execute)
    rep.runs = len(first) + len({v.hash() for v in (after or {}).values()})     # each spec once
    rep.complete_before = rep.runs - sum(wanted)
    if after is None: rep.pending_stage = [s for s in sections if s in SECTION_AFTER]
    if dry_run:                                 # the whole plan: what is missing, and the retrainings it implies
        rep.cost = study_plan(b, sections, seeds, given, st, throughput, device)
        if executor == "slurm" and after is None:
            rep.arrays += array_sizes(rep.cost["retrainings"]["runs"], max_array_size())
    return rep


# %%
#| export
def _sweep_local(missing: dict, st, rep: SweepReport, runtime) -> None:
    "The local executor: `run_pool`, the one process pool of the package (on the machine's GPUs, if it has any)."
    finished, failed = run_pool(missing, st, runtime)
    rep.finished += finished
    rep.failed.update({k: f"{type(e).__name__}: {e}" for k, e in failed.items()})


# %% [markdown]
# A local sweep of the smoke study: every run is trained once, and a second sweep finds nothing to do.

# %%
_study = Study("lenet_mnist1d", "smoke", seeds=(0,), store=_tmp / "store", sections=["sec3_training"])
_quiet = Runtime(progress=False, workers=2)
# the package's `sweep`: a spawned worker unpickles `run_job` from the package (it cannot import this notebook's)
from pruning_repro import executors as _E
_rep = _E.sweep(_study, _quiet)
test_eq((_rep.runs, _rep.complete_before, _rep.submitted, len(_rep.finished), _rep.ok), (3, 0, 3, 3, True))
_again = sweep(_study, _quiet)
test_eq((_again.complete_before, _again.submitted), (3, 0))
test_fail(lambda: sweep(Study("lenet_mnist1d"), executor="kubernetes"), contains="unknown executor 'kubernetes'")
# a dry run reads no data (there is no ImageNet here) and counts the first stage of the study
# (one IMP trajectory of 90 + 9 x 80 epochs and its 10 EL2N models of 20 epochs)
_dry = sweep(Study("resnet50_imagenet", seeds=(0,), noise_levels=[0.15], store=_tmp / "dry", sections=["sec4_noise"]),
             dry_run=True)
test_eq((_dry.submitted, _dry.cost["runs"], _dry.cost["epochs"]), (0, 1 + 10, 90 + 9 * 80 + 10 * 20))
print(_rep.summary())
