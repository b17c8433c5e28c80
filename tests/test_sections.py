"""End-to-end: the section notebook under papermill on the real loaders and models at the smoke scale."""
import json

import pandas as pd
import pytest

from conftest import BIN, REPO, run, tree

EXPECTED = ["fig03_test_error_vs_sparsity.png", "fig03_test_error_vs_sparsity.pdf",
            "fig04_train_loss_noisy_vs_original.png", "fig04_train_loss_noisy_vs_original.pdf",
            "table11_partition_loss.csv", "table11_partition_loss.md",
            "table06_dense_vs_optimal_test_error.csv", "table06_dense_vs_optimal_test_error.md",
            "fig05_subgroup_loss_noise.png", "fig05_subgroup_loss_noise.pdf", "fig05_subgroup_loss_noise.csv"]


def test_sec4_noise_resnet20_smoke_on_tiny_cifar(tiny_cifar, isolated):
    figs = isolated / "figures"
    cmd = [str(BIN / "papermill"), "nbs/sec4_noise.ipynb", str(isolated / "out.ipynb"), "-k", "python3",
           "-p", "bench", "resnet20_c10", "-p", "scale", "smoke", "-p", "figures_dir", str(figs), "--no-progress-bar"]
    r = run(cmd)
    assert r.returncode == 0, r.stderr[-3000:]
    out = figs / "resnet20_c10_smoke"
    for f in EXPECTED: assert (out / f).stat().st_size > 0, f
    t11 = pd.read_csv(out / "table11_partition_loss.csv")
    assert sorted(t11.noise.unique()) == [0.15, 0.3, 0.6] and set(t11.partition) == {"Noisy", "Original"}
    assert (t11.n_seeds == 3).all()
    text = json.dumps(json.loads((isolated / "out.ipynb").read_text())["cells"])
    assert "C10-ResNet20" in text                               # the paper's rows printed beside ours
    f5 = pd.read_csv(out / "fig05_subgroup_loss_noise.csv")
    assert sorted(f5.noise.unique()) == [0.15, 0.3, 0.6] and f5.subgroup.nunique() == 20
    # a rerun trains nothing: every stored level stays as it was
    store = isolated / "store"
    before = {k: v for k, v in tree(store).items() if k.endswith("metrics.json")}
    # 4 noise levels x 3 seeds x (dense + 2 levels), and 2 EL2N models (smoke) per noisy run
    assert len(before) == 4 * 3 * 3 + 3 * 3 * 2
    r = run(cmd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert before == {k: v for k, v in tree(store).items() if k.endswith("metrics.json")}


def test_cli_section_mnist1d_smoke_saves_executed_notebook(isolated):
    figs = isolated / "figures"
    r = run([str(BIN / "pruning-repro"), "section", "sec4_noise", "--bench", "lenet_mnist1d", "--scale", "smoke",
             "--seeds", "0", "1", "--noise", "0", "0.3", "--figures", str(figs), "--workers", "1"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = figs / "lenet_mnist1d_smoke"
    assert (out / "sec4_noise.ipynb").exists() and not (out / ".sec4_noise.running.ipynb").exists()
    g = pd.read_csv(out / "table06_dense_vs_optimal_test_error.csv")
    assert g.noise.tolist() == [0.0, 0.3] and (g.n_seeds == 2).all()


@pytest.mark.parametrize("bench", ["resnet20_c10", "vgg16_c10"])
def test_sec3_training_smoke_on_tiny_cifar(bench, tiny_cifar, isolated):
    figs = isolated / "figures"
    r = run([str(BIN / "papermill"), "nbs/sec3_training.ipynb", str(isolated / "out.ipynb"), "-k", "python3",
             "-p", "bench", bench, "-p", "scale", "smoke", "-y", "seeds: [0, 1]", "-p", "figures_dir", str(figs),
             "--no-progress-bar"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = figs / f"{bench}_smoke"
    for f in ["fig02_subgroup_loss_optimal.png", "fig02_subgroup_loss_optimal.pdf", "fig01b_subgroup_loss_low_high.png",
              "fig01b_fig02_subgroup_loss.csv", "fig01b_fig02_subgroup_loss.md"]:
        assert (out / f).stat().st_size > 0, f
    t = pd.read_csv(out / "fig01b_fig02_subgroup_loss.csv")
    opt = t[t.which == "optimal"]
    assert len(opt) in (0, 20)          # 20 subgroups, or no seed whose optimum is sparse
    text = json.dumps(json.loads((isolated / "out.ipynb").read_text())["cells"])
    assert "holds" in text or "no such level" in text


SECTION_OUTPUTS = {
    "sec5_isolating": ["fig06_edt_vs_pruning.png", "fig06_edt_vs_pruning.pdf", "fig07_wd_vs_pruning.png",
                       "fig07_wd_vs_pruning.pdf", "table05_edt_vs_pruning.csv", "table05_edt_vs_pruning.md",
                       "table07_wd_vs_pruning.csv", "table07_wd_vs_pruning.md"],
    "appC_algorithms": ["fig08_algorithms_p0.png", "fig08_algorithms_p0.pdf", "table02_algorithms_p0.csv",
                        "table02_algorithms_p0.md"],
}


@pytest.mark.parametrize("bench", ["resnet20_c10", "vgg16_c10"])
@pytest.mark.parametrize("section", list(SECTION_OUTPUTS))
def test_algorithm_sections_smoke_on_tiny_cifar(section, bench, tiny_cifar, isolated):
    figs = isolated / "figures"
    noise = ["-y", "noise_levels: [0.0, 0.3]"] if section == "sec5_isolating" else []   # App. C: its own default, 0
    r = run([str(BIN / "papermill"), f"nbs/{section}.ipynb", str(isolated / "out.ipynb"), "-k", "python3",
             "-p", "bench", bench, "-p", "scale", "smoke", "-y", "seeds: [0, 1]", *noise, "-p", "figures_dir",
             str(figs), "--no-progress-bar"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = figs / f"{bench}_smoke"
    for f in SECTION_OUTPUTS[section]: assert (out / f).stat().st_size > 0, f
    family = {"resnet20_c10": "C10-ResNet20", "vgg16_c10": "C10-VGG-16"}[bench]
    if section == "sec5_isolating":
        for name, alg in (("table05_edt_vs_pruning", "EDT"), ("table07_wd_vs_pruning", "WD")):
            t = pd.read_csv(out / f"{name}.csv")
            assert sorted(t.noise.unique()) == [0.0, 0.3] and set(t.algorithm) == {"LR rewinding", alg}
            assert t[f"paper ({family})"].notna().any()                 # the paper's numbers beside ours
    else:
        t = pd.read_csv(out / "table02_algorithms_p0.csv")
        assert t.algorithm.tolist() == ["LR rewinding", "weight rewinding", "SynFlow", "SNIP", "random", "EDT"]
        assert (t.n_seeds == 2).all() and t[f"paper ({family})"].notna().all()   # Table 2 has every algorithm
