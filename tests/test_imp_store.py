"""IMP through the run store: densities, LR vs weight rewinding, resume bit-identical, corrupt checkpoints recomputed,
finished levels never retrained."""
import os
from dataclasses import replace

import pytest
import torch

from pruning_repro.config import get_bench
from pruning_repro.executors import run_many
from pruning_repro.imp import run_imp
from pruning_repro.store import CorruptRun, Store
from pruning_repro.runtime import Runtime


def spec_of(rewind="lr", noise=0.1, seed=0, levels=3):
    s = get_bench("lenet_mnist", "smoke").run_spec(noise, seed)
    return replace(s, prune=replace(s.prune, rewind=rewind, levels=levels))


def final_state(store, spec):
    return store.load_state(spec, spec.prune.levels)[0]


def test_imp_levels_and_partitions(tiny_mnist):
    st, s = Store(), spec_of()
    res = run_imp(s, st, "cpu")
    assert res.level.tolist() == [0, 1, 2, 3]
    assert res.density.round(4).tolist() == [1.0, 0.8, 0.64, 0.512]
    assert res.epochs_total.tolist() == [2, 4, 6, 8]          # rewind epoch 0: full schedule replayed per level
    assert res.noisy_loss.notna().all() and res.original_loss.notna().all()
    state, masks = st.load_state(s, 3)
    for n, m in masks.items():
        assert bool((state[n][m == 0] == 0).all())             # pruned weights are exactly zero
    pe = st.load_per_example(s, 3)
    assert pe["train_loss"].shape == (400,) and pe["train_correct"].dtype == torch.bool
    assert int(st.load_extra(s, "data")["noisy"].sum()) == 40  # exactly 10% of 400


def test_weight_rewinding_resets_survivors(tiny_mnist):
    st, s = Store(), spec_of("weight", levels=1)
    run_imp(s, st, "cpu")
    init = st.load_extra(s, "rewind")                           # rewind epoch 0: the initialisation
    lr = spec_of("lr", levels=1)
    run_imp(lr, st, "cpu")
    # both prune the same weights after the same dense level 0, then diverge: WR starts from init
    assert torch.equal(st.load_state(s, 0)[0]["fc.weight"], st.load_state(lr, 0)[0]["fc.weight"])
    assert not torch.equal(st.load_state(s, 1)[0]["fc.weight"], st.load_state(lr, 1)[0]["fc.weight"])
    assert torch.equal(init["fc.weight"], st.load_extra(lr, "rewind")["fc.weight"])


def test_rerun_trains_nothing(tiny_mnist):
    st, s = Store(), spec_of()
    run_imp(s, st, "cpu")
    stamps = {lv: (st.level_dir(s, lv) / "metrics.json").stat().st_mtime_ns for lv in range(4)}
    run_imp(s, st, "cpu")
    assert stamps == {lv: (st.level_dir(s, lv) / "metrics.json").stat().st_mtime_ns for lv in range(4)}


def test_resume_is_bit_identical(tiny_mnist):
    st, s = Store(), spec_of()
    run_imp(s, st, "cpu")
    ref = final_state(st, s)
    st.discard_level(s, 2)                                      # as if killed during level 2
    assert st.levels_done(s) == [0, 1]
    run_imp(s, st, "cpu")
    again = final_state(st, s)
    assert all(torch.equal(ref[k], again[k]) for k in ref)


def test_corrupt_checkpoint_is_recomputed_not_loaded(tiny_mnist):
    st, s = Store(), spec_of()
    run_imp(s, st, "cpu")
    ref = final_state(st, s)
    p = st.level_dir(s, 1) / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-100])                        # truncated
    with pytest.raises(CorruptRun): st.load_state(s, 1)
    st.discard_level(s, 2)
    run_imp(s, st, "cpu")                                       # level 2 needs level 1: recomputed from level 0
    assert st.load_state(s, 1) is not None
    again = final_state(st, s)
    assert all(torch.equal(ref[k], again[k]) for k in ref)


def test_run_many_in_process_pool(tiny_mnist):
    st = Store()
    specs = {f"s{i}": spec_of(seed=i, levels=1) for i in range(2)}
    out = run_many(specs, st, workers=2, device="cpu")
    assert all(len(df) == 2 for df in out.values())
    # every level was trained in a worker process, not here ...
    assert all(st.metrics(s, lv)["written_by"]["pid"] != os.getpid() for s in specs.values() for lv in (0, 1))
    # ... and is exactly what training here, one thread like a worker, gives
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try: ref = run_many(specs, Store(st.root.parent / "ref"), workers=1, device="cpu")
    finally: torch.set_num_threads(threads)
    for k, s in specs.items():
        assert out[k].test_err.tolist() == ref[k].test_err.tolist()
        assert all(torch.equal(a, b) for a, b in zip(st.load_state(s, 1)[0].values(),
                                                     Store(st.root.parent / "ref").load_state(s, 1)[0].values()))


# issue 25 (a fresh-clone run on another CPU): App. E's dense subset — the training examples the dense model
# classifies correctly — can hold noisy (memorized) labels only; the original partition is then empty, and its
# metrics are undefined (stored as null, read as NaN), not a divergence that stops the section
def test_training_set_of_noisy_labels_only_stores_its_original_metrics_as_null(tmp_path):
    import math
    from pruning_repro.data import load_data
    b = get_bench("lenet_mnist1d", "smoke")
    spec = b.run_spec(0.3, 0)
    data = load_data(spec.data, spec.seed, "cpu")
    original = tuple(sorted(int(i) for i in data.train.ids[~data.noisy]))
    s = replace(spec, data=replace(spec.data, exclude_ids=original), prune=replace(spec.prune, levels=0))
    assert bool(load_data(s.data, s.seed, "cpu").noisy.all())             # every label left is a noisy one
    st = Store(tmp_path)
    res = run_imp(s, st, "cpu", runtime=Runtime(progress=False))
    m = st.metrics(s, 0)
    assert (m["original_loss"], m["original_err"]) == (None, None)
    assert math.isfinite(m["noisy_loss"]) and math.isfinite(m["test_err"])
    assert math.isnan(res.original_loss.iloc[0]) and st.is_complete(s)
