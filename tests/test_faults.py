"""Fault injection: what users, data and machines do to a long study, at smoke scale in temporary folders. Each test
fails on the code before issue 15: a diverged run stored as a result, inconsistent data trained silently, unbounded
workers, damaged store files trusted or fatal forever, orphaned workers, colliding temporary names, output folders
found unwritable after the training, a read-only store refused, an analysis crashing on a legitimate outcome."""
import gzip
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import BIN, REPO, run
from pruning_repro import data as D
from pruning_repro.config import ConfigError, get_bench
from pruning_repro.imp import run_imp, run_many
from pruning_repro.store import CorruptRun, Store
from pruning_repro.train import Diverged

CLI = str(BIN / "pruning-repro")


def mnist1d_spec(levels=1, noise=0.3, seed=0, **train):
    s = get_bench("lenet_mnist1d", "smoke").run_spec(noise, seed)
    return replace(s, train=replace(s.train, **train), prune=replace(s.prune, levels=levels))


# ---- divergence ---------------------------------------------------------------------------------------------------
def test_divergence_stops_the_run_naming_run_level_and_steps(isolated):
    spec = mnist1d_spec(optimizer="sgd", lr=1e4)
    st = Store()
    with pytest.raises(Diverged, match=r"run lenet_mnist1d .*level 0: the training loss became (nan|inf).*epoch \d+ "
                                       r"\(steps \d+-\d+\)"):
        run_imp(spec, st, "cpu", progress=False, label="lenet_mnist1d diverging")
    assert st.levels_done(spec) == [] and not st.levels_done(replace(spec, prune=replace(spec.prune, levels=0)))


def test_pruning_refuses_non_finite_scores():
    from pruning_repro.config import ModelSpec
    from pruning_repro.data import INFO
    from pruning_repro.models import build_model
    from pruning_repro.prune import full_masks, prune_masks
    m = build_model(ModelSpec("lenet", width=0.1), INFO["mnist"], seed=0)
    with torch.no_grad(): m.fc_layers[0].weight[0, :5] = float("nan")
    with pytest.raises(Diverged, match="non-finite magnitude scores"):
        prune_masks(m, full_masks(m), 0.2, "magnitude")


# ---- inconsistent or unreadable data --------------------------------------------------------------------------------
def _cifar_with(root, fix):
    D.write_cifar(root, "cifar10", n_train=150, n_test=60)
    f = root / "cifar-10-batches-py" / "data_batch_1"
    e = pickle.loads(f.read_bytes())
    out = fix(e, f)                                 # bytes: the file's new content; None: `e` was changed in place
    f.write_bytes(out if isinstance(out, bytes) else pickle.dumps(e))
    return f

@pytest.mark.parametrize("fault,message", [
    (lambda e, f: e.__setitem__(b"labels", e[b"labels"][:-1]), "labels for"),
    (lambda e, f: e.__setitem__(b"data", e[b"data"].reshape(-1, 32, 32, 3)), "expected uint8 rows of 3072"),
    (lambda e, f: e.__setitem__(b"data", e[b"data"].astype(np.float32)), "expected uint8"),
    (lambda e, f: e.__setitem__(b"labels", [11] * len(e[b"labels"])), "labels range over"),
    (lambda e, f: pickle.dumps(e)[:100], "not a readable CIFAR pickle batch"),
    (lambda e, f: b"", "not a readable CIFAR pickle batch"),
])
def test_bad_cifar_files_are_named(fault, message, isolated):
    f = _cifar_with(isolated / "data", fault)
    r = run([CLI, "imp", "--bench", "resnet20_c10", "--scale", "smoke"])
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    if "range" not in message: assert str(f) in r.stderr
    assert not (isolated / "store").exists() or not any((isolated / "store").rglob("metrics.json"))


@pytest.mark.parametrize("fault,message", [
    ("short_labels", "labels for the"),
    ("truncated_images", "truncated or not an idx file"),
    ("bad_magic", "wrong magic number"),
    ("empty", "not an idx file"),
    ("truncated_gz", "cannot read"),
])
def test_bad_mnist_files_are_named_and_leave_no_cache_behind(fault, message, isolated):
    root = isolated / "data"
    D.write_idx(root, "MNIST", n_train=100, n_test=50, gz=True)
    raw = root / "MNIST" / "raw"
    name = {"short_labels": "train-labels-idx1-ubyte", "truncated_images": "train-images-idx3-ubyte",
            "bad_magic": "t10k-images-idx3-ubyte", "empty": "t10k-labels-idx1-ubyte",
            "truncated_gz": "train-images-idx3-ubyte"}[fault]
    f = raw / (name + ".gz")
    b = gzip.decompress(f.read_bytes())
    if fault == "short_labels": b = b[:4] + (99).to_bytes(4, "big") + b[8:8 + 99]
    elif fault == "truncated_images": b = b[:-100]
    elif fault == "bad_magic": b = (1234).to_bytes(4, "big") + b[4:]
    elif fault == "empty": b = b""
    f.write_bytes(gzip.compress(b)[:50] if fault == "truncated_gz" else gzip.compress(b))
    r = run([CLI, "imp", "--bench", "lenet_mnist", "--scale", "smoke"])
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert name in r.stderr
    cache = isolated / "cache"
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]        # no half-written file in the cache


def test_imagenet_val_classes_must_match_train(isolated, monkeypatch):
    from PIL import Image
    root = isolated / "data" / "imagenet"
    for split, classes in (("train", ("n01", "n02")), ("val", ("n01", "n03"))):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(root / split / c / "a.JPEG")
    with pytest.raises(ConfigError, match=r"only in train: \['n02'\]; only in val: \['n03'\]"):
        D._imagenet_folders()


# ---- parameters ------------------------------------------------------------------------------------------------------
def test_workers_are_bounded_by_the_machine(isolated):
    r = run([CLI, "sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--workers", "100000"])
    assert r.returncode == 2 and "the cores of this machine" in r.stderr
    assert not (isolated / "store").exists()


def test_two_spellings_of_a_value_are_one_run():
    b = get_bench("resnet20_c10")
    assert b.run_spec(0.1 + 0.2, 0).hash() == b.run_spec(0.3, 0).hash()
    from pruning_repro.width import width_specs
    w = list(width_specs(b, 0.3, 0).values())[2]
    assert w.model.width == 0.64 and w.hash() == b.run_spec(0.3, 0, model=replace(b.model, width=0.64),
                                                              prune=w.prune).hash()


# ---- damaged store files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated_metrics", "empty_metrics", "removed_per_example", "removed_data"])
def test_damaged_store_files_are_recomputed(damage, isolated):
    spec, st = mnist1d_spec(levels=2), Store()
    ref = run_imp(spec, st, "cpu", progress=False)
    lv = st.level_dir(spec, 1)
    if damage == "truncated_metrics": (lv / "metrics.json").write_text((lv / "metrics.json").read_text()[:40])
    elif damage == "empty_metrics": (lv / "metrics.json").write_text("{}")
    elif damage == "removed_per_example": (lv / "per_example.safetensors").unlink()
    else: (st.run_dir(spec) / "data.safetensors").unlink()
    assert not st.is_complete(spec)
    if damage.endswith("metrics"):
        with pytest.raises(CorruptRun, match=str(lv / "metrics.json")): st.metrics(spec, 1)
    again = run_imp(spec, st, "cpu", progress=False)                  # recomputes what was damaged, nothing else
    assert st.is_complete(spec) and again.test_err.tolist() == ref.test_err.tolist()
    assert st.load_extra(spec, "data")["train_ids"].numel() > 0


def test_a_damaged_shared_dense_root_is_retrained_not_copied(isolated):
    from pruning_repro.imp import dense_root
    st, a = Store(), mnist1d_spec(levels=1)
    run_imp(a, st, "cpu", progress=False)
    root = dense_root(a)
    ck = st.level_dir(root, 0) / "model.safetensors"
    ck.write_bytes(ck.read_bytes()[:200])                              # truncated checkpoint of the shared root
    edt = replace(a, prune=replace(a.prune, strategy="none"))
    res = run_imp(edt, st, "cpu", progress=False)                      # before: failed forever naming the copy
    assert len(res) == 2 and st.load_state(root, 0) and st.load_state(edt, 0)


# ---- processes and folders --------------------------------------------------------------------------------------------
def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]

def test_sigterm_stops_the_pool_workers_too(isolated):
    env = {**os.environ, "PRUNING_REPRO_PROGRESS": "0"}
    p = subprocess.Popen([CLI, "sweep", "--bench", "lenet_fashion", "--seeds", "0", "--workers", "2",
                          "--sections", "sec4_noise"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers, t0 = [], time.time()
    while time.time() - t0 < 120 and len(workers) < 2:                 # the spawned workers (and their helpers)
        workers = [c for c in _children(p.pid)]
        time.sleep(0.5)
    assert workers, p.communicate(timeout=60)
    time.sleep(3)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    time.sleep(1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and "zombie" not in
             Path(f"/proc/{w}/status").read_text().lower()]
    assert not alive, alive
    assert p.returncode != 0


def test_unwritable_figures_folder_is_found_before_training(isolated):
    r = run([CLI, "reproduce", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0",
             "--figures", "/dev/null/figures"])
    assert r.returncode == 2 and "cannot write the figures folder" in r.stderr and "Traceback" not in r.stderr
    assert not (isolated / "store").exists()                          # nothing trained


def test_a_complete_store_is_read_without_writing(isolated, monkeypatch):
    spec, st = mnist1d_spec(levels=1), Store()
    ref = run_imp(spec, st, "cpu", progress=False)
    def refuse(*a, **k): raise PermissionError("read-only file system")
    monkeypatch.setattr(Store, "lock", refuse); monkeypatch.setattr(Store, "init_run", refuse)
    assert run_imp(spec, st, "cpu", progress=False).test_err.tolist() == ref.test_err.tolist()
    assert run_many({"a": spec}, st, workers=1, device="cpu")["a"].test_err.tolist() == ref.test_err.tolist()


def test_concurrent_reports_on_one_folder_do_not_collide(isolated):
    folder = isolated / "figures" / "lenet_mnist1d_smoke"
    folder.mkdir(parents=True)
    pd.DataFrame({"noise": [0.0], "x_mean": [1.0], "x_std": [0.1]}).to_csv(folder / "table06_x.csv", index=False)
    code = ("from pruning_repro.report import write_report\nfrom pruning_repro.plots import save_table\n"
            "import pandas as pd, sys\n"
            "for i in range(40):\n"
            f"    write_report('lenet_mnist1d', {str(folder)!r})\n"
            f"    save_table(pd.DataFrame({{'a': [i]}}), {str(folder)!r}, 'tableL_demo')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert not list(folder.glob(".*tmp*"))


def test_a_failed_notebook_copy_is_not_listed_as_executed(isolated):
    from pruning_repro.report import write_report
    folder = isolated / "f"; folder.mkdir()
    (folder / "sec4_noise.failed.ipynb").write_text("{}"); (folder / "sec3_training.ipynb").write_text("{}")
    text = write_report("demo", folder).read_text()
    assert "sec3_training.ipynb" in text and "failed" not in text


# ---- legitimate outcomes -----------------------------------------------------------------------------------------------
def test_sec4_when_validation_picks_the_dense_model(isolated):
    """lenet_mnist1d smoke, seed 0, 30% noise: the validation error picks the dense model; before, §4 stopped with
    AttributeError: 'DataFrame' object has no attribute 'noise'."""
    figs = isolated / "figures"
    r = run([str(BIN / "papermill"), "nbs/sec4_noise.ipynb", str(isolated / "out.ipynb"), "-k", "python3",
             "-p", "bench", "lenet_mnist1d", "-p", "scale", "smoke", "-y", "seeds: [0]", "-y", "noise_levels: [0.3]",
             "-p", "figures_dir", str(figs), "--no-progress-bar"])
    assert r.returncode == 0, r.stderr[-3000:]
    t6 = pd.read_csv(figs / "lenet_mnist1d_smoke" / "table06_dense_vs_optimal_test_error.csv")
    if (t6.optimal_weights_remaining_mean == 100).all():
        assert "no sparse optimum" in (isolated / "out.ipynb").read_text()
