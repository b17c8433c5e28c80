"""The wheel is the product: built from the checkout (and from its sdist), installed into a fresh environment, it
reproduces a bench from an empty folder, and papermill runs the notebooks it ships."""
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import REPO, run


def test_the_wheel_reproduces_outside_the_checkout(tmp_path, isolated):
    dist = tmp_path / "dist"
    r = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)])
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(dist.glob("pruning_repro-*.whl"))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("pruning_repro/notebooks/")}
    assert len(shipped) == 11 and "pruning_repro/notebooks/sec4_noise.ipynb" in shipped
    # a fresh environment with the wheel alone; its dependencies (torch, ...) are this one's, put on its path as a
    # plain directory, so the checkout's editable install stays invisible
    env = tmp_path / "env"
    assert subprocess.run([sys.executable, "-m", "venv", str(env)]).returncode == 0
    py = env / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "empty"; work.mkdir()
    where = subprocess.run([str(py), "-c", "import pruning_repro.sections as c; print(c.__file__, c.nbs_dir())"], cwd=work,
                           capture_output=True, text=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1].startswith(str(site)), where   # the installed copy
    r = run([str(env / "bin" / "pruning-repro"), "reproduce", "--bench", "lenet_mnist1d", "--scale", "smoke",
             "--seeds", "0", "--workers", "1"], cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    out = work / "figures" / "lenet_mnist1d_smoke"                       # written to the current folder
    assert (out / "REPORT.md").exists() and (out / "sec4_noise.ipynb").exists() and (out / "table06_dense_vs_optimal_test_error.csv").exists()
    nb = site / "pruning_repro" / "notebooks" / "sec3_training.ipynb"
    r = run([str(py), "-m", "papermill", str(nb), str(work / "out.ipynb"), "-k", "python3", "-p", "bench",
             "lenet_mnist1d", "-p", "scale", "smoke", "-y", "seeds: [0]", "-p", "figures_dir", str(work / "pm"),
             "--no-progress-bar"], cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (work / "pm" / "lenet_mnist1d_smoke" / "fig02_subgroup_loss.csv").exists()
