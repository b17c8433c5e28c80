"""Issue 24, items 2-3 on the CPU: the compiled-vs-eager check (true float32, relative L2 distance, data-parallel
ranks too), one dynamo cache per architecture, TF32 as the spec's precision says, and each level's numerics recorded.
No real inductor compile here: `torch.compile` is replaced by a fake, or by dynamo's `eager` backend (fast)."""
import functools
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruning_repro import forward as FW
from pruning_repro.config import ConfigError, ModelSpec, TrainSpec, get_bench
from pruning_repro.data import Data, DataInfo
from pruning_repro.tensors import TensorSplit
from pruning_repro.models import CifarResNet, build_model
from pruning_repro.forward import Compiled, grad_distance, precision_flags
from pruning_repro.train import Segment, train
from pruning_repro.runtime import Runtime


def _data(shape=(3, 8, 8), n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = (x.flatten(1)[:, 0] > 0).long()
    s = TensorSplit(x, y, torch.arange(n))
    return Data(s, s, s, y, torch.zeros(n, dtype=torch.bool), DataInfo(2, shape, (0.,) * shape[0], (1.,) * shape[0]))


def _resnet(width=0.25, shape=(3, 8, 8)):
    return build_model(ModelSpec("resnet20", width=width), _data(shape).info, seed=0).train()


@pytest.fixture
def fresh(monkeypatch):
    "No verdict or compiled architecture carried over from another test."
    monkeypatch.setattr(FW, "_VERIFIED", {})
    monkeypatch.setattr(FW, "_ARCH", [None])


def _tf32():
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


class _WrongBackward(torch.autograd.Function):
    "Identity forward, gradient tripled backward: a compiled backward that is wrong (the AMD EPYC case, O(1))."
    @staticmethod
    def forward(ctx, x): return x.clone()
    @staticmethod
    def backward(ctx, g): return 3 * g


def test_check_runs_in_true_fp32_and_passes_float_rounding(fresh, monkeypatch):
    """Outputs perturbed by relative 1e-7 (float32 rounding) pass; the check sees TF32 off whatever the caller set,
    and restores the caller's flags."""
    m, d = _resnet(), _data()
    x, y = d.train.x[:32], d.train.y[:32]
    seen = []
    def rounding(inp):
        seen.append(_tf32())
        out = m(inp)
        return out * (1 + 1e-7 * torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)
    c = Compiled(m); c.fn = rounding
    with precision_flags("tf32", "cuda"):               # a 'tf32' run: the check still runs with TF32 off
        before = _tf32()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c.verify(x, y)
        assert _tf32() == before == (True, True)
    assert seen == [(False, False)] and c.ok is not False


def test_wrong_backward_falls_back_with_one_warning(fresh, monkeypatch):
    "A compiled function whose backward is wrong: one warning, training goes on eagerly, the level records it."
    monkeypatch.setattr(torch, "compile", lambda model, **kw: (lambda x: _WrongBackward.apply(model(x))))
    data = _data()
    m = _resnet()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = train(m, data, TrainSpec(epochs=2, batch_size=32, optimizer="sgd", lr=0.05),
                  Segment(torch.Generator().manual_seed(0)), runtime=Runtime(compile="1", progress=False))
    msgs = [str(x.message) for x in w if "training this model eagerly" in str(x.message)]
    assert len(msgs) == 1 and "gradients differ from the eager model's" in msgs[0] and "relative L2" in msgs[0]
    assert r["numerics"]["compiled"] is False
    ref = _resnet()                                     # then it is the eager run, exactly
    train(ref, data, TrainSpec(epochs=2, batch_size=32, optimizer="sgd", lr=0.05),
          Segment(torch.Generator().manual_seed(0)), runtime=Runtime(compile="0", progress=False))
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref.state_dict().values()))


def _scaled(model):
    """The same function as `model` in exact arithmetic (its first layer is conv + BatchNorm, which ignores the input's
    scale), rounded differently: a valid other computation, as compiled code is."""
    return lambda x: model(3 * x)


def test_check_under_bf16_autocast_runs_in_fp32(fresh, monkeypatch):
    """Inside a bf16 autocast (a bf16 run's training) a correct compile passes: the check leaves autocast. In bf16 the
    same two computations differ by several % of the largest gradient (what the old check compared)."""
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)
    m, d = _resnet(), _data()
    x, y = d.train.x[:32], d.train.y[:32]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        c = Compiled(m); c.fn = _scaled(m)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c.verify(x, y)
        assert c.ok is not False
        assert grad_distance(m, _scaled(m), x, y) < 1e-3           # in float32 they agree to rounding
    # whole-run: a bf16 run trains compiled and says so
    monkeypatch.setattr(FW, "_VERIFIED", {})
    monkeypatch.setattr(torch, "compile", lambda model, **kw: _scaled(model))
    r = train(_resnet(), d, TrainSpec(epochs=1, batch_size=32, optimizer="sgd", lr=0.05, precision="bf16"),
              Segment(torch.Generator().manual_seed(0)), runtime=Runtime(compile="1", progress=False))
    assert r["numerics"]["compiled"] is True and r["numerics"]["precision"] == "bf16"


def test_bf16_distance_is_far_above_fp32_rounding():
    "Why the check leaves autocast: the same computation in bf16 and fp32 differs by far more than the tolerance."
    m, d = _resnet(), _data()
    x, y = d.train.x[:32], d.train.y[:32]
    def bf16(inp):
        with torch.autocast("cpu", dtype=torch.bfloat16): return m(inp).float()
    assert grad_distance(m, bf16, x, y) > FW.VERIFY_TOL > grad_distance(m, _scaled(m), x, y) * 10


class _FakeWorld:
    "A data-parallel world as `train` sees it, of one process; `others_ok`: whether the other ranks' checks passed."
    distributed, size, shard = True, 2, None
    def __init__(self, others_ok=True): self.others_ok, self.sums = others_ok, []
    def wrap(self, model): return model
    def sum(self, t):
        self.sums.append(float(t))
        return t + (1 if self.others_ok else 0) if t.dim() == 0 and t.dtype.is_floating_point else t * 2


def test_data_parallel_rank_checks_local_twin(fresh, monkeypatch):
    """A data-parallel rank checks its module's local twin (synchronized BatchNorm made local, no collective), compiled
    on its own; the ranks agree (one all-reduce) and a failure on another rank makes every rank train eagerly."""
    compiled = []
    def fake(model, **kw):
        compiled.append(model)
        return model
    monkeypatch.setattr(torch, "compile", fake)
    m = nn.SyncBatchNorm.convert_sync_batchnorm(_resnet())
    twin = FW.local_twin(m)
    assert not any(isinstance(x, nn.SyncBatchNorm) for x in twin.modules())
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), twin.state_dict().values()))
    assert any(isinstance(x, nn.SyncBatchNorm) for x in m.modules())   # the original is untouched
    d = _data()
    x, y = d.train.x[:32], d.train.y[:32]
    c = Compiled(m)
    world = _FakeWorld(others_ok=True)
    c.verify(x, y, module=twin, world=world)
    assert compiled[-1] is twin and world.sums == [1.0] and c.ok is not False
    c2, bad = Compiled(m), _FakeWorld(others_ok=False)
    with pytest.warns(UserWarning, match="failed on 1 of 2 ranks"):
        c2.verify(x, y, module=twin, world=bad)
    assert c2.ok is False


def test_data_parallel_training_is_checked_and_recorded(fresh, monkeypatch):
    "`train` in a data-parallel world runs the check (it used to skip it) and records how it ran."
    compiled = []
    def fake(model, **kw):
        compiled.append(model)
        return lambda x: _WrongBackward.apply(model(x))
    monkeypatch.setattr(torch, "compile", fake)
    world = _FakeWorld()
    with pytest.warns(UserWarning, match="gradients differ"):
        r = train(_resnet(), _data(), TrainSpec(epochs=1, batch_size=32, optimizer="sgd", lr=0.05),
                  Segment(torch.Generator().manual_seed(0)), runtime=Runtime(compile="1", progress=False), world=world)
    assert len(compiled) == 2 and compiled[1] is not compiled[0]      # the trained module, then its local twin
    assert r["numerics"]["compiled"] is False


def test_compile_cache_emptied_per_architecture(fresh, monkeypatch):
    "`forward_fn` empties dynamo's cache when the architecture changes (a width sweep), not between levels of one."
    resets = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    for w in (0.25, 0.25, 0.5, 0.5, 0.25):
        FW.forward_fn(_resnet(w), "1")
    assert len(resets) == 2


def test_width_sweep_stays_compiled(fresh, monkeypatch):
    """With dynamo itself (its `eager` backend: no code generation), 9 widths of a ResNet-8 in one process: before, the
    8th width hit dynamo's recompile limit and ran eagerly from then on; now every level is compiled, and says so."""
    from torch._dynamo.utils import counters
    real = torch.compile
    monkeypatch.setattr(torch, "compile", functools.partial(real, backend="eager"))
    torch._dynamo.reset()
    limit = lambda: sum(v for k, v in counters["unimplemented"].items() if "recompile limit" in str(k).lower())
    hits0, d = limit(), _data(n=40)
    spec = TrainSpec(epochs=1, batch_size=16, optimizer="sgd", lr=0.05, steps_per_epoch=3)
    records = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for w in (1.0, 0.25, 0.5, 0.75, 1.25, 1.5, 1.75, 2.0, 2.25):
            m = CifarResNet(8, 2, w)
            records.append(train(m, d, spec,
                                 Segment(torch.Generator().manual_seed(0)),
                                 runtime=Runtime(compile="1", progress=False))["numerics"])
    torch._dynamo.reset()
    assert limit() == hits0
    assert all(r["compiled"] and not r["recompile_limit_hit"] and r["compile_graphs"] >= 1 for r in records), ([(r["compiled"], r["recompile_limit_hit"], r["compile_graphs"]) for r in records], [str(w.message)[:300] for w in caught])


def test_precision_flags_set_and_restored():
    "TF32 per precision on a CUDA device (only flags: no GPU needed), restored after, even on an error; none on a CPU."
    before = _tf32()
    for p, on in (("tf32", True), ("fp32", False), ("bf16", False)):
        with precision_flags(p, "cuda"): assert _tf32() == (on, on)
        assert _tf32() == before
    with pytest.raises(RuntimeError):
        with precision_flags("tf32", torch.device("cuda", 0)): raise RuntimeError("boom")
    assert _tf32() == before
    torch.backends.cudnn.allow_tf32 = True
    try:
        with precision_flags("fp32", "cpu"): assert torch.backends.cudnn.allow_tf32 is True
    finally: torch.backends.cudnn.allow_tf32 = before[1]


def test_tf32_is_a_precision_and_fp32_keeps_hashes():
    "'tf32' is a precision of its own (own hash); 'fp32', the default, leaves the canonical form (and hash) as stored."
    b = get_bench("resnet20_c10", "smoke")
    fp, tf = b.run_spec(), get_bench("resnet20_c10", "smoke", "tf32").run_spec()
    assert "precision" not in fp.to_dict()["train"] and tf.to_dict()["train"]["precision"] == "tf32"
    assert fp.hash() != tf.hash() and get_bench("resnet20_c10", "smoke", "fp32").run_spec().hash() == fp.hash()
    with pytest.raises(ConfigError, match="precision must be one of fp32, tf32, bf16"):
        TrainSpec(epochs=1, batch_size=1, precision="fp16")
    from pruning_repro.cli import _parser
    assert _parser().parse_args(["imp", "--precision", "tf32"]).precision == "tf32"


def test_level_metrics_record_numerics(tiny_mnist):
    "Each stored level records its numerics under one key, in strict JSON; the store reads it; tables leave it out."
    from dataclasses import replace
    from pruning_repro.imp import run_imp
    from pruning_repro.store import Store
    st = Store()
    s = get_bench("lenet_mnist", "smoke").run_spec(0.1, 0)
    s = replace(s, prune=replace(s.prune, levels=1))
    res = run_imp(s, st, "cpu")
    for lv in (0, 1):
        raw = json.loads((st.level_dir(s, lv) / "metrics.json").read_text())
        n = raw["numerics"]
        assert set(n) == {"device", "torch", "cuda", "cudnn", "nccl", "precision", "tf32_matmul", "tf32_cudnn",
                          "compiled", "compile_graphs", "recompile_limit_hit"}
        assert (n["torch"], n["precision"], n["cuda"], n["compiled"], n["tf32_matmul"]) == \
            (torch.__version__, "fp32", None, False, False)
        assert n["device"].startswith("cpu") and st.metrics(s, lv)["numerics"] == n
    assert "numerics" not in res.columns and "numerics" not in st.results(s).columns
