"""The measurements of `python -m bench` (see `bench/__main__.py`), importable so worker processes can run them."""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pruning_repro.config import TrainSpec, get_bench
from pruning_repro.data import Data, data_info
from pruning_repro.tensors import TensorSplit
from pruning_repro.distributed import World
from pruning_repro.imp import record_data, train_level
from pruning_repro.models import build_model
from pruning_repro.prune import full_masks, prune_masks
from pruning_repro.store import Store
from pruning_repro.train import EpochStream, Segment, evaluate, train
from pruning_repro.runtime import Runtime

from .reference import reference_loader, reference_steps

RUNTIME = Runtime.from_env()   # the settings this benchmark run was started with (the edge); variants replace fields

RESULTS = Path(__file__).parent / "results"


# ---------------------------------------------------------------- machine
def gemm_rate(n: int = 2048, repeats: int = 10, device: str = "cpu", threads: int | None = None) -> float:
    "Best float32 GEMM rate (FLOP/s) of `n`×`n` matrices on `device` (CPU: with `threads` threads, default all)."
    if threads is not None and str(device) == "cpu":
        old = torch.get_num_threads(); torch.set_num_threads(threads)
        try: return gemm_rate(n, repeats, device)
        finally: torch.set_num_threads(old)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3): a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device); t = time.perf_counter(); a @ b; _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def _sync(device):
    if str(device).startswith("cuda"): torch.cuda.synchronize()


def forward_flops(model: nn.Module, input_shape: tuple) -> int:
    "FLOPs (2 × multiply-adds) of one example's forward pass through the Linear/Conv layers of `model`."
    total = 0
    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Linear): total += 2 * m.in_features * m.out_features
        else: total += 2 * (m.in_channels // m.groups) * int(np.prod(m.kernel_size)) * out[0].numel()
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    was = model.training; model.eval()
    with torch.no_grad(): model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    model.train(was)
    for h in hs: h.remove()
    return total


def machine_info(device) -> dict:
    info = {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}
    if str(device).startswith("cuda"): info["gpu"] = torch.cuda.get_device_name()
    return info


# ---------------------------------------------------------------- data of a bench's shape
def synthetic(dataset: str, n: int, seed: int = 0):
    "uint8 images shaped like `dataset` plus labels, and the normalised float tensors the package trains on."
    info = data_info(dataset)
    c, h, w = info.input_shape
    g = np.random.default_rng(seed)
    imgs = g.integers(0, 256, size=(n, h, w, c) if c > 1 else (n, h, w), dtype=np.uint8)
    labels = g.integers(0, info.num_classes, size=n)
    x = torch.from_numpy(imgs).float().div(255)
    x = x.permute(0, 3, 1, 2) if c > 1 else x[:, None]
    mean, std = torch.tensor(info.mean).view(1, -1, 1, 1), torch.tensor(info.std).view(1, -1, 1, 1)
    return imgs, labels, ((x - mean) / std).contiguous(), torch.from_numpy(labels).long(), info


def data_of(x, y, info, augment, device) -> Data:
    s = TensorSplit(x, y, torch.arange(len(y)), augment)
    return Data(s, s, s, y, torch.zeros(len(y), dtype=torch.bool), info).to(device)


def pruned_masks(model) -> dict:
    "Masks after one level of global magnitude pruning (20%): training then runs with masks on, as in IMP."
    return prune_masks(model, full_masks(model), 0.2, "magnitude")


# ---------------------------------------------------------------- measurements
REPEATS = 3   # every timing is the best of this many (this VM's speed drifts by ±20% between minutes)

def time_train(model, data, spec: TrainSpec, masks, device, steps: int | None, repeats: int | None = None,
               runtime: Runtime | None = None) -> tuple[float, int]:
    "Best seconds over `repeats` of one epoch (or `steps` steps) of the package's loop, after a short warmup; examples."
    dev_masks = {k: v.to(device) for k, v in masks.items()}
    warm = replace(spec, epochs=1, steps_per_epoch=3)
    train(model, data, warm, Segment(torch.Generator().manual_seed(1), masks=dev_masks), runtime=runtime)
    run = replace(spec, epochs=1, steps_per_epoch=steps)
    best = float("inf")
    for i in range(repeats or REPEATS):
        _sync(device)
        r = train(model, data, run, Segment(torch.Generator().manual_seed(2 + i), masks=dev_masks), runtime=runtime)
        _sync(device)
        best = min(best, r["seconds"])
    n = steps * spec.batch_size if steps else len(data.train)
    return best, n


def time_batches(data, spec: TrainSpec, steps: int) -> float:
    "Seconds the package spends producing `steps` batches (index + augmentation), the data share of a step."
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for xb, yb, _ in EpochStream(data.train, spec.batch_size, steps, torch.Generator().manual_seed(3)):
            pass
        _sync(xb.device)
        best = min(best, time.perf_counter() - t)
    return best


def time_reference(model, imgs, labels, info, spec: TrainSpec, masks, device, augment, steps, workers=0):
    loader = reference_loader(imgs, labels, info.mean, info.std, augment, spec.batch_size, workers)
    opt = _plain_opt(model, spec)
    dev_masks = {k: v.to(device) for k, v in masks.items()}
    reference_steps(model, loader, opt, dev_masks, device, 3)          # warmup
    runs = [reference_steps(model, loader, opt, dev_masks, device, steps) for _ in range(REPEATS)]
    return min(runs, key=lambda r: r["seconds"])


def _plain_opt(model, spec):
    "The optimizer as research code builds it: torch's defaults."
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


_BARRIER = None

def _init_worker(barrier):
    global _BARRIER
    _BARRIER = barrier

def _proc_epoch(args):
    """One process, one thread: an epoch of LeNet on MNIST-shaped data, started with the other processes' (a barrier
    after set-up), for the process-per-core comparison. Returns its epoch seconds."""
    n, seed = args
    torch.set_num_threads(1)
    _, _, x, y, info = synthetic("mnist", n, seed)
    model = build_model(get_bench("lenet_mnist").model, info, seed)
    spec = get_bench("lenet_mnist").train
    data, masks = data_of(x, y, info, False, "cpu"), pruned_masks(model)
    times = []
    for _ in range(REPEATS):                   # start each timed epoch together with the other processes
        _BARRIER.wait()
        times.append(time_train(model, data, spec, masks, torch.device("cpu"), None, repeats=1)[0])
    return times


class Rows:
    "The result table. `rate`: GEMM rate with every thread (the machine's bound); `rate_1`: with one thread."
    def __init__(self, rate, device, rate_1=None):
        self.rate, self.rate_1, self.device, self.rows = rate, rate_1, str(device), []

    def add(self, bench, what, seconds, examples=None, flops=None, how="measured", reference_s=None, **extra):
        row = {"bench": bench, "what": what, "device": self.device, "how": how, "seconds": round(seconds, 4),
               "examples": examples, "examples_per_s": round(examples / seconds, 1) if examples else None,
               "bound_s": round(flops / self.rate, 4) if flops else None,
               "fraction_of_bound": round(flops / self.rate / seconds, 3) if flops else None,
               "bound_1thread_s": round(flops / self.rate_1, 4) if flops and self.rate_1 else None,
               "reference_s": round(reference_s, 4) if reference_s else None,
               "speedup_vs_reference": round(reference_s / seconds, 2) if reference_s else None}
        row.update(extra)
        self.rows.append(row)
        shown = {k: v for k, v in row.items() if v is not None and k not in ("device",)}
        print("  " + ", ".join(f"{k}={v}" for k, v in shown.items()), flush=True)


def prepare(bench: str, dataset: str, n: int, augment: bool, device):
    "A bench, `n` synthetic examples of its shape, its model with masks on, the data on `device`, forward FLOPs."
    b = get_bench(bench)
    raw = synthetic(dataset, n)
    _, _, x, y, info = raw
    model = build_model(b.model, info, 0).to(device)
    return b, raw, model, pruned_masks(model), data_of(x, y, info, augment, device), forward_flops(model, info.input_shape)


def _train_and_reference(b, model, data, imgs, labels, info, masks, device, augment: bool, steps):
    "The package's loop and the reference pipeline over the same steps (a fresh model of the same init for the latter)."
    t, ex = time_train(model, data, b.train, masks, device, steps)
    ref = time_reference(build_model(b.model, info, 0).to(device), imgs, labels, info, b.train, masks, device,
                         augment, steps)
    return t, ex, ref


def bench_lenet(rows: Rows, device, quick: bool):
    "LeNet-300-100 on 60,000 MNIST-shaped examples (Table 1 recipe: Adam, batch 128)."
    n = 6_000 if quick else 60_000
    b, (imgs, labels, x, y, info), model, masks, data, fwd = prepare("lenet_mnist", "mnist", n, False, device)
    spec = b.train
    t, ex, ref = _train_and_reference(b, model, data, imgs, labels, info, masks, device, False, None)
    rows.add("lenet_mnist", "train epoch (masks on)", t, ex, 3 * fwd * ex, reference_s=ref["seconds"],
             data_share=round(time_batches(data, spec, -(-n // spec.batch_size)) / t, 4),
             reference_data_share=round(ref["data_seconds"] / ref["seconds"], 3))
    ev_t = _time_eval(model, data.train)
    rows.add("lenet_mnist", "per-example eval", ev_t, n, fwd * n)
    for impl in ("for-loop", "foreach", "fused"):
        tt, _ = time_train(build_model(b.model, info, 0).to(device), data, spec, masks, device, None,
                           runtime=replace(RUNTIME, optimizer_impl=impl))
        rows.add("lenet_mnist", f"variant: optimizer {impl}", tt, ex, 3 * fwd * ex)
    if not quick:
        compiled = replace(RUNTIME, compile="1")
        m2 = build_model(b.model, info, 0).to(device)
        time_train(m2, data, spec, masks, device, None, runtime=compiled)   # compile (both batch shapes) untimed
        tc, _ = time_train(m2, data, spec, masks, device, None, runtime=compiled)
        rows.add("lenet_mnist", "variant: compiled (PRUNING_REPRO_COMPILE=1)", tc, ex, 3 * fwd * ex)
    if str(device) == "cpu" and os.cpu_count() > 1 and not quick:
        k = os.cpu_count()
        threads = torch.get_num_threads()
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(k)
        with ctx.Pool(k, initializer=_init_worker, initargs=(barrier,)) as pool:
            times = pool.map(_proc_epoch, [(n, s) for s in range(k)])
        per_epoch = min(max(ts) for ts in zip(*times)) / k   # k epochs finished in the slowest's seconds of wall
        rows.add("lenet_mnist", f"variant: {k} processes x 1 thread, concurrent (wall per epoch)", per_epoch, ex,
                 3 * fwd * ex, threads=1, per_process_s=round(per_epoch * k, 4))
        torch.set_num_threads(threads)
    # one full IMP level, measured: prune 20%, rewind, train 60 epochs, evaluate every split, store
    epochs = 2 if quick else spec.epochs
    _imp_level(rows, "lenet_mnist", b, data, device, epochs, fwd, n, t / ex)


def _time_eval(model, split) -> float:
    "Best seconds over REPEATS of a per-example evaluation of `split`."
    evaluate(model, split)
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter(); evaluate(model, split); _sync(split.x.device)
        best = min(best, time.perf_counter() - t)
    return best


def _imp_level(rows, name, b, data, device, epochs, fwd, n, s_per_example, how="measured", eval_s_per_example=0.0,
               n_eval=None):
    spec = b.run_spec(0.0, 0)
    spec = replace(spec, train=replace(spec.train, epochs=epochs), prune=replace(spec.prune, levels=1,
                                                                                 rewind_epoch=min(spec.prune.rewind_epoch, epochs - 1)))
    retrain = epochs - spec.prune.rewind_epoch
    n_eval = n_eval or len(data.train) + len(data.val) + len(data.test)
    flops = 3 * fwd * n * retrain + fwd * n_eval
    if how == "projected":
        rows.add(name, f"IMP level ({retrain} epochs retrain + eval of {n_eval}), from measured step and eval times",
                 s_per_example * n * retrain + eval_s_per_example * n_eval, n * retrain, flops, how="projected")
        return
    with tempfile.TemporaryDirectory() as d:
        store, alone = Store(d), World(device=torch.device(device))
        store.init_run(spec)
        record_data(spec, store, data)
        train_level(spec, store, 0, data, RUNTIME, alone)
        t = time.perf_counter()
        train_level(spec, store, 1, data, RUNTIME, alone)
        rows.add(name, f"IMP level ({retrain} epochs retrain + eval + store)", time.perf_counter() - t,
                 n * retrain, flops)


def bench_cifar(rows: Rows, device, quick: bool, arch: str):
    "A CIFAR network (Table 1: SGD, batch 128, crop + flip) on 50,000 CIFAR-shaped examples."
    name = {"resnet20": "resnet20_c10", "vgg16": "vgg16_c10"}[arch]
    steps = 3 if quick else (50 if arch == "resnet20" else 10)
    b, (imgs, labels, x, y, info), model, masks, data, fwd = prepare(name, "cifar10", 2_000 if quick else 50_000,
                                                                      True, device)
    n, spec = len(y), b.train
    t, ex, ref = _train_and_reference(b, model, data, imgs, labels, info, masks, device, True, steps)
    rows.add(name, f"train step x{steps} (masks on, crop+flip)", t, ex, 3 * fwd * ex, reference_s=ref["seconds"],
             s_per_step=round(t / steps, 4), reference_s_per_step=round(ref["seconds"] / steps, 4),
             data_share=round(time_batches(data, spec, steps) / t, 4),
             reference_data_share=round(ref["data_seconds"] / ref["seconds"], 3))
    if not quick:
        for label, mode, fmt in (("eager (PRUNING_REPRO_COMPILE=0)", "0", torch.contiguous_format),
                                 ("compiled (PRUNING_REPRO_COMPILE=1)", "1", torch.contiguous_format),
                                 ("channels_last, eager", "0", torch.channels_last)):
            m2 = build_model(b.model, info, 0).to(device).to(memory_format=fmt)
            d2 = data_of(x.contiguous(memory_format=fmt), y, info, True, device)
            tv, _ = time_train(m2, d2, spec, masks, device, steps, runtime=replace(RUNTIME, compile=mode))
            rows.add(name, f"variant: {label}", tv, ex, 3 * fwd * ex, s_per_step=round(tv / steps, 4))
    if device.type == "cuda" and not quick:
        # GPU: whole epochs (50,000 examples), mixed precision off/on, against the reference pipeline's epoch
        ref_ep = time_reference(build_model(b.model, info, 0).to(device), imgs, labels, info, spec, masks, device,
                                True, None)
        for prec in ("fp32", "bf16"):
            m3 = build_model(b.model, info, 0).to(device)
            te, exe = time_train(m3, data, replace(spec, precision=prec), masks, device, None)
            rows.add(name, f"train epoch, precision {prec}", te, exe, 3 * fwd * exe, reference_s=ref_ep["seconds"],
                     reference_data_share=round(ref_ep["data_seconds"] / ref_ep["seconds"], 3))
    m_eval = min(n, 2_000 if str(device) == "cpu" else n)
    sub = TensorSplit(data.train.x[:m_eval], data.train.y[:m_eval], torch.arange(m_eval))
    ev_t = _time_eval(model, sub)
    rows.add(name, "per-example eval", ev_t, m_eval, fwd * m_eval)
    full_n = 48_000  # 50,000 training images minus the 2,000 of validation; eval: train + val + 10,000 test
    _imp_level(rows, name, b, data, device, spec.epochs, fwd, full_n, t / ex,
               how="measured" if str(device) != "cpu" and not quick else "projected",
               eval_s_per_example=ev_t / m_eval, n_eval=full_n + 2_000 + 10_000)



