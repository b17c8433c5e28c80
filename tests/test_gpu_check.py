"""`make gpu-check` (bench/gpu_check.py) as a dry run on the CPU, and the GPU JPEG path's CPU-testable parts: only the
files nvJPEG refuses go to the CPU, and the background decoding thread gives the synchronous path's batches."""
import io
import json
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from pruning_repro import formats as FM
from pruning_repro import imagenet as I

from conftest import REPO, run

CUDA_ONLY = {"ddp_batchnorm"}          # skipped as a whole without 2 GPUs


def test_gpu_check_dry_run_records_every_step(tmp_path):
    "The whole check on the CPU: every step runs its plumbing (or is skipped), the CUDA parts are marked skipped."
    t = time.time()
    r = run([str(REPO / ".venv/bin/python") if (REPO / ".venv/bin/python").exists() else "python3",
             "-m", "bench.gpu_check", "--dry", "--out", str(tmp_path)], env={"PYTHONPATH": str(REPO)}, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert time.time() - t < 120
    (js,) = tmp_path.glob("*-dry-cpu.json")
    assert js.with_suffix(".md").exists()
    rep = json.loads(js.read_text())
    steps = {s["name"]: s for s in rep["steps"]}
    assert list(steps) == ["bench", "sync_debug", "width_sweep", "resnet50_batches", "ddp_batchnorm"]
    assert rep["dry"] and rep["environment"]["device"] == "cpu" and rep["environment"]["torch"] == torch.__version__
    for name, s in steps.items():
        assert s["status"] == ("skipped" if name in CUDA_ONLY else "ok"), (name, s.get("error"))
        assert s["seconds"] <= s["budget_s"] and s["dynamo"] == {"recompiles": 0, "recompile_limit_hits": 0}
    res = {k: s["result"] for k, s in steps.items()}
    rows = res["bench"]["rows"]
    assert {(r["bench"], r["precision"], r["mode"]) for r in rows} == \
        {(b, p, "eager") for b in ("resnet20_c10", "vgg16_c10") for p in ("fp32", "bf16")}
    assert all(r["examples_per_s"] > 0 and r["ran_compiled"] is False for r in rows)
    assert sum("compiled runs need CUDA" in s for s in res["bench"]["skipped"]) == 4
    assert "train_syncs" not in res["sync_debug"] and res["sync_debug"]["train_steps"] == 2
    assert any("set_sync_debug_mode" in s for s in res["sync_debug"]["skipped"])
    assert [w["width"] for w in res["width_sweep"]["rows"]] == [0.125, 0.25]
    assert res["width_sweep"]["recompiles"] == 0 and res["width_sweep"]["any_fell_back"] is False
    r50 = res["resnet50_batches"]
    assert r50["input_shape"] == [3, 224, 224] and r50["eval_batch"] == r50["el2n_batch"] == 128   # the CPU rule
    assert 1 <= r50["eval_batch_if_80GiB"] <= 2048 and r50["skipped"] == ["forward probe: CUDA only"]
    assert "2+ CUDA GPUs" in res["ddp_batchnorm"]["skipped"][0]
    gloo = res["ddp_batchnorm"]["cpu_plumbing"]                      # 2 CPU ranks, DDP + GlobalBatchNorm over gloo
    assert (gloo["world"], gloo["backend"], list(gloo["kinds"])) == (2, "gloo", ["GlobalBatchNorm"])
    assert gloo["kinds"]["GlobalBatchNorm"]["s_per_step"] > 0


def test_a_failing_or_slow_step_is_recorded_and_the_next_runs(monkeypatch):
    "Each step is wrapped: an error is `failed` with its message, a step past its budget is `timeout`."
    from bench import gpu_check as G
    def boom(c): raise RuntimeError("CUDA error: an illegal memory access")
    def slow(c): time.sleep(5); return {}
    def fine(c): return {"x": 1}
    monkeypatch.setattr(G, "FUNCS", {"a": boom, "b": slow, "c": fine})
    c = G.Check(torch.device("cpu"), True)
    out = [G.run_step(n, c, b) for n, b in (("a", 5), ("b", 1), ("c", 5))]
    assert [o["status"] for o in out] == ["failed", "timeout", "ok"]
    assert "illegal memory access" in out[0]["error"] and out[1]["seconds"] < 4 and out[2]["result"] == {"x": 1}


def test_dynamo_log_counts_recompiles_and_limit_hits(monkeypatch):
    """What the width sweep reads: one module at several widths recompiles once per new width, and the width past
    dynamo's recompile limit (2 here; 8 by default) is reported as a hit (it runs eagerly from then on)."""
    from bench import gpu_check as G
    # dynamo's own patch (monkeypatch's undo deletes the option from dynamo's config module: later compiles fail)
    torch._dynamo.reset()
    class Net(torch.nn.Module):
        def __init__(self, w): super().__init__(); self.fc = torch.nn.Linear(4, w)
        def forward(self, x): return self.fc(x).relu()
    log = G.DynamoLog()
    try:
        with torch._dynamo.config.patch(recompile_limit=2), log.watch():
            for w in (2, 3, 4, 5):
                torch.compile(Net(w), backend="eager")(torch.randn(2, 4))
    finally: torch._dynamo.reset()
    assert log.counts() == {"recompiles": 2, "recompile_limit_hits": 1}
    assert log not in __import__("logging").getLogger("torch._dynamo").handlers


# ---------------------------------------------------------------- the GPU JPEG path, with fakes
def _jpeg(mode: str, value: int = 90, size=(20, 30)) -> torch.Tensor:
    b = io.BytesIO()
    Image.fromarray(np.full((*size, 3), value, np.uint8)).convert(mode).save(b, "JPEG", quality=95)
    return torch.frombuffer(bytearray(b.getvalue()), dtype=torch.uint8)


def test_only_the_file_the_fast_decoder_refuses_goes_to_the_cpu(monkeypatch):
    "One bad file in a batch: the others stay on the fast path, the bad one alone is decoded on the CPU, in order."
    files = [_jpeg("RGB", 10), _jpeg("RGB", 20), _jpeg("L", 30), _jpeg("CMYK", 40), _jpeg("RGB", 50)]
    bad = files[1]
    calls = []
    def fast(datas):
        calls.append([next(k for k, f in enumerate(files) if f is d) for d in datas])
        if any(d is bad for d in datas): raise RuntimeError("nvjpeg: unsupported")
        return [torch.full((3, 1, 1), 200 + next(k for k, f in enumerate(files) if f is d), dtype=torch.uint8)
                for d in datas]
    cpu = []
    real = I.decode_rgb
    def on_cpu(d):
        cpu.append(next(k for k, f in enumerate(files) if f is d)); return real(d)
    monkeypatch.setattr(I, "decode_rgb", on_cpu)
    out = I.decode_on(files, "cpu", fast=fast)
    assert calls == [[0, 1, 2, 4], [0], [1], [2], [4]]          # the batch, then each alone; CMYK never offered
    assert cpu == [1, 3]                                         # the refused file and the CMYK one, nothing else
    assert [int(o[0, 0, 0]) for o in out] == [200, int(real(bad)[0, 0, 0]), 202, int(real(files[3])[0, 0, 0]), 204]
    assert out[1].shape == (3, 20, 30) and torch.equal(out[1], real(bad))
    assert I.jpeg_components(files[3]) == 4 and I.jpeg_components(files[2]) == 1


def test_prefetched_gpu_pass_is_the_synchronous_one(isolated):
    """The GPU path's batches (bytes from the loader, decoded and cropped in this process, here on the CPU) made in
    the background thread: the same batches in the same order as made synchronously, and as the workers' CPU path."""
    FM.write_imagefolder(isolated / "data", n_train=4, n_val=1, classes=3, size=(64, 80), seed=2)
    tr, _ = I.imagenet_folders()
    s = I.ImageFolderSplit(tr, range(len(tr)), torch.tensor(tr.targets), train=True, workers=0)
    plan = s.plan(True, torch.Generator().manual_seed(3))
    seed = int(plan["aug_seed"])

    def gpu_pass(prefetch: bool):
        loader, works = s._loader()
        works.set(plan["order"], 5, 0, None, seed, True, True)     # raw: the workers only read the files' bytes
        made = s._decoded(loader, seed, True)
        return list(I._Prefetch(made, "cpu") if prefetch else made)

    sync, pre = gpu_pass(False), gpu_pass(True)
    cpu_path = list(s.iterate(plan, 5))                              # workers decode with libjpeg-turbo
    assert len(pre) == len(sync) == len(cpu_path) == 3
    for (xa, pa), (xb, pb), (xc, _, pc) in zip(sync, pre, cpu_path):
        assert torch.equal(xa, xb) and torch.equal(pa, pb) and torch.equal(pa, pc)
        assert torch.equal(s._normalise(xb), xc)


class _FakeEvent:
    log = []
    def __init__(self): self.recorded_in = None
    def record(self, stream=None):
        self.recorded_in = threading.current_thread().name; _FakeEvent.log.append(("record", self))


class _FakeStream:
    def __init__(self, device=None): self.device = device
    def wait_event(self, ev): _FakeEvent.log.append(("wait", ev))


def test_prefetch_hands_each_batch_over_with_an_event(monkeypatch):
    """On CUDA the thread works on its own stream and each batch is handed over with an event the consumer's stream
    waits on before it gets the batch (torch.cuda faked: the protocol, not the GPU)."""
    entered = []
    @__import__("contextlib").contextmanager
    def fake_stream(s):
        entered.append((threading.current_thread().name, s)); yield
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: None)
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "stream", fake_stream)
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    consumer = _FakeStream()
    monkeypatch.setattr(torch.cuda, "current_stream", lambda d=None: consumer)
    _FakeEvent.log.clear()
    got = []
    for x, k in I._Prefetch(((torch.full((2,), k), k) for k in range(3)), torch.device("cuda")):
        got.append(k)
        assert sum(kind == "wait" for kind, _ in list(_FakeEvent.log)) == k + 1   # its event waited on first
    assert got == [0, 1, 2] and len(entered) == 1 and entered[0][0] == "pruning_repro-prefetch"
    recs = [e for kind, e in _FakeEvent.log if kind == "record"]
    waits = [e for kind, e in _FakeEvent.log if kind == "wait"]
    assert recs == waits and all(e.recorded_in == "pruning_repro-prefetch" for e in recs)
