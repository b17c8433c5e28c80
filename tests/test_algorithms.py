"""The paper's learning algorithms and analyses on stored runs at the smoke scale (issue: algorithms & analyses)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from pruning_repro.config import get_bench
from pruning_repro.study import Study
from pruning_repro.el2n import el2n_scores
from pruning_repro.executors import run_many
from pruning_repro.imp import run_imp
from pruning_repro.leave_out import dense_spec, dense_subset_spec, tie_rnd_specs
from pruning_repro.store import Store
from pruning_repro.runtime import Runtime
from pruning_repro.width import width_results, width_specs


def smoke(strategy="magnitude", rewind="lr", levels=2, noise=0.2, seed=0):
    s = get_bench("lenet_mnist", "smoke").run_spec(noise, seed)
    return replace(s, prune=replace(s.prune, strategy=strategy, rewind=rewind, levels=levels))


@pytest.mark.parametrize("strategy", ["magnitude", "random", "synflow", "snip"])
def test_heuristics_remove_exactly_20_percent_per_level(strategy, tiny_mnist):
    res = run_imp(smoke(strategy), Store(), "cpu")
    assert np.allclose(res.density, [1.0, 0.8, 0.64], atol=1e-4)


def test_heuristics_choose_different_weights(tiny_mnist):
    st = Store()
    masks = {}
    for strat in ("magnitude", "random", "synflow", "snip"):
        s = smoke(strat, levels=1)
        run_imp(s, st, "cpu")
        masks[strat] = st.load_state(s, 1)[1]["fc_layers.0.weight"]
    for a in masks:
        for b in masks:
            if a < b: assert not torch.equal(masks[a], masks[b]), (a, b)


def test_extended_dense_training_keeps_weights_and_replays_schedule(tiny_mnist):
    res = run_imp(smoke("none"), Store(), "cpu")
    assert (res.density == 1.0).all()
    assert res.epochs_total.tolist() == [2, 4, 6] and res.steps.nunique() == 1


def test_oneshot_is_one_level_to_the_target(tiny_mnist):
    from pruning_repro.imp import oneshot_spec
    s = oneshot_spec(smoke(), 0.1)
    assert run_imp(s, Store(), "cpu").density.round(4).tolist() == [1.0, 0.1]


def test_width_downscaling_sequence(tiny_mnist):
    b = get_bench("lenet_mnist", "smoke")
    specs = width_specs(b, 0.2, 0, steps=2)
    out = width_results(run_many(specs, Store(), workers=1, device="cpu"), specs)
    assert out.width.round(4).tolist() == [1.0, 0.8, 0.64]
    assert out.weights_remaining.is_monotonic_decreasing and out.weights_remaining.iloc[0] == 100
    eq = width_specs(b, 0.2, 0, steps=1, equalized=True)
    res = run_many(eq, Store(), workers=1, device="cpu")
    assert all(df.epochs_total.tolist() == [2, 4] for df in res.values())   # = one-shot pruning's budget


def test_el2n_stored_once_and_bounded(tiny_mnist):
    st, s = Store(), smoke(levels=0)
    sc = el2n_scores(s, st, n_models=2, fraction=0.5, runtime=Runtime(device="cpu", workers=1))
    assert sc.shape == (400,) and float(sc.min()) >= 0 and float(sc.max()) <= 2 ** 0.5 + 1e-6
    noisy = st.load_extra(s, "data")["noisy"].bool()
    assert float(sc[noisy].mean()) > float(sc[~noisy].mean())      # mislabelled examples score higher
    before = sorted(p.stat().st_mtime_ns for p in st.root.rglob("metrics.json"))
    assert torch.equal(el2n_scores(s, st, n_models=2, fraction=0.5, runtime=Runtime(device="cpu")), sc)
    assert before == sorted(p.stat().st_mtime_ns for p in st.root.rglob("metrics.json"))


def test_dense_subset_keeps_step_count(tiny_mnist):
    st, s = Store(), smoke(levels=2)
    run_imp(s, st, "cpu")
    ds = dense_subset_spec(s, st, 2)
    left_out = len(ds.data.exclude_ids)
    assert 0 < left_out < 400
    res = run_imp(ds, st, "cpu")
    dense = run_imp(dense_spec(s), st, "cpu")
    assert res.steps.iloc[0] == dense.steps.iloc[0] == 2 * -(-400 // 64)


def test_tie_and_rnd_leave_out_same_number(tiny_mnist):
    st, s = Store(), smoke(levels=1)
    run_imp(s, st, "cpu")
    sp = tie_rnd_specs(s, st, 1, fraction=0.2)
    assert len(sp["TIE"].data.exclude_ids) == len(sp["RND"].data.exclude_ids) == 80
    assert set(sp["TIE"].data.exclude_ids) != set(sp["RND"].data.exclude_ids)
    out = run_many(sp, st, workers=1, device="cpu")
    assert all(len(df) == 1 for df in out.values())


def test_compare_algorithms_table(tiny_mnist, isolated):
    from pruning_repro.algorithms import ALGORITHMS
    from pruning_repro.sections import compare_algorithms
    tables = compare_algorithms(Study("lenet_mnist", "smoke", seeds=[0, 1], noise_levels=[0.1],
                                      figures=isolated / "figures"), Runtime(workers=1))
    t = tables[0.1]
    assert t.algorithm.tolist() == list(ALGORITHMS) and (t.n_seeds == 2).all()
    folder = isolated / "figures" / "lenet_mnist_smoke"
    assert (folder / "algorithms_p0.1.md").exists() and not (folder / "table02_algorithms_p0.1.md").exists()
    paper = t.set_index("algorithm")[["paper_mean", "paper_std"]]     # the paper's Tables 5, 7, 9, 10 at 10% noise
    assert paper.loc["LR rewinding"].tolist() == [7.57, 0.35] and paper.loc["EDT"].tolist() == [8.96, 0.13]
    assert paper.loc["WD"].tolist() == [5.45, 0.38]
    edt = t.set_index("algorithm").loc["EDT"]
    assert edt.optimal_weights_remaining_mean == 100.0 and edt.optimal_weights_remaining_std == 0.0
    assert "7.57±0.35" in (folder / "algorithms_p0.1.md").read_text()      # 'm±s' only in the markdown


def test_one_store_serves_every_analysis_without_retraining(tiny_mnist):
    from pruning_repro.analysis import (jaccard, jaccard_chance, partition_table, selected_levels, subgroup_deltas,
                                        top_examples, top_fraction, trajectories)
    st, b = Store(), get_bench("lenet_mnist", "smoke")
    imp = b.run_spec(0.2, 0)
    edt = replace(imp, prune=replace(imp.prune, strategy="none"))
    widths = width_specs(b, 0.2, 0, steps=3)                    # the width down-scaling sequence ('WD', §5.2)
    run_many({"imp": imp, "edt": edt, **widths}, st, workers=1, device="cpu")
    el2n = el2n_scores(imp, st, n_models=2, fraction=0.5, runtime=Runtime(device="cpu", workers=1))
    stamps = sorted((str(p), p.stat().st_mtime_ns) for p in st.root.rglob("*.safetensors"))

    traj = trajectories({"imp": st.results(imp)}, {"imp": imp})
    sel = selected_levels(traj).loc[0.2]
    dense = st.load_per_example(imp, 0)["train_loss"].numpy()
    levels = sorted({int(sel.optimal), 1, b.prune.levels} - {0})
    changes = np.stack([st.load_per_example(imp, l)["train_loss"].numpy() - dense for l in levels])
    for spec in (imp, edt):
        for l in levels:
            d = subgroup_deltas(st.load_per_example(spec, l)["train_loss"].numpy(), dense, el2n.numpy())
            assert d.shape == (20,) and np.isfinite(d).all()
    assert partition_table(traj).partition.tolist() == ["Noisy", "Original", "Gap"]   # Gap: noisy − original, per seed
    assert len(top_examples(changes, 10)) == 10 and len(top_examples(changes, 10, "least")) == 10
    width_last = list(widths.values())[-1]
    width_change = st.load_per_example(width_last, 0)["train_loss"].numpy() - dense
    j = jaccard(top_fraction(changes[-1]), top_fraction(width_change))
    assert 0 <= j <= 1 and 0 < jaccard_chance(40, 400) < 0.1
    assert len(tie_rnd_specs(imp, st, levels[0])["TIE"].data.exclude_ids) == 80
    assert torch.equal(el2n_scores(imp, st, n_models=2, fraction=0.5, runtime=Runtime(device="cpu")), el2n)
    assert stamps == sorted((str(p), p.stat().st_mtime_ns) for p in st.root.rglob("*.safetensors"))


def test_a_new_heuristic_is_one_function_and_one_registry_entry(tiny_mnist, monkeypatch):
    "A weight-selection heuristic of one's own: `register_strategy` + `register_algorithm`, then every table knows it."
    from pruning_repro import algorithms as A
    from pruning_repro import prune as P
    monkeypatch.setattr(P, "STRATEGIES", dict(P.STRATEGIES)); monkeypatch.setattr(A, "ALGORITHMS", dict(A.ALGORITHMS))
    def smallest_gradient_free(model, names, context):          # prune the weights closest to their layer's mean
        params = dict(model.named_parameters())
        return {n: (params[n].detach() - params[n].detach().mean()).abs().cpu() for n in names}
    P.register_strategy("centred", smallest_gradient_free)
    A.register_algorithm(A.Algorithm("centred magnitude", {"strategy": "centred"}, marker="P"))
    b = get_bench("lenet_mnist", "smoke")
    runs = A.algorithm_runs(b, 0.2, (0, 1), ["LR rewinding", "centred magnitude"])
    run_many({k: v for r in runs.values() for k, v in r.items()}, Store(), workers=1, device="cpu")
    from pruning_repro.results import algorithm_frames
    frames = algorithm_frames(b, [0.2], (0, 1), Store(), ["LR rewinding", "centred magnitude"])
    t = A.versus_table(frames, ["LR rewinding", "centred magnitude"], [0.2], b.family).set_index("algorithm")
    assert t.loc["centred magnitude", "n_seeds"] == 2 and t.loc["centred magnitude", "verdict"] in ("match", "differ")
    assert np.isnan(t.loc["centred magnitude", "paper_mean"])          # the paper has no row for it
    assert A.style("centred magnitude") == ("P", "-")
    dens = frames["centred magnitude"].groupby("level").weights_remaining.mean().round(1).tolist()
    assert dens == [100.0, 80.0, 64.0, 51.2]
