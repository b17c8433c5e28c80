"""Issue 24, memory traps and the cost plan: a run whose training step does not fit its GPU is refused before anything
runs (fake device memory), EL2N's evaluation batch is sized for its inputs, and `sweep --dry-run` counts the App.
D/E/K retrainings and prints hours from a measured throughput, without data."""
import re

import pytest
import torch

from pruning_repro import placement
from pruning_repro.cli import main
from pruning_repro.config import ConfigError, RunKey, get_bench
from pruning_repro.placement import GiB, check_fits, train_step_bytes

R50 = get_bench("resnet50_imagenet").run_spec()
R20 = get_bench("resnet20_c10").run_spec()


# --- placement: memory of a training step --------------------------------------------------------------------------

def test_resnet50_at_batch_768_fp32_is_refused_on_80gib_with_the_data_parallel_command():
    assert 85e9 < train_step_bytes(R50) < 100e9            # the "about 90 GB"
    with pytest.raises(ConfigError) as e:
        check_fits({RunKey("resnet50_imagenet", "LR rewinding", 0.15, 1): R50}, memory=80 * GiB)
    msg = str(e.value)
    assert "\n" not in msg and "80 GiB" in msg and "batch 768" in msg
    assert "torchrun --standalone --nproc-per-node 2 -m pruning_repro.cli imp --bench resnet50_imagenet" in msg
    assert "pruning-repro sweep --bench resnet50_imagenet --executor slurm --tasks-per-node 2" in msg
    check_fits({"r50": R50}, memory=2 ** 40)                # a (fake) 1 TiB GPU: allowed
    check_fits({"r50": R50}, memory=80 * GiB, ranks=8)     # 96 examples per rank: allowed
    check_fits({"r20": R20}, 4, memory=80 * GiB)           # ResNet-20, four runs per GPU: allowed


def test_bf16_and_runs_per_gpu_enter_the_estimate():
    bf16 = get_bench("resnet50_imagenet", precision="bf16").run_spec()
    assert train_step_bytes(bf16) < 0.6 * train_step_bytes(R50)
    check_fits({"r50": bf16}, memory=80 * GiB)             # bf16 halves the activations: fits
    with pytest.raises(ConfigError, match=r"use --runs-per-gpu \d+"):
        check_fits({"r20": R20}, 100, memory=80 * GiB)


@pytest.fixture
def two_fake_gpus(monkeypatch):
    "A machine that shows two GPUs of `memory` bytes (set by the test) and no real CUDA."
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("PRUNING_REPRO_DEVICE", raising=False)
    mem = {"bytes": 80 * GiB}
    monkeypatch.setattr(placement, "gpu_memory", lambda: mem["bytes"])
    return mem


def test_local_pool_refuses_imagenet_runs_one_per_80gib_gpu_before_any_run(two_fake_gpus, isolated):
    from pruning_repro.executors import pool_slots, run_pool
    from pruning_repro.store import Store
    started = []
    specs = {RunKey("resnet50_imagenet", "LR rewinding", 0.0, s): get_bench("resnet50_imagenet").run_spec(0.0, s)
             for s in (0, 1)}
    with pytest.raises(ConfigError, match="torchrun --standalone --nproc-per-node 2"):
        run_pool(specs, Store(isolated / "store"), job=lambda *a: started.append(a))
    assert started == []                                    # refused before any worker ran anything
    two_fake_gpus["bytes"] = 2 ** 40                        # 1 TiB GPUs: one run per GPU is placed
    slots, devices = pool_slots(specs)
    assert [s.gpu for s in slots] == ["0", "1"] and set(devices.values()) == {"cuda"}
    two_fake_gpus["bytes"] = 80 * GiB                       # ResNet-20 on 80 GiB: placed, 2 per GPU
    slots, _ = pool_slots({"r20": R20}, runs_per_gpu=2)
    assert len(slots) == 4


# --- EL2N / evaluation batch ---------------------------------------------------------------------------------------

def test_eval_batch_is_sized_by_memory_for_resnet50_at_224():
    from pruning_repro.data import INFO
    from pruning_repro.models import build_model
    from pruning_repro.train import eval_batch_size
    from pruning_repro.config import ModelSpec
    m = build_model(ModelSpec("resnet50"), INFO["imagenet"])
    bs = eval_batch_size(m, (3, 224, 224), memory=80 * GiB)
    assert bs == 1024                                       # 12.8 MB per example, a quarter of 80 GiB (not 2048)
    layer = placement.forward_memory(m.eval(), torch.zeros(1, 3, 224, 224))["layer"]
    assert bs * 2 * layer <= 80 * GiB // 4
    assert eval_batch_size(m, (3, 224, 224), memory=2 ** 40) == 2048          # capped
    assert eval_batch_size(m, (3, 224, 224)) == 128         # the CPU rule, unchanged
    r20 = build_model(ModelSpec("resnet20"), INFO["cifar10"])
    assert eval_batch_size(r20, (3, 32, 32), memory=80 * GiB) == 2048         # small inputs: as before


def test_el2n_of_passes_the_input_shape(monkeypatch):
    from pruning_repro import el2n
    from pruning_repro.tensors import TensorSplit
    seen = []
    def spy(model, input_shape=None, *a, **k):
        seen.append(input_shape); return 2
    monkeypatch.setattr(el2n, "eval_batch_size", spy)
    y = torch.tensor([0, 1, 2, 1])
    model = torch.nn.Linear(3, 3)
    out = el2n.el2n_of(model, TensorSplit(torch.eye(3)[y], y, torch.arange(4)))
    assert seen == [(3,)] and out.shape == (4,)
    el2n.el2n_of(model, TensorSplit(torch.eye(3)[y], y, torch.arange(4)), input_shape=(3,))
    assert seen[-1] == (3,)


# --- the cost plan -------------------------------------------------------------------------------------------------

def _rows(out: str) -> dict:
    "{name: (runs, epochs, hours)} of the plan's table."
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^\s+(.+?)\s+([\d,]+)\s+([\d,]+)\s+([\d,.]+|\?)$", line)
        if m: rows[m.group(1).strip()] = tuple(float(x.replace(",", "")) if x != "?" else None for x in m.groups()[1:])
    return rows


def test_resnet50_dry_run_counts_retrainings_and_gpu_hours_without_data(isolated, monkeypatch, capsys):
    from pruning_repro import data as D
    from pruning_repro.store import Store
    from pruning_repro.sweep import study_runs
    from pruning_repro.plan import study_cost
    def no_data(*a, **k): raise AssertionError("the dry run read data")
    monkeypatch.setattr(D, "load_data", no_data)
    f = isolated / "rates.csv"                              # 2,000 images/s: 5e-4 s per training example
    f.write_text("# device: cuda\nbench,what,seconds,examples\nresnet50_imagenet,train epoch fp32,640.0,1280000\n")
    assert main(["sweep", "--dry-run", "--bench", "resnet50_imagenet", "--throughput-from", str(f)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    b = get_bench("resnet50_imagenet")
    first = study_cost(study_runs(b), Store(isolated / "store"))          # what the old dry run counted
    # App. D: 3 seeds x 9 levels x (TIE, RND) at 0% noise; App. E: 3 seeds x 10 levels at 15%; each 90 epochs
    n_retrain = 3 * 9 * 2 + 3 * 10
    total = rows["resnet50_imagenet (all sections)"]
    assert rows["of which retrainings (planned)"][:2] == (n_retrain, n_retrain * 90)
    assert total[:2] == (first["runs"] + n_retrain, first["epochs"] + n_retrain * 90)
    assert 0.15 < n_retrain * 90 / total[1] < 0.2          # about a fifth of the epochs
    assert "GPU-hours" in out and total[2] is not None
    n = 1_281_167 - 50_000                                  # ImageNet's training images less the validation split
    retrain_examples = 3 * 9 * 2 * 90 * -(-(n - round(0.2 * n)) // 768) * 768 + 3 * 10 * 90 * -(-n // 768) * 768
    assert total[2] == pytest.approx((first["examples"] + retrain_examples) * 5e-4 / 3600, abs=0.05)
    assert sum(r[1] for k, r in rows.items() if k not in ("resnet50_imagenet (all sections)",
                                                          "of which retrainings (planned)")) == total[1]


def test_throughput_file_gives_epochs_times_seconds_per_epoch(isolated, capsys):
    from pruning_repro.data import split_sizes
    b = get_bench("lenet_mnist1d", "smoke")
    n = split_sizes(b.run_spec().data)[0]
    f = isolated / "rates.csv"                              # 36 s per epoch of the bench's training set
    f.write_text(f"bench,what,seconds,examples\nlenet_mnist1d,train epoch (masks on),36,{n}\n")
    assert main(["sweep", "--dry-run", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0",
                 "--sections", "sec3_training", "--throughput-from", str(f)]) == 0
    runs, epochs, hours = _rows(capsys.readouterr().out)["lenet_mnist1d (all sections)"]
    # one IMP run (2 + 3 x 2 epochs) and 2 EL2N models (1 epoch each), all on the full training set
    assert (runs, epochs) == (3, 2 + 3 * 2 + 2 * 1)
    assert hours == pytest.approx(epochs * 36 / 3600, abs=0.05)


def test_recorded_cuda_results_and_bad_files(isolated):
    from pruning_repro.plan import read_throughput
    from pathlib import Path
    md = Path(__file__).resolve().parents[1] / "bench/results/2026-12-04-cuda-h200-partial.md"
    r = read_throughput(md)
    assert r["resnet20_c10"][0] == pytest.approx(1 / 14_910) and "fp32" in r["resnet20_c10"][1]
    assert "bf16" in read_throughput(md, "bf16")["vgg16_c10"][1]
    bad = isolated / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="columns bench, what, seconds, examples"): read_throughput(bad)
    assert main(["sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--throughput-from", str(bad)]) == 2
    assert main(["sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--dry-run", "--throughput-from", str(bad)]) == 2


def test_dry_run_without_a_file_probes_this_device(isolated, capsys):
    from pruning_repro.plan import probe_throughput
    spe, what = probe_throughput(get_bench("lenet_mnist1d", "smoke"))
    assert spe > 0 and what.endswith("on cpu")
    assert main(["sweep", "--dry-run", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0",
                 "--sections", "appK_examples"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert "probe: 2 steps" in out and "CPU-hours" in out
    b = get_bench("lenet_mnist1d", "smoke")                 # App. K.2 on an embedded bench: 3 levels x (TW, Rand)
    assert rows["of which retrainings (planned)"][:2] == (3 * 2, 3 * 2 * b.train.epochs)


def test_planned_retrainings_match_the_named_ones(isolated):
    "Once the first stage exists, the retrainings the store names cost what the plan said (upper bound: App. E)."
    from pruning_repro.executors import run_many
    from pruning_repro.store import Store
    from pruning_repro.sweep import imp_runs
    from pruning_repro.plan import study_plan
    b, st = get_bench("lenet_mnist1d", "smoke"), Store(isolated / "store")
    secs = ["appD_leave_out", "appK_examples"]
    planned = study_plan(b, secs, (0,), None, st)
    run_many(imp_runs(b, (0,), (0.0,)), st, workers=1)
    named = study_plan(b, secs, (0,), None, st)
    assert (planned["retrainings_counted"], named["retrainings_counted"]) == ("planned", "named")
    for k in ("runs", "epochs"):
        assert named["retrainings"][k] <= planned["retrainings"][k]
    assert named["retrainings"]["epochs"] > 0.7 * planned["retrainings"]["epochs"]
