"""Fault injection for data, models and plugins (issue 23, items 3, 5 and 6): a stale data cache, bad ImageNet trees,
swapped MNIST files, an unwritable cache, a model or data set that does not fit the other, and plugins whose model or
pruning strategy misbehaves. Each is one `error: ...` line and exit 2 (or, for the cache, the right images)."""
import gzip
import os
import shutil
import textwrap

import pytest
import torch

from conftest import BIN, run, tree
from pruning_repro import formats as FM
from pruning_repro import data as D
from pruning_repro.config import ConfigError, DataSpec

CLI = str(BIN / "pruning-repro")


def one_error(r, message):
    "The command failed with exit 2 and exactly one `error:` line holding `message`, without a traceback."
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-3000:]
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len([l for l in r.stderr.splitlines() if l.startswith("error:")]) == 1, r.stderr[-3000:]


# ---- the staged MNIST cache is keyed by the source files ----------------------------------------------------------
def _same_size_idx(root, seed):
    "MNIST-format .gz files whose size does not depend on the images (stored, not deflated; no gzip timestamp)."
    FM.write_idx(root, "MNIST", n_train=100, n_test=50, seed=seed, gz=True)
    for f in (root / "MNIST" / "raw").glob("*.gz"):
        f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes()), compresslevel=0, mtime=0))


def _fresh_load(monkeypatch, tmp):
    "MNIST's training images read through a cache of their own (the truth to compare with)."
    monkeypatch.setenv("PRUNING_REPRO_CACHE", str(tmp))
    D._load_raw.cache_clear()
    return D.load_raw("mnist")[0]


def test_replaced_gz_files_of_the_same_size_are_staged_again(isolated, monkeypatch):
    root = isolated / "data"
    _same_size_idx(root, seed=0)
    raw = root / "MNIST" / "raw"
    sizes = {f.name: f.stat().st_size for f in raw.iterdir()}
    old = D.load_raw("mnist")[0]
    _same_size_idx(root, seed=1)                          # other images, the same file sizes, a later mtime
    assert {f.name: f.stat().st_size for f in raw.iterdir()} == sizes
    for f in raw.iterdir(): st = f.stat(); os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = D.load_raw("mnist")[0]                          # same process, same cache folder
    assert not torch.equal(new, old)
    assert torch.equal(new, _fresh_load(monkeypatch, isolated / "fresh_cache"))


def test_two_data_roots_sharing_a_cache_each_read_their_own_images(isolated, monkeypatch):
    a, b = isolated / "data_a", isolated / "data_b"
    FM.write_idx(a, "MNIST", n_train=100, n_test=50, seed=0, gz=True)
    FM.write_idx(b, "MNIST", n_train=100, n_test=50, seed=1, gz=True)
    got = {}
    for name, root in (("a", a), ("b", b), ("a again", a)):
        monkeypatch.setenv("PRUNING_REPRO_DATA", str(root))
        D._load_raw.cache_clear()
        got[name] = D.load_raw("mnist")[0]
    assert not torch.equal(got["a"], got["b"]) and torch.equal(got["a"], got["a again"])
    monkeypatch.setenv("PRUNING_REPRO_DATA", str(b))
    assert torch.equal(got["b"], _fresh_load(monkeypatch, isolated / "fresh_cache"))


# ---- ImageNet trees ImageFolder refuses --------------------------------------------------------------------------
def _imagenet(root, train=("n01", "n02"), val=("n01", "n02"), empty=()):
    from PIL import Image
    for split, classes in (("train", train), ("val", val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for c in classes:
            (root / split / c).mkdir(parents=True)
            if f"{split}/{c}" not in empty: Image.new("RGB", (8, 8)).save(root / split / c / "a.JPEG")
            else: (root / split / c / "notes.txt").write_text("not an image")


@pytest.mark.parametrize("case,message", [
    ("empty train class", "/imagenet/train: 1 of 2 class folders hold no image (n02)"),
    ("empty val class", "/imagenet/val: 1 of 2 class folders hold no image (n01)"),
    ("empty val", "/imagenet/val holds no class folder"),
    ("no val", "ImageNet not found: no folder "),
])
def test_imagenet_empty_or_missing_folders_are_one_error(case, message, isolated):
    root = isolated / "data" / "imagenet"
    if case == "empty train class": _imagenet(root, empty=("train/n02",))
    elif case == "empty val class": _imagenet(root, empty=("val/n01",))
    elif case == "empty val": _imagenet(root, val=())
    else: _imagenet(root); shutil.rmtree(root / "val")
    before = tree(isolated)
    r = run([CLI, "imp", "--bench", "resnet50_imagenet", "--scale", "smoke", "--device", "cpu"])
    one_error(r, message)
    if case == "no val": assert f"{root}/val" in r.stderr
    assert tree(isolated) == before


# ---- swapped MNIST files -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("split,gz", [("train", True), ("t10k", True), ("train", False)])
def test_swapped_mnist_image_and_label_files_are_named(split, gz, isolated):
    root = isolated / "data"
    FM.write_idx(root, "MNIST", n_train=100, n_test=100, gz=gz)   # as many labels as images: only the kind differs
    raw, ext = root / "MNIST" / "raw", ".gz" if gz else ""
    img, lab = raw / f"{split}-images-idx3-ubyte{ext}", raw / f"{split}-labels-idx1-ubyte{ext}"
    tmp = raw / "swap"; img.rename(tmp); lab.rename(img); tmp.rename(lab)
    r = run([CLI, "imp", "--bench", "lenet_mnist", "--scale", "smoke"])
    one_error(r, f"{img}: is a label file where images were expected")
    assert "swapped" in r.stderr
    assert not (isolated / "store").exists() or not any((isolated / "store").rglob("metrics.json"))


# ---- a cache that cannot be written ------------------------------------------------------------------------------
def test_read_only_cache_folder_is_one_error(isolated):
    if os.geteuid() == 0: pytest.skip("root writes into a chmod 555 folder: see the other two cache tests")
    FM.write_idx(isolated / "data", "MNIST", n_train=100, n_test=50, gz=True)
    cache = isolated / "cache"; cache.mkdir(); cache.chmod(0o555)
    try:
        r = run([CLI, "imp", "--bench", "lenet_mnist", "--scale", "smoke"])
    finally: cache.chmod(0o755)
    one_error(r, f"cannot write the data cache {cache}")
    assert "PRUNING_REPRO_CACHE" in r.stderr


@pytest.mark.parametrize("bench", ["lenet_mnist", "lenet_mnist1d"])
def test_cache_that_is_not_a_folder_is_one_error(bench, isolated):
    "Even as root: $PRUNING_REPRO_CACHE below a regular file cannot be created."
    FM.write_idx(isolated / "data", "MNIST", n_train=100, n_test=50, gz=True)
    (isolated / "afile").write_text("x")
    cache = isolated / "afile" / "cache"
    r = run([CLI, "imp", "--bench", bench, "--scale", "smoke"], env={"PRUNING_REPRO_CACHE": str(cache)})
    one_error(r, f"cannot write the data cache {cache}")
    assert "PRUNING_REPRO_CACHE" in r.stderr
    assert not (isolated / "store").exists() or not any((isolated / "store").rglob("metrics.json"))


def test_cache_write_refused_is_one_error_naming_it(isolated, monkeypatch):
    "A write the file system refuses (as chmod 555 does for a user other than root), with nothing half-written left."
    FM.write_idx(isolated / "data", "MNIST", n_train=100, n_test=50, gz=True)
    real = D.Path.write_bytes
    def refuse(self, data):
        if str(self).startswith(str(isolated / "cache")): raise PermissionError(13, "Permission denied", str(self))
        return real(self, data)
    monkeypatch.setattr(D.Path, "write_bytes", refuse)
    with pytest.raises(ConfigError, match=r"cannot write the data cache .*cache/staged/MNIST-[0-9a-f]+/MNIST/raw: "
                                          r"Permission denied .*PRUNING_REPRO_CACHE"):
        D.check_available(DataSpec("mnist"))
    assert not [p for p in (isolated / "cache").rglob("*") if p.is_file()]


# ---- plugins: a model or a data set that does not fit, a strategy that misbehaves -----------------------------------
PLUGIN = '''
import os
import torch
from torch import nn
from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, register
from pruning_repro.data import DataInfo, register_dataset
from pruning_repro.models import register_model
from pruning_repro.prune import register_strategy

fault = os.environ["DATA_FAULT"]
dtype = {"bool_labels": torch.bool, "float_labels": torch.float32}.get(fault, torch.long)

def blobs(n):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    x = torch.randn(200, 1, 16, generator=g) + y[:, None, None].float()
    y = (y % 2).to(dtype) if dtype == torch.bool else y.to(dtype)
    return x[:150], y[:150], x[150:], y[150:]

class Pair(nn.Module):
    def __init__(self):
        super().__init__(); self.body = nn.Linear(16, 32); self.out = nn.Linear(32, 4)
    def forward(self, x):
        h = torch.relu(self.body(x.flatten(1)))
        return self.out(h), h

def factory(info, width):
    if fault == "factory_raises": raise RuntimeError("cannot find my_weights.pt")
    if fault == "tuple_forward": return Pair()
    k = 7 if fault == "seven_outputs" else info.num_classes
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, k))

def scores(model, names, context):
    p = dict(model.named_parameters())
    if fault == "scores_shape": return {n: p[n].detach().abs().flatten()[:10] for n in names}
    if fault == "scores_missing": return {names[0]: p[names[0]].detach().abs()}
    if fault == "scores_raise": raise KeyError("velocity")
    return {n: p[n].detach().abs() for n in names}

register_dataset("fd_blobs", DataInfo(4, (1, 16), (0.0,), (1.0,)), blobs)
register_model("fd_mlp", factory, output_name="3", prefers_gpu=False)
register_strategy("fd_strategy", scores)
register(Bench(name="fd_bench", data=DataSpec("fd_blobs", n_val=30), model=ModelSpec("fd_mlp"),
               train=TrainSpec(epochs=1, batch_size=32, optimizer="adam", lr=1e-3),
               prune=PruneSpec(strategy="fd_strategy", levels=1), noise_levels=(0.0,), family="M-LeNet", embedded=True))
'''


def plugin_run(isolated, fault):
    d = isolated.parent / f"{isolated.name}_plugins"      # outside the tree compared before and after
    d.mkdir(exist_ok=True)
    (d / "fd_plugin.py").write_text(textwrap.dedent(PLUGIN))
    env = {"PYTHONPATH": str(d) + os.pathsep + os.environ.get("PYTHONPATH", ""), "DATA_FAULT": fault}
    return run([CLI, "--plugins", "fd_plugin", "imp", "--bench", "fd_bench", "--device", "cpu"], env=env)


@pytest.mark.parametrize("fault,message", [
    ("seven_outputs", "error: architecture 'fd_mlp' on data set 'fd_blobs': outputs shape (2, 7) for a batch of 2 "
                      "examples; expected (2, 4)"),
    ("bool_labels", "error: data set 'fd_blobs': training labels are torch.bool; expected integer class indices 0..3"),
    ("float_labels", "error: data set 'fd_blobs': training labels are torch.float32; expected integer class indices"),
    ("tuple_forward", "error: architecture 'fd_mlp' on data set 'fd_blobs': forward() returns a tuple; expected one "
                      "tensor of logits"),
    ("factory_raises", "error: the factory of architecture 'fd_mlp' failed (width 1.0): RuntimeError: cannot find "
                       "my_weights.pt"),
])
def test_plugin_model_or_data_that_does_not_fit_is_refused_before_anything_is_written(fault, message, isolated):
    before = tree(isolated)
    r = plugin_run(isolated, fault)
    one_error(r, message)
    assert tree(isolated) == before


@pytest.mark.parametrize("fault,message", [
    ("scores_shape", "error: pruning strategy 'fd_strategy' returned scores of shape (10,) for '1.weight', whose "
                     "weights are (32, 16): one score per weight expected"),
    ("scores_missing", "error: pruning strategy 'fd_strategy' returned no scores for 1 of the 2 prunable tensors "
                       "(3.weight)"),
    ("scores_raise", "error: pruning strategy 'fd_strategy' failed: KeyError: 'velocity'"),
])
def test_plugin_strategy_with_bad_scores_is_one_error_before_the_dense_level(fault, message, isolated):
    r = plugin_run(isolated, fault)
    one_error(r, message)
    store = isolated / "store"                            # found before the dense level trained: nothing stored
    assert not list(store.rglob("metrics.json"))
