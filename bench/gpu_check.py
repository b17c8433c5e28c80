"""`python -m bench.gpu_check` (`make gpu-check`): the package's CUDA path checked in one command, in under 8 minutes.

For the day a GPU is at hand, possibly a borrowed one for a few minutes (issue 24, item 5). Five steps, each with its
own time budget (`BUDGET_S`, 450 s in all); a step that fails or runs out of time is recorded as such and the next
one still runs:

1. `bench`: one epoch (50,000 CIFAR-shaped examples resident on the GPU, crop + flip on the device, masks on) of
   ResNet-20 and of VGG-16, fp32 and bf16, eager and compiled (`PRUNING_REPRO_COMPILE=0/1`), through the package's
   training loop as `python -m bench --device cuda` times it (`bench.core.time_train`); whether the compiled rows
   really ran compiled (the package falls back to eager with a warning, recorded);
2. `sync_debug`: a short ResNet-20 level (training, then the per-example evaluation of every split) under
   `torch.cuda.set_sync_debug_mode("warn")`: host syncs counted per training step (0 expected; the loop reads the
   epoch's mean loss once per epoch) and in the level as a whole, with where they came from;
3. `width_sweep`: CIFAR ResNet-20 at widths 0.25×–2.5× trained compiled in this one process, dynamo's recompiles
   logged (`TORCH_LOGS=recompiles`) and whether any hit dynamo's recompile limit and fell back to eager;
4. `resnet50_batches`: the evaluation and EL2N batch sizes the package picks for ResNet-50 at 3×224×224
   (`train.eval_batch_size`, `el2n.el2n_of`), and one evaluation forward of that batch: its peak memory
   (`torch.cuda.max_memory_allocated`) against the GPU's;
5. `ddp_batchnorm` (2+ GPUs; else skipped): 20 data-parallel ResNet-20 steps over NCCL with `GlobalBatchNorm` and with
   `nn.SyncBatchNorm` from the same start, seconds per step and how far the two models end apart.

Results: `bench/results/<date>-cuda-<gpu>.json` and `.md` (device, versions, TF32 flags, each step's numbers, status
and seconds). Without CUDA (or with `--dry`) every step's plumbing runs on the CPU at the smallest size (1–2 steps,
tiny widths, eager) and the CUDA-only parts are marked skipped: `<date>-dry-cpu.json`/`.md` (tests/test_gpu_check.py).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import re
import signal
import socket
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from pruning_repro.config import get_bench
from pruning_repro.data import data_info
from pruning_repro.distributed import World, global_batchnorm
from pruning_repro.el2n import el2n_of
from pruning_repro.imp import record_data, train_level
from pruning_repro.models import build_model
from pruning_repro.store import Store
from pruning_repro.train import Segment, eval_batch_size, evaluate, train
from pruning_repro.runtime import Runtime

from .core import RESULTS, data_of, prepare, synthetic, time_train

# seconds per step on a GPU (450 in all: the check fits a borrowed machine's 8 minutes with process start-up)
BUDGET_S = {"bench": 180, "sync_debug": 75, "width_sweep": 105, "resnet50_batches": 30, "ddp_batchnorm": 60}
STEPS = tuple(BUDGET_S)
WIDTHS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5)   # 10 > dynamo's default recompile limit of 8


class StepTimeout(Exception):
    "A step ran past its budget (raised by SIGALRM in the main thread)."


class Check:
    "What the steps share: the device, whether this is a dry run, and the running step's deadline."
    def __init__(self, device: torch.device, dry: bool):
        self.device, self.dry, self.deadline = device, dry, float("inf")

    @property
    def cuda(self) -> bool: return self.device.type == "cuda"

    def left(self) -> float:
        "Seconds left in the running step's budget."
        return self.deadline - time.monotonic()

    def spec(self, train_spec):
        "A bench's training spec, its batch cut to 8 in a dry run (the plumbing, not the numbers)."
        return replace(train_spec, batch_size=8) if self.dry else train_spec

    def runtime(self, compile: str) -> Runtime:
        "The package's runtime settings with `compile` ('0', '1', 'auto'), no progress bars, no in-level snapshots."
        return Runtime(compile=compile, progress=False, checkpoint_min=None)


def _sync(device):
    if device.type == "cuda": torch.cuda.synchronize(device)


@contextlib.contextmanager
def _caught_warnings():
    "Every warning raised inside (not deduplicated), as a list of `warnings.WarningMessage`."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        yield w


def _eager_fallbacks(ws) -> list[str]:
    "The package's 'training this model eagerly' warnings among `ws` (compile failed or its gradients differed)."
    return sorted({str(x.message) for x in ws if "eagerly" in str(x.message)})


# ---------------------------------------------------------------- 1. bench
def step_bench(c: Check) -> dict:
    """ResNet-20 and VGG-16 epochs, fp32/bf16 × eager/compiled: the eager rows first (cheap), then the compiled ones
    (a compile takes tens of seconds; one not startable in the budget left is recorded as not reached). An epoch is
    390 full batches of 128 (49,920 of the 50,000 examples: a last partial batch would recompile inside the timing).
    Dry: 1 step of batch 8, eager only."""
    rows, skipped = [], []
    n, steps = (64, 1) if c.dry else (50_000, 50_000 // 128)
    prepared = {name: prepare(name, "cifar10", n, True, c.device) for name in ("resnet20_c10", "vgg16_c10")}
    for mode, label in (("0", "eager"), ("1", "compiled")):
        for name, (b, _, _, masks, data, _) in prepared.items():
            for prec in ("fp32", "bf16"):
                what = f"{name} {prec} {label}"
                if mode == "1" and not c.cuda:
                    skipped.append(f"{what}: compiled runs need CUDA"); continue
                if c.left() < (40 if mode == "1" else 10):          # a compile needs ~20–40 s: not started late
                    skipped.append(f"{what}: not reached within the step's budget"); continue
                model = build_model(b.model, data.info, 0).to(c.device)
                with _caught_warnings() as ws:
                    t, ex = time_train(model, data, replace(c.spec(b.train), precision=prec), masks, c.device, steps,
                                       repeats=1, runtime=c.runtime(mode))
                fell = _eager_fallbacks(ws)
                rows.append({"bench": name, "precision": prec, "mode": label, "seconds": round(t, 4),
                             "examples": ex, "examples_per_s": round(ex / t, 1),
                             "ran_compiled": (mode == "1" and not fell), "fallback": fell or None})
                print(f"  {what}: {t:.3f} s for {ex} examples ({ex / t:,.0f}/s)"
                      + (f" — fell back to eager: {fell[0]}" if fell else ""), flush=True)
    return {"rows": rows, "skipped": skipped}


# ---------------------------------------------------------------- 2. host syncs
@contextlib.contextmanager
def _count_syncs(on: bool):
    """`torch.cuda.set_sync_debug_mode("warn")` inside (when `on`): yields a list that receives, on exit, the
    `file:line` of every synchronizing CUDA call made inside."""
    out: list[str] = []
    if not on:
        yield out; return
    with _caught_warnings() as ws:
        torch.cuda.set_sync_debug_mode("warn")
        try: yield out
        finally: torch.cuda.set_sync_debug_mode(0)
    out.extend(f"{Path(w.filename).name}:{w.lineno}" for w in ws if "synchroniz" in str(w.message).lower())


def _where(syncs: list[str]) -> dict:
    return {k: syncs.count(k) for k in sorted(set(syncs), key=syncs.count, reverse=True)}


def step_sync_debug(c: Check) -> dict:
    "Host syncs per training step of ResNet-20 (0 expected) and in one short level (training + evaluation + store)."
    b = get_bench("resnet20_c10")
    n, epochs, spe = (64, 1, 2) if c.dry else (10_000, 2, 40)
    _, _, x, y, info = synthetic("cifar10", n)
    data = data_of(x, y, info, True, c.device)
    rt = c.runtime("auto")                                    # as a run trains: compiled on CUDA by the model's default
    model = build_model(b.model, info, 0).to(c.device)
    spec = replace(c.spec(b.train), epochs=epochs, steps_per_epoch=spe)
    train(model, data, replace(spec, epochs=1, steps_per_epoch=1 if c.dry else 3),
          Segment(torch.Generator().manual_seed(1)), runtime=rt)    # warm-up: compile and its check not counted
    _sync(c.device)
    with _count_syncs(c.cuda) as syncs:
        r = train(model, data, spec, Segment(torch.Generator().manual_seed(2)), runtime=rt)
    out = {"train_steps": r["steps"], "train_epochs": epochs}
    if c.cuda:
        per_step = (len(syncs) - epochs) / max(r["steps"], 1)
        out.update(train_syncs=len(syncs), train_syncs_per_step=round(per_step, 3), train_sync_sites=_where(syncs),
                   expected="one per epoch (the epoch's mean loss), none per step")
        print(f"  training: {len(syncs)} host syncs in {r['steps']} steps of {epochs} epochs "
              f"({per_step:.3f} per step beyond one per epoch)", flush=True)
    # one level: prune 20%, rewind, retrain, evaluate every split per example, store
    run = b.run_spec(0.0, 0)
    run = replace(run, train=replace(c.spec(run.train), epochs=epochs, steps_per_epoch=spe),
                  prune=replace(run.prune, levels=1, rewind_epoch=0))
    with tempfile.TemporaryDirectory() as d:
        store, alone = Store(d), World(device=c.device)
        store.init_run(run)
        record_data(run, store, data)
        train_level(run, store, 0, data, rt, alone)
        _sync(c.device)
        t = time.perf_counter()
        with _count_syncs(c.cuda) as level_syncs:
            train_level(run, store, 1, data, rt, alone)
        out["level_seconds"] = round(time.perf_counter() - t, 3)
    if c.cuda:
        out.update(level_syncs=len(level_syncs), level_sync_sites=_where(level_syncs))
        print(f"  level: {len(level_syncs)} host syncs in {out['level_seconds']} s", flush=True)
    else:
        out["skipped"] = ["sync counting: set_sync_debug_mode needs CUDA"]
    return out


# ---------------------------------------------------------------- 3. widths and recompiles
class DynamoLog(logging.Handler):
    """The messages of dynamo's loggers while `watch()` is on: recompiles (`TORCH_LOGS=recompiles`, printed too) and
    the warning dynamo gives when a function hits its recompile limit (it runs eagerly from then on)."""
    def __init__(self):
        super().__init__(logging.DEBUG); self.messages = []
    def emit(self, record): self.messages.append(record.getMessage())

    def counts(self, since: int = 0) -> dict:
        "Recompiles and recompile-limit hits among the messages from index `since` on."
        msgs = self.messages[since:]
        return {"recompiles": sum("Recompiling function" in m for m in msgs),
                "recompile_limit_hits": sum("hit config." in m for m in msgs)}

    @contextlib.contextmanager
    def watch(self):
        logger = logging.getLogger("torch._dynamo")
        torch._logging.set_logs(recompiles=True)
        logger.addHandler(self)
        try: yield self
        finally:
            logger.removeHandler(self)
            torch._logging.set_logs()

DYNAMO = DynamoLog()     # on for the whole check: a pool worker's compile cache lives as long as this process


def step_width_sweep(c: Check) -> dict:
    """ResNet-20 at several widths in this process, compiled (dry: two tiny widths, eager): recompiles and whether
    dynamo's recompile limit sent any width to eager — counting the compiles of the steps before, as a pool worker
    would."""
    from torch._dynamo import config as dynamo_config
    from torch._dynamo.utils import counters
    b = get_bench("resnet20_c10")
    widths, n, spe = ((0.125, 0.25), 32, 1) if c.dry else (WIDTHS, 2_000, 3)
    _, _, x, y, info = synthetic("cifar10", n)
    data = data_of(x, y, info, True, c.device)
    mode = "1" if c.cuda else "0"
    rows, skipped = [], []
    for w in widths:
        if c.left() < (30 if c.cuda else 5):
            skipped.append(f"width {w}: not reached within the step's budget"); continue
        before, graphs0 = len(DYNAMO.messages), counters["stats"]["unique_graphs"]
        model = build_model(replace(b.model, width=w), info, 0).to(c.device)
        t = time.perf_counter()
        with _caught_warnings() as ws:
            train(model, data, replace(c.spec(b.train), epochs=1, steps_per_epoch=spe),
                  Segment(torch.Generator().manual_seed(0)), runtime=c.runtime(mode))
        _sync(c.device)
        row = {"width": w, "seconds": round(time.perf_counter() - t, 2), **DYNAMO.counts(before),
               "new_graphs": counters["stats"]["unique_graphs"] - graphs0, "fallback": _eager_fallbacks(ws) or None}
        rows.append(row)
        print(f"  width {w}: {row['seconds']} s, {row['recompiles']} recompiles, {row['new_graphs']} new graphs"
              + (", HIT THE RECOMPILE LIMIT (eager from here)" if row["recompile_limit_hits"] else ""), flush=True)
    out = {"rows": rows, "recompiles": sum(r["recompiles"] for r in rows),
           "any_fell_back": any(r["recompile_limit_hits"] or r["fallback"] for r in rows),
           "process_so_far": DYNAMO.counts(), "recompile_limit": dynamo_config.recompile_limit, "skipped": skipped}
    if not c.cuda: out["skipped"].append("compiling: CUDA only (the package compiles on GPUs)")
    return out


# ---------------------------------------------------------------- 4. ResNet-50 batch sizes
class _OneBatch:
    "A stand-in split for `el2n_of`: records the batch size it is asked for, yields one example."
    def __init__(self, shape, device):
        self.shape, self.device, self.asked = shape, device, None
    def batches(self, batch_size, shuffle=False, augment=False, **kw):
        self.asked = batch_size
        yield (torch.zeros(1, *self.shape, device=self.device), torch.zeros(1, dtype=torch.long, device=self.device),
               torch.zeros(1, dtype=torch.long, device=self.device))


def step_resnet50_batches(c: Check) -> dict:
    "The evaluation and EL2N batches the package picks for ResNet-50 at 224², and whether one eval forward fits."
    b = get_bench("resnet50_imagenet")
    info = data_info("imagenet")
    shape = tuple(info.input_shape)
    model = build_model(b.model, info, 0).to(c.device).eval()
    ev = eval_batch_size(model, shape)
    split = _OneBatch(shape, c.device)
    el2n_of(model, split, input_shape=shape)
    out = {"input_shape": list(shape), "eval_batch": ev, "el2n_batch": split.asked,
           "train_batch": b.train.batch_size}
    print(f"  ResNet-50 {shape}: evaluation batch {ev}, EL2N batch {split.asked}", flush=True)
    if not c.cuda:
        gib80 = 80 * 2 ** 30
        out["eval_batch_if_80GiB"] = eval_batch_size(model, shape, memory=gib80)   # the GPU rule on a stated memory
        out["skipped"] = ["forward probe: CUDA only"]
        return out
    total = torch.cuda.get_device_properties(c.device).total_memory
    for key, bs in (("eval", ev), ("el2n", split.asked)):
        if key == "el2n" and bs == ev: out["el2n_peak_GiB"] = out.get("eval_peak_GiB"); continue
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(c.device)
        try:
            with torch.inference_mode(): model(torch.zeros(bs, *shape, device=c.device))
            _sync(c.device)
            peak = torch.cuda.max_memory_allocated(c.device)
            out[f"{key}_peak_GiB"] = round(peak / 2 ** 30, 2)
            out[f"{key}_peak_fraction"] = round(peak / total, 3)
        except torch.OutOfMemoryError as e:
            out[f"{key}_peak_GiB"] = None
            out[f"{key}_oom"] = str(e).splitlines()[0][:200]
        print(f"  {key} forward at batch {bs}: peak {out.get(f'{key}_peak_GiB')} GiB of {total / 2 ** 30:.0f}",
              flush=True)
    out["gpu_GiB"] = round(total / 2 ** 30, 1)
    out["fits"] = all(out.get(f"{k}_oom") is None for k in ("eval", "el2n"))
    return out


# ---------------------------------------------------------------- 5. data-parallel BatchNorm
DDP_KINDS = ("GlobalBatchNorm", "SyncBatchNorm")

def _ddp_worker(rank: int, size: int, port: int, steps: int, out_path: str, backend: str = "nccl") -> None:
    """One rank of step 5: ResNet-20 with each BatchNorm kind from the same start, `steps` data-parallel steps each
    (gloo, the dry run's plumbing on the CPU: `GlobalBatchNorm` alone, batch 8)."""
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    nccl = backend == "nccl"
    device = torch.device("cuda", rank) if nccl else torch.device("cpu")
    if nccl: torch.cuda.set_device(device)
    else: torch.set_num_threads(1)
    dist.init_process_group(backend, rank=rank, world_size=size)
    try:
        world = World(rank, size, rank, device)
        b = get_bench("resnet20_c10")
        _, _, x, y, info = synthetic("cifar10", 8_192 if nccl else 64)
        data = data_of(x, y, info, True, device)
        spec = replace(b.train, epochs=1, batch_size=b.train.batch_size if nccl else 8)
        rt = Runtime(compile="0", progress=False, checkpoint_min=None)
        res, states = {}, {}
        for kind in DDP_KINDS if nccl else DDP_KINDS[:1]:
            model = build_model(b.model, info, 0).to(device)
            model = global_batchnorm(model) if kind == "GlobalBatchNorm" else \
                nn.SyncBatchNorm.convert_sync_batchnorm(model)
            train(model, data, replace(spec, steps_per_epoch=3 if nccl else 1),
                  Segment(torch.Generator().manual_seed(1)), runtime=rt, world=world)   # warm-up: DDP, communicators
            if nccl: torch.cuda.synchronize(device)
            r = train(model, data, replace(spec, steps_per_epoch=steps),
                      Segment(torch.Generator().manual_seed(2)), runtime=rt, world=world)
            ev = evaluate(model, data.test, world=world)[0]
            res[kind] = {"s_per_step": round(r["seconds"] / steps, 5), "eval_loss": float(ev.mean())}
            states[kind] = {k: v.detach().float().cpu() for k, v in model.state_dict().items()
                            if v.is_floating_point()}
        out = {"world": size, "backend": backend, "steps": steps, "kinds": res}
        if len(states) == 2:
            a, g = states[DDP_KINDS[0]], states[DDP_KINDS[1]]
            out.update(max_state_diff=max(float((a[k] - g[k]).abs().max()) for k in a),
                       max_state=max(float(a[k].abs().max()) for k in a))
        if rank == 0: Path(out_path).write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _spawn_ddp(size: int, steps: int, backend: str) -> dict:
    "Start `size` ranks of `_ddp_worker` (spawn), wait for them; rank 0's results."
    import torch.multiprocessing as tmp
    with tempfile.TemporaryDirectory() as d:
        out_path = os.path.join(d, "ddp.json")
        ctx = tmp.start_processes(_ddp_worker, args=(size, _free_port(), steps, out_path, backend), nprocs=size,
                                  join=False, start_method="spawn")
        try:
            while not ctx.join(timeout=1): pass
        finally:
            for p in ctx.processes:
                if p.is_alive(): p.terminate()
        return json.loads(Path(out_path).read_text())


def step_ddp_batchnorm(c: Check) -> dict:
    """20 data-parallel steps over NCCL, GlobalBatchNorm against SyncBatchNorm (skipped without 2 GPUs; the dry run
    runs the plumbing instead: 2 CPU ranks over gloo, 2 steps, GlobalBatchNorm alone)."""
    n = torch.cuda.device_count() if c.cuda else 0
    if n < 2:
        out = {"status": "skipped", "skipped": [f"the comparison needs 2+ CUDA GPUs, found {n}"]}
        if c.dry: out["cpu_plumbing"] = _spawn_ddp(2, 2, "gloo")
        return out
    size = min(n, 8)
    out = _spawn_ddp(size, 20, "nccl")
    k = out["kinds"]
    print(f"  {size} GPUs, 20 steps: " + ", ".join(f"{kind} {v['s_per_step'] * 1e3:.1f} ms/step"
                                                   for kind, v in k.items())
          + f"; models end {out['max_state_diff']:.3g} apart (largest value {out['max_state']:.3g})", flush=True)
    return out


# ---------------------------------------------------------------- the run
FUNCS = {"bench": step_bench, "sync_debug": step_sync_debug, "width_sweep": step_width_sweep,
         "resnet50_batches": step_resnet50_batches, "ddp_batchnorm": step_ddp_batchnorm}


def _alarm(signum, frame): raise StepTimeout("ran past its time budget")


def run_step(name: str, c: Check, budget: float) -> dict:
    "One step under its budget: {name, status (ok | skipped | failed | timeout), seconds, budget_s, result, error}."
    print(f"[{name}] (budget {budget:.0f} s)", flush=True)
    c.deadline = time.monotonic() + budget
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm); signal.alarm(int(budget) + 1)
    t, logged = time.perf_counter(), len(DYNAMO.messages)
    entry = {"name": name, "budget_s": budget}
    try:
        result = FUNCS[name](c)
        entry["status"] = result.pop("status", "ok")
        entry["result"] = result
    except StepTimeout as e:
        entry.update(status="timeout", error=str(e))
    except Exception as e:
        entry.update(status="failed", error=f"{type(e).__name__}: {str(e)[:500]}",
                     traceback=traceback.format_exc()[-3000:])
    finally:
        if use_alarm:
            signal.alarm(0); signal.signal(signal.SIGALRM, old)
    entry["seconds"] = round(time.perf_counter() - t, 2)
    entry["dynamo"] = DYNAMO.counts(logged)
    print(f"[{name}] {entry['status']} in {entry['seconds']} s" + (f": {entry['error']}" if "error" in entry else ""),
          flush=True)
    return entry


def environment(device: torch.device) -> dict:
    "Device, versions and the numerics flags of this process."
    env = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "device": str(device), "cpu_threads": torch.get_num_threads(),
           "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
           "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        nccl = torch.cuda.nccl.version() if torch.distributed.is_nccl_available() else None
        env.update(gpu=p.name, gpus=torch.cuda.device_count(), gpu_GiB=round(p.total_memory / 2 ** 30, 1),
                   capability=f"{p.major}.{p.minor}", cudnn=torch.backends.cudnn.version(),
                   nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl, driver=_driver())
    return env


def _driver() -> str | None:
    "The NVIDIA driver's version as nvidia-smi reports it (None where nvidia-smi is not on the PATH)."
    import shutil
    import subprocess
    if shutil.which("nvidia-smi") is None: return None
    r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                       text=True, timeout=20)
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None


def to_markdown(report: dict) -> str:
    env = report["environment"]
    head = (f"# `make gpu-check` on {env.get('gpu', 'the CPU (dry run)')} — {report['date']}\n\n"
            f"Command: `{report['command']}`; {report['seconds']} s in all.\n\n"
            + "".join(f"- {k}: {v}\n" for k, v in env.items()) + "\n"
            "| step | status | seconds | budget s |\n|---|---|---|---|\n")
    rows = "".join(f"| {s['name']} | {s['status']} | {s['seconds']} | {s['budget_s']} |\n" for s in report["steps"])
    body = []
    for s in report["steps"]:
        body.append(f"\n## {s['name']}: {s['status']}\n")
        if "error" in s: body.append(f"\nError: `{s['error']}`\n")
        res = s.get("result", {})
        for key in ("rows",):
            if res.get(key):
                cols = list(dict.fromkeys(k for r in res[key] for k in r))
                body.append("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
                body.extend("| " + " | ".join("" if r.get(k) is None else str(r.get(k)) for k in cols) + " |\n"
                            for r in res[key])
        rest = {k: v for k, v in res.items() if k != "rows"}
        if rest: body.append("\n```\n" + json.dumps(rest, indent=1, default=str) + "\n```\n")
    return head + rows + "".join(body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(RESULTS), help="results folder (default bench/results)")
    p.add_argument("--dry", action="store_true",
                   help="the plumbing on the CPU at the smallest size (the default without CUDA)")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="a subset of the steps")
    a = p.parse_args(argv)
    dry = a.dry or not torch.cuda.is_available()
    if dry and not a.dry: print("no CUDA device: a dry run on the CPU (the CUDA-only parts are skipped)", flush=True)
    device = torch.device("cpu" if dry else "cuda")
    c = Check(device, dry)
    t0 = time.perf_counter()
    env = environment(device)
    with DYNAMO.watch():
        steps = [run_step(name, c, BUDGET_S[name]) for name in a.steps]
    report = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "dry": dry,
              "command": "python -m bench.gpu_check " + " ".join(sys.argv[1:] if argv is None else argv),
              "environment": env, "seconds": round(time.perf_counter() - t0, 1), "steps": steps}
    gpu = re.sub(r"[^a-z0-9]+", "-", report["environment"].get("gpu", "").lower().replace("nvidia", "")).strip("-")
    stem = f"{datetime.date.today()}-" + ("dry-cpu" if dry else f"cuda-{gpu or 'gpu'}")
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    print(f"wrote {out / stem}.json and .md ({report['seconds']} s)")
    return 0 if all(s["status"] in ("ok", "skipped") for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
