"""Outgrowing one machine, on this CPU: data-parallel runs of 2 gloo ranks started by torchrun against one process,
BatchNorm over the global batch, the store written by rank 0 alone, a rank killed mid-level, a run killed mid-level
resuming from its in-level snapshot, and runs placed on (faked) GPUs by the local pool."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import BIN, REPO, run
from pruning_repro.config import ConfigError, get_bench
from pruning_repro.data import split_sizes
from pruning_repro.store import Store
from pruning_repro.runtime import Runtime

CLI = str(BIN / "pruning-repro")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
            "pruning_repro.cli"]


def imp_args(store, bench="lenet_mnist1d", noise="0.3", *extra):
    return ["imp", "--bench", bench, "--scale", "smoke", "--noise", noise, "--device", "cpu", "--store", str(store),
            *extra]


def spec_of(bench="lenet_mnist1d", noise=0.3, levels=None, epochs=None):
    s = get_bench(bench, "smoke").run_spec(noise, 0)
    if levels is not None: s = replace(s, prune=replace(s.prune, levels=levels))
    if epochs is not None: s = replace(s, train=replace(s.train, epochs=epochs))
    return s


def one_process(args):
    r = run([sys.executable, "-m", "pruning_repro.cli", *args], timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def two_ranks(args, **kw):
    r = run(TORCHRUN + args, timeout=900, **kw)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "(2 ranks)" in r.stdout and r.stdout.count("level  density") == 1, r.stdout   # rank 0 alone prints
    return r


def two_rank_script(path, text) -> dict:
    "Run `text` as a script of 2 ranks (torchrun, gloo); the JSON it prints after RESULT."
    path.write_text(text)
    r = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(path)],
            timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("RESULT", 1)[1])


def _wait(cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond(): return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# ---- 2 ranks x half batch vs 1 process x full batch ----------------------------------------------------------------
def test_lenet_two_ranks_match_one_process(isolated):
    """Same masks and per-level errors (tolerance: masks identical but for 0.1% of the weights, errors within one
    example) — LeNet has no BatchNorm, so the ranks differ from one process only in the order of the sums."""
    spec = spec_of()
    one_process(imp_args(isolated / "one"))
    two_ranks(imp_args(isolated / "two"))
    a, b = Store(isolated / "one"), Store(isolated / "two")
    sizes = dict(zip(("train_err", "val_err", "test_err"), split_sizes(spec.data)))     # 750, 50, 200 examples
    for lv in range(spec.prune.levels + 1):
        ma, mb = a.metrics(spec, lv), b.metrics(spec, lv)
        for k, n in sizes.items(): assert abs(ma[k] - mb[k]) <= 1.01 / n, (lv, k, ma[k], mb[k])
        (sa, ka), (sb, kb) = a.load_state(spec, lv), b.load_state(spec, lv)
        for name in ka: assert (ka[name] != kb[name]).float().mean() <= 1e-3, (lv, name)
        # the weights themselves: float rounding only
        assert all(torch.allclose(sa[k], sb[k], rtol=1e-3, atol=1e-5) for k in sa), lv
        # rank 0 alone wrote every level; it says how many ranks trained it
        assert mb["written_by"]["ranks"] == 2 and ma["written_by"]["ranks"] == 1
    assert len({b.metrics(spec, lv)["written_by"]["pid"] for lv in range(spec.prune.levels + 1)}) == 1
    # nothing but the run's own files: no second writer's temporary or duplicate files
    names = {p.name for p in b.run_dir(spec).rglob("*") if p.is_file()}
    assert not [x for x in names if ".tmp" in x or x.startswith("snapshot_")], names


BN_SCRIPT = """
import copy, json, sys, torch
from pruning_repro.config import ModelSpec, TrainSpec
from pruning_repro.data import INFO, Data
from pruning_repro.tensors import TensorSplit
from pruning_repro.distributed import World, close_world, init_world
from pruning_repro.models import build_model
from pruning_repro.prune import full_masks, prune_masks
from pruning_repro.train import Segment, eval_metrics, state_copy, train
from pruning_repro.runtime import Runtime
torch.manual_seed(0)
x, y = torch.randn(70, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (70,))
split = TensorSplit(x, y, torch.arange(70), augment=True)           # crop + flip drawn per global batch
data = Data(split, TensorSplit(x, y, torch.arange(70)), TensorSplit(x[:33], y[:33], torch.arange(33)), y,
            torch.zeros(70, dtype=torch.bool), INFO["cifar10"])
spec = TrainSpec(epochs=2, batch_size=32, optimizer="sgd", lr=0.1, weight_decay=1e-4, milestones=(1,))  # batches of 32, 32, 6: shards 16+16, 3+3
net = build_model(ModelSpec("resnet20", width=0.5), INFO["cifar10"], seed=0).double()
masks = prune_masks(net, full_masks(net), 0.2, "magnitude")
rt = Runtime(compile="0", progress=False)
def fit(model, world):
    train(model, data, spec, Segment(torch.Generator().manual_seed(1), masks=masks), rt, world)
    return state_copy(model), eval_metrics(model, data, world=world)[1]["train_loss"]
world = init_world("cpu")
many, loss_many = fit(world.prepare(copy.deepcopy(net)), world)            # BatchNorm over the global batch
local, _ = fit(copy.deepcopy(net), world)                                  # per-replica BatchNorm, for contrast
# every rank holds the same running statistics
stats = torch.cat([v.flatten() for k, v in many.items() if "running" in k])
same = bool((world.gather(stats).view(2, -1)[0] == world.gather(stats).view(2, -1)[1]).all())
main = world.main
close_world(world)
# nothing holds the process group any more (a DDP wrapper alive at exit aborts the rank: SIGABRT)
from torch.nn.parallel import DistributedDataParallel as DDP
ddp_left = sum(isinstance(o, DDP) for o in __import__("gc").get_objects())
if main:
    alone, loss_alone = fit(copy.deepcopy(net), World())
    rel = lambda a: max(float((a[k].double() - alone[k].double()).abs().max() / (alone[k].double().abs().max() + 1e-30))
                        for k in alone if alone[k].is_floating_point())
    print("RESULT", json.dumps({"global": rel(many), "per_replica": rel(local), "same_on_ranks": same,
                                "eval": float((loss_many - loss_alone).abs().max()), "ddp_left": ddp_left,
                                "masked_zero": bool(all((many[k][masks[k] == 0] == 0).all() for k in masks))}))
"""


def test_batchnorm_is_global_two_ranks_match_one_process(isolated):
    """The whole data-parallel step (sharded batches with the whole batch's crop/flip draws, the loss scaling,
    gradient averaging, masks, BatchNorm over the global batch, sharded evaluation) against one process, in float64
    so that rounding is out of the way: a ResNet-20 (half width) trained 2 epochs by 2 ranks equals one process's to
    1e-9 (measured: 1.2e-12), its running statistics equal on both ranks; with per-replica BatchNorm it does not
    (measured: differences of 1.5 relative): the synchronization is what makes the two agree."""
    res = two_rank_script(isolated / "bn_check.py", BN_SCRIPT)
    print(res)
    assert res["global"] < 1e-9 and res["eval"] < 1e-9, res
    assert res["per_replica"] > 1e-4, res
    assert res["same_on_ranks"] and res["masked_zero"], res
    assert res["ddp_left"] == 0, res          # close_world freed the wrappers that hold gloo's threads


IMAGENET_SCRIPT = """
import copy, json, torch
from torch import nn
from pruning_repro.config import DataSpec, ModelSpec, TrainSpec
from pruning_repro.data import INFO, load_data
from pruning_repro.distributed import World, close_world, init_world
from pruning_repro.models import build_model
from pruning_repro.train import Segment, eval_metrics, state_copy, train
from pruning_repro.runtime import Runtime
class Float64(nn.Module):
    "The batches arrive as float32; the network computes in float64 (rounding out of the way)."
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, x): return self.m(x.double())
data = load_data(DataSpec("imagenet", n_val=4, augment=True, exclude_ids=(0, 5)), 0, "cpu")
spec = TrainSpec(epochs=1, batch_size=9, optimizer="sgd", lr=0.01, weight_decay=1e-4)  # 18 images: batches of 9 (ranks: 5 + 4)
net = Float64(build_model(ModelSpec("resnet50", width=0.125), INFO["imagenet"], seed=0).double())
rt = Runtime(compile="0", progress=False)
def fit(model, world):
    train(model, data, spec, Segment(torch.Generator().manual_seed(3)), rt, world)
    return state_copy(model), eval_metrics(model, data, batch_size=5, world=world)[1]["train_loss"]
world = init_world("cpu")
many, loss_many = fit(world.prepare(copy.deepcopy(net)), world)
if world.main:
    alone, loss_alone = fit(copy.deepcopy(net), World())
    rel = max(float((many[k] - alone[k]).abs().max() / (alone[k].abs().max() + 1e-30))
              for k in alone if alone[k].is_floating_point())
    print("RESULT", json.dumps({"rel": rel, "eval": float((loss_many - loss_alone).abs().max()), "n": len(loss_many),
                                "ids": sorted(int(i) for i in data.train.ids)}))
close_world(world)
"""


def test_imagenet_two_ranks_match_one_process(isolated):
    """The streamed ImageNet split in a data-parallel run: each rank decodes only its part of every batch, with the
    crop/flip parameters of the whole batch (drawn from the plan, not from the ranks), and evaluation is sharded and
    gathered in order; a (float64) ResNet-50 of width 1/8 trained by 2 ranks equals one process's to 1e-9 (measured
    2.7e-11 after the 2 steps of an epoch). The check stays at batches of 9: measured step by step with batches of 8
    (8, 8, 2), the two runs agree to 9e-9 after the step on a global batch of 2 images, then to 2e-3 after the next —
    BatchNorm over 2 images makes the network ill-conditioned enough to turn float64 rounding into visible
    differences. The retraining's `exclude_ids` are honoured (App. D/E/K on ImageNet)."""
    from pruning_repro.formats import write_imagefolder
    write_imagefolder(isolated / "data", n_train=8, n_val=3, classes=3, size=(96, 128), seed=1)
    res = two_rank_script(isolated / "inet_check.py", IMAGENET_SCRIPT)
    print({k: res[k] for k in ("rel", "eval", "n")})
    assert res["rel"] < 1e-9 and res["eval"] < 1e-9, res
    assert res["n"] == 24 - 4 - 2 and not {0, 5} & set(res["ids"]), res


def _rank_pid(parent: int, rank: int) -> int | None:
    "The pid of the torchrun worker of `rank` started by `parent` (read from /proc)."
    for d in Path("/proc").iterdir():
        if not d.name.isdigit(): continue
        try:
            if int((d / "stat").read_text().split(")")[1].split()[1]) != parent: continue
            env = dict(x.split("=", 1) for x in (d / "environ").read_bytes().decode(errors="replace").split("\0") if "=" in x)
        except (OSError, IndexError, ValueError): continue
        if env.get("RANK") == str(rank): return int(d.name)
    return None


def test_rank_killed_mid_level_fails_cleanly_and_the_rerun_resumes(isolated):
    store, spec = isolated / "store", spec_of(levels=3, epochs=30)
    args = imp_args(store, "lenet_mnist1d", "0.3", "--levels", "3", "--epochs", "30", "--checkpoint-min", "0")
    st = Store(store)
    p = subprocess.Popen(TORCHRUN + args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: 1 in st.levels_done(spec) and 2 in st.snapshot_levels(spec) or p.poll() is not None, 600,
          "level 1 stored and level 2 under way")
    victim = _rank_pid(p.pid, 1)
    assert victim, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    out, err = p.communicate(timeout=300)
    done = st.levels_done(spec)
    print(f"rank 1 killed with levels {done} stored; torchrun exit {p.returncode}")
    assert p.returncode != 0 and "FAILED" in err                        # the run fails, and says so
    assert done == [0, 1] or done == [0, 1, 2], done                    # finished levels kept, nothing half-stored
    assert all(st.level_ok(spec, lv) for lv in done)
    # the rerun resumes: from the last stored level and the in-level snapshot, and ends as an uninterrupted run
    two_ranks(args)
    two_ranks(imp_args(isolated / "ref", "lenet_mnist1d", "0.3", "--levels", "3", "--epochs", "30"))
    ref = Store(isolated / "ref")
    resumed = [lv for lv in range(4) if "resumed_at_step" in st.metrics(spec, lv)["written_by"]]
    assert resumed, "no level resumed from an in-level snapshot"
    for lv in range(4):
        assert st.metrics(spec, lv)["test_err"] == ref.metrics(spec, lv)["test_err"]
        sa, sb = st.load_state(spec, lv)[0], ref.load_state(spec, lv)[0]
        assert all(torch.equal(sa[k], sb[k]) for k in sa), f"level {lv} differs"
    assert not list(st.run_dir(spec).glob("snapshot_*"))               # saving a level removes its snapshot


# ---- one process killed mid-level: the in-level snapshot --------------------------------------------------------
SCRIPT = """
import sys, torch
from dataclasses import replace
torch.set_num_threads(1)
from pruning_repro.config import get_bench
from pruning_repro.imp import run_imp
from pruning_repro.store import Store
from pruning_repro.runtime import Runtime
s = get_bench("lenet_mnist1d", "smoke").run_spec(0.3, 0)
s = replace(s, train=replace(s.train, epochs=30), prune=replace(s.prune, levels=3, strategy="{strategy}"))
run_imp(s, Store(sys.argv[1]), "cpu", runtime=Runtime(progress=False, checkpoint_min={minutes}))
"""


def test_run_killed_mid_level_resumes_from_its_snapshot_bit_identically(isolated):
    "SIGKILL in the middle of level 2 (an epoch under way): the rerun continues from the snapshot, not the level start."
    from pruning_repro.imp import run_imp
    spec = replace(spec_of(levels=3, epochs=30), prune=replace(spec_of(levels=3).prune, strategy="random"))
    st = Store(isolated / "store")
    p = subprocess.Popen([sys.executable, "-c", SCRIPT.format(strategy="random", minutes=0), str(st.root)], cwd=REPO,
                         stderr=subprocess.PIPE, text=True)
    def mid_level():
        if p.poll() is not None: return True
        snap = st.load_snapshot(spec, 2)
        return snap is not None and snap[1]["step"] > 30 * 12 // 2 and snap[1]["taken"] % 12 != 0
    _wait(mid_level, 600, "a snapshot in the middle of level 2")
    p.send_signal(signal.SIGKILL); p.wait()
    snap_step = st.load_snapshot(spec, 2)[1]["step"]
    assert st.levels_done(spec) == [0, 1] and p.returncode == -signal.SIGKILL
    torch.set_num_threads(1)
    resumed = run_imp(spec, st, "cpu", runtime=Runtime(progress=False, checkpoint_min=None))
    ref_store = Store(isolated / "ref")
    ref = run_imp(spec, ref_store, "cpu", runtime=Runtime(progress=False, checkpoint_min=None))
    assert st.metrics(spec, 2)["written_by"]["resumed_at_step"] >= snap_step
    assert resumed.test_err.tolist() == ref.test_err.tolist()
    for lv in range(4):
        a, b = st.load_state(spec, lv), ref_store.load_state(spec, lv)
        assert all(torch.equal(a[0][k], b[0][k]) for k in a[0]) and all(torch.equal(a[1][k], b[1][k]) for k in a[1])
        pa, pb = st.load_per_example(spec, lv), ref_store.load_per_example(spec, lv)
        assert all(torch.equal(pa[k], pb[k]) for k in pa), lv
    assert not st.snapshot_levels(spec)


def test_stale_snapshot_is_not_used(isolated):
    "A snapshot taken from weights that have since been recomputed differently (another machine) starts over."
    from pruning_repro.imp import run_imp
    spec, st = spec_of(levels=2), Store(isolated / "store")
    run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    want = st.metrics(spec, 2)["test_err"]
    st.save_snapshot(spec, 2, {"x": torch.zeros(1)}, {"parent": "not-the-weights-level-2-started-from"})
    st.discard_level(spec, 2)
    run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    assert "resumed_at_step" not in st.metrics(spec, 2)["written_by"] and st.metrics(spec, 2)["test_err"] == want


# ---- placement on GPUs (a machine faked to have them) -------------------------------------------------------------
def test_pool_slots_spread_runs_over_the_gpus(monkeypatch):
    from pruning_repro.executors import pool_slots
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    r20 = {f"r{i}": get_bench("resnet20_c10", "smoke").run_spec(0.0, i) for i in range(6)}
    slots, devices = pool_slots(r20, runs_per_gpu=2)
    assert [s.gpu for s in slots] == ["0", "1", "2", "3"] * 2 and set(devices.values()) == {"cuda"}
    assert len({c for s in slots for c in s.cpus}) == len(os.sched_getaffinity(0))
    slots, devices = pool_slots(r20, device="cuda:2")                   # one GPU named: that one alone
    assert [s.gpu for s in slots] == ["2"]
    # LeNet stays on the CPU pool unless a GPU is asked for
    lenet = {"l": get_bench("lenet_mnist1d", "smoke").run_spec()}
    slots, devices = pool_slots(lenet)
    assert all(s.gpu is None for s in slots) and devices == {"l": "cpu"}
    assert pool_slots(lenet, device="cuda")[1] == {"l": "cuda"}
    with pytest.raises(ConfigError, match="does not name one of the 4"): pool_slots(r20, device="cuda:9")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match="shows no GPU"): pool_slots(r20, device="cuda")
    assert set(pool_slots(r20)[1].values()) == {"cpu"}                  # no GPU: ResNets train on the CPU


def report_job(spec_dict, root, label, threads, device, runtime, platform=None):
    "A pool job that reports where its worker was put (a stand-in for `run_job`)."
    from pruning_repro.placement import worker_view
    time.sleep(1.0)                                                     # so that every worker takes a job
    return {**worker_view(), "label": label, "device": device}


def test_pool_workers_are_pinned_to_their_gpu_before_cuda_starts(monkeypatch, isolated):
    from pruning_repro.executors import run_pool
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    specs = {f"r{i}": get_bench("resnet20_c10", "smoke").run_spec(0.0, i) for i in range(4)}
    done, failed = run_pool(specs, Store(isolated / "store"), runtime=Runtime(runs_per_gpu=1), job=report_job)
    assert not failed and len(done) == 4
    assert {r["gpus"] for r in done} == {"0", "1"}                      # each worker sees its one GPU
    assert len({(r["pid"], r["gpus"]) for r in done}) == 2              # two workers, one GPU each
    assert all(r["device"] == "cuda" and not r["cuda_started"] for r in done)
    if len(os.sched_getaffinity(0)) >= 2: assert len({tuple(r["cpus"]) for r in done}) == 2   # and disjoint CPUs


# ---- the command line ----------------------------------------------------------------------------------------------
def test_dry_run_counts_without_data_and_slurm_refuses_gpu_runs_without_gpus(isolated):
    r = run([CLI, "sweep", "--bench", "vgg16_c10", "--seeds", "0", "--sections", "sec4_noise", "--dry-run",
             "--store", str(isolated / "store")], timeout=300)
    assert r.returncode == 0, r.stderr
    # 4 noise levels: 4 IMP trajectories (160 + 28 x 150 epochs) and 3 x 10 EL2N models (16 epochs each)
    assert "dry run: 34 runs would train" in r.stdout and f"{4 * (160 + 28 * 150) + 30 * 16} epochs" in r.stdout, r.stdout
    r = run([CLI, "sweep", "--bench", "resnet20_c10", "--scale", "smoke", "--seeds", "0", "--sections", "sec4_noise",
             "--executor", "slurm", "--dry-run", "--store", str(isolated / "store")], timeout=300)
    assert r.returncode == 2 and "train on GPUs" in r.stderr and "--gpus-per-task" in r.stderr, r.stderr
    r = run([CLI, "sweep", "--bench", "lenet_mnist1d", "--executor", "slurm", "--device", "cuda", "--dry-run",
             "--store", str(isolated / "store")], timeout=300)
    assert r.returncode == 2 and "needs GPUs in each job" in r.stderr, r.stderr
    prof = isolated / "cluster.yaml"
    prof.write_text("slurm:\n  gpus_per_task: 1\n  tasks_per_node: 4\nrun:\n  precision: bf16\n")
    r = run([CLI, "sweep", "--bench", "resnet20_c10", "--scale", "smoke", "--seeds", "0", "--sections", "sec4_noise",
             "--executor", "slurm", "--profile", str(prof), "--dry-run", "--store", str(isolated / "store")], timeout=300)
    assert r.returncode == 0 and "dry run:" in r.stdout, r.stderr
