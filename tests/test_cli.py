"""Bad input everywhere a user types: one clear message, a non-zero exit, nothing written, nothing touched."""
import sys

import pytest

from conftest import BIN, REPO, run, tree

CLI = str(BIN / "pruning-repro")

BAD = [
    (["section", "sec4_noise", "--bench", "nope"], 2, "unknown bench 'nope'"),
    (["section", "sec4_noise", "--bench", "lenet_mnist1d", "--noise", "1.5"], 2, "[0, 1)"),
    (["section", "sec4_noise", "--bench", "lenet_mnist1d", "--noise", "-0.1"], 2, "[0, 1)"),
    (["section", "sec4_noise", "--bench", "lenet_mnist1d", "--scale", "huge"], 2, "unknown scale"),
    (["section", "sec9_nothing", "--bench", "lenet_mnist1d"], 2, "unknown section"),
    (["section", "sec4_noise", "--bench", "lenet_mnist1d", "--seeds", "-1"], 2, "non-negative"),
    (["section", "sec4_noise", "--bench", "lenet_mnist1d", "--seeds", "0", "0"], 2, "distinct"),
    (["section", "sec4_noise", "--bench", "resnet20_c10"], 2, "cifar-10-batches-py"),    # empty data root
    (["reproduce", "--bench", "vgg16_c10", "--scale", "smoke"], 2, "cifar-10-batches-py"),
    (["imp", "--bench", "lenet_mnist", "--noise", "1.0"], 2, "[0, 1)"),
    (["imp", "--bench", "lenet_mnist"], 2, "MNIST"),
    (["reproduce", "--bench", "lenet_mnist1d", "--workers", "0"], 2, "workers must be an integer from 1"),
    (["reproduce", "--bench", "lenet_mnist1d", "--workers", "100000"], 2, "the cores of this machine"),
    (["imp", "--bench", "lenet_mnist", "--seed", "x"], 2, "invalid int value"),
    (["imp", "--bench", "lenet_mnist1d", "--width", "0"], 2, "width must be > 0"),
    (["imp", "--bench", "lenet_mnist1d", "--width", "-0.5"], 2, "width must be > 0"),
    (["imp", "--bench", "lenet_mnist1d", "--train-lr", "-1"], 2, "lr must be > 0"),
    (["imp", "--bench", "lenet_mnist1d", "--prune-rewind", "late"], 2, "rewind must be 'lr' or 'weight'"),
    (["imp", "--bench", "lenet_mnist1d", "--prune-strategy", "nope"], 2, "unknown pruning strategy 'nope'"),
    (["imp", "--bench", "lenet_mnist1d", "--data-augment", "maybe"], 2, "expected true or false"),
    (["section", "sec4_noise", "--bench", "lenet_mnist1d", "--seeds"], 2, "expected at least one argument"),
    (["sweep", "--bench", "lenet_mnist1d", "--executor", "kubernetes"], 2, "invalid choice: 'kubernetes'"),
    (["sweep", "--bench", "lenet_mnist1d", "--sections", "sec9"], 2, "unknown section 'sec9'"),
    (["sweep", "--bench", "nope", "--executor", "slurm"], 2, "unknown bench 'nope'"),
    (["sweep", "--bench", "lenet_mnist1d", "--noise", "1"], 2, "[0, 1)"),
    (["sweep", "--bench", "lenet_mnist1d", "--partition", "gpu"], 2, "is a Slurm option"),
    (["sweep", "--bench", "lenet_mnist1d", "--executor", "slurm", "--cpus-per-task", "0"], 2, "cpus_per_task must be"),
    (["sweep", "--bench", "lenet_mnist1d", "--executor", "slurm", "--profile", "/nonexistent.yaml"], 2,
     "not a readable file"),
    (["sweep", "--bench", "lenet_mnist1d", "--executor", "slurm", "--workers", "2"], 2, "--array-parallelism"),
    (["sweep", "--bench", "lenet_mnist1d", "--workers", "0"], 2, "workers must be an integer from 1"),
    (["sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--workers", "100000"], 2, "the cores of this machine"),
    (["sweep", "--bench", "resnet20_c10", "--scale", "smoke"], 2, "cifar-10-batches-py"),
    (["report", "--bench", "nope"], 2, "unknown bench 'nope'"),
    (["report", "--bench", "lenet_mnist1d", "--scale", "smoke"], 2, "does not exist"),
    (["section", "appD_leave_out", "--bench", "lenet_mnist1d", "--noise", "2"], 2, "[0, 1)"),
]


@pytest.mark.parametrize("argv,code,message", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input(argv, code, message, isolated):
    figures = isolated / "figures"
    (figures / "lenet_mnist1d").mkdir(parents=True)
    (figures / "lenet_mnist1d" / "fig03_test_error_vs_sparsity.png").write_bytes(b"earlier result")
    before = tree(isolated)
    r = run([CLI, *argv, *(["--figures", str(figures)] if argv[0] in ("section", "reproduce", "report") else [])])
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len([l for l in r.stderr.splitlines() if "error:" in l]) == 1
    assert tree(isolated) == before      # nothing written, nothing touched


@pytest.mark.parametrize("param,value,message", [
    ("bench", "nope", "unknown bench 'nope'"),
    ("seeds", "x", "seeds must be a non-empty list of integers"),      # a string where a list of ints belongs
    ("seeds", "[]", "got an empty list"),
    ("noise_levels", "1.5", "[0, 1)"),
    ("noise_levels", "abc", "noise_levels must be a non-empty list"),
    ("scale", "huge", "unknown scale"),
])
def test_papermill_rejects_bad_parameters_before_writing(param, value, message, isolated):
    out = isolated / "out.ipynb"
    r = run([str(BIN / "papermill"), "nbs/sec4_noise.ipynb", str(out), "-k", "python3", "-p", "bench", "lenet_mnist1d",
             "-y" if value == "[]" else "-p", *([f"{param}: []"] if value == "[]" else [param, value]),
             "-p", "figures_dir", str(isolated / "figures"), "--no-progress-bar"])
    assert r.returncode != 0 and message in r.stderr + r.stdout, (r.stdout + r.stderr)[-3000:]
    assert not (isolated / "figures").exists() and not (isolated / "store").exists()


def test_unreadable_data_root(isolated):
    root = isolated / "not_a_dir"
    root.write_text("a file where the data root should be")
    before = tree(isolated)
    r = run([CLI, "imp", "--bench", "lenet_mnist"], env={"PRUNING_REPRO_DATA": str(root)})
    assert r.returncode == 2 and "is not a readable directory" in r.stderr and "Traceback" not in r.stderr
    assert tree(isolated) == before


def test_benches_lists_registry():
    r = run([CLI, "benches"])
    assert r.returncode == 0
    for name in ("lenet_mnist", "resnet20_c10", "vgg16_c10", "resnet32_c100", "resnet50_imagenet",
                 "lenet_fashion", "lenet_fashion_e60", "lenet_mnist1d"):
        assert name in r.stdout


def test_export_writes_every_stored_level(isolated):
    import pandas as pd
    r = run([CLI, "sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "--sections", "sec3_training",
             "--workers", "1"])
    assert r.returncode == 0, r.stderr
    for fmt in ("csv", "parquet"):
        out = isolated / f"results.{fmt}"
        r = run([CLI, "export", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "--sections",
                 "sec3_training", "--format", fmt, "--out", str(out)])
        assert r.returncode == 0, r.stderr
        t = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
        # §3 at smoke scale, one seed: the IMP run (dense + 3 levels) and the 2 EL2N models (one level each)
        assert len(t) == 4 + 2 and sorted(t.algorithm.unique()) == ["EL2N", "LR rewinding"], t
        assert {"spec.train.lr", "spec.model.init", "test_err", "level", "noise", "seed", "run"} <= set(t.columns)
        assert t[t.algorithm == "LR rewinding"].level.tolist() == [0, 1, 2, 3]
    r = run([CLI, "export", "--bench", "lenet_fashion", "--store", str(isolated / "empty")])
    assert r.returncode == 2 and "no run of lenet_fashion" in r.stderr and "Traceback" not in r.stderr


# issue 22: the executed notebooks we commit under figures/ are the docs' section pages: no machine path (papermill's
# parameters and metadata name the folders as the command was given them) and no warning on stderr
def test_executed_notebooks_carry_no_machine_path_and_no_warning():
    import json
    from pathlib import Path
    from pruning_repro.sections import _relative
    here = Path.cwd()
    assert _relative(here / "nbs" / "sec4_noise.ipynb") == "nbs/sec4_noise.ipynb"
    assert _relative(Path("/") / "elsewhere" / "x.ipynb") == "/elsewhere/x.ipynb"     # outside: left as it is
    root = Path(__file__).resolve().parents[1] / "figures"
    pages = sorted(root.glob("*/*.ipynb"))
    for p in pages:
        text = p.read_text()
        for machine in ('"/tmp/', '"/root/', '"/home/'):
            assert machine not in text, (p.name, machine)
        nb = json.loads(text)
        streams = [o.get("name") for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream"]
        assert "stderr" not in streams, p.name


def test_imp_flags_are_the_spec_fields(isolated):
    "`imp`'s spec flags reach the trained run: its stored spec carries them, every other field the bench's."
    import json
    store = isolated / "store"
    r = run([CLI, "imp", "--bench", "lenet_mnist1d", "--scale", "smoke", "--levels", "1", "--epochs", "2",
             "--train-lr", "0.05", "--train-milestones", "1", "--device", "cpu", "--store", str(store)])
    assert r.returncode == 0, r.stderr
    specs = [json.loads(p.read_text())["spec"] for p in store.glob("*/spec.json")]
    assert specs and all((s["train"]["lr"], s["train"]["milestones"], s["train"]["epochs"]) == (0.05, [1], 2)
                         for s in specs)
    assert 1 in {s["prune"]["levels"] for s in specs}                   # the run (beside its dense root, 0 levels)
    assert {s["train"]["optimizer"] for s in specs} == {"adam"}          # not given: the bench's
