"""Plugins by import path: a module under tests/plugins registers a data set, a model, a heuristic and a bench; named
once (--plugins), it reaches every process that runs work: 2 local workers, a papermill kernel, Slurm jobs."""
import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import BIN, run, tree

CLI = str(BIN / "pruning-repro")
PLUGINS = str(Path(__file__).parent / "plugins")
ENV = {"PYTHONPATH": PLUGINS + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_plugin_sweep_with_two_local_workers_and_a_section(isolated):
    r = run([CLI, "--plugins", "demo_plugin", "sweep", "--bench", "demo_blobs_mlp", "--scale", "smoke", "--seeds", "0",
             "1", "--sections", "sec4_noise", "--workers", "2"], env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitted (local)" in r.stdout and "FAILED" not in r.stdout, r.stdout
    # the section notebook's kernel imports the plugin too (the command passes it on through the environment)
    r = run([CLI, "--plugins", "demo_plugin", "section", "sec4_noise", "--bench", "demo_blobs_mlp", "--scale", "smoke",
             "--seeds", "0", "1", "--figures", str(isolated / "figures")], env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    t6 = pd.read_csv(isolated / "figures" / "demo_blobs_mlp_smoke" / "table06_dense_vs_optimal_test_error.csv")
    assert t6.noise.tolist() == [0.0, 0.3] and (t6.n_seeds == 2).all()
    # the plugin's heuristic pruned: 20% per level, its own bench's strategy
    r = run([CLI, "--plugins", "demo_plugin", "export", "--bench", "demo_blobs_mlp", "--scale", "smoke", "--seeds", "0",
             "1", "--sections", "sec4_noise", "--out", str(isolated / "r.csv")], env=ENV)
    t = pd.read_csv(isolated / "r.csv")
    lr = t[t.algorithm == "LR rewinding"]
    assert (lr["spec.prune.strategy"] == "demo_centred").all() and sorted(lr.density.round(2).unique()) == [0.64, 0.8, 1.0]


@pytest.mark.parametrize("fault,argv,message", [
    ("none", ["--plugins", "no_such_module", "benches"], "plugin 'no_such_module' cannot be imported"),
    ("twice", ["--plugins", "bad_plugins", "benches"], "bench 'lenet_mnist' is already registered"),
    ("no_prunable", ["--plugins", "bad_plugins", "imp", "--bench", "bad_model_bench"], "has no prunable tensors"),
    ("shape", ["--plugins", "bad_plugins", "imp", "--bench", "bad_data_bench"], "expected floats (N, 1, 16)"),
    ("labels", ["--plugins", "bad_plugins", "imp", "--bench", "bad_data_bench"], "labels range over 0..6"),
])
def test_bad_plugins_are_one_clear_error(fault, argv, message, isolated):
    before = tree(isolated)
    r = run([CLI, *argv], env={**ENV, "BAD_PLUGIN_FAULT": fault})
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len([l for l in r.stderr.splitlines() if "error:" in l]) == 1
    assert tree(isolated) == before
