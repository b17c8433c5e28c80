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
# # Placing runs on a machine's GPUs and cores
#
# > Where each run trains, and how the local process pool spreads its workers over the GPUs and CPUs a machine (or a job's allocation) has.

# %%
#| default_exp placement

# %% [markdown]
# A study is hundreds of independent runs. On a CPU the package's pool (`18_executors.run_pool`) runs one process per
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
    """The device asked for (`Runtime.device`, resolved at the edge from `--device` or `$PRUNING_REPRO_DEVICE`), or
    None: '' and 'auto' count as not asked."""
    return None if device in (None, "", "auto") else str(device)

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
# ## Memory: a run that does not fit on one GPU is refused before it starts
#
# A ResNet-50 step at the bench's batch of 768 in fp32 needs about 90 GB of GPU memory, more than an 80 GB A100/H100:
# a pool that places ImageNet runs one per GPU would see each die at its first step, hours into a sweep. So before a
# pool starts (`18_executors.pool_slots`) or `imp` trains on a GPU, `check_fits` estimates one training step of each run
# and refuses a placement whose estimate × `runs_per_gpu` exceeds the GPU's memory, with one error naming the
# data-parallel command (each of N ranks then holds batch / N examples).
#
# The estimate (`train_step_bytes`), per model, batch and precision:
#
# * **parameters, gradients, optimizer state, masks**: 4 + 4 + (4 for SGD's momentum, 8 for Adam's two moments)
#   + 4 (a float mask per weight, an upper bound: not every weight is prunable) bytes per parameter, + 2 under bf16
#   autocast (the weights' bf16 copies);
# * **activations**: what autograd keeps for backward, *counted*, not guessed — one forward pass of the architecture
#   on the `meta` device (no memory, no arithmetic) with `saved_tensors_hooks` sums the bytes of every tensor saved
#   for backward, each storage once and the parameters left out (`forward_memory`; half the difference between
#   batches of 4 and 2, so per-batch constants drop out). Plus twice the largest saved tensor: the gradients flowing back through
#   the widest layer while its saved input is still alive. Halved under bf16 (2-byte activations);
# * **× 1.25 and + 1 GiB**: the caching allocator's rounding and fragmentation and cuDNN's workspaces over what is
#   counted (measured overheads of 10–30% are usual), and the CUDA context of the process.
#
# Counted this way ResNet-50 at 224² saves 86 MB per example for backward in fp32 (a sum of every module's output
# would say 105 MB: ReLUs work in place and pooling saves indices), so batch 768 comes to ≈ 91 GB, the issue's
# "about 90 GB"; it is refused on an 80 GiB GPU and fits an H200's 141 GB. ResNet-20 at batch 128 needs under
# 2 GB. The resident data of the small benches (CIFAR-10: 150 MB as bytes) is left out.

# %%
#| export
GiB = 2 ** 30
MEMORY_MARGIN = 1.25            # the allocator's rounding/fragmentation and cuDNN workspaces over what is counted
CONTEXT_BYTES = 1 * GiB         # a process's CUDA context and libraries

def forward_memory(model, x) -> dict:
    """One forward pass of `model` (in its current mode) on `x`, on any device (the meta device costs nothing):
    `saved`, the bytes autograd keeps for backward (each storage once, parameters' and buffers' left out), `largest`
    the largest such tensor, and `layer`, the largest input + output of a leaf module (what an inference pass holds)."""
    import torch
    own = {t.untyped_storage()._cdata for t in (*model.parameters(), *model.buffers())}
    saved, layer = {}, 0
    def pack(t):
        st = t.untyped_storage()
        if st._cdata not in own: saved[st._cdata] = st.nbytes()
        return t
    def size(v): return v.numel() * v.element_size() if isinstance(v, torch.Tensor) else 0
    def hook(m, inp, out):
        nonlocal layer
        layer = max(layer, sum(map(size, inp)) + (size(out) if isinstance(out, torch.Tensor) else sum(map(size, out))))
    hs = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t): model(x)
        else: model(x)
    finally:
        for h in hs: h.remove()
    return {"saved": sum(saved.values()), "largest": max(saved.values(), default=0), "layer": layer}

_PER_EXAMPLE: dict = {}

def saved_per_example(model_spec, info) -> tuple[int, int]:
    """fp32 bytes one example adds to what a training step of `model_spec` keeps for backward, and its largest saved
    tensor (`forward_memory` of the architecture on the meta device, batch 4 minus batch 2, halved)."""
    key = (model_spec, info)
    if key not in _PER_EXAMPLE:
        import torch
        from pruning_repro.models import meta_model
        m = meta_model(model_spec, info).train()
        dev = next(m.parameters(), torch.empty(0, device="meta")).device      # a factory that cannot build on meta: CPU
        two, four = (forward_memory(m, torch.zeros(n, *info.input_shape, device=dev)) for n in (2, 4))
        _PER_EXAMPLE[key] = ((four["saved"] - two["saved"]) // 2, (four["largest"] - two["largest"]) // 2)
    return _PER_EXAMPLE[key]

def train_step_bytes(spec, ranks: int = 1) -> int:
    """Estimated peak GPU memory (bytes) of one training step of run `spec` on each of `ranks` data-parallel ranks
    (each holding batch / ranks examples): see above."""
    from pruning_repro.data import data_info
    from pruning_repro.models import meta_model
    info, t = data_info(spec.data.dataset), spec.train
    params = sum(p.numel() for p in meta_model(spec.model, info).parameters())
    bf16 = t.precision == "bf16"
    state = 8 if t.optimizer == "adam" else (4 if t.momentum else 0)
    static = params * (4 + 4 + state + 4 + (2 if bf16 else 0))
    saved, largest = saved_per_example(spec.model, info)
    batch = -(-t.batch_size // ranks)
    act = batch * (saved + 2 * largest) * (0.5 if bf16 else 1.0)
    return int((static + act) * MEMORY_MARGIN + CONTEXT_BYTES)

def gpu_memory() -> int | None:
    "The total memory (bytes) of the smallest GPU this process sees; None without CUDA."
    import torch
    if not torch.cuda.is_available(): return None
    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))

def _bench_of(label) -> str:
    return getattr(label, "bench", None) or "<bench>"

def check_fits(specs: dict, runs_per_gpu: int = 1, memory: int | None = None, ranks: int = 1) -> None:
    """Refuse (one `ConfigError`) to place runs `specs` ({label: RunSpec}, those that train on a GPU), `runs_per_gpu`
    at once on each GPU, when the largest `train_step_bytes` × `runs_per_gpu` exceeds `memory` (default:
    `gpu_memory()`; no GPU to ask: no check). The error names the data-parallel commands that fit."""
    memory = gpu_memory() if memory is None else memory
    if not specs or not memory: return
    label, spec = max(specs.items(), key=lambda kv: train_step_bytes(kv[1], ranks))
    one = train_step_bytes(spec, ranks)
    if one * runs_per_gpu <= memory: return
    t, b = spec.train, _bench_of(label)
    what = (f"one training step of {spec.model.arch} at batch {t.batch_size}"
            + (f" over {ranks} ranks" if ranks > 1 else "") + f" ({t.precision}) needs about {one / GiB:.0f} GiB of GPU memory")
    if one <= memory:
        raise ConfigError(f"{what}: {runs_per_gpu} runs per GPU need {one * runs_per_gpu / GiB:.0f} GiB, more than "
                          f"the {memory / GiB:.0f} GiB of this machine's GPUs; use --runs-per-gpu {memory // one}")
    n = next((n for n in (2, 4, 8, 16, 32, 64) if train_step_bytes(spec, n) <= memory), 64)
    raise ConfigError(f"{what}, more than the {memory / GiB:.0f} GiB of this machine's GPUs ({label}): train it "
                      f"data-parallel over {n} GPUs, one run at a time — `torchrun --standalone --nproc-per-node {n} "
                      f"-m pruning_repro.cli imp --bench {b} --noise {spec.data.noise:g} --seed "
                      f"{spec.seed} --device cuda` — or as Slurm jobs of {n} ranks: `pruning-repro sweep --bench {b} "
                      f"--executor slurm --tasks-per-node {n} --gpus-per-task 1`")


# %% [markdown]
# ResNet-50/ImageNet at the bench's batch of 768 in fp32 (≈ 91 GB) is refused on an 80 GiB GPU, with the
# data-parallel command; it fits a (fake) 1 TiB one, and over 8 ranks (96 examples each) an 80 GiB one; ResNet-20
# fits an 80 GiB GPU four runs at a time.

# %%
_r20 = get_bench("resnet20_c10").run_spec()
assert 85e9 < train_step_bytes(r50) < 100e9, train_step_bytes(r50)
assert train_step_bytes(get_bench("resnet50_imagenet", precision="bf16").run_spec()) < 0.6 * train_step_bytes(r50)
test_fail(lambda: check_fits({"r50": r50}, memory=80 * GiB), contains="torchrun --standalone --nproc-per-node 2")
check_fits({"r50": r50}, memory=2 ** 40); check_fits({"r50": r50}, memory=80 * GiB, ranks=8)
check_fits({"r20": _r20}, 4, memory=80 * GiB)
test_fail(lambda: check_fits({"r20": _r20}, 100, memory=80 * GiB), contains="use --runs-per-gpu")
assert train_step_bytes(_r20) < 2e9

# %% [markdown]
# ## Pinning a worker

# %%
#| export
SLOT: Slot | None = None      # this worker's slot, once pinned

# what a launcher tells its ranks (torchrun's, and an srun step's): a pool worker inherits them from the process that
# started the pool, but is never a rank of that world (`23_distributed.launcher_env`)
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_LOCALID")

def leave_launcher(environ=None) -> None:
    "Remove from `environ` (default: this process's) every variable that would make it a rank of a launcher's world."
    e = os.environ if environ is None else environ
    for k in [k for k in e if k in LAUNCHER_VARS or k.startswith("SLURM_STEP_")]: del e[k]

def pin_worker(slots) -> None:
    """A pool worker's initializer: take a slot from the queue `slots` and pin this process to it — its GPU made the
    only visible one (none for a CPU slot), its CPUs, its threads — before anything starts CUDA. The worker also
    leaves any launcher's world it inherited (`leave_launcher`): run inside an `srun` step, it trains alone."""
    global SLOT
    slot = slots.get()
    leave_launcher()
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
# A worker started inside a task of `srun -n 4` (or under torchrun) inherits its launcher's variables; left there, it
# would join that world as a fifth "rank". Pinned, it keeps the job's identity and drops the world's:

# %%
_e = {"SLURM_JOB_ID": "9", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2",
      "RANK": "2", "WORLD_SIZE": "4", "MASTER_PORT": "29500", "SLURM_CPUS_PER_TASK": "8"}
leave_launcher(_e)
test_eq(_e, {"SLURM_JOB_ID": "9", "SLURM_NTASKS": "4", "SLURM_CPUS_PER_TASK": "8"})

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
