"""Fidelity to the paper's recipe (issue 13): each test fails on the behaviour before it."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pruning_repro.analysis import (example_selection_levels, generalization_table, improving_range, optimal_rows,
                                    rank_examples, study_subgroup_deltas, trajectories)
from pruning_repro.config import ModelSpec, PruneSpec, RunSpec, get_bench
from pruning_repro.data import INFO
from pruning_repro.el2n import el2n_specs
from pruning_repro.executors import run_many
from pruning_repro.models import build_model
from pruning_repro.prune import (STRATEGIES, ScoringContext, SynFlowSettings, full_masks, prune_masks, snip_scores,
                                 synflow_scores)
from pruning_repro.store import Store
from pruning_repro.sweep import dependent_runs, section_noise, study_runs
from pruning_repro.width import weights_remaining, width_specs, width_steps


# 1. initialisation as OpenLTH's, as a field of the model spec
def test_openlth_initialisation_and_its_spec_field():
    r20 = build_model(ModelSpec("resnet20"), INFO["cifar10"], seed=0)
    bn = torch.cat([m.weight.detach() for m in r20.modules() if isinstance(m, nn.BatchNorm2d)])
    assert not (bn == 1).all() and (bn >= 0).all() and (bn < 1).all()
    lenet = build_model(ModelSpec("lenet"), INFO["mnist"], seed=0)
    assert (lenet.fc_layers[0].bias != 0).all()                     # PyTorch's default biases, not zeros
    new = get_bench("lenet_mnist").run_spec(0.1, 0)
    old = replace(new, model=replace(new.model, init="legacy"), prune=replace(new.prune, snip_per_class=None))
    assert new.hash() != old.hash()                                  # never reused as runs of the new recipe
    assert RunSpec.from_dict({k: v for k, v in json.loads(old.canonical()).items()}) == old   # old runs keep meaning
    # an old run resumes from the dense root it stored (a root without the new field), a new one from a new root
    from pruning_repro.imp import dense_root
    assert "snip_per_class" not in json.loads(dense_root(old).canonical())["prune"]
    assert json.loads(dense_root(new).canonical())["prune"]["snip_per_class"] == 10


# 2. trajectory lengths from the paper
def test_trajectories_end_where_the_paper_says():
    left = lambda b: 100 * (1 - b.prune.fraction) ** b.prune.levels
    assert left(get_bench("vgg16_c10")) <= 0.2
    assert round(left(get_bench("resnet20_c10")), 2) == 0.92
    assert round(left(get_bench("lenet_mnist")), 1) == 1.4
    assert round(left(get_bench("resnet50_imagenet")), 1) == 13.4


# 3. one sparsity per noise level, chosen on the seed-averaged curves
class _Store:
    "Just what the analyses read: results and per-example losses of hand-made runs."
    def __init__(self, frames, losses): self.frames, self.losses = frames, losses
    def results(self, spec): return self.frames[spec.seed]
    def load_per_example(self, spec, level): return {"train_loss": self.losses[(spec.seed, level)]}


def test_one_sparsity_per_noise_level_for_every_seed():
    b = get_bench("lenet_mnist", "smoke")
    specs = {f"s{s}": b.run_spec(0.2, s) for s in (0, 1, 2)}
    val = {0: [.3, .20, .25, .26], 1: [.3, .27, .22, .26], 2: [.3, .24, .23, .31]}  # per-seed optima: 1, 2, 2
    frames = {s: pd.DataFrame({"level": range(4), "val_err": v, "test_err": v, "density": [1, .8, .64, .512],
                               "train_loss": .5}) for s, v in val.items()}
    losses = {(s, lv): torch.full((10,), float(lv)) for s in val for lv in range(4)}
    st = _Store(frames, losses)
    d = study_subgroup_deltas(specs, st, {k: np.arange(10) for k in specs}, "optimal", m=2)
    assert set(d.level) == {2}                                       # the seed-mean optimum, for every seed
    traj = trajectories({k: frames[s.seed] for k, s in specs.items()}, specs)
    assert optimal_rows(traj).level.tolist() == [2, 2, 2]
    assert generalization_table(traj).optimal_weights_remaining_mean[0] == 64.0
    # "better than dense" by the match rule: level 3's mean is lower but one seed is not better
    assert improving_range(traj) == (80.0, 64.0)


# 4. App. E: a dense-subset model of the dense level too
def test_dense_subset_runs_include_the_dense_level(tiny_mnist):
    b = replace(get_bench("lenet_mnist", "smoke"), prune=replace(get_bench("lenet_mnist", "smoke").prune, levels=1))
    st = Store()
    run_many({"imp": b.run_spec(0.3, 0)}, st, workers=1, device="cpu")
    runs = dependent_runs("appE_dense_subset", b, (0,), (0.3,), st)
    assert any(k.level == 0 for k in runs), list(runs)


# 5. App. K: the generalization-preserving fallback, and seeds averaged before ranking
def test_most_worsened_falls_back_to_preserving_sparsities_and_averages_seeds():
    t = pd.DataFrame({"seed": [0, 1] * 3, "level": [0, 0, 1, 1, 2, 2], "test_err": [.10, .10, .11, .11, .30, .30],
                      "train_loss": [.5, .5, .6, .6, .9, .9]})
    sel = example_selection_levels(t)
    assert sel["most worsened"] == [1] and sel["worsened_from"] == "preserving"   # before: no set at all
    per_seed = [(np.array([1, 2]), np.array([[0.5, 0.9]])), (np.array([2, 1]), np.array([[0.0, 0.5]]))]
    assert rank_examples(per_seed, 1).tolist() == [1]                # pooled, example 2 (0.9 on one seed) would win


# 6. App. J: Tables 9 and 10 have a 0% noise column, run by App. C
def test_appJ_runs_at_zero_noise_too():
    b = get_bench("lenet_fashion")
    assert 0.0 in section_noise("appJ_ablations", b)
    j = {v.hash() for v in study_runs(b, ["appJ_ablations"], (0,)).values()}
    c = {v.hash() for v in study_runs(b, ["appC_algorithms"], (0,)).values()}
    assert j & c                                                       # the 0% runs are App. C's, trained once


# 7. SNIP and SynFlow as the Synaptic-Flow reference, with their settings in the spec
def test_snip_and_synflow_settings_are_hashed_spec_fields():
    s = get_bench("lenet_mnist").run_spec(0.0, 0)
    assert s.prune.synflow_rounds == 100 and s.prune.snip_per_class == 10
    assert replace(s, prune=replace(s.prune, snip_per_class=5)).hash() != s.hash()
    assert replace(s, prune=replace(s.prune, synflow_rounds=10)).hash() != s.hash()
    calls = []
    def counting(model, names, ctx): calls.append(1); return synflow_scores(model, names, ctx)
    m = build_model(ModelSpec("lenet", width=0.1), INFO["mnist"], seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(STRATEGIES, "synflow", replace(STRATEGIES["synflow"], scores=counting))
        prune_masks(m, full_masks(m), 0.5, "synflow", ScoringContext(input_shape=(1, 28, 28), settings=SynFlowSettings(7)))
    assert len(calls) == 7                                             # the spec's rounds reach the heuristic


def test_imp_passes_the_specs_heuristic_settings(tiny_mnist):
    "A run's `synflow_rounds` and `snip_per_class` reach the heuristics, and SNIP scores with the model in eval mode."
    seen = {"synflow": 0, "snip": []}
    def synflow(model, names, ctx): seen["synflow"] += 1; return synflow_scores(model, names, ctx)
    def snip(model, names, ctx):
        seen["snip"].append(ctx.settings.per_class)
        calls = []
        hook = lambda mod, inp, out: calls.append((mod.training, len(inp[0])))
        out = snip_scores(_Hooked(model, hook), names, ctx)            # the hook is copied with the model SNIP scores
        assert calls and all(not training for training, _ in calls) and sum(n for _, n in calls) == 3 * 10
        return out
    b = get_bench("lenet_mnist", "smoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(STRATEGIES, "synflow", replace(STRATEGIES["synflow"], scores=synflow))
        mp.setitem(STRATEGIES, "snip", replace(STRATEGIES["snip"], scores=snip))
        for strat, kw in (("synflow", {"synflow_rounds": 4}), ("snip", {"snip_per_class": 3})):
            s = b.run_spec(0.0, 0)
            s = replace(s, prune=replace(s.prune, strategy=strat, levels=1, **kw))
            run_many({strat: s}, Store(), workers=1, device="cpu")
    assert seen["synflow"] == 4 and seen["snip"] == [3]


class _Hooked(nn.Module):
    "A model whose forward calls `hook(module, inputs, output)`, deep-copied with it (as SNIP copies the model)."
    def __init__(self, inner, hook):
        super().__init__(); self.inner = inner; self.inner.register_forward_hook(hook)
    def forward(self, x): return self.inner(x)
    def named_parameters(self, *a, **k):
        for n, p in self.inner.named_parameters(*a, **k): yield n, p


# 8. EL2N replicas are not the dense model's first epochs
def test_el2n_replicas_use_their_own_streams():
    s = get_bench("resnet20_c10").run_spec(0.3, 0)
    assert all(r.stream("init") != s.stream("init") for r in el2n_specs(s).values())


# 9. width down-scaling spans the pruning range
def test_width_sequence_spans_the_pruning_range():
    b = get_bench("lenet_fashion")
    last = list(width_specs(b, 0.0, 0).values())[-1]
    assert weights_remaining(last) < 2 * 100 * 0.5 ** b.prune.levels < 1     # before: 13% (0.8 over 9 steps)
    r20 = get_bench("resnet20_c10")
    assert weights_remaining(list(width_specs(r20, 0.0, 0).values())[-1]) <= 100 * 0.8 ** 21
    assert width_steps(r20) == 11


# 10. honest paper columns
def test_embedded_bench_labels_the_paper_numbers_as_a_reference():
    assert "reference" in get_bench("lenet_fashion").paper_label and "MNIST" in get_bench("lenet_fashion").paper_label
    assert get_bench("lenet_mnist").paper_label == "M-LeNet"


# issue 22: CIFAR crops pad with black (OpenLTH pads the raw image before normalising), as a spec field whose
# absence means the old padding, so runs stored before keep their hashes
def test_cifar_crops_pad_black_and_old_runs_keep_their_hash():
    from pruning_repro.tensors import TensorSplit, black_fill
    for name in ("resnet20_c10", "vgg16_c10", "resnet32_c100"):
        s = get_bench(name).run_spec(0.0, 0)
        assert s.data.crop_fill == "black" and json.loads(s.canonical())["data"]["crop_fill"] == "black"
        old = replace(s, data=replace(s.data, crop_fill="mean"))
        assert "crop_fill" not in json.loads(old.canonical())["data"] and old.hash() != s.hash()
    assert "crop_fill" not in json.loads(get_bench("lenet_mnist1d").run_spec(0.15, 0).canonical())["data"]
    info = INFO["cifar10"]
    black = black_fill(info)
    assert torch.allclose(black, -torch.tensor(info.mean) / torch.tensor(info.std))
    # an augmented batch: every padded pixel is black after normalisation, the rest is the image
    x = torch.randn(64, 3, 32, 32)
    split = TensorSplit(x, torch.zeros(64, dtype=torch.long), torch.arange(64), augment=True, fill=black)
    xb, _, idx = next(split.iterate({"order": torch.arange(64)}, 64, torch.Generator().manual_seed(0)))
    src = x[idx]
    for k in range(4):   # the central 24x24 of a 4-pixel crop is always image: pixels of that example
        assert torch.isin(xb[k, :, 4:28, 4:28], src[k]).all()
    corner = xb[:, :, 0, 0]                       # a crop shifted by the full pad shows the border in its corner
    shifted = (corner[:, None, :] == black[None, None, :]).all(-1).squeeze(1)
    assert shifted.any() and not torch.isclose(corner[shifted], torch.zeros_like(corner[shifted])).all()
    with pytest.raises(Exception, match="crop_fill"):
        replace(get_bench("resnet20_c10").data, crop_fill="white")
