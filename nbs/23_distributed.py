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
# # Data-parallel runs
#
# > One run on several devices with `torch.distributed`: the global batch of Table 1 split over the ranks, BatchNorm over the global batch, rank 0 the only writer of the store.

# %%
#| default_exp distributed

# %% [markdown]
# ResNet-50 on ImageNet trains with a batch of 768 for 90 epochs (Table 1); its activations at that batch do not fit
# one GPU, and a trajectory of 10 levels is about 900 epochs. The paper ran on TPU pods; OpenLTH, its substrate,
# wraps models in `DistributedDataParallel`. Here one run can span several processes — the **ranks** of a
# **world** — each on its own device:
#
# * **the world comes from the launcher.** `torchrun` sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and
#   `MASTER_PORT`; a Slurm job of several tasks (started by `pruning-repro sweep --executor slurm --tasks-per-node
#   N`, or by `srun` in a script of yours) has `SLURM_PROCID`, `SLURM_NTASKS` and its node list, from which submitit
#   derives the same. `init_world` reads either and joins the process group (NCCL on GPUs, gloo on CPUs);
# * **the batch is split, the stream is not.** Every rank draws the same per-epoch permutation from the same
#   generator as one process would, and takes its contiguous part of each global batch (`tensors.shard_bounds`); the
#   augmentation draws are the whole batch's, so every example is augmented as in one process. Each rank's loss is
#   its examples' summed cross-entropy × world ÷ global batch, and `DistributedDataParallel` averages the gradients
#   over the ranks: the step is the gradient of the mean loss over the global batch, whatever the split, the last,
#   uneven batch of an epoch included;
# * **BatchNorm is synchronized** (`GlobalBatchNorm`; PyTorch's `SyncBatchNorm` on NCCL): in training its mean and variance are those of the whole
#   global batch. Why not per replica, the default of `DistributedDataParallel` and of TPU training? Because the
#   run store is addressed by the recipe: a result must not depend on how many devices computed it. With
#   per-replica statistics, a ResNet-50 trained on 8 GPUs normalises over 96 examples and on 4 over 192 — two
#   different models under one hash. Globally synchronized statistics make a data-parallel run compute the function
#   of the single-process run of the same spec (up to the order of floating-point sums), so the two are
#   interchangeable in the store, and `tests/test_distributed.py` checks exactly that for ResNet-20. The cost is two
#   small all-reductions (2 × channels numbers) per BatchNorm layer in the forward pass and two in the backward;
#   running statistics come from the global batch and are the same on every rank;
# * **masks are rank 0's.** Rank 0 alone reads the store, prunes, and sends the level's starting weights and masks
#   to every rank, so the masks are identical everywhere by construction;
# * **evaluation is sharded and gathered.** Each rank evaluates a contiguous part of every split; the per-example
#   losses are gathered in order;
# * **rank 0 alone writes** (levels, in-level snapshots, the data record, the lock). A rank that dies breaks the
#   process group: the other ranks' next collective fails, the run stops with `RankFailed`, and what was stored —
#   finished levels and the last in-level snapshot — is where the rerun resumes.

# %%
#| export
from __future__ import annotations

import contextlib
import datetime
import gc
import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from pruning_repro.config import ConfigError
from pruning_repro.runtime import platform

# %%
#| hide
import subprocess, sys, tempfile, textwrap
from pathlib import Path
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## The world
#
# `World` is what a run knows of its ranks. The default, `World()`, is one process alone: every collective is the
# identity, so the single-process code path is the data-parallel one with a world of one.

# %%
#| export
class RankFailed(RuntimeError):
    "A rank of a data-parallel run died or stopped answering: the run stops; what the store holds is kept."

def _gone(e: BaseException) -> RankFailed:
    "The `RankFailed` a peer's death becomes (a closed connection, a backend error, a timed-out collective)."
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
    return RankFailed(f"a rank of this data-parallel run is gone ({type(e).__name__}: {first}); the run stops here "
                      f"— finished levels and the last in-level snapshot are stored: rerun to resume")

_PEER_SIGNS = ("gloo", "nccl", "connection reset", "connection closed", "broken pipe", "timed out", "socket timeout",
               "distbackenderror")

def peer_gone(e: BaseException) -> bool:
    "Whether `e`, raised in a data-parallel run, says a peer is gone (DDP's gradient reduction, a BatchNorm sum...)."
    if isinstance(e, (ConnectionError, getattr(dist, "DistError", ConnectionError))): return True
    return isinstance(e, RuntimeError) and any(w in str(e).lower() for w in _PEER_SIGNS)

def _collective(fn, *args, **kw):
    "Run a collective; a peer that is gone becomes one `RankFailed` naming what to do."
    try: return fn(*args, **kw)
    except RankFailed: raise
    except (RuntimeError, ConnectionError) as e:       # DistBackendError is a RuntimeError
        raise _gone(e) from None

@dataclass
class World:
    "The ranks of one run: this process is `rank` of `size` (`local_rank` on its node) and computes on `device`."
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool: return self.rank == 0
    @property
    def distributed(self) -> bool: return self.size > 1
    @property
    def shard(self) -> tuple[int, int] | None:
        "`(rank, size)` for `split.iterate(shard=...)`, None alone."
        return (self.rank, self.size) if self.distributed else None
    @property
    def _comm(self) -> torch.device:
        "Where collectives' tensors live: the GPU for NCCL, the CPU for gloo."
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def broadcast(self, obj=None):
        "Rank 0's `obj` on every rank (pickled over the process group; nothing is written)."
        if not self.distributed: return obj
        buf = [obj if self.main else None]
        _collective(dist.broadcast_object_list, buf, src=0, device=self._comm)
        return buf[0]

    def main_value(self, fn):
        """`fn()` computed by rank 0 alone and given to every rank: decisions about the store are rank 0's. If it
        raises, every rank raises (rank 0 its error, the others `RankFailed` naming it), none waits forever."""
        if not self.distributed: return fn()
        out, err = None, None
        if self.main:
            try: out = fn()
            except BaseException as e: err = e
        msg = self.broadcast(("err", f"{type(err).__name__}: {err}") if err is not None else ("ok", out))
        if err is not None: raise err
        if msg[0] == "err": raise RankFailed(f"rank 0 failed: {msg[1]}")
        return msg[1]

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        "The sum of `t` over the ranks (a new tensor on `t`'s device)."
        if not self.distributed: return t
        buf = t.detach().to(self._comm, copy=True)
        _collective(dist.all_reduce, buf)
        return buf.to(t.device)

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        "Every rank's 1-D `t` (lengths may differ) concatenated in rank order, on every rank, on the CPU."
        if not self.distributed: return t.cpu()
        dtype = t.dtype
        t = t.to(torch.uint8) if dtype == torch.bool else t           # gloo gathers no booleans
        n = torch.tensor([len(t)], device=self._comm)
        sizes = [torch.zeros_like(n) for _ in range(self.size)]
        _collective(dist.all_gather, sizes, n)
        sizes = [int(s) for s in sizes]
        buf = torch.zeros(max(sizes), dtype=t.dtype, device=self._comm)
        buf[:len(t)] = t.to(self._comm)
        parts = [torch.empty_like(buf) for _ in range(self.size)]
        _collective(dist.all_gather, parts, buf)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)]).cpu().to(dtype)

    def barrier(self) -> None:
        if self.distributed: _collective(dist.barrier)

    def prepare(self, model: nn.Module) -> nn.Module:
        """`model` ready for this world: its BatchNorm layers synchronized over the ranks — PyTorch's `SyncBatchNorm`
        on NCCL (one all-gather forward, one all-reduce backward, fused CUDA kernels), `GlobalBatchNorm` on gloo."""
        if not self.distributed: return model
        if dist.get_backend() == "nccl": return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return global_batchnorm(model)

    def wrap(self, model: nn.Module) -> nn.Module:
        "The module to train: `DistributedDataParallel` (gradients averaged over the ranks) or `model` alone."
        if not self.distributed: return model
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        # buffers are the same on every rank (synchronized BatchNorm's statistics are global): no broadcast each step
        return DDP(model, device_ids=ids, **no_buffer_sync(DDP))

def no_buffer_sync(ddp=None) -> dict:
    """The keyword that stops `DistributedDataParallel` from broadcasting rank 0's buffers each step:
    `forward_sync_buffers=False` where the installed torch has it (recent releases), else `broadcast_buffers=False`
    (every torch since 1.x; the same here, since the buffers are equal on every rank)."""
    import inspect
    if ddp is None: from torch.nn.parallel import DistributedDataParallel as ddp
    try: params = inspect.signature(ddp.__init__).parameters
    except (TypeError, ValueError): params = {}
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


# %%
w = World()
test_eq((w.main, w.distributed, w.shard), (True, False, None))
test_eq(w.main_value(lambda: 41 + 1), 42)
test_eq(w.gather(torch.tensor([True, False])), torch.tensor([True, False]))
m = nn.Linear(2, 2)
assert w.wrap(m) is m and w.prepare(m) is m


# %% [markdown]
# `DistributedDataParallel(forward_sync_buffers=...)` exists only in recent PyTorch, while the package asks for torch
# >= 2.1: `no_buffer_sync` asks the installed class which keyword it takes, so a data-parallel run does not fail at
# its first level on an older cluster install.

# %%
class _OldDDP:                                       # the signature of torch 2.1's DDP, as far as it matters here
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True): pass
test_eq(no_buffer_sync(_OldDDP), {"broadcast_buffers": False})
test_eq(set(no_buffer_sync()) <= {"broadcast_buffers", "forward_sync_buffers"}, True)

# %% [markdown]
# ## BatchNorm over the global batch
#
# `GlobalBatchNorm` is a BatchNorm layer (same parameters, buffers and state-dict keys, so checkpoints move freely
# between one process and many) whose training statistics are reduced over the ranks with
# `torch.distributed.nn.functional.all_reduce`, which is differentiable: its backward pass all-reduces the
# gradients of the statistics, so every rank's examples receive the gradient they would in one process. The mean
# is reduced first and the variance around it second (two passes, as a single-process BatchNorm computes it; the
# one-pass E[x²] − E[x]² loses digits when the mean is large). It works on gloo (CPUs), where PyTorch's own
# `SyncBatchNorm` cannot run (torch 2.14 still refuses CPU inputs). On NCCL `World.prepare` uses `SyncBatchNorm`
# instead: the same global statistics (it combines the ranks' means and variances with Chan's formula) with fewer
# collectives (one all-gather forward, one all-reduce backward, against two and two here) and fused kernels; the two
# are compared on 2 GPUs by `make gpu-check`. The element count is filled on the device (`new_full`), not copied
# from a Python list, so a forward makes no host-to-device copy that would stall the CPU on each layer and step.

# %%
#| export
# the differentiable all-reduce is public API; its FutureWarning points to a private module without autograd support
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_reduce is deprecated",
                        category=FutureWarning)

class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    "BatchNorm whose training statistics are those of the global batch of a data-parallel run (alone: BatchNorm)."
    def _check_input_dim(self, x):
        if x.dim() < 2: raise ValueError(f"expected an input of 2 or more dimensions, got {x.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce
        dtype = x.dtype                                 # statistics in float32 at least (under bf16 autocast too)
        if dtype in (torch.float16, torch.bfloat16): x = x.float()
        c = x.shape[1]
        dims, shape = [0, *range(2, x.dim())], (1, c) + (1,) * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // c if c else 0)   # filled on the device: no host-to-device copy
        total = all_reduce(torch.cat([x.sum(dims), count]))
        n = total[-1].detach()
        mean = total[:c] / n
        xc = x - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims)) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine: y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp(min=1)), alpha=m)
        return y.to(dtype)

def global_batchnorm(model: nn.Module) -> nn.Module:
    "Replace every BatchNorm1d/2d of `model`, in place, by a `GlobalBatchNorm` holding the same parameters and buffers."
    for name, m in list(model.named_children()):
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            like = next(iter([*m.parameters(), *m.buffers()]))          # the layer's device and dtype
            g = GlobalBatchNorm(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats,
                                device=like.device, dtype=like.dtype)
            g.load_state_dict(m.state_dict())
            setattr(model, name, g.train(m.training))
        else: global_batchnorm(m)
    return model


# %% [markdown]
# Alone, it is BatchNorm, bit for bit, and its state dict has BatchNorm's keys:

# %%
bn = nn.BatchNorm2d(3); g = global_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))[0]
x = torch.randn(8, 3, 5, 5)
assert isinstance(g, GlobalBatchNorm) and torch.equal(g(x), bn(x))
test_eq(list(g.state_dict()), list(bn.state_dict()))
assert torch.equal(g.running_var, bn.running_var)


# %% [markdown]
# ## Joining the world the launcher made
#
# `launcher_env` reads what `torchrun` exports, or derives it from an `srun` step of several tasks (its first node
# is the rendezvous, the port a function of the job id, so the elements of a job array do not collide); `init_world`
# joins the process group. A process is a rank only when a launcher started it as one: the batch script of
# `sbatch --ntasks-per-node 8`, or a shell of `salloc -n 4`, has `SLURM_NTASKS=8` (or 4) and `SLURM_PROCID=0` but
# is one process — taking those for a world made every local-pool worker and every `imp` of such a job a "rank 0"
# of one world on one port (a 30-minute hang, or address-in-use). An srun step sets `SLURM_STEP_ID` and
# `SLURM_STEP_NUM_TASKS` in each of its tasks; the batch script has no step of several tasks. The local pool's
# workers clear these variables when they are pinned (`placement.pin_worker`): they never are ranks. On GPUs each rank takes `cuda:<local rank>` — or `cuda:0` when Slurm's GPU binding shows
# each task its own GPU alone. The time a collective may wait for a silent peer is
# the platform's `dist_timeout_min` (`runtime.Platform`, `$PRUNING_REPRO_DIST_TIMEOUT_MIN`; default 30 minutes); a peer that dies is usually noticed at once (its
# connections close).

# %%
#| export
def launcher_env(environ=None) -> dict | None:
    """`{rank, size, local_rank, local_size, master_addr, master_port}` of the data-parallel world this process was
    launched into (torchrun's variables, or a task of an `srun` step of several tasks), or None when it runs alone.
    A Slurm allocation alone (`SLURM_NTASKS` > 1 in an sbatch script or a salloc shell) is not a world."""
    e = os.environ if environ is None else environ
    if int(e.get("WORLD_SIZE", "1")) > 1 and "RANK" in e:             # torchrun, or any env:// launcher
        size = int(e["WORLD_SIZE"])
        return {"rank": int(e["RANK"]), "size": size, "local_rank": int(e.get("LOCAL_RANK", 0)),
                "local_size": int(e.get("LOCAL_WORLD_SIZE", size)), "master_addr": e.get("MASTER_ADDR"),
                "master_port": e.get("MASTER_PORT")}
    if slurm_step_tasks(e) > 1 and "SLURM_PROCID" in e and "SLURM_JOB_ID" in e:
        import random
        from submitit.slurm.slurm import _parse_node_list
        size = slurm_step_tasks(e)
        nodes = int(e.get("SLURM_STEP_NUM_NODES") or e.get("SLURM_JOB_NUM_NODES") or e.get("SLURM_NNODES") or 1)
        nodelist = e.get("SLURM_STEP_NODELIST") or e.get("SLURM_JOB_NODELIST") or e.get("SLURM_NODELIST") or ""
        try: first = _parse_node_list(nodelist)[0] if nodelist else "localhost"
        except Exception: raise ConfigError(f"cannot read Slurm's node list {nodelist!r}") from None
        job = (f"{e['SLURM_ARRAY_JOB_ID']}_{e['SLURM_ARRAY_TASK_ID']}" if "SLURM_ARRAY_TASK_ID" in e
               else e["SLURM_JOB_ID"])                  # as submitit names the job: elements of an array differ
        return {"rank": int(e["SLURM_PROCID"]), "size": size, "local_rank": int(e.get("SLURM_LOCALID", 0)),
                "local_size": max(size // max(nodes, 1), 1), "master_addr": first,
                "master_port": e.get("MASTER_PORT") or str(random.Random(job).randint(20000, 60000))}
    return None

def slurm_step_tasks(environ=None) -> int:
    """The number of tasks of the `srun` step this process is a task of (`SLURM_STEP_NUM_TASKS`); 0 outside a step —
    the batch script of sbatch ('batch'), the 'extern' step, a salloc shell, or no Slurm at all."""
    e = os.environ if environ is None else environ
    step = e.get("SLURM_STEP_ID", "")
    # the batch script's and the extern step's ids are names, or 0xfffffffe / 0xffffffff (and their neighbours)
    if step in ("", "batch", "extern", "interactive") or not step.isdigit() or int(step) >= 0xFFFFFFF0: return 0
    try: return int(e.get("SLURM_STEP_NUM_TASKS", "0"))
    except ValueError: return 0

def _rank_device(device, local_rank: int) -> torch.device:
    "The device of a rank: `device` as asked ('cpu', 'cuda', 'cuda:i'), CUDA by local rank when not indexed."
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type != "cuda" or dev.index is not None: return dev
    n = torch.cuda.device_count()
    if n == 0: raise ConfigError("this data-parallel rank was asked for CUDA but sees no GPU")
    return torch.device("cuda", local_rank % n)     # one GPU visible (Slurm's binding): cuda:0

def init_world(device=None, environ=None) -> World:
    "This process's world: joins the process group its launcher made (NCCL on GPUs, gloo on CPUs), or `World()` alone."
    env = launcher_env(environ)
    if env is None: return World(device=torch.device(device) if device is not None else torch.device("cpu"))
    dev = _rank_device(device, env["local_rank"])
    os.environ.setdefault("LOCAL_WORLD_SIZE", str(env["local_size"]))    # the data loaders size their workers by it
    if not dist.is_initialized():
        for k in ("master_addr", "master_port"):
            if env[k]: os.environ.setdefault(k.upper(), str(env[k]))
        if dev.type == "cuda": torch.cuda.set_device(dev)
        minutes = platform().dist_timeout_min           # `runtime.Platform`, installed by the job's entry
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://", rank=env["rank"],
                                world_size=env["size"], timeout=datetime.timedelta(minutes=minutes))
    return World(env["rank"], env["size"], env["local_rank"], dev)

def close_world(world: World) -> None:
    """Leave the process group (at the end of a data-parallel command), and free what still holds it: a
    `DistributedDataParallel` wrapper left in a reference cycle keeps gloo's worker threads alive until the interpreter
    tears down, where they abort the process ('terminate called without an active exception', SIGABRT) — measured on
    this CPU in 3 of 70 two-rank exits without the collection, 0 of 40 with it."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()

@contextlib.contextmanager
def launched_world(device=None):
    """The data-parallel world this process was launched into (`init_world`), left when the block ends; None when
    the process runs alone (no launcher: the caller trains as it would without this module)."""
    if launcher_env() is None:
        yield None; return
    world = init_world(device)
    try: yield world
    except RankFailed: raise
    except (RuntimeError, ConnectionError) as e:
        # collectives outside `World`'s own (DDP's gradient all-reduce, GlobalBatchNorm's sums) fail here when a peer
        # dies: one `RankFailed` line, not a backend traceback; the process group is not left (it would wait on the dead)
        if world.distributed and peer_gone(e): world = None; raise _gone(e) from None
        raise
    finally:
        if world is not None: close_world(world)


# %%
test_eq(launcher_env({}), None)
assert peer_gone(RuntimeError("[gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer"))
assert not peer_gone(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
assert "a rank of this data-parallel run is gone (RuntimeError: x)" in str(_gone(RuntimeError("x\ny")))
with launched_world("cpu") as _w: test_eq(_w, None)       # this notebook runs alone
test_eq(launcher_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                      "MASTER_ADDR": "n1", "MASTER_PORT": "29500"}),
        {"rank": 2, "size": 4, "local_rank": 0, "local_size": 2, "master_addr": "n1", "master_port": "29500"})
test_eq(init_world("cpu", {}), World())
# the batch script of `sbatch --ntasks-per-node 8` (and a salloc shell) is one process, not a world of 8
_batch = {"SLURM_JOB_ID": "77", "SLURM_NTASKS": "8", "SLURM_PROCID": "0", "SLURM_NNODES": "1"}
test_eq(launcher_env(_batch), None)
test_eq((slurm_step_tasks({**_batch, "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4"}),
         slurm_step_tasks({**_batch, "SLURM_STEP_ID": "4294967294", "SLURM_STEP_NUM_TASKS": "8"}),
         slurm_step_tasks(_batch)), (4, 0, 0))
# a task of `srun -n 4` on two nodes is rank SLURM_PROCID of a world of 4, its rendezvous the step's first node
_step = {**_batch, "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NUM_NODES": "2", "SLURM_PROCID": "3",
         "SLURM_LOCALID": "1", "SLURM_STEP_NODELIST": "gpu[07-08]", "MASTER_PORT": "29400"}
test_eq(launcher_env(_step), {"rank": 3, "size": 4, "local_rank": 1, "local_size": 2, "master_addr": "gpu07",
                              "master_port": "29400"})

# %% [markdown]
# ## Two ranks on this CPU
#
# A real check, with two gloo ranks started by `torchrun`: a small network with BatchNorm trained for three steps
# on a batch of 10 (uneven shards of 5 and 5, then 3 and 2 with a batch of 5) gives the same weights and running
# statistics as one process with the whole batch, to float rounding.

# %%
script = textwrap.dedent('''
    import sys, torch, torch.distributed as dist
    import torch.nn.functional as F
    from pruning_repro.distributed import init_world, close_world
    from pruning_repro.tensors import shard_bounds
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    def train(model, world):
        m = world.wrap(model); opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for bs in (10, 10, 5):
            xb, yb = x[:bs], y[:bs]
            if world.distributed:
                lo, hi = shard_bounds(bs, *world.shard)
                loss = F.cross_entropy(m(xb[lo:hi]), yb[lo:hi], reduction="sum") * world.size / bs
            else: loss = F.cross_entropy(m(xb), yb)
            opt.zero_grad(); loss.backward(); opt.step()
        return model.state_dict()
    import copy
    world = init_world("cpu")
    many = train(world.prepare(copy.deepcopy(net)), world)
    if world.main:
        alone = train(copy.deepcopy(net), type(world)())
        diff = max((many[k].float() - alone[k].float()).abs().max().item() for k in alone)
        print("max difference", diff)
    close_world(world)
''')
with tempfile.TemporaryDirectory() as d:
    (Path(d) / "check.py").write_text(script)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(Path(d) / "check.py")], capture_output=True, text=True, timeout=300)
assert r.returncode == 0, r.stderr[-2000:]
diff = float(r.stdout.split("max difference")[1].split()[0])
print(f"two ranks vs one process, largest difference of any weight or statistic: {diff:.2e}")
assert diff < 1e-5
