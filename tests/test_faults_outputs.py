"""Fault injection on what the commands write and read back (issue 23, items 6-8): a section whose disk fills up or
whose kernel dies, damaged tables under `report`, `export` to a folder or of huge seeds, a Slurm controller that does
not answer, a data-parallel run whose rank 0 dies; the leftovers a failure used to leave (stale `*.failed.ipynb`,
hidden temporary files, empty figures folders); `report`/`export --precision`. Each fails on the code before it."""
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from conftest import BIN, REPO, run, tree

CLI = str(BIN / "pruning-repro")
SMOKE = ["--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0"]


# ---- section notebooks: a full disk, a dead kernel, a stale failed copy -----------------------------------------------
def fake_nbs(folder: Path, body: str) -> Path:
    """A notebook folder (for $PRUNING_REPRO_NBS) whose sec3_training runs `body` after papermill's parameters: the
    section's runs are trained for real first (lenet_mnist1d smoke: seconds)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, code in (("sec1_intro", "pass"), ("sec3_training", body)):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "python3",
                                                                 "language": "python"}})
        params = nbformat.v4.new_code_cell("bench = 'x'\nscale = 'full'\nseeds = [0]\nfigures_dir = 'figures'\n"
                                           "workers = None\nstore_dir = None\nprecision = None")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


def section(tmp: Path, body: str, **env):
    return run([CLI, "section", "sec3_training", *SMOKE, "--workers", "1", "--figures", str(tmp / "figures")],
               env={"PRUNING_REPRO_NBS": str(fake_nbs(tmp / "nbs", body)), **env}, timeout=600)


def test_dead_kernel_is_one_error_line(isolated):
    r = section(isolated, "import os; os._exit(1)")
    out = isolated / "figures" / "lenet_mnist1d_smoke"
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    line, = [l[l.index("error:"):] for l in r.stderr.splitlines() if "error:" in l]
    assert line.startswith("error: sec3_training: the notebook's kernel died"), r.stderr[-3000:]
    assert not (out / "sec3_training.ipynb").exists()
    # what it leaves is a whole notebook or nothing
    for p in out.glob("*.ipynb"): nbformat.read(str(p), as_version=4)
    assert not list(out.glob(".*.running.ipynb"))


def test_full_disk_while_a_section_runs_is_one_line_and_leaves_no_truncated_copy(isolated, monkeypatch, capsys):
    """The executed notebook cannot be written (ENOSPC, simulated in papermill's writer: half a file, then the error):
    one error line, exit 1, no truncated `sec3_training.failed.ipynb`, no hidden temporary file."""
    import papermill.engines, papermill.execute
    from pruning_repro.cli import main
    monkeypatch.setenv("PRUNING_REPRO_NBS", str(fake_nbs(isolated / "nbs", "x = 1")))
    def full_disk(nb, path):
        text = nbformat.writes(nb)
        Path(path).write_text(text[:len(text) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    monkeypatch.setattr(papermill.engines, "write_ipynb", full_disk)
    monkeypatch.setattr(papermill.execute, "write_ipynb", full_disk)
    monkeypatch.chdir(isolated)
    rc = main(["section", "sec3_training", *SMOKE, "--workers", "1"])
    err = capsys.readouterr().err
    out = isolated / "figures" / "lenet_mnist1d_smoke"
    assert rc == 1 and "No space left on device" in err and "Traceback" not in err, err
    line, = [l[l.index("error:"):] for l in err.splitlines() if "error:" in l]    # after papermill's progress bar
    assert line.startswith("error: sec3_training: cannot write its outputs: No space left"), err
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())


def test_stale_failed_copy_is_removed_by_a_successful_rerun(isolated):
    out = isolated / "figures" / "lenet_mnist1d_smoke"
    r = section(isolated, "raise ValueError('boom')")
    assert r.returncode == 1 and "ValueError: boom" in r.stderr and (out / "sec3_training.failed.ipynb").exists()
    r = section(isolated, "x = 1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "sec3_training.ipynb").exists() and not (out / "sec3_training.failed.ipynb").exists()


def test_bad_section_name_leaves_no_empty_folder(isolated):
    r = run([CLI, "section", "nope", *SMOKE, "--figures", str(isolated / "figures")])
    assert r.returncode == 2 and r.stderr.startswith("error: unknown section 'nope'"), r.stderr
    assert not (isolated / "figures").exists()
    # an error found later (no data for the bench) removes the folders it made too
    r = run([CLI, "section", "sec3_training", "--bench", "lenet_mnist", "--scale", "smoke", "--seeds", "0",
             "--figures", str(isolated / "figures")])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert not (isolated / "figures").exists()


# ---- report on damaged tables ---------------------------------------------------------------------------------------
T6 = pd.DataFrame({"noise": [0.0, 0.05], "dense_test_err_mean": [15.0, 18], "dense_test_err_std": [1.0, 1],
                   "sparse_test_err_mean": [14.0, 17], "sparse_test_err_std": [0.5, 1], "diff_mean": [-1.0, -1.0],
                   "diff_std": [0.4, 0.5], "optimal_weights_remaining_mean": [51.2, 64.0], "optimal_level": [3, 2],
                   "last_level": 12, "paper_range_high": 80.0, "paper_range_low": 1.4})


@pytest.mark.parametrize("damage,why", [
    (lambda p: p.write_text(p.read_text()[:-30]), "cut short"),
    (lambda p: p.write_text(""), "empty"),
    (lambda p: T6.drop(columns="diff_std").to_csv(p, index=False), "missing column"),
    (lambda p: p.write_text("noise,diff_mean\n"), "no rows"),
])
def test_report_on_a_damaged_table_marks_its_claims_and_names_the_file(damage, why, isolated):
    folder = isolated / "figures" / "lenet_mnist1d"
    folder.mkdir(parents=True)
    f = folder / "table06_dense_vs_optimal_test_error.csv"
    T6.to_csv(f, index=False)
    damage(f)
    r = run([CLI, "report", "--bench", "lenet_mnist1d", "--figures", str(isolated / "figures")])
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    line, = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(f) in line and why in line, line
    md = (folder / "REPORT.md").read_text()
    assert "### C1: cannot be judged" in md and f"cannot be judged: {f}" in md


# ---- export -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def trained(isolated):
    "The §3 smoke study of lenet_mnist1d, seed 0, in this test's store."
    r = run([CLI, "sweep", *SMOKE, "--sections", "sec3_training", "--workers", "1"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return isolated


def test_export_into_an_existing_folder_writes_results_inside(trained):
    d = trained / "out"; d.mkdir()
    r = run([CLI, "export", *SMOKE, "--sections", "sec3_training", "--out", str(d)])
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(pd.read_csv(d / "results.csv")) == 6 and str(d / "results.csv") in r.stdout


def test_failed_export_leaves_no_hidden_temporary_file(trained, monkeypatch, capsys):
    from pruning_repro.cli import main
    def full_disk(self, path, *a, **k):
        Path(path).write_text("run,level\n1,")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    out = trained / "res" / "results.csv"
    rc = main(["export", *SMOKE, "--sections", "sec3_training", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: cannot write") and "No space left on device" in err, err
    assert list(out.parent.iterdir()) == []


def test_parquet_export_of_seeds_beyond_64_bits(isolated):
    "Seeds are any non-negative integers: a column of them that does not fit 64 bits is written as text, not an overflow."
    pytest.importorskip("pyarrow")
    from pruning_repro.results import write_table
    t = pd.DataFrame({"seed": [2**62, 2**64 - 1, 2**70], "x": [1, 2, 3]})
    write_table(t, isolated / "r.parquet", "parquet")
    assert pd.read_parquet(isolated / "r.parquet").seed.tolist() == [str(2**62), str(2**64 - 1), str(2**70)]
    write_table(t.iloc[:2], isolated / "s.parquet", "parquet")
    assert pd.read_parquet(isolated / "s.parquet").seed.tolist() == [2**62, 2**64 - 1]
    assert sorted(p.name for p in isolated.iterdir() if p.is_file()) == ["r.parquet", "s.parquet"]
    # and the command, on runs of seed 2**64 - 1 trained into the store (uint64 in the file)
    big = ["--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", str(2**64 - 1)]
    assert run([CLI, "sweep", *big, "--sections", "sec3_training", "--workers", "1"], timeout=600).returncode == 0
    r = run([CLI, "export", *big, "--sections", "sec3_training", "--format", "parquet", "--out",
             str(isolated / "r.parquet")])
    assert r.returncode == 0, r.stderr[-3000:]
    assert set(pd.read_parquet(isolated / "r.parquet").seed) == {2**64 - 1}


# ---- --precision ------------------------------------------------------------------------------------------------------
def test_report_and_export_take_precision(isolated):
    figs = isolated / "figures"
    (figs / "lenet_mnist1d_smoke_bf16").mkdir(parents=True)
    r = run([CLI, "report", "--bench", "lenet_mnist1d", "--scale", "smoke", "--precision", "bf16",
             "--figures", str(figs)])
    assert r.returncode == 0, r.stderr
    assert (figs / "lenet_mnist1d_smoke_bf16" / "REPORT.md").exists() and not (figs / "lenet_mnist1d_smoke").exists()
    # the bf16 runs are their own: an fp32 store has none of them
    assert run([CLI, "sweep", *SMOKE, "--sections", "sec3_training", "--workers", "1"], timeout=600).returncode == 0
    r = run([CLI, "export", *SMOKE, "--sections", "sec3_training", "--precision", "bf16", "--figures", str(figs)])
    assert r.returncode == 2 and "holds no run" in r.stderr, r.stderr
    r = run([CLI, "export", *SMOKE, "--sections", "sec3_training", "--figures", str(figs)])
    assert r.returncode == 0 and (figs / "lenet_mnist1d_smoke" / "results.csv").exists(), r.stderr
    assert not (figs / "lenet_mnist1d_smoke_bf16" / "results.csv").exists()


# ---- slurm: a controller that does not answer ---------------------------------------------------------------------
def test_sweep_slurm_without_a_controller_is_one_line(isolated):
    bindir = isolated / "bin"; bindir.mkdir()
    for name in ("sbatch", "scancel", "squeue"):
        (bindir / name).write_text("#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact "
                                   "slurm controller (connect failure)' >&2\nexit 1\n")
        (bindir / name).chmod(0o755)
    r = run([CLI, "sweep", *SMOKE, "--sections", "sec3_training", "--executor", "slurm"],
            env={"PATH": f"{bindir}:{os.environ['PATH']}"}, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    line, = r.stderr.strip().splitlines()
    assert line.startswith("error: the Slurm controller cannot be reached") and "nothing was submitted" in line, line


# ---- data-parallel: rank 0 dies -------------------------------------------------------------------------------------
def test_rank_0_killed_rank_1_prints_one_line(isolated):
    sys.path.insert(0, str(REPO / "tests"))
    from test_distributed import TORCHRUN, _rank_pid, _wait, imp_args, spec_of
    from pruning_repro.store import Store
    store, spec = isolated / "store", spec_of(levels=3, epochs=30)
    st = Store(store)
    p = subprocess.Popen(TORCHRUN + imp_args(store, "lenet_mnist1d", "0.3", "--levels", "3", "--epochs", "30"),
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: 1 in st.levels_done(spec) or p.poll() is not None, 600, "level 1 stored")
    victim = _rank_pid(p.pid, 0)
    assert victim, "rank 0 not found"
    os.kill(victim, signal.SIGKILL)
    out, err = p.communicate(timeout=300)
    assert p.returncode != 0
    assert "[rank1]: Traceback" not in err and "[rank1]:" not in err, err[-4000:]
    # torchrun stops the survivors with SIGTERM when a rank dies: rank 1 may say it in its one line and then be stopped,
    # or be stopped before the backend's error reaches it (then it ends silently); never two lines, never a traceback
    stopped_by_torchrun = "rank      : 1" in err and "(SIGTERM)" in err
    n = err.count("error: a rank of this data-parallel run is gone")
    assert n in ((0, 1) if stopped_by_torchrun else (1,)), err[-4000:]
