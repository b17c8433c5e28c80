"""The notebooks are the source: each is paired with its py:percent script, clean, and nbdev_export of them
reproduces the committed package exactly."""
import json
import shutil
import subprocess
from pathlib import Path

import jupytext
import pytest

from conftest import BIN, REPO

NOTEBOOKS = sorted((REPO / "nbs").glob("*.ipynb"))


def test_notebooks_exist():
    names = {p.stem for p in NOTEBOOKS}
    assert {"00_config", "01_data", "02_noise", "03_models", "04_train", "05_prune", "06_imp", "09_store",
            "10_analysis", "12_paper", "13_plots", "15_cli", "sec4_noise"} <= names


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_paired_script_in_sync(nb):
    script = nb.with_suffix(".py")
    assert script.exists(), f"{nb.name} has no paired py:percent script (run `make export`)"
    expected = jupytext.writes(jupytext.read(nb), fmt="py:percent")
    assert _unstamped(script.read_text()) == _unstamped(expected), f"{script.name} and {nb.name} differ: run `make export`"


def _unstamped(text):
    # A new jupytext release rewrites only the header line naming its version; every cell must still match exactly.
    return "\n".join(l for l in text.splitlines() if not l.lstrip("# ").startswith("jupytext_version:"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_clean(nb):
    cells = json.loads(nb.read_text())["cells"]
    for c in cells:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, f"{nb.name} has outputs: run nbdev_clean"


def test_nbdev_export_leaves_no_diff(tmp_path):
    for f in ("settings.ini", "pyproject.toml", "setup.py", "README.md"): shutil.copy(REPO / f, tmp_path / f)
    shutil.copytree(REPO / "nbs", tmp_path / "nbs")
    subprocess.run([str(BIN / "nbdev_export")], cwd=tmp_path, check=True, capture_output=True)
    made = {p.name: p.read_text() for p in (tmp_path / "pruning_repro").glob("*.py")}
    have = {p.name: p.read_text() for p in (REPO / "pruning_repro").glob("*.py")}
    assert made.keys() == have.keys()
    stale = [n for n in made if made[n] != have[n]]
    assert not stale, f"nbdev_export would change {stale}: export and commit"


def test_section_notebooks_have_parameters_cell():
    for nb in NOTEBOOKS:
        if nb.stem.startswith(("sec", "app")):
            cells = json.loads(nb.read_text())["cells"]
            tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
            assert len(tagged) == 1
            src = "".join(tagged[0]["source"])
            for p in ("bench", "seeds", "noise_levels", "scale"): assert f"{p} =" in src


def test_unstamped_ignores_only_the_jupytext_version():
    a = "# ---\n#       jupytext_version: 1.19.6\n# ---\n\n# %%\nx = 1\n"
    assert _unstamped(a) == _unstamped(a.replace("1.19.6", "1.19.7"))
    assert _unstamped(a) != _unstamped(a.replace("x = 1", "x = 2"))
