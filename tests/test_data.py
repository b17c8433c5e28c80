"""Data loaders through the real code: tiny files in torchvision's on-disk formats, the real Fashion-MNIST from
Debian, generated MNIST-1D; seeded splits and label noise; clear messages for missing data."""
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_repro import data as D
from pruning_repro.config import ConfigError, DataSpec, ModelSpec
from pruning_repro.models import build_model
from pruning_repro.noise import add_label_noise
from pruning_repro.tensors import crop_flip


def test_cifar10_and_100_roundtrip(tiny_cifar):
    d = D.load_data(DataSpec("cifar10", n_val=30, noise=0.3, augment=True), seed=1)
    assert (len(d.train), len(d.val), len(d.test)) == (120, 30, 60)
    assert d.train.x.shape[1:] == (3, 32, 32) and d.train.x.dtype == torch.float32
    assert int(d.noisy.sum()) == 36 and bool((d.train.y[d.noisy] != d.clean_y[d.noisy]).all())
    assert set(d.train.ids.tolist()).isdisjoint(d.val.ids.tolist())
    # pixel values survive the round trip: undo the normalisation of one image
    raw = D._load_cifar("cifar10")[0][d.train.ids[0]].float() / 255
    info = D.INFO["cifar10"]
    back = d.train.x[0] * torch.tensor(info.std).view(3, 1, 1) + torch.tensor(info.mean).view(3, 1, 1)
    assert torch.allclose(back, raw, atol=1e-5)
    c100 = D.load_data(DataSpec("cifar100", n_val=30), seed=0)
    assert c100.info.num_classes == 100 and int(c100.train.y.max()) < 100


def test_split_and_noise_depend_on_seed_only(tiny_cifar):
    a = D.load_data(DataSpec("cifar10", n_val=30, noise=0.2), seed=0)
    b = D.load_data(DataSpec("cifar10", n_val=30, noise=0.2), seed=0)
    c = D.load_data(DataSpec("cifar10", n_val=30, noise=0.2), seed=1)
    assert torch.equal(a.val.ids, b.val.ids) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.ids, c.val.ids)


def test_crop_flip_batch_keeps_content():
    x = torch.randn(64, 3, 32, 32)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # a 4-pixel crop keeps the central 24x24 of every image (possibly flipped, shifted by <= 4)
    hits = 0
    for i in range(64):
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                for img in (out[i], out[i].flip(-1)):
                    win = img[:, 4 + dy:28 + dy, 4 + dx:28 + dx]
                    if torch.equal(win, x[i, :, 4:28, 4:28]): hits += 1
    assert hits >= 64


def test_mnist_idx_gz_through_torchvision(tiny_mnist):
    d = D.load_data(DataSpec("mnist", n_val=100, n_train=300, n_test=50), seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (300, 100, 50)
    assert d.train.x.shape[1:] == (1, 28, 28)


@pytest.mark.skipif(not (D.FASHION_SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is installed by `make setup`")
def test_fashion_mnist_from_debian():
    d = D.load_data(DataSpec("fashion", n_val=2000), seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (58_000, 2000, 10_000)
    assert torch.bincount(d.test.y).tolist() == [1000] * 10      # the real test set: 1,000 per class
    assert abs(float(d.train.x.mean())) < 0.05 and abs(float(d.train.x.std()) - 1) < 0.05


def test_mnist1d_generated_not_downloaded():
    d = D.load_data(DataSpec("mnist1d", n_val=100, n_generated=1000), seed=0)
    assert (len(d.train) + len(d.val), len(d.test)) == (800, 200)
    assert d.train.x.shape[1:] == (1, 40)
    assert (D.cache_dir() / "mnist1d_1000_seed42.pt").exists()


def test_imagenet_imagefolder(isolated):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for c in ("n01", "n02"):
            p = isolated / "data" / "imagenet" / split / c
            p.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(p / f"{i}.JPEG")
    d = D.load_data(DataSpec("imagenet", n_val=2, noise=0.5), seed=0)
    d.train.workers = d.val.workers = d.test.workers = 0
    assert (len(d.train), len(d.val), len(d.test)) == (10, 2, 4)
    assert int(d.noisy.sum()) == 5
    xb, yb, idx = next(d.train.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert xb.shape == (4, 3, 224, 224) and torch.equal(yb, d.train.y[idx])
    info = D.DataInfo(2, (3, 224, 224), (0.,) * 3, (1.,) * 3)
    assert build_model(ModelSpec("resnet50", width=0.125), info).eval()(xb).shape == (4, 2)


@pytest.mark.parametrize("dataset,expect", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
                                            ("mnist", "MNIST/raw/train-images-idx3-ubyte"), ("imagenet", "imagenet")])
def test_missing_data_names_the_files(dataset, expect, isolated):
    with pytest.raises(D.DataMissing, match=expect.replace("/", ".")):
        D.check_available(DataSpec(dataset))
    assert not (isolated / "data").exists()   # nothing created, nothing downloaded


def test_noise_exact_never_same_label_100_classes():
    y = torch.arange(100).repeat(48)
    for p in (0.15, 0.3, 0.6):
        ny, m = add_label_noise(y, p, 100, seed=5)
        assert int(m.sum()) == round(p * len(y)) and bool((ny[m] != y[m]).all()) and bool((ny[~m] == y[~m]).all())
    with pytest.raises(ConfigError): add_label_noise(y, -0.1, 100, 0)


def test_mnist1d_generated_by_two_processes_at_once(isolated):
    "Parallel workers with an empty cache both generate MNIST-1D; each write goes to its own temporary file."
    import subprocess, sys
    code = "from pruning_repro.data import _load_mnist1d; print(_load_mnist1d(600)[0].shape)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert len({o[0] for o in outs}) == 1
    assert [p.name for p in (isolated / "cache").iterdir()] == ["mnist1d_600_seed42.pt"]   # no temporary left
