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
from pruning_repro import formats as FM
from pruning_repro import data as D
from pruning_repro import imagenet as I
from pruning_repro.config import ConfigError, get_bench
from pruning_repro.executors import run_many
from pruning_repro.imp import run_imp
from pruning_repro.store import CorruptRun, Store
from pruning_repro.train import Diverged
from pruning_repro.runtime import Runtime
from pruning_repro.tensors import TensorSplit

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
        run_imp(spec, st, "cpu", runtime=Runtime(progress=False), label="lenet_mnist1d diverging")
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
    FM.write_cifar(root, "cifar10", n_train=150, n_test=60)
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
    FM.write_idx(root, "MNIST", n_train=100, n_test=50, gz=True)
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
        I.imagenet_folders()


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
    ref = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    lv = st.level_dir(spec, 1)
    if damage == "truncated_metrics": (lv / "metrics.json").write_text((lv / "metrics.json").read_text()[:40])
    elif damage == "empty_metrics": (lv / "metrics.json").write_text("{}")
    elif damage == "removed_per_example": (lv / "per_example.safetensors").unlink()
    else: (st.run_dir(spec) / "data.safetensors").unlink()
    assert not st.is_complete(spec)
    if damage.endswith("metrics"):
        with pytest.raises(CorruptRun, match=str(lv / "metrics.json")): st.metrics(spec, 1)
    again = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))                  # recomputes what was damaged, nothing else
    assert st.is_complete(spec) and again.test_err.tolist() == ref.test_err.tolist()
    assert st.load_extra(spec, "data")["train_ids"].numel() > 0


def test_a_damaged_shared_dense_root_is_retrained_not_copied(isolated):
    from pruning_repro.imp import dense_root
    st, a = Store(), mnist1d_spec(levels=1)
    run_imp(a, st, "cpu", runtime=Runtime(progress=False))
    root = dense_root(a)
    ck = st.level_dir(root, 0) / "model.safetensors"
    ck.write_bytes(ck.read_bytes()[:200])                              # truncated checkpoint of the shared root
    edt = replace(a, prune=replace(a.prune, strategy="none"))
    res = run_imp(edt, st, "cpu", runtime=Runtime(progress=False))                      # before: failed forever naming the copy
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
    ref = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    def refuse(*a, **k): raise PermissionError("read-only file system")
    monkeypatch.setattr(Store, "lock", refuse); monkeypatch.setattr(Store, "init_run", refuse)
    assert run_imp(spec, st, "cpu", runtime=Runtime(progress=False)).test_err.tolist() == ref.test_err.tolist()
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


# ---- issue 23: a damaged level is recomputed, whichever reader meets it -------------------------------------------------
METRICS = ["level", "density", "train_err", "val_err", "test_err", "train_loss", "val_loss", "test_loss",
           "noisy_loss", "original_loss", "epochs_total"]

def _flip(path, where=None):
    "Flip one byte of `path`: at `where` (an offset) or in the middle of the file."
    b = bytearray(path.read_bytes()); i = len(b) // 2 if where is None else where
    b[i] ^= 0x20; path.write_bytes(bytes(b))

def _tensor_offset(path, prefix):
    "The file offset of the first byte of the first tensor whose name starts with `prefix` (safetensors layout)."
    import json as _json, struct
    raw = path.read_bytes(); n = struct.unpack("<Q", raw[:8])[0]
    header = _json.loads(raw[8:8 + n])
    name = sorted(k for k in header if k.startswith(prefix))[0]
    return 8 + n + header[name]["data_offsets"][0]

@pytest.mark.parametrize("kind", ["weights", "masks", "per_example", "per_example_level0", "rewind", "rewind_weight",
                                  "data_record", "metrics_null_val_err", "metrics_nan", "snapshot"])
def test_a_flipped_byte_in_any_stored_file_ends_in_a_recomputation(kind, isolated, monkeypatch, capsys):
    """Before: `level_ok` trusted any level whose metrics.json parsed; a damaged per-example file or rewind point was
    found only by a later reader (a raw CorruptRun), `"val_err": null` moved the optimum. Now each kind is found by
    checksum and recomputed: the tables equal the undamaged store's."""
    from pruning_repro.snapshots import Snapshots
    from pruning_repro.runtime import Runtime
    spec = mnist1d_spec(levels=2)
    if kind == "rewind_weight": spec = replace(spec, prune=replace(spec.prune, rewind="weight"))
    ref = run_imp(spec, Store(isolated / "ref"), "cpu", runtime=Runtime(progress=False))[METRICS]
    st = Store()
    if kind == "snapshot":                            # a run killed in level 1, its snapshot then damaged
        calls = []
        def save_then_die(self, state):
            calls.append(self.level); orig(self, state)
            if self.level == 1 and calls.count(1) == 3: raise KeyboardInterrupt
        orig = Snapshots.save
        monkeypatch.setattr(Snapshots, "save", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            run_imp(spec, st, "cpu", runtime=Runtime(progress=False, checkpoint_min=0))
        monkeypatch.setattr(Snapshots, "save", orig)
        meta = __import__("json").loads((st.run_dir(spec) / "snapshot_001.json").read_text())
        _flip(st.run_dir(spec) / meta["file"])
        assert st.load_snapshot(spec, 1) is None
    else:
        run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
        lv1 = st.level_dir(spec, 1)
        before = st.metrics(spec, 1)["written_by"]
        if kind == "weights": _flip(lv1 / "model.safetensors", _tensor_offset(lv1 / "model.safetensors", "state."))
        elif kind == "masks": _flip(lv1 / "model.safetensors", _tensor_offset(lv1 / "model.safetensors", "mask."))
        elif kind == "per_example": _flip(lv1 / "per_example.safetensors")
        elif kind == "per_example_level0": _flip(st.level_dir(spec, 0) / "per_example.safetensors")
        elif kind.startswith("rewind"): _flip(st.run_dir(spec) / "rewind.safetensors")
        elif kind == "data_record": _flip(st.run_dir(spec) / "data.safetensors")
        else:
            m = lv1 / "metrics.json"
            m.write_text(m.read_text().replace('"val_err": ', '"val_err": null, "_was": ', 1) if kind.endswith("null")
                         else m.read_text().replace('"test_err": ', '"test_err": NaN, "_was": ', 1))
        assert not st.is_complete(spec)
    capsys.readouterr()
    again = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    said = capsys.readouterr().err
    if kind != "snapshot":                                            # the damage is said, not only cured
        assert "damaged" in said and {"weights": "model.safetensors", "masks": "model.safetensors",
                                      "data_record": "data.safetensors"}.get(kind, kind.split("_")[0]) in said, said
    assert st.is_complete(spec)
    pd.testing.assert_frame_equal(again[METRICS], ref)
    pd.testing.assert_frame_equal(st.results(spec)[METRICS], ref)
    if kind.startswith("per_example") or kind.startswith("rewind") or kind == "data_record":
        assert st.metrics(spec, 1)["written_by"] == before          # repaired without training again


def test_damaged_per_example_file_in_a_two_stage_study_is_recomputed_by_sweep_and_said_by_export(isolated):
    """Before: `sweep`/`reproduce` crashed with a raw CorruptRun from the second stage (App. D/E/K planning reads the
    per-example files), and `export` silently dropped every App. D/E/K row when one first-stage run was damaged."""
    args = ["--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "1"]
    r = run([CLI, "sweep", *args, "--sections", "appE_dense_subset", "--workers", "1"])
    assert r.returncode == 0, r.stderr[-2000:]
    ref = run([CLI, "export", *args, "--sections", "appE_dense_subset", "--out", str(isolated / "ref.csv")])
    assert ref.returncode == 0, ref.stderr[-2000:]
    full = pd.read_csv(isolated / "ref.csv")
    assert (full.algorithm == "App. E").sum() > 0
    b = get_bench("lenet_mnist1d", "smoke")
    from pruning_repro.sweep import section_noise
    spec1, st = b.run_spec(section_noise("appE_dense_subset", b, None)[0], 1), Store()
    _flip(st.level_dir(spec1, 1) / "per_example.safetensors")
    # export: says what it leaves out (seed 1's retrainings), keeps seed 0's
    r = run([CLI, "export", *args, "--sections", "appE_dense_subset", "--out", str(isolated / "part.csv")])
    assert r.returncode == 0 and "warning:" in r.stderr and "seed 1" in r.stderr and "Traceback" not in r.stderr, r.stderr
    part = pd.read_csv(isolated / "part.csv")
    assert ((part.algorithm == "App. E") & (part.seed == 0)).sum() == ((full.algorithm == "App. E") & (full.seed == 0)).sum()
    # sweep: recomputes the damaged file (no traceback), then the export is the undamaged one again
    r = run([CLI, "sweep", *args, "--sections", "appE_dense_subset", "--workers", "1"])
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert st.is_complete(spec1)
    r = run([CLI, "export", *args, "--sections", "appE_dense_subset", "--out", str(isolated / "again.csv")])
    assert r.returncode == 0 and "warning:" not in r.stderr
    cols = ["algorithm", "noise", "seed", "selected_at", "level", "test_err", "val_err", "train_loss"]
    pd.testing.assert_frame_equal(pd.read_csv(isolated / "again.csv")[cols], full[cols])
    # a requested seed that was never trained: export says so and keeps every row it has
    r = run([CLI, "export", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "1", "2",
             "--sections", "appE_dense_subset", "--out", str(isolated / "absent.csv")])
    assert r.returncode == 0 and "warning:" in r.stderr and "seed=2: not trained" in r.stderr, r.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(isolated / "absent.csv")[cols], full[cols])


def test_checksums_are_hashed_once_per_process_and_again_when_the_file_changes(tmp_path, monkeypatch):
    "A big store is not rehashed on every read: a file's digest is cached by (path, size, mtime), and a change is seen."
    from pruning_repro import store as S
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x" * 1000)
    old = time.time() - 10
    os.utime(f, (old, old))                                   # older than the clock's 2 s grain: cacheable
    calls = []
    real = S._sha256
    monkeypatch.setattr(S, "_sha256", lambda p: calls.append(p) or real(p))
    d1, d2 = S.file_digest(f), S.file_digest(f)
    assert d1 == d2 and len(calls) == 1                       # the second read hits the cache
    f.write_bytes(b"y" * 1000)                                # same size, new bytes and mtime
    os.utime(f, (old + 5, old + 5))
    assert S.file_digest(f) != d1 and len(calls) == 2         # the change is hashed again


# ---- issue 23: non-finite results are never stored ----------------------------------------------------------------------
def test_nan_evaluation_outputs_end_in_one_error_and_nothing_stored(isolated, monkeypatch):
    from pruning_repro import train as T
    real = T.evaluate
    spec = mnist1d_spec(levels=1)
    n_test = len(D.load_data(spec.data, 0).test)                      # the model's outputs on the test split: NaN
    def nan_on_test(model, split, *a, **k):
        loss, correct = real(model, split, *a, **k)
        return (loss * float("nan"), correct) if len(split) == n_test else (loss, correct)
    monkeypatch.setattr(T, "evaluate", nan_on_test)
    st = Store()
    with pytest.raises(Diverged, match=r"level 0: the evaluation gave test_loss = nan.*nothing was stored"):
        run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    assert not list(st.root.rglob("metrics.json")) and not list(st.root.rglob("rewind.safetensors"))


def test_non_finite_weights_are_not_stored(isolated, monkeypatch):
    from pruning_repro import imp as I
    real = I.state_copy
    monkeypatch.setattr(I, "state_copy", lambda m: {k: v * float("inf") if v.is_floating_point() else v
                                                    for k, v in real(m).items()})
    st = Store()
    with pytest.raises(Diverged, match=r"the weight .* holds non-finite values; nothing was stored"):
        run_imp(mnist1d_spec(levels=1), st, "cpu", runtime=Runtime(progress=False))
    assert not list(st.root.rglob("metrics.json"))


def test_metrics_are_strict_json_with_undefined_noisy_partition_as_null(isolated):
    import json
    spec, st = mnist1d_spec(levels=1, noise=0.0), Store()
    run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    def refuse(c): raise ValueError(f"bare {c} in metrics.json")
    m = json.loads((st.level_dir(spec, 0) / "metrics.json").read_text(), parse_constant=refuse)
    assert m["noisy_loss"] is None and m["noisy_err"] is None
    assert st.results(spec).noisy_loss.isna().all()            # read back as NaN, as before


@pytest.mark.parametrize("fault,message", [("empty_val", "the val split of mnist1d is empty"),
                                           ("nan_test", "the test split of mnist1d has 1 example.s. with non-finite")])
def test_empty_split_or_non_finite_inputs_are_refused_before_training(fault, message, isolated):
    from pruning_repro.data import load_data
    spec = mnist1d_spec(levels=1)
    data = load_data(spec.data, 0)
    if fault == "empty_val": data.val = TensorSplit(data.val.x[:0], data.val.y[:0], data.val.ids[:0])
    else: data.test.x[3, 0, 0] = float("nan")
    st = Store()
    with pytest.raises(ConfigError, match=message): run_imp(spec, st, "cpu", runtime=Runtime(progress=False), data=data)
    assert not st.root.exists() or not list(st.root.rglob("*.safetensors"))


# ---- issue 23: a load error is not corruption ----------------------------------------------------------------------------
def test_a_store_path_that_is_not_utf8_trains_and_reads_back(isolated):
    root = isolated / os.fsdecode(b"store-\xff\xfe")
    spec, st = mnist1d_spec(levels=1), Store(root)
    ref = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    assert st.is_complete(spec) and st.load_state(spec, 1)[0]
    files = sorted(p.name for p in Path(os.fsencode(root).decode("utf-8", "surrogateescape")).rglob("*"))
    again = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))                   # before: deleted the levels, then crashed
    assert again.test_err.tolist() == ref.test_err.tolist()
    assert sorted(p.name for p in root.rglob("*")) == files


def test_an_unreadable_stored_file_is_an_error_and_nothing_is_deleted(isolated, monkeypatch):
    from pruning_repro.store import StoreUnreadable
    spec, st = mnist1d_spec(levels=2), Store()
    run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    ck = st.level_dir(spec, 1) / "model.safetensors"
    real_read = Path.read_bytes
    def denied(self):
        if self.name == "model.safetensors" and self.parent.name == "level_001": raise PermissionError(13, "Permission denied")
        return real_read(self)
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(StoreUnreadable, match=r"cannot read the stored file .*level_001/model.safetensors.*Permission "
                                              r"denied.*nothing was deleted"):
        st.load_state(spec, 1)
    # a run that needs it (level 2 damaged: level 1's weights are read) stops with the error, deleting nothing
    (st.level_dir(spec, 2) / "metrics.json").write_text("{")
    with pytest.raises(StoreUnreadable): run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    assert ck.exists() and st.levels_done(spec) == [0, 1]       # the damaged level 2 alone is gone
    monkeypatch.undo()
    assert run_imp(spec, st, "cpu", runtime=Runtime(progress=False)).level.tolist() == [0, 1, 2]


# ---- issue 23: leftovers and waits --------------------------------------------------------------------------------------
def test_a_full_disk_leaves_no_temporary_store_file(isolated, monkeypatch):
    import errno, shutil as sh
    from pruning_repro import imp as I, store as S
    spec, st = mnist1d_spec(levels=1), Store()
    run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    def full(src, dst, *a, **k):
        Path(dst).write_bytes(b"partial"); raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sh, "copyfile", full)
    edt = replace(spec, prune=replace(spec.prune, strategy="none"))
    with pytest.raises(OSError, match="No space"): run_imp(edt, st, "cpu", runtime=Runtime(progress=False))
    assert not [p for p in st.root.rglob("*") if ".tmp" in p.name]         # before: .rewind.safetensors.<pid>.tmp
    monkeypatch.undo()
    real_fsync = os.fsync
    def full_fsync(fd): raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(S.os, "fsync", full_fsync)
    with pytest.raises(OSError, match="No space"): S._atomic_write_bytes(st.root / "x.json", b"{}")
    assert not [p for p in st.root.rglob("*") if ".tmp" in p.name]


def test_waiting_on_a_stopped_lock_holder_names_it(isolated):
    spec = get_bench("lenet_mnist1d", "smoke").run_spec(0.0, 0)
    st = Store(); st.init_run(spec)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom pruning_repro.store import Store\nfrom pruning_repro.config import get_bench\n"
                               "s = get_bench('lenet_mnist1d', 'smoke').run_spec(0.0, 0)\n"
                               "with Store(sys.argv[1]).lock(s):\n    print('held', flush=True); time.sleep(600)\n",
                               str(st.root)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGSTOP)
    err = isolated / "imp.err"
    with open(err, "w") as f:
        p = subprocess.Popen([CLI, "imp", "--bench", "lenet_mnist1d", "--scale", "smoke"], cwd=REPO, stderr=f,
                             stdout=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and "waiting for the lock" not in err.read_text(): time.sleep(0.5)
        text = err.read_text()
        assert f"held by pid {holder.pid} on " in text and "(stopped)" in text, text
    finally:
        holder.send_signal(signal.SIGCONT); holder.kill(); holder.wait()
    assert p.wait(timeout=300) == 0, err.read_text()[-2000:]
    assert st.is_complete(spec)
