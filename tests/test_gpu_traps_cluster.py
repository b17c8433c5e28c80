"""Cluster traps of issue 24 on this CPU, with fakes: which process is a rank (sbatch/salloc/srun/torchrun/pool
worker), the DDP keyword of an older torch, a pool worker's threads under SLURM_CPUS_PER_TASK, GPUs per node for
data-parallel Slurm jobs, SIGTERM preemption, and the synchronized BatchNorm of each backend."""
import os
import signal
from dataclasses import replace

import pytest
import torch
import torch.distributed
from torch import nn

from pruning_repro import distributed as DI
from pruning_repro import executors as E
from pruning_repro import imp as I
from pruning_repro import placement as P
from pruning_repro import slurm as SL
from pruning_repro import snapshots as SN
from pruning_repro.config import get_bench
from pruning_repro.data import Data, DataInfo
from pruning_repro.tensors import TensorSplit
from pruning_repro.store import Store
from pruning_repro.runtime import Runtime

# what each launcher leaves in a process's environment (the variables that matter here)
SBATCH_SCRIPT = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "8", "SLURM_PROCID": "0",
                 "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "gpu01", "SLURM_CPUS_PER_TASK": "12"}
SALLOC_SHELL = {"SLURM_JOB_ID": "4243", "SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_NNODES": "1",
                "SLURM_JOB_NODELIST": "gpu02"}
SRUN_TASK = {**SBATCH_SCRIPT, "SLURM_NTASKS": "4", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4",
             "SLURM_STEP_NUM_NODES": "1", "SLURM_STEP_NODELIST": "gpu01", "SLURM_PROCID": "2", "SLURM_LOCALID": "2"}
TORCHRUN = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29512", "TORCHELASTIC_RUN_ID": "x"}
LAUNCH_KEYS = {*SBATCH_SCRIPT, *SALLOC_SHELL, *SRUN_TASK, *TORCHRUN, "SLURM_JOB_NUM_NODES", "SLURM_NODELIST",
               "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID", "SLURM_CPU_BIND_TYPE"}


@pytest.fixture
def bare_env(monkeypatch):
    "This process's environment without any launcher's variable (restored after the test)."
    for k in list(os.environ):
        if k in LAUNCH_KEYS or k.startswith("SLURM_"): monkeypatch.delenv(k)
    return monkeypatch


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# --- 1. a process is a rank only when a launcher started it as one ----------------------------------------------

def test_sbatch_script_and_salloc_shell_are_not_worlds():
    "Old code: SLURM_NTASKS > 1 with SLURM_PROCID made the batch script (and every process it starts) a rank."
    assert DI.launcher_env(SBATCH_SCRIPT) is None
    assert DI.launcher_env(SALLOC_SHELL) is None
    # the batch step and the extern step are steps in name only
    assert DI.launcher_env({**SBATCH_SCRIPT, "SLURM_STEP_ID": "4294967294", "SLURM_STEP_NUM_TASKS": "8"}) is None
    assert DI.launcher_env({**SBATCH_SCRIPT, "SLURM_STEP_ID": "extern", "SLURM_STEP_NUM_TASKS": "8"}) is None
    assert DI.launcher_env({**SRUN_TASK, "SLURM_STEP_NUM_TASKS": "1"}) is None       # `srun -n 1 imp`: alone


def test_srun_step_and_torchrun_are_worlds(bare_env):
    env = DI.launcher_env(SRUN_TASK)
    assert {k: env[k] for k in ("rank", "size", "local_rank", "local_size", "master_addr")} == \
        {"rank": 2, "size": 4, "local_rank": 2, "local_size": 4, "master_addr": "gpu01"}
    assert 20000 <= int(env["master_port"]) <= 60000          # a function of the job id: the same on every rank
    assert DI.launcher_env({**SRUN_TASK, "SLURM_PROCID": "0"})["master_port"] == env["master_port"]
    assert DI.launcher_env(TORCHRUN) == {"rank": 1, "size": 2, "local_rank": 1, "local_size": 2,
                                         "master_addr": "127.0.0.1", "master_port": "29512"}


class _Slots:
    "The pool's queue of slots, for one worker."
    def __init__(self, slot): self.slot = slot
    def get(self): return self.slot


@pytest.mark.parametrize("launcher", [SRUN_TASK, TORCHRUN], ids=["srun-step", "torchrun"])
def test_pool_worker_started_inside_a_rank_trains_alone(bare_env, keep_threads, launcher):
    "Old code: a pool worker inherited the step's variables and joined its world as one more rank."
    for k, v in launcher.items(): bare_env.setenv(k, v)
    bare_env.setenv("CUDA_VISIBLE_DEVICES", "")            # restored after the test (pin_worker sets it)
    bare_env.setattr(P, "SLOT", None)
    assert DI.launcher_env() is not None                   # the process that started the pool is a rank
    P.pin_worker(_Slots(P.Slot(None, tuple(P.allocated_cpus()), 1)))
    assert DI.launcher_env() is None
    assert os.environ.get("SLURM_JOB_ID", "4242") == launcher.get("SLURM_JOB_ID", "4242")   # the job stays known


# --- 2. the DDP keyword of the installed torch ----------------------------------------------------------------------

def _fake_ddp(signature: str):
    calls = []
    ns = {}
    exec(f"def __init__(self, module, {signature}):\n    pass", ns)
    def init(self, module, **kw):
        calls.append(kw)
    init.__signature__ = __import__("inspect").signature(ns["__init__"])
    return type("FakeDDP", (), {"__init__": init}), calls


@pytest.mark.parametrize("signature,expected", [
    ("device_ids=None, output_device=None, dim=0, broadcast_buffers=True, process_group=None",      # torch 2.1
     {"device_ids": None, "broadcast_buffers": False}),
    ("device_ids=None, broadcast_buffers=True, forward_sync_buffers=True",                           # recent torch
     {"device_ids": None, "forward_sync_buffers": False})])
def test_ddp_gets_the_keyword_its_torch_has(monkeypatch, signature, expected):
    "Old code: forward_sync_buffers=False always — a TypeError at the first level on torch 2.1."
    fake, calls = _fake_ddp(signature)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", fake)
    DI.World(0, 2).wrap(nn.Linear(2, 2))
    assert calls == [expected]


# --- 3. a pool worker keeps its slot's threads --------------------------------------------------------------------

def test_pool_worker_keeps_its_threads_under_slurm_cpus_per_task(bare_env, keep_threads, tmp_path):
    "Old code: SLURM_CPUS_PER_TASK=32 reset every pinned pool worker to 32 threads (oversubscription)."
    bare_env.setattr(I, "run_imp", lambda *a, **k: None)
    spec = get_bench("lenet_mnist1d", "smoke").run_spec(0.0, 0).to_dict()
    bare_env.setenv("SLURM_CPUS_PER_TASK", "32")
    bare_env.setattr(P, "SLOT", P.Slot(None, (0,), 2))
    E.run_job(spec, str(tmp_path / "st"), "x")
    assert torch.get_num_threads() == 2
    bare_env.setattr(P, "SLOT", None)                      # a Slurm task of its own (no pool): the allocation's CPUs
    bare_env.setenv("SLURM_CPUS_PER_TASK", "3")
    E.run_job(spec, str(tmp_path / "st"), "x")
    assert torch.get_num_threads() == 3


# --- 5. GPUs per node for data-parallel Slurm jobs ------------------------------------------------------------------

def test_slurm_job_asks_gpus_per_node_and_each_rank_takes_its_own(monkeypatch, tmp_path):
    "Old code: --gpus-per-task (each rank sees one GPU alone: no P2P/NVLink for NCCL)."
    import submitit
    opts = SL.SlurmOptions(gpus_per_task=1, tasks_per_node=4, nodes=2)
    p = opts.submitit_parameters()
    assert p["slurm_gpus_per_node"] == 4 and "slurm_gpus_per_task" not in p
    ex = submitit.AutoExecutor(folder=str(tmp_path), cluster="slurm")
    ex.update_parameters(**p)
    script = ex._executor._make_submission_file_text("python -c pass", "uid")
    assert "#SBATCH --gpus-per-node=4" in script and "--gpus-per-task" not in script
    assert "#SBATCH --ntasks-per-node=4" in script and "#SBATCH --nodes=2" in script
    assert SL.SlurmOptions(gpus_per_task=2, tasks_per_node=4).submitit_parameters()["slurm_gpus_per_node"] == 8
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)  # all 4 of the node's GPUs visible to every rank
    assert [DI._rank_device("cuda", r) for r in range(4)] == [torch.device("cuda", r) for r in range(4)]


# --- 6. SIGTERM (Slurm's preemption) snapshots the level in training ---------------------------------------------

def _toy_data(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 16, generator=g); y = (x[:, 0, :4].sum(1) > 0).long()
    s = TensorSplit(x, y, torch.arange(n))
    return Data(s, s, s, y, torch.zeros(n, dtype=torch.bool), DataInfo(2, (1, 16), (0.,), (1.,)))


class Requeued(Exception):
    pass


@pytest.fixture
def sigterm_restored(monkeypatch):
    old = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(SN.PREEMPTION, "_handlers", {}, raising=False)
    monkeypatch.setattr(SN.PREEMPTION, "pending", None)
    yield
    signal.signal(signal.SIGTERM, old)


def test_sigterm_during_a_level_takes_a_snapshot_then_requeues(monkeypatch, tmp_path, sigterm_restored):
    "Old code: `install` knew one signal (SIGUSR2); SIGTERM was submitit's 'bypass' and the level was lost."
    spec = get_bench("lenet_mnist", "smoke").run_spec(0.0, seed=0)
    spec = replace(spec, prune=replace(spec.prune, levels=1))
    requeued = []
    def requeue(sig, frame):
        requeued.append(sig); raise Requeued
    SN.PREEMPTION.install(signal.SIGTERM, requeue)
    due, asked = SN.Snapshots.due, []
    def due_with_sigterm(self):
        asked.append(1)
        if len(asked) == 3: signal.raise_signal(signal.SIGTERM)       # mid-level, after the third step
        return due(self)
    monkeypatch.setattr(SN.Snapshots, "due", due_with_sigterm)
    st = Store(tmp_path / "st")
    with pytest.raises(Requeued):
        I.run_imp(spec, st, "cpu", runtime=Runtime(progress=False), data=_toy_data())
    assert requeued == [signal.SIGTERM] and len(asked) == 3
    root = I.dense_root(spec)                            # level 0 is trained as the run's shared dense model
    assert st.snapshot_levels(root) == [0] and not st.levels_done(root)
    assert st.load_snapshot(root, 0)[1]["step"] == 3


def test_slurm_job_hands_sigterm_to_the_requeue_only_when_preempted(monkeypatch, bare_env, sigterm_restored):
    "SlurmRun installs the SIGTERM handler; a job still RUNNING is requeued, a cancelled one only exits."
    seen = []
    signal.signal(signal.SIGTERM, lambda s, f: seen.append("old SIGTERM handler"))    # old code: this one ran
    old_usr = signal.signal(signal.SIGUSR2, lambda s, f: seen.append(("requeue", s)))  # stands for submitit's
    bare_env.setenv("SLURM_JOB_ID", "5"); bare_env.setenv("SLURM_PROCID", "0")
    def job(*a):
        signal.raise_signal(signal.SIGTERM)             # outside a level: acts at once
        return "finished"
    monkeypatch.setattr(SL, "run_job", job)
    try:
        for state, after in (("RUNNING", [("requeue", signal.SIGTERM)]), ("CANCELLED", [])):
            seen.clear()
            monkeypatch.setattr(SL, "_job_state", lambda job_id, s=state: s)
            with pytest.raises(SystemExit) as e:
                SL.SlurmRun()({}, "root", "x", 1, "cpu", None)
            assert e.value.code == 128 + signal.SIGTERM and seen == after
    finally:
        signal.signal(signal.SIGUSR2, old_usr)


# --- 7. synchronized BatchNorm: SyncBatchNorm on NCCL, GlobalBatchNorm (no host copy) on gloo ------------------------

def test_nccl_worlds_use_syncbatchnorm_gloo_worlds_globalbatchnorm(monkeypatch):
    "Old code: GlobalBatchNorm on NCCL too (a host copy and four collectives per layer and step)."
    net = lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(4)))
    monkeypatch.setattr(torch.distributed, "get_backend", lambda *a: "nccl")
    m = DI.World(0, 2).prepare(net())
    assert [type(x) for x in (m[1], m[2][0])] == [nn.SyncBatchNorm, nn.SyncBatchNorm]
    assert list(m.state_dict()) == list(net().state_dict())           # checkpoints move between the two
    monkeypatch.setattr(torch.distributed, "get_backend", lambda *a: "gloo")
    m = DI.World(0, 2).prepare(net())
    assert [type(x) for x in (m[1], m[2][0])] == [DI.GlobalBatchNorm, DI.GlobalBatchNorm]


def test_globalbatchnorm_makes_no_host_copy_and_is_batchnorm(monkeypatch):
    """Its distributed path, in a faked world of 2 whose all-reduce is the identity (this rank's batch is the global
    one): the same output, gradients and running statistics as BatchNorm, without `Tensor.new_tensor` (old code: a
    blocking host-to-device copy of a Python list per layer and step on CUDA). The real two-rank comparison with
    one process is tests/test_distributed.py::test_batchnorm_is_global_two_ranks_match_one_process."""
    import torch.distributed.nn.functional as F
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda *a: 2)
    reduces = []
    monkeypatch.setattr(F, "all_reduce", lambda t, *a, **k: (reduces.append(t.shape), t)[1])
    def no_list(*a, **k): raise AssertionError("a tensor built from a Python list: a host-to-device copy")
    monkeypatch.setattr(torch.Tensor, "new_tensor", no_list)
    bn = nn.BatchNorm2d(3)
    g = DI.global_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))[0]
    x = (torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 3 + 2)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = bn(xa), g(xb)
    (ya * ya.detach().sin()).sum().backward(); (yb * yb.detach().sin()).sum().backward()
    assert reduces == [torch.Size([4]), torch.Size([3])]           # sums and count, then the centred squares
    torch.testing.assert_close(yb, ya)
    torch.testing.assert_close(xb.grad, xa.grad)
    torch.testing.assert_close(g.weight.grad, bn.weight.grad)
    torch.testing.assert_close(g.running_var, bn.running_var)
    torch.testing.assert_close(g.running_mean, bn.running_mean)
