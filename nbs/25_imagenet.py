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

# %%

# %% [markdown]
# # ImageNet: batches of JPEG files decoded in worker processes
#
# > ResNet-50's ImageNet (Table 1), streamed from its files in whole uint8 batches with random-resized 224² crops and flips.

# %%
#| default_exp imagenet

# %% [markdown]
# The paper trains ResNet-50 on ImageNet (Table 1: 90 epochs, batch 768, SGD) with the standard hyperparameters of
# its precedents (Frankle and Carbin; Frankle et al.; App. B.2). App. B.1: ImageNet "contains 1,281,167 images in
# 1,000 classes. We again randomly draw 50,000 images as validation set [...] We use all 50,000 original test images
# as our test set" — the official validation images, since ImageNet's test labels are not public. The paper names no
# augmentation; its precedents use ImageNet's standard one, implemented here: for training a random-resized crop
# (area 8–100 %, aspect ratio 3/4–4/3) resized to 224×224 and a horizontal flip; for evaluation the shorter side
# resized to 256 and the centre 224×224.
#
# Why this pipeline does not hold the data in memory as `data` does for MNIST or CIFAR (one normalised tensor, a batch
# an index tensor): the training set is 1.28 million JPEG files of about 110 KB each, some 140 GB; decoded at 224² it
# would be 193 GB as uint8 (771 GB as float32), and the random-resized crop is drawn afresh from the *whole* image at
# every epoch, so no fixed tensor of crops can stand in for the files. Every pass therefore reads and decodes the
# files, and the pipeline below is built so that decoding keeps up with the GPU: worker processes decode whole
# batches, uint8 travels, the augmentation is drawn from the pass's plan.
#
# `data.load_data` hands a run on ImageNet to `imagenet_data` (this module imports `data`, so `data` imports it inside
# that function); its splits, `ImageFolderSplit`, speak the split protocol of `tensors.TensorSplit`.

# %%
#| export
from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from pruning_repro.config import ConfigError, DataSpec
from pruning_repro.data import INFO, Data, DataError, DataInfo, DataMissing, data_root, draw_rows
from pruning_repro.runtime import DECODES, platform

IMAGENET_CROP, IMAGENET_RESIZE = 224, 256   # training/evaluation crop side, evaluation shorter side before the crop

# %%
#| hide
import tempfile
from fastcore.test import test_eq, test_fail
from pruning_repro.data import load_data
from pruning_repro.formats import write_imagefolder
from pruning_repro.runtime import Platform, using


# %% [markdown]
# ## Whole batches decoded from JPEG files
#
# ImageNet does not fit in memory: every pass decodes 1.28 million JPEG files (about 110 KB each). ResNet-50 at batch
# 768 (Table 1) consumes a few thousand images a second on one modern GPU, so the input pipeline, not the model,
# decides the speed unless it is built for it. The split here follows five rules:
#
# * **a worker makes a whole batch.** The loader's sampler hands out one unit of work per batch (its positions and
#   how to transform them); a worker decodes and crops every image of it into one preallocated tensor. One message per
#   batch instead of one per image, and no collation in the main process;
# * **uint8 travels, floats are made on the device.** A 224² RGB image is 150 KB as uint8 and 602 KB as float32:
#   batches cross the worker → main process → GPU path at a quarter of the bytes, in pinned memory (on CUDA) with one
#   `non_blocking` copy per step; the conversion to float and the normalisation run on the device;
# * **decoding with libjpeg-turbo** (`torchvision.io.decode_jpeg`), grey and CMYK files converted to RGB, the odd PNG
#   saved as `.JPEG` read by `decode_image`; the crop is resized on uint8 by torch's antialiased bilinear kernel
#   (PIL's algorithm, within one grey level of PIL, several times faster);
# * **the augmentation is drawn from the plan, not from the workers.** A pass is planned before its first batch
#   (`plan`: the order and one `aug_seed`); the crop and flip of the example at position `j` of global batch `b` come
#   from a random stream seeded by `(aug_seed, b, j)`. The stream is therefore the same with 0 or 16 workers, with or
#   without prefetching, resumed at any batch, and split over data-parallel ranks (`shard`);
# * **persistent workers sized from the job's allocation.** One `DataLoader` per split, created on first use and
#   kept with its worker processes; the number of workers is what this rank may use of the CPUs the job was given
#   (`os.sched_getaffinity`, which Slurm's cgroups and the local pool's pinning both restrict), not the node's count.
#
# On a CUDA device the split can also decode on the GPU (nvJPEG): the workers then only read the files' bytes, and the
# main process decodes the batch with one `decode_jpeg(list, device=...)` call and crops on the GPU (selected by
# `decode="gpu"`, or the platform's `decode`: `$PRUNING_REPRO_DECODE=gpu`; the default `auto` uses it on CUDA only). Its pixels may differ from
# libjpeg-turbo's by a few grey levels; its crops and flips are the same.

# %%
#| export
def loader_workers(environ=None) -> int:
    """Loader worker processes for one rank: the platform's `loader_workers` when given (`runtime.Platform`,
    `$PRUNING_REPRO_LOADER_WORKERS`), else the CPUs this process may run on, minus one for the main process — divided
    first by the ranks on this node (`LOCAL_WORLD_SIZE`, default 1) when the ranks share those CPUs (torchrun, an
    unbound srun), not when Slurm bound this task to its own share (its affinity is at most `SLURM_CPUS_PER_TASK`, or
    srun set a CPU mask: `SLURM_CPU_BIND_TYPE`). Those three are facts the launcher and Slurm set for this process,
    read in it (`environ`: the process's environment), not settings."""
    forced = platform().loader_workers
    if forced is not None: return forced
    e = os.environ if environ is None else environ
    def fact(name, default):
        try: return int(e.get(name) or default)
        except ValueError: return default       # a launcher's variable that is not a count: as if unset
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_task = fact("SLURM_CPUS_PER_TASK", 0)
    bound = (per_task and cpus <= per_task) or any(
        w in e.get("SLURM_CPU_BIND_TYPE", "") for w in ("mask_cpu", "map_cpu", "map_ldom", "mask_ldom"))
    return max(cpus // (1 if bound else max(fact("LOCAL_WORLD_SIZE", 1), 1)) - 1, 0)


# %% [markdown]
# Here the CPUs this process may use are the machine's; four ranks per node share them — unless Slurm bound this task
# to its own CPUs (affinity within `SLURM_CPUS_PER_TASK`: 11 workers for a rank of 12 CPUs, not 2); the variable
# overrides (the platform's `loader_workers`).

# %%
_cpus = len(os.sched_getaffinity(0))
with using(Platform()):
    test_eq(loader_workers({}), max(_cpus - 1, 0))
    test_eq(loader_workers({"LOCAL_WORLD_SIZE": "4"}), max(_cpus // 4 - 1, 0))
    test_eq(loader_workers({"LOCAL_WORLD_SIZE": "4", "SLURM_CPUS_PER_TASK": str(_cpus)}), max(_cpus - 1, 0))  # bound
with using(Platform(loader_workers=3)): test_eq(loader_workers({"LOCAL_WORLD_SIZE": "4"}), 3)


# %% [markdown]
# Decoding. A JPEG starts with the bytes `FF D8`; anything else goes to torchvision's general decoder. torchvision
# 0.29 deprecates its decoders in favour of TorchCodec (not a dependency here); the warning is silenced around each call.

# %%
#| export
def _is_jpeg(data: torch.Tensor) -> bool: return data.numel() >= 2 and bool(data[0] == 0xFF) and bool(data[1] == 0xD8)

def decode_rgb(data: torch.Tensor) -> torch.Tensor:
    "An image file's bytes (uint8, 1-D, CPU) as uint8 RGB (3, H, W): libjpeg-turbo for JPEGs, else `decode_image`."
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if _is_jpeg(data): return decode_jpeg(data, mode=ImageReadMode.RGB)
        return decode_image(data, mode=ImageReadMode.RGB)

def _read(path) -> torch.Tensor:
    with open(path, "rb") as f: raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)


# %% [markdown]
# A grey JPEG and a PNG both come out as three channels, with the pixels PIL reads:

# %%
import io
from PIL import Image
_g = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
for _fmt, _mode in (("JPEG", "L"), ("PNG", "RGB"), ("JPEG", "CMYK")):
    _b = io.BytesIO(); Image.fromarray(_g).convert(_mode).save(_b, _fmt, quality=95)
    _img = decode_rgb(torch.frombuffer(bytearray(_b.getvalue()), dtype=torch.uint8))
    _pil = torch.from_numpy(np.asarray(Image.open(io.BytesIO(_b.getvalue())).convert("RGB"))).permute(2, 0, 1)
    test_eq((_img.shape, _img.dtype), ((3, 20, 30), torch.uint8))
    assert (_img.int() - _pil.int()).abs().max() <= 1, _fmt


# %% [markdown]
# The crop. `rrc_params` is torchvision's `RandomResizedCrop.get_params` (scale 0.08–1, aspect ratio 3/4–4/3, ten
# attempts, then a centre crop clamped to the ratio range) with its random numbers given as an array: 10 attempts × 4
# uniforms (area, log-ratio, top, left). `aug_draws` makes the 41 uniforms of one example (the 41st decides the flip)
# from `(aug_seed, batch, position)` through NumPy's `SeedSequence`, so any process computes the same ones.

# %%
#| export
def rrc_params(u: np.ndarray, height: int, width: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    "`(top, left, h, w)` of a RandomResizedCrop of a `height`×`width` image, from uniforms `u` shaped (10, 4)."
    area, (lo, hi) = height * width, (math.log(ratio[0]), math.log(ratio[1]))
    for a, r, t, l in u:
        target = area * (scale[0] + a * (scale[1] - scale[0]))
        aspect = math.exp(lo + r * (hi - lo))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(t * (height - h + 1)), int(l * (width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio): w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio): h, w = height, int(round(height * max(ratio)))
    else: h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w

def aug_draws(aug_seed: int, batch: int, position: int) -> np.ndarray:
    "The 41 uniforms of the example at `position` of global batch `batch` of a pass planned with `aug_seed`."
    return np.random.default_rng([int(aug_seed) % 2 ** 64, int(batch), int(position)]).random(41)


# %% [markdown]
# Crops lie inside the image with area and aspect ratio in range; an image too thin for any attempt gets torchvision's
# own fallback; the draws depend on the three numbers and nothing else.

# %%
from torchvision import transforms as _T
for _k in range(200):
    _u = aug_draws(7, 3, _k)
    _t, _l, _h, _w = rrc_params(_u[:40].reshape(10, 4), 375, 500)
    assert 0 <= _t <= 375 - _h and 0 <= _l <= 500 - _w
    assert 0.08 * 0.9 <= _h * _w / (375 * 500) <= 1 and 3 / 4 * 0.9 <= _w / _h <= 4 / 3 * 1.1
test_eq(rrc_params(np.zeros((10, 4)), 10, 1000), _T.RandomResizedCrop.get_params(torch.zeros(3, 10, 1000), (0.08, 1), (3 / 4, 4 / 3)))
test_eq(aug_draws(7, 3, 5), aug_draws(7, 3, 5)); assert not np.array_equal(aug_draws(7, 3, 5), aug_draws(7, 4, 5))


# %% [markdown]
# The two views, on uint8 tensors of any device: training = the crop resized to 224² (bilinear, antialiased), flipped
# when the 41st draw is below ½; evaluation = shorter side resized to 256, centre 224² — exactly torchvision's
# (v2) transforms on uint8 tensors.

# %%
#| export
def train_view(img: torch.Tensor, u: np.ndarray, size: int = IMAGENET_CROP) -> torch.Tensor:
    "RandomResizedCrop(`size`) + horizontal flip of a uint8 (3, H, W) image, the randomness taken from `u` (41 uniforms)."
    from torchvision.transforms.v2 import functional as TF
    t, l, h, w = rrc_params(u[:40].reshape(10, 4), img.shape[-2], img.shape[-1])
    out = TF.resized_crop(img, t, l, h, w, [size, size], antialias=True)
    return out.flip(-1) if u[40] < 0.5 else out

def eval_view(img: torch.Tensor, resize: int = IMAGENET_RESIZE, size: int = IMAGENET_CROP) -> torch.Tensor:
    "Resize(`resize`) (shorter side, antialiased) + CenterCrop(`size`) of a uint8 (3, H, W) image."
    from torchvision.transforms.v2 import functional as TF
    return TF.center_crop(TF.resize(img, [resize], antialias=True), [size, size])


# %%
from torchvision.transforms import v2 as _T2
_img = torch.arange(3 * 300 * 400, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, 300, 400)
test_eq(train_view(_img, aug_draws(0, 0, 0)).shape, (3, 224, 224))
test_eq(eval_view(_img), _T2.CenterCrop(224)(_T2.Resize(256)(_img)))
_u = np.zeros(41); _u[:40] = 0.99; _u[40] = 0.2                      # first attempt fits: the flipped crop
test_eq(train_view(_img, _u), _T2.functional.resized_crop(_img, *rrc_params(_u[:40].reshape(10, 4), 300, 400), [224, 224]).flip(-1))


# %% [markdown]
# What a worker does with one unit of work: read each file, decode, take the view, write it into the batch tensor
# (allocated in shared memory inside a worker, so sending it to the main process copies nothing); a file that does
# not decode raises `DataError` naming it. With GPU decoding a worker only reads: the batch's bytes concatenated,
# with their lengths.

# %%
#| export
def load_batch(paths, positions, batch: int, offsets, aug_seed: int | None, augment: bool) -> torch.Tensor:
    """uint8 (n, 3, 224, 224) of the files `paths[positions]`: the training view of the example at `offsets[k]` of
    global batch `batch` (draws from `aug_seed`), or the evaluation view."""
    out = torch.empty((len(positions), 3, IMAGENET_CROP, IMAGENET_CROP), dtype=torch.uint8)
    if torch.utils.data.get_worker_info() is not None: out.share_memory_()
    for k, p in enumerate(positions):
        try: img = decode_rgb(_read(paths[p]))
        except (RuntimeError, OSError) as e:
            raise DataError(f"{os.fsdecode(paths[p])}: not a readable image ({type(e).__name__}: {e})") from None
        out[k] = train_view(img, aug_draws(aug_seed, batch, offsets[k])) if augment else eval_view(img)
    return out

def read_batch(paths, positions) -> tuple[torch.Tensor, torch.Tensor]:
    "The files `paths[positions]` as one uint8 tensor of their concatenated bytes and their lengths."
    raws = [_read(paths[p]) for p in positions]
    lengths = torch.tensor([len(r) for r in raws], dtype=torch.long)
    return (torch.cat(raws) if raws else torch.empty(0, dtype=torch.uint8)), lengths

class _BatchFiles(torch.utils.data.Dataset):
    "The loader's data set: indexed by a unit of work (see `_Works`), it returns a whole batch."
    def __init__(self, paths: np.ndarray): self.paths = paths     # bytes array: no per-path refcounts in the workers
    def __getitem__(self, work):
        pos, b, offsets, seed, augment, raw = work
        payload = read_batch(self.paths, pos) if raw else load_batch(self.paths, pos, b, offsets, seed, augment)
        return payload, torch.from_numpy(pos), b, torch.from_numpy(offsets)


# %%
with tempfile.TemporaryDirectory() as tmp:
    _paths = np.array([os.fsencode(f"{tmp}/{k}.JPEG") for k in range(3)])
    for _k in range(2): Image.fromarray(np.full((30 + 10 * _k, 50, 3), 50 * _k, np.uint8)).save(_paths[_k], quality=95)
    open(_paths[2], "wb").write(b"not an image")
    _x = load_batch(_paths, np.array([1, 0]), 0, np.array([0, 1]), None, False)
    test_eq((_x.shape, _x.dtype), ((2, 3, 224, 224), torch.uint8))
    test_eq(_x[:, 0, 100, 100], torch.tensor([50, 0], dtype=torch.uint8))
    _flat, _n = read_batch(_paths, [0, 1])
    test_eq((len(_flat), _n.tolist()), (sum(os.path.getsize(p) for p in _paths[:2]), [os.path.getsize(p) for p in _paths[:2]]))
    test_fail(lambda: load_batch(_paths, [2], 0, [0], None, False), contains="2.JPEG: not a readable image")


# %% [markdown]
# The work of a pass, set before each `iter()` of the persistent loader: global batch `b` is `order[b·B:(b+1)·B]`;
# with `shard=(rank, world)` this rank takes its contiguous part `tensor_split(batch, world)[rank]` (possibly empty),
# keeping each example's offset in the *global* batch, so its crop is the one a single process would draw.

# %%
#| export
class _Works(torch.utils.data.Sampler):
    "Units of work `(positions, batch, offsets, aug_seed, augment, raw)` for global batches start, start+1, ..."
    def __init__(self): self.set(torch.arange(0), 1)
    def set(self, order, batch_size, start=0, shard=None, seed=0, augment=False, raw=False):
        self.order, self.bs, self.start, self.shard = order.numpy(), batch_size, start, shard or (0, 1)
        self.seed, self.augment, self.raw = seed, augment, raw
    def __len__(self): return max(-(-len(self.order) // self.bs) - self.start, 0)
    def __iter__(self):
        rank, world = self.shard
        for b in range(self.start, self.start + len(self)):
            offsets = np.array_split(np.arange(len(self.order[b * self.bs:(b + 1) * self.bs])), world)[rank]
            yield self.order[b * self.bs + offsets], b, offsets, self.seed, self.augment, self.raw


# %%
_w = _Works(); _w.set(torch.arange(10), 4, start=1, shard=(1, 2))
test_eq([(p.tolist(), b, o.tolist()) for p, b, o, *_ in _w], [([6, 7], 1, [2, 3]), ([9], 2, [1])])
test_eq([np.array_split(np.arange(n), 3)[r].tolist() for n, r in ((2, 2), (7, 0))],
        [torch.tensor_split(torch.arange(n), 3)[r].tolist() for n, r in ((2, 2), (7, 0))])   # the same split as torch

# %% [markdown]
# GPU decoding (CUDA only; nvJPEG itself is not exercised by the tests of this CPU machine): the batch's JPEGs in one
# nvJPEG call, and only what nvJPEG cannot take by libjpeg-turbo on the CPU. A CMYK/YCCK JPEG (four components:
# ImageNet's training set has 22) is recognised from its frame header and never sent to nvJPEG; any other file the
# batched call refuses makes it retry the batch's JPEGs one by one on the GPU, so one bad file costs the batch one
# call per image, not a CPU decode of every image. The images come back in the batch's order.

# %%
#| export
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}   # start-of-frame markers

def jpeg_components(data: torch.Tensor) -> int | None:
    "The number of colour components in a JPEG's frame header (1 grey, 3 YCbCr, 4 CMYK/YCCK); None if not found."
    a, i = data.numpy(), 2
    while i + 9 < len(a):
        if a[i] != 0xFF: return None
        m = int(a[i + 1])
        if m == 0xFF: i += 1; continue                                   # fill byte
        if m in (0x01, *range(0xD0, 0xD8)): i += 2; continue             # markers without a length
        if m in _SOF: return int(a[i + 9])
        if m in (0xD9, 0xDA): return None                                # end of image / scan before any frame
        i += 2 + (int(a[i + 2]) << 8 | int(a[i + 3]))
    return None

def _nvjpeg(device):
    "The batched GPU decoder: a list of JPEG bytes (CPU) → uint8 RGB images on `device` (one nvJPEG call)."
    from torchvision.io import ImageReadMode, decode_jpeg
    def decode(datas):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
    return decode

def decode_on(datas: list[torch.Tensor], device, fast=None) -> list[torch.Tensor]:
    """uint8 RGB images on `device` of the files' bytes `datas`, in their order. `fast`: a batched decoder (list of
    bytes → list of images on `device`; default nvJPEG when `device` is CUDA, none elsewhere) for the JPEGs of one or
    three components; if a call of it raises, each of those is retried alone, and whatever it refuses — and every
    other file — is decoded on the CPU (`decode_rgb`) and moved to `device`."""
    if fast is None and torch.device(device).type == "cuda": fast = _nvjpeg(device)
    out = [None] * len(datas)
    todo = [k for k, d in enumerate(datas) if _is_jpeg(d) and jpeg_components(d) in (1, 3, None)] if fast else []
    if todo:
        try: imgs = list(fast([datas[k] for k in todo]))
        except RuntimeError:                                              # one file failed the call: one by one
            imgs = []
            for k in todo:
                try: imgs.append(fast([datas[k]])[0])
                except RuntimeError: imgs.append(None)
        for k, img in zip(todo, imgs): out[k] = img
    return [img if img is not None else decode_rgb(d).to(device) for img, d in zip(out, datas)]


# %% [markdown]
# The frame header read: three components for a colour JPEG, one for a grey one, four for CMYK, None for a PNG. A
# batched decoder that refuses one file of a batch: that file alone is decoded on the CPU, the others by the fast
# decoder, in the batch's order; the CMYK file never reaches it.

# %%
def _jpeg(mode):
    _b = io.BytesIO(); Image.fromarray(_g).convert(mode).save(_b, "JPEG", quality=95)
    return torch.frombuffer(bytearray(_b.getvalue()), dtype=torch.uint8)
_b = io.BytesIO(); Image.fromarray(_g).save(_b, "PNG")
_png = torch.frombuffer(bytearray(_b.getvalue()), dtype=torch.uint8)
test_eq([jpeg_components(d) for d in (_jpeg("RGB"), _jpeg("L"), _jpeg("CMYK"), _png)], [3, 1, 4, None])
_seen = []
def _fake(datas):
    _seen.append(len(datas))
    if any(d is _bad for d in datas): raise RuntimeError("nvjpeg refuses this file")
    return [torch.full((3, 1, 1), 7, dtype=torch.uint8) for _ in datas]
_bad, _files = _jpeg("RGB"), [_jpeg("RGB"), _jpeg("CMYK"), _jpeg("L"), _png]
_files.insert(2, _bad)
_imgs = decode_on(_files, "cpu", fast=_fake)
test_eq(_seen, [3, 1, 1, 1])                    # the batch of the 3 JPEGs it may take, then each alone
test_eq([i.shape[1:] == (1, 1) for i in _imgs], [True, False, False, True, False])   # fast: the 1st, 4th
test_eq(_imgs[2], decode_rgb(_bad))
test_eq(decode_on([_png], "cpu")[0].shape, (3, 20, 30))


# %% [markdown]
# Decoding in the background. GPU decoding runs in the main process, so done between steps it would leave the GPU idle
# while Python crops a batch image by image (768 crops for ResNet-50's batch). `_Prefetch` iterates the batches in a
# thread, at most `depth` ahead of the consumer (a bounded queue): on CUDA on its own stream, each batch handed over
# with an event the consumer's stream waits on (and `record_stream`, so the allocator keeps the batch's memory until
# the consumer's stream is done with it). Its batches are the synchronous iteration's, in the same order; an
# exception in the thread is raised in the consumer at that batch; `close()` stops the thread and waits for it.

# %%
#| export
class _Prefetch:
    "Iterate `items` in a background thread, at most `depth` items ahead (see above); tensors in items are on `device`."
    def __init__(self, items, device, depth: int = 1):
        self.device, self._q, self._stop = torch.device(device), queue.Queue(maxsize=depth), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True, name="pruning_repro-prefetch")
        self._thread.start()

    def _run(self, items):
        cuda = self.device.type == "cuda"
        try:
            if cuda: torch.cuda.set_device(self.device)             # the current device is per thread
            with torch.cuda.stream(torch.cuda.Stream(self.device)) if cuda else contextlib.nullcontext():
                for item in items:
                    ev = torch.cuda.Event() if cuda else None
                    if cuda: ev.record()
                    if not self._put(("item", item, ev)): return
            self._put(("end", None, None))
        except BaseException as e: self._put(("error", e, None))
        finally:
            if hasattr(items, "close"): items.close()               # a generator: its loader iterator ends here

    def _put(self, msg) -> bool:
        "Queue `msg` unless the consumer closed: False then."
        while not self._stop.is_set():
            try: self._q.put(msg, timeout=0.05); return True
            except queue.Full: pass
        return False

    def __iter__(self):
        try:
            while True:
                kind, item, ev = self._q.get()
                if kind == "end": return
                if kind == "error": raise item
                if ev is not None:
                    s = torch.cuda.current_stream(self.device)
                    s.wait_event(ev)
                    for t in item:
                        if isinstance(t, torch.Tensor) and t.is_cuda: t.record_stream(s)
                yield item
        finally: self.close()

    def close(self) -> None:
        "Stop the thread (it finishes the item it is making) and wait for it."
        self._stop.set()
        self._thread.join()


# %% [markdown]
# The same items in the same order as iterating directly; the thread's error is the consumer's; closing early stops
# the thread with the rest of its source unread.

# %%
_made = []
def _items(n, fail_at=None):
    for k in range(n):
        if k == fail_at: raise DataError(f"item {k} is broken")
        _made.append(k); yield (torch.full((2,), k), k)
test_eq([t[1] for t in _Prefetch(_items(5), "cpu")], list(range(5)))
_it = iter(_Prefetch(_items(5, fail_at=3), "cpu")); test_eq([next(_it)[1] for _ in range(3)], [0, 1, 2])
test_fail(lambda: next(_it), contains="item 3 is broken")
_made.clear(); _p = _Prefetch(_items(100), "cpu"); _it = iter(_p); next(_it); _p.close()
assert not _p._thread.is_alive() and len(_made) <= 3, _made


# %% [markdown]
# The split. Its protocol is the one the training loop uses for every split kind:
#
# * `len(split)`, `split.y` (labels used, CPU), `split.ids` (stable ids, CPU), `split.augment`, `split.to(device)`;
# * `split.plan(shuffle, generator)` → `{"order", "aug_seed"}`: everything a pass draws, as CPU tensors (saved in a
#   checkpoint to resume mid-epoch); nothing is drawn later;
# * `split.iterate(plan, batch_size, generator=None, augment=None, start=0, shard=None)` yields `(x, y, idx)` for
#   global batches `start, start+1, ...`: `x` float32 normalised on the device, `y` on the device, `idx` the
#   positions in the split (on the device). A plan may hold only `"order"` (any positions) for unaugmented passes;
# * `split.batches(batch_size, shuffle, generator, augment, shard)` = `iterate(plan(shuffle, generator), ...)`;
# * `split.images(positions)`: normalised evaluation views on the CPU, decoded in this process (App. K's figures).
#
# First how a pass runs. `iterate` validates the request, takes an idle loader (or builds one), sets its work and
# turns each uint8 batch into the model's input on the device. The generator is accepted for the protocol's sake and
# never drawn from. A pass holds at most `2 × workers` batches in flight (PyTorch's default prefetch), whatever the
# batch size. A loader serves one pass at a time; a pass started while another of the same split is still open gets
# a second loader. With GPU decoding, a background thread (`_Prefetch`, its own CUDA stream) decodes and crops batch
# i+1 while the model trains on batch i, one batch ahead at most, instead of the training thread doing it between
# steps.

# %%
#| export
class _BatchStream:
    "The passes of an ImageFolder split (the methods `ImageFolderSplit` inherits; its data are defined there)."
    def iterate(self, plan: dict, batch_size: int, generator: torch.Generator | None = None,
                augment: bool | None = None, start: int = 0, shard: tuple[int, int] | None = None):
        "Yield `(x, y, idx)` of global batches `start, start+1, ...` of `plan` (see the protocol above)."
        aug = self.augment if augment is None else bool(augment)
        order = torch.as_tensor(plan["order"], dtype=torch.long).cpu().reshape(-1)
        if batch_size < 1 or start < 0: raise ConfigError(f"need batch_size >= 1 and start >= 0, got {batch_size}, {start}")
        if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            raise ConfigError(f"shard={shard}: expected (rank, world) with 0 <= rank < world")
        if len(order) and (int(order.min()) < 0 or int(order.max()) >= len(self)):
            raise ConfigError(f"plan['order'] addresses positions outside this split of {len(self)} examples")
        if aug and "aug_seed" not in plan: raise ConfigError("an augmented pass needs a plan with 'aug_seed' (split.plan)")
        gpu = self.decode == "gpu" or (self.decode == "auto" and self.device.type == "cuda")
        if gpu and self.device.type != "cuda": raise ConfigError(f"decode='gpu' needs a CUDA device, not {self.device}")
        seed = int(plan["aug_seed"]) if aug else None
        loader, works = self._idle.pop() if self._idle else self._loader()
        works.set(order, batch_size, start, shard, seed, aug, gpu)
        batches = _Prefetch(self._decoded(loader, seed, aug), self.device) if gpu else \
            ((payload.to(self.device, non_blocking=True), pos) for payload, pos, _, _ in loader)
        try:
            for xb, pos in batches:
                yield (self._normalise(xb), self.y[pos].to(self.device, non_blocking=True),
                       pos.to(self.device, non_blocking=True))
        finally:
            if gpu: batches.close()                     # the thread stops (and is waited for) before the loader is idle
            self._idle.append((loader, works))

    def _loader(self):
        "A loader of whole batches, its workers kept between passes; its sampler's work is set per pass."
        works = _Works()
        kw = dict(num_workers=self.workers, persistent_workers=True, prefetch_factor=2) if self.workers > 0 else {}
        return torch.utils.data.DataLoader(_BatchFiles(self.paths), sampler=works, batch_size=None,
                                           pin_memory=self.device.type == "cuda", **kw), works

    def _on_device(self, payload, b, offsets, seed, aug) -> torch.Tensor:
        "GPU decoding: the batch's bytes decoded and cropped on the device."
        flat, lengths = payload
        imgs = decode_on(list(torch.split(flat, lengths.tolist())), self.device)
        out = torch.empty((len(imgs), 3, IMAGENET_CROP, IMAGENET_CROP), dtype=torch.uint8, device=self.device)
        for k, img in enumerate(imgs):
            out[k] = train_view(img, aug_draws(seed, b, int(offsets[k]))) if aug else eval_view(img)
        return out

    def _decoded(self, loader, seed, aug):
        "GPU decoding's batches `(x uint8 on the device, positions)`, made in the thread that iterates this."
        for payload, pos, b, offsets in loader: yield self._on_device(payload, b, offsets, seed, aug), pos

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        "uint8 batch → float32, ImageNet's mean and std, on the batch's device."
        if x.device not in self._norm:
            info = INFO["imagenet"]
            self._norm[x.device] = (torch.tensor(info.mean, device=x.device).view(1, 3, 1, 1) * 255,
                                    torch.tensor(info.std, device=x.device).view(1, 3, 1, 1) * 255)
        m, s = self._norm[x.device]
        return x.float().sub_(m).div_(s)


# %% [markdown]
# The split itself: its examples (paths kept as one bytes array, so forked workers touch no per-path reference
# counts), labels and ids, the loaders it has built, and the drawing of a pass.

# %%
#| export
class ImageFolderSplit(_BatchStream):
    "A split of an ImageFolder data set, streamed from its files in whole uint8 batches (see above)."
    def __init__(self, folder, rows, labels, train: bool, workers: int | None = None, decode: str | None = None):
        self.folder, self.rows, self.augment = folder, [int(r) for r in rows], bool(train)
        self.y = torch.as_tensor(labels).long()
        self.ids = torch.as_tensor(self.rows, dtype=torch.long)
        self.paths = np.array([os.fsencode(folder.samples[r][0]) for r in self.rows], dtype=bytes)
        self._workers = loader_workers() if workers is None else int(workers)
        self.decode = decode or platform().decode
        if self.decode not in DECODES:
            raise ConfigError(f"decode={self.decode!r} ($PRUNING_REPRO_DECODE): choose {', '.join(DECODES[:-1])} or {DECODES[-1]}")
        self.device, self._idle, self._norm = torch.device("cpu"), [], {}

    def __len__(self): return len(self.rows)

    @property
    def workers(self) -> int: return self._workers
    @workers.setter
    def workers(self, n: int): self._workers, self._idle = int(n), []      # loaders are rebuilt with the new count

    def to(self, device) -> "ImageFolderSplit":
        device = torch.device(device)
        if device.type != self.device.type: self._idle = []                # pinning depends on the device type
        self.device = device
        return self

    def __getstate__(self): return {**self.__dict__, "_idle": []}          # live loaders stay in their process

    def plan(self, shuffle: bool = False, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        "The order of a pass and the seed of its augmentation, drawn from `generator` now."
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        return {"order": order, "aug_seed": torch.randint(2 ** 62, (), generator=generator, dtype=torch.long)}

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                augment: bool | None = None, shard: tuple[int, int] | None = None):
        "`iterate(plan(shuffle, generator), ...)`: one pass drawn now."
        return self.iterate(self.plan(shuffle, generator), batch_size, generator, augment, shard=shard)

    def images(self, positions) -> torch.Tensor:
        "Normalised float evaluation views of the examples at `positions`, decoded in this process, on the CPU."
        pos = torch.as_tensor(positions, dtype=torch.long).cpu().reshape(-1).numpy()
        return self._normalise(load_batch(self.paths, pos, 0, np.zeros(len(pos), int), None, False))


# %% [markdown]
# A first look on a folder of six small files (the full round trip, with `load_data`, follows below, on a tree written by `34_formats`):
# batches of normalised floats, the order of the plan, and the labels of the split.

# %%
from torchvision.datasets import ImageFolder
with tempfile.TemporaryDirectory() as tmp:
    for _k in range(6):
        os.makedirs(f"{tmp}/c{_k % 2}", exist_ok=True)
        Image.fromarray(np.full((40 + 8 * _k, 60, 3), 40 * _k, np.uint8)).save(f"{tmp}/c{_k % 2}/{_k}.JPEG")
    _f = ImageFolder(tmp)
    _s = ImageFolderSplit(_f, range(6), torch.tensor(_f.targets), train=True, workers=0)
    _p = _s.plan(True, torch.Generator().manual_seed(0))
    test_eq((sorted(_p), _p["order"].sort().values, _p["aug_seed"].dtype), (["aug_seed", "order"], torch.arange(6), torch.long))
    _xs, _ys, _is = zip(*_s.iterate(_p, 4))
    test_eq([x.shape for x in _xs], [(4, 3, 224, 224), (2, 3, 224, 224)])
    test_eq((_xs[0].dtype, torch.cat(_is)), (torch.float32, _p["order"]))
    test_eq(torch.cat(_ys), _s.y[_p["order"]])
    _x0 = _s.images([0])            # a uniform grey-0 image: every pixel is (0 - mean) / std
    assert torch.allclose(_x0[0, :, 0, 0], -torch.tensor(INFO["imagenet"].mean) / torch.tensor(INFO["imagenet"].std), atol=0.05)


# %% [markdown]
# What it buys, measured on this repository's 2-core CPU machine (`python -m bench.imagenet --workers 0 1 2`: 1,000
# generated ImageNet-like JPEGs, 474×421 px and 106 KB on average, batch 128, best of 3 passes; every batch made ready
# for the model; `bench/results/latest-imagenet-cpu.md`), images/s:
#
# | loader workers | old per-image PIL path, train | batched, train | old, eval | batched, eval |
# |---|---|---|---|---|
# | 0 (in the main process) | 272 | 352 | 200 | 394 |
# | 1 (the default here: 2 CPUs − 1) | 218 | 421 | 197 | 399 |
# | 2 | 417 | 671 | 386 | 642 |
#
# Decoding alone runs at 674 images/s per core (libjpeg-turbo), so one core cannot exceed that and on this machine the
# batched path is 1.3–2× the old one; the rest of its cost is the crop (≈0.35 ms an image) and, on a CPU device only,
# the normalisation in the main process. Each batch ships 150,528 bytes an image instead of 602,112. The figures
# vary by 2–5× from one pass to the next on this shared VM (all passes are in the CSV). A node with 16 CPUs per GPU
# gives one rank 15 workers: at this machine's rate of one worker (421 images/s) that would be about 6,300 images/s —
# an estimate, not a measurement; `python -m bench.imagenet --device cuda` measures it, and the nvJPEG path, there.

# %%
#| export
def imagenet_folders():
    "ImageNet's `train` and `val` ImageFolder trees under the data root, with the same classes (else one named error)."
    root = data_root() / "imagenet"
    missing = [f"{root}/{sp}" for sp in ("train", "val") if not (root / sp).is_dir()]
    if missing:
        raise DataMissing(f"ImageNet not found: no folder {' and no '.join(missing)}; expected ImageFolder trees "
                          f"{root}/train/<class>/<image> and {root}/val/<class>/<image>; set PRUNING_REPRO_DATA; "
                          f"nothing is downloaded.")
    from torchvision.datasets import ImageFolder
    try: train, val = ImageFolder(str(root / "train")), ImageFolder(str(root / "val"))
    except FileNotFoundError as e:                      # an empty split or class folder: named, in one line
        _empty_imagenet_folder(root)
        raise DataError(f"{root}: not a usable ImageFolder tree: {e}") from None
    if train.classes != val.classes:          # labels are class indices: the two trees must name the same classes
        only_t, only_v = sorted(set(train.classes) - set(val.classes)), sorted(set(val.classes) - set(train.classes))
        raise DataError(f"{root}/val has {len(val.classes)} class folders and {root}/train {len(train.classes)}: they "
                        f"must be the same (only in train: {only_t[:5]}; only in val: {only_v[:5]})")
    return train, val


# %%
#| export
def _empty_imagenet_folder(root: Path) -> None:
    """Say which split has no class folder, or which class folders hold no image (what `ImageFolder` refuses), in one
    `DataError`. Runs only once ImageFolder has refused the tree: a healthy tree is walked once."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
    for sp in ("train", "val"):
        d = root / sp
        classes = sorted(e.name for e in os.scandir(d) if e.is_dir())
        if not classes:
            raise DataError(f"{d} holds no class folder: expected {d}/<class>/<image>, the same classes in train and val")
        empty = [c for c in classes if not any(has_file_allowed_extension(f, IMG_EXTENSIONS)
                                               for _, _, fs in os.walk(d / c, followlinks=True) for f in fs)]
        if empty:
            raise DataError(f"{d}: {len(empty)} of {len(classes)} class folders hold no image ({', '.join(empty[:5])}"
                            f"{', ...' if len(empty) > 5 else ''}); every class folder needs at least one image file "
                            f"({', '.join(IMG_EXTENSIONS)})")


# %% [markdown]
# ## The data of a run
#
# `imagenet_data` is `data.load_data`'s ImageNet branch: the rows of the splits and the training labels are drawn
# exactly as for in-memory data (`data.draw_rows`: the validation draw from the official training set, the optional
# subsamples, the label noise, then the examples left out), and each split streams its rows from the files.

# %%
#| export
def imagenet_data(spec: DataSpec, seed: int, info: DataInfo) -> Data:
    "The train/val/test splits of an ImageNet run, on the CPU (`Data.to` moves them), from the trees on disk."
    tr, te = imagenet_folders()
    ytr, yte = torch.tensor(tr.targets), torch.tensor(te.targets)
    train_rows, val_rows, test_rows, clean, noisy_y, mask = draw_rows(ytr, len(yte), spec, seed, info.num_classes)
    return Data(ImageFolderSplit(tr, train_rows.tolist(), noisy_y, spec.augment),
                ImageFolderSplit(tr, val_rows.tolist(), ytr[val_rows], False),
                ImageFolderSplit(te, test_rows.tolist(), yte[test_rows], False), clean, mask, info)


# %% [markdown]
# The ImageNet round trip: a tiny tree written by `write_imagefolder`, loaded by `load_data` with label noise and two
# examples left out (the others keep their labels); a pass resumed at batch 1 is the tail of the full pass; the two
# halves of a sharded batch make up the batch; a loader worker process gives the batches of the main process.

# %%
with tempfile.TemporaryDirectory() as tmp, using(Platform(data=tmp)):
    write_imagefolder(tmp, n_train=6, n_val=2, classes=2, size=(48, 64))
    _spec = DataSpec("imagenet", n_val=2, noise=0.5, augment=True)
    d = load_data(_spec, seed=0)
    test_eq((len(d.train), len(d.val), len(d.test), int(d.noisy.sum())), (10, 2, 4, 5))
    e = load_data(DataSpec("imagenet", n_val=2, noise=0.5, augment=True, exclude_ids=tuple(d.train.ids[:2].tolist())), seed=0)
    test_eq((e.train.ids, e.train.y, e.clean_y, e.noisy), (d.train.ids[2:], d.train.y[2:], d.clean_y[2:], d.noisy[2:]))
    for s in (d.train, d.val, d.test): s.workers = 0
    p = d.train.plan(True, torch.Generator().manual_seed(0))
    full = list(d.train.iterate(p, 4))
    test_eq(len(full), 3)
    for a, b in zip(full[1:], d.train.iterate(p, 4, start=1)): test_eq(a, b)
    halves = [next(d.train.iterate(p, 4, shard=(r, 2))) for r in range(2)]
    test_eq(tuple(torch.cat(t) for t in zip(*halves)), full[0])
    test_eq(d.val.images([1, 0]), next(d.val.iterate({"order": torch.tensor([1, 0])}, 2, augment=False))[0])
    d.train.workers = 1
    for a, b in zip(full, d.train.iterate(p, 4)): test_eq(a, b)

# %% [markdown]
# A class folder without an image, or a split without class folders, is named in one error (ImageFolder's own
# message says neither where nor which split).

# %%
with tempfile.TemporaryDirectory() as tmp, using(Platform(data=tmp)):
    write_imagefolder(tmp, n_train=1, n_val=1, classes=2, size=(16, 16), odd=False)
    for f in (Path(tmp) / "imagenet" / "train" / "n00000001").iterdir(): f.unlink()
    test_fail(imagenet_folders, contains="train: 1 of 2 class folders hold no image (n00000001)")
