"""Study parameters at the edge (issue 23, items 5 and 6): a value that would be stored or printed as another one is
refused, never changed silently (-0, noise levels printed alike, widths JSON cannot hold, an empty store variable);
a name no registry holds fails before anything trains; a device this machine lacks, a bad width or a bad papermill
parameter of a section notebook is one `error:` line (one ConfigError in the notebook's first cell), never a traceback,
and nothing is trained or written."""
import json
import os
import textwrap
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from conftest import BIN, run
from pruning_repro.config import ConfigError, get_bench
from pruning_repro.store import Store

CLI = str(BIN / "pruning-repro")
SMOKE = ["--bench", "lenet_mnist1d", "--scale", "smoke"]


def one_error_line(r, contains):
    "Exit status 2 and exactly one line on stderr: `error: ...` containing `contains`."
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0], r.stderr[-3000:]


def nothing_trained(root: Path):
    store = root / "store"
    assert not store.exists() or not any(store.rglob("metrics.json")), sorted(store.rglob("*"))


# ---- silent wrong answers (item 5) ------------------------------------------------------------------------------------
def test_minus_zero_noise_is_the_noise_zero_run(isolated):
    "Before: -0.0 was its own run (its JSON says -0.0: another hash) and printed as '-0'."
    b = get_bench("lenet_mnist1d", "smoke")
    assert b.run_spec(-0.0).hash() == b.run_spec(0.0).hash()
    r = run([CLI, "imp", *SMOKE, "--noise", "-0", "--levels", "0"])
    assert r.returncode == 0, r.stderr[-3000:]
    runs = [p for p in (isolated / "store").iterdir() if p.is_dir()]
    assert len(runs) == 1 and Store().run_dir(replace(b.run_spec(0.0), prune=replace(b.prune, levels=0))) == runs[0]
    stored = json.loads((runs[0] / "spec.json").read_text())
    assert stored["spec"]["data"]["noise"] == 0.0 and stored["label"] == "lenet_mnist1d p=0.0 seed=0"


@pytest.mark.parametrize("cmd,levels", [
    (["sweep", "--dry-run"], ["0.1", "0.1000001"]),
    (["sweep", "--dry-run"], ["0.1", "0.104"]),
    (["section", "sec4_noise"], ["0.3", "0.30000001"]),
    (["reproduce"], ["0", "0.001"]),
])
def test_noise_levels_printed_alike_are_refused(cmd, levels, isolated):
    "Before: two rows (two runs each) that the tables and figures both label 10% (or 0.1)."
    figs = [] if cmd[0] == "sweep" else ["--figures", str(isolated / "figures")]
    r = run([CLI, *cmd, *SMOKE, "--seeds", "0", "--noise", *levels, *figs])
    one_error_line(r, f"noise levels {float(levels[0])!r} and {float(levels[1])!r} would be two rows printed alike")
    nothing_trained(isolated)
    assert not (isolated / "figures").exists()


@pytest.mark.parametrize("width,message", [
    ("inf", "width must be > 0, finite and at most 64"),     # before: a traceback from json.dumps
    ("1e300", "width must be > 0, finite and at most 64"),   # before: the model factory's overflow, pages of C++ frames
    ("nan", "width must be > 0, finite"),
    ("65", "width must be > 0, finite and at most 64"),
    ("-0", "width must be > 0, finite"),
    ("1e-300", "width 1e-300 cannot be stored"),             # before: trained and stored as width 0, unreadable
    ("1.23456789e-9", "cannot be stored"),                  # before: stored as 1.235e-09, another width
])
def test_width_at_the_edge_is_one_line(width, message, isolated):
    r = run([CLI, "imp", *SMOKE, "--width", width, "--levels", "0"])
    one_error_line(r, message)
    assert not (isolated / "store").exists()


@pytest.mark.parametrize("how", ["env_store", "env_cache", "flag_store"])
def test_an_empty_folder_means_the_default_not_the_current_folder(how, isolated):
    """PRUNING_REPRO_STORE="" (or _CACHE, or --store "") is the default folder, as when unset; before, the runs (or
    the cache) went into whatever folder the command was started from."""
    cwd, home = isolated / "cwd", isolated / "home"
    cwd.mkdir(); home.mkdir()
    env = {"HOME": str(home)}
    args = [CLI, "imp", *SMOKE, "--levels", "0"]
    if how == "env_store": env["PRUNING_REPRO_STORE"] = ""
    elif how == "env_cache": env["PRUNING_REPRO_CACHE"] = ""
    else: args += ["--store", ""]                                       # the default: $PRUNING_REPRO_STORE
    r = run(args, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list(cwd.iterdir()) == []                                  # nothing in the folder it was started from
    if how == "env_cache": assert any((home / ".cache" / "pruning_repro").iterdir())
    store = home / ".pruning_repro" / "store" if how == "env_store" else isolated / "store"
    assert len([d for d in store.iterdir() if d.is_dir()]) == 1


PLUGIN = '''
from dataclasses import replace
from pruning_repro.config import BENCHES, Bench, register
b = BENCHES["lenet_mnist1d"]
register(replace(b, name="typo_strategy", prune=replace(b.prune, strategy="magnitud")))
register(replace(b, name="typo_arch", model=replace(b.model, arch="lenett")))
'''

SWEEP = ["sweep", "--sections", "sec4_noise", "--seeds", "0"]

@pytest.mark.parametrize("cmd,bench,message", [
    (["imp", "--levels", "1"], "typo_strategy", "unknown pruning strategy 'magnitud'"),
    (SWEEP, "typo_strategy", "unknown pruning strategy 'magnitud'"),
    (SWEEP, "typo_arch", "unknown architecture 'lenett'"),      # (`imp` already refused it before training)
])
def test_unregistered_names_fail_before_any_training(cmd, bench, message, isolated):
    """Before: an unknown pruning strategy was found after the dense level had trained (90 epochs on ImageNet); a
    sweep started every run and reported 'N of M runs failed'."""
    (isolated / "plug").mkdir()
    (isolated / "plug" / "typo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    env = {"PYTHONPATH": str(isolated / "plug") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = run([CLI, "--plugins", "typo_plugin", cmd[0], "--bench", bench, "--scale", "smoke", *cmd[1:]], env=env)
    one_error_line(r, message)
    nothing_trained(isolated)


def test_a_study_checks_every_spec_before_it_executes_any(isolated):
    from pruning_repro.sweep import train_study
    b = get_bench("lenet_mnist1d", "smoke")
    bad = replace(b, prune=replace(b.prune, strategy="magnitud"))
    called = []
    with pytest.raises(ConfigError, match="unknown pruning strategy 'magnitud'"):
        train_study(bad, ["sec4_noise"], (0,), (0.0,), Store(), called.append)
    assert called == []


# ---- one line, not a traceback (item 6) -------------------------------------------------------------------------------
DEVICES = [("meta", "unknown device 'meta'"), ("cuda:99", "'cuda:99' asked for"),   # ('tpu' was refused already)
           pytest.param("cuda", "no CUDA GPU", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
           pytest.param("mps", "MPS (Apple Metal) is not available",
                        marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="has MPS"))]

@pytest.mark.parametrize("device,message", DEVICES)
def test_a_device_this_machine_lacks_is_one_line(device, message, isolated):
    "Before: PyTorch's RuntimeError from the first tensor moved there ('Found no NVIDIA driver', meta's .item())."
    r = run([CLI, "imp", *SMOKE, "--levels", "0", "--device", device])
    one_error_line(r, message)
    nothing_trained(isolated)


@pytest.mark.parametrize("device", ["meta"])                  # ('tpu' was refused already)
@pytest.mark.parametrize("cmd", [["sweep", "--sections", "sec3_training"], ["section", "sec3_training"]])
def test_a_device_from_the_environment_is_checked_too(cmd, device, isolated):
    "Before: every run of the pool failed on its own ('3 of 3 runs failed'), or the notebook's kernel did."
    figs = [] if cmd[0] == "sweep" else ["--figures", str(isolated / "figures")]
    r = run([CLI, *cmd, *SMOKE, "--seeds", "0", *figs], env={"PRUNING_REPRO_DEVICE": device})
    one_error_line(r, f"unknown device {device!r}")
    nothing_trained(isolated)


@pytest.mark.parametrize("param,message", [
    ("bench: [1, 2]", "bench must be a name"),
    ("figures_dir: 7", "figures_dir must be a folder"),
    ("store_dir: [1]", "store_dir must be a folder"),
    ("runtime: {workers: x}", "workers must be an integer"),
    ("runtime: {workers: -4}", "workers must be an integer"),
    ("runtime: {speed: 2}", "runtime must be None or a dict"),
    ("noise_levels: {0.3: 1}", "noise_levels must be a non-empty list"),
    ("noise_levels: [0.1, 0.1000001]", "printed alike"),
    ("seeds: {0: 1}", "seeds must be a non-empty list of integers"),
    ("seeds: [0.5]", "seeds must be non-negative integers"),
    ("seeds: '0'", "seeds must be a non-empty list of integers"),
    ("scale: [smoke]", "scale must be a name"),
])
def test_section_notebook_parameters_fail_in_its_first_cell(param, message, isolated):
    """A bad papermill parameter is one ConfigError raised by `start_section`, before anything is read or trained;
    before, a TypeError deep in the code (Path(7), a list as a dict key), or a dict read as its keys, or a bad
    `workers` found only when something had to train."""
    out = isolated / "out.ipynb"
    params = {"bench": "lenet_mnist1d", "scale": "smoke", "seeds": [0], "noise_levels": [0.3],
              "figures_dir": str(isolated / "figures"), **yaml.safe_load(param)}      # papermill's -p would win over -y
    r = run([str(BIN / "papermill"), "nbs/sec4_noise.ipynb", str(out), "-k", "python3", "-y", json.dumps(params),
             "--no-progress-bar"])
    assert r.returncode != 0 and "ConfigError" in r.stderr and message in r.stderr, r.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.get("output_type") == "error"
                                                                    for o in c.get("outputs", []))]
    assert len(failed) == 1 and "start_section(" in failed[0].source                # the first cell, not later
    err = next(o for o in failed[0].outputs if o.output_type == "error")
    assert err.ename == "ConfigError" and message in err.evalue and "\n" not in err.evalue
    nothing_trained(isolated)
    assert not (isolated / "figures").exists() and not (isolated / "store").exists()
