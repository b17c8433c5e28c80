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
# # Data in the on-disk formats: small files the loaders read
#
# > Writers of the torchvision layouts the loaders of `01_data` and `25_imagenet` read — MNIST's idx files, CIFAR's python pickles, ImageNet's ImageFolder tree of JPEGs — for the tests, the benchmarks and anyone checking a pipeline without the real data.

# %%
#| default_exp formats

# %% [markdown]
# The tests, the benchmarks (`bench/imagenet.py`) and anyone without the real data can make small data sets in exactly
# the formats the loaders read. These writers are the inverse of the loaders, so the real loading code runs in every
# test.

# %%
#| export
from __future__ import annotations

import gzip
import math
import pickle
from pathlib import Path

import numpy as np

from pruning_repro.data import CIFAR_LAYOUT

# %%
import tempfile
from fastcore.test import test_eq
from pruning_repro.config import DataSpec
from pruning_repro.data import load_data, _load_raw
from pruning_repro.runtime import Platform, using


# %% [markdown]
# **MNIST's idx files** (`<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`): digits whose
# brightness grows with the label, so a model can learn something. Fashion-MNIST and KMNIST share the layout.

# %%
#| export
def write_idx(root: Path, folder: str = "MNIST", n_train: int = 200, n_test: int = 100, seed: int = 0, gz: bool = False) -> Path:
    "Write a small MNIST-format (idx) data set under `root/<folder>/raw`."
    rng = np.random.default_rng(seed)
    d = Path(root) / folder / "raw"; d.mkdir(parents=True, exist_ok=True)
    def write(name, arr, magic):
        hdr = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
        data = hdr + arr.astype(np.uint8).tobytes()
        if gz:
            with gzip.open(d / (name + ".gz"), "wb") as f: f.write(data)
        else: (d / name).write_bytes(data)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 128, (n, 28, 28)) + (y[:, None, None] * 12)
        write(f"{split}-images-idx3-ubyte", x, 2051); write(f"{split}-labels-idx1-ubyte", y, 2049)
    return Path(root)


# %%
with tempfile.TemporaryDirectory() as tmp, using(Platform(data=tmp, cache=tmp + "/cache")):
    write_idx(tmp, "MNIST", n_train=60, n_test=20, gz=True)
    test_eq(sorted(p.name for p in (Path(tmp) / "MNIST" / "raw").iterdir())[0], "t10k-images-idx3-ubyte.gz")
    _load_raw.cache_clear(); m = load_data(DataSpec("mnist", n_val=10), seed=0)
    test_eq((len(m.train), len(m.val), len(m.test), m.train.x.shape[1:]), (50, 10, 20, (1, 28, 28)))
    _load_raw.cache_clear()


# %% [markdown]
# **CIFAR's python pickles** (`<root>/cifar-10-batches-py/data_batch_{1..5}, test_batch`, or CIFAR-100's `train`,
# `test`), split over the official files, with a class-dependent mean colour.

# %%
#| export
def write_cifar(root: Path, dataset: str = "cifar10", n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    "Write a small CIFAR-10/100 data set in the official python-pickle layout under `root`."
    folder, train_files, test_files, key = CIFAR_LAYOUT[dataset]
    rng = np.random.default_rng(seed)
    k = 100 if dataset == "cifar100" else 10
    d = Path(root) / folder; d.mkdir(parents=True, exist_ok=True)
    def dump(files, n):
        per = np.array_split(np.arange(n), len(files))
        for f, rows in zip(files, per):
            labels = (np.arange(len(rows)) + rows[:1].sum()) % k if len(rows) else np.array([], int)
            imgs = rng.integers(0, 256, (len(rows), 3 * 32 * 32), dtype=np.uint8)
            # class-dependent mean colour so a model can learn something
            imgs = np.clip(imgs // 2 + (labels[:, None] * (255 // k)) // 2, 0, 255).astype(np.uint8)
            with open(d / f, "wb") as fh: pickle.dump({b"data": imgs, key: labels.tolist()}, fh)
    dump(train_files, n_train); dump(test_files, n_test)
    return Path(root)


# %%
with tempfile.TemporaryDirectory() as tmp, using(Platform(data=tmp, cache=tmp + "/cache")):
    write_cifar(tmp, "cifar100", n_train=40, n_test=10)
    test_eq(sorted(p.name for p in (Path(tmp) / CIFAR_LAYOUT["cifar100"][0]).iterdir()), ["test", "train"])
    _load_raw.cache_clear(); c = load_data(DataSpec("cifar100", n_val=0), seed=0)
    test_eq((len(c.train), len(c.test), c.info.num_classes), (40, 10, 100))
    _load_raw.cache_clear()


# %% [markdown]
# **An ImageNet-like tree**, which `25_imagenet`'s pipeline reads as it reads ImageNet.
#
# ImageNet-like files: pictures with the statistics a JPEG codec cares about — smooth colour regions (a coarse random
# grid resized bicubically), mid-scale texture and fine grain — at ImageNet's typical sizes (around 500×375, some
# portrait), saved at quality 90: a 500×375 file comes out at about 100 KB, as ImageNet's average file does. With
# `odd`, the first training files of the first class are the kinds real ImageNet also holds: a grey JPEG, a CMYK JPEG
# and a PNG named `.JPEG`.

# %%
#| export
def _natural_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    "An (h, w, 3) uint8 picture: smooth colour regions + mid-scale texture + grain."
    from PIL import Image
    coarse = rng.integers(0, 256, (*rng.integers(3, 9, 2), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), np.float32)
    mid = np.clip(128 + rng.normal(0, 40, (h // 4 + 1, w // 4 + 1, 3)), 0, 255).astype(np.uint8)
    mid = np.asarray(Image.fromarray(mid).resize((w, h), Image.BILINEAR), np.float32) - 128
    return np.clip(base + mid + rng.normal(0, 14, (h, w, 3)), 0, 255).astype(np.uint8)

SIDE_SPREAD, JPEG_QUALITY = 0.2, 90     # ImageNet's photos: sides log-normal around the typical 375 x 500, quality 90

def write_imagefolder(root: Path, n_train: int = 8, n_val: int = 4, classes: int = 2, size: tuple = (375, 500),
                      seed: int = 0, odd: bool = True) -> Path:
    """Write an ImageNet-like ImageFolder data set under `root/imagenet/{train,val}/<class>/`: `n_train` and `n_val`
    JPEG files per class, sides around `size` (h, w) scaled by a log-normal factor (`SIDE_SPREAD`), one in four
    portrait; with `odd`, three files of the first class are greyscale, CMYK and PNG (all of which ImageNet holds)."""
    spread, quality = SIDE_SPREAD, JPEG_QUALITY
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in range(classes):
            d = Path(root) / "imagenet" / split / f"n{c:08d}"; d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = (max(16, int(round(s * math.exp(rng.normal(0, spread))))) for s in size)
                if rng.random() < 0.25: h, w = w, h
                img, path = Image.fromarray(_natural_image(rng, h, w)), d / f"n{c:08d}_{i}.JPEG"
                kind = ("grey", "cmyk", "png")[i] if odd and split == "train" and c == 0 and i < 3 else "rgb"
                if kind == "png": img.save(path, "PNG")
                else: img.convert({"grey": "L", "cmyk": "CMYK"}.get(kind, "RGB")).save(path, "JPEG", quality=quality)
    return Path(root)


# %%
from PIL import Image
with tempfile.TemporaryDirectory() as tmp:
    write_imagefolder(tmp, n_train=4, n_val=1, classes=2, size=(48, 64))
    _files = sorted((Path(tmp) / "imagenet" / "train" / "n00000000").iterdir())
    test_eq([Image.open(f).mode for f in _files], ["L", "CMYK", "RGB", "RGB"])   # grey, CMYK, a PNG, a photo
    test_eq(Image.open(_files[2]).format, "PNG")
    test_eq(len(list((Path(tmp) / "imagenet" / "val").rglob("*.JPEG"))), 2)
_img = _natural_image(np.random.default_rng(0), 30, 40)
test_eq((_img.shape, _img.dtype), ((30, 40, 3), np.uint8)); assert _img.std() > 20      # a picture, not a flat field
