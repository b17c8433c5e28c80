# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Running the section notebooks
#
# > Execute a section notebook of one bench with papermill, after training what it needs, and compare every learning algorithm at a noise level; the `pruning-repro` command (`15_cli`) calls these, and so can a notebook or a script.

# %%
#| default_exp sections

# %% [markdown]
# A section notebook (`sec4_noise`, …) regenerates a part of the paper for one bench: `run_section` validates the
# study, trains (once, into the run store) the runs the section needs and its retrainings (`sweep.train_section`),
# then executes the notebook with papermill, which only reads the store. The executed notebook is saved next to its
# figures (`figures/<bench>/<section>.ipynb`) only when it succeeds; a failed execution is kept as
# `<section>.failed.ipynb` and the previous good one stays.

# %%
#| export
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import NamedTuple

from pruning_repro.config import ConfigError
from pruning_repro.study import Study
from pruning_repro.runtime import Runtime, platform

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Sections
#
# The section notebooks, in the order `reproduce` runs them; the runs each needs are defined in `14_sweep`. They live
# in the repository's `nbs/` folder (found next to the package in a checkout, or through `$PRUNING_REPRO_NBS`).

# %%
#| export
from pruning_repro.algorithms import algorithm_runs
from pruning_repro.store import check_writable
from pruning_repro.sweep import SECTIONS, section_noise

def nbs_dir() -> Path:
    """The folder holding the section notebooks: the platform's `nbs` (`$PRUNING_REPRO_NBS`), a checkout's nbs/, or
    those the installed wheel ships."""
    here = Path(__file__).resolve().parent
    cands = [platform().nbs, here.parent / "nbs", here / "notebooks", Path.cwd() / "nbs"]
    for c in cands:
        if c and (Path(c) / f"{SECTIONS[0]}.ipynb").exists(): return Path(c)
    raise ConfigError("section notebooks not found: install the pruning_repro wheel (it ships them), run from a "
                      "checkout, or set PRUNING_REPRO_NBS to a folder holding them")


# %% [markdown]
# ## The notebook's side
#
# A section notebook's first cell builds its `study.Study` from its papermill parameters and hands it, with its
# `runtime` parameter, to `start_section`: the notebook's edge, where everything it was given is checked and
# resolved once. Its figures go to `figures_folder`.

# %%
#| export
class Section(NamedTuple):
    """What a section notebook works with: the bench at its scale, seeds, noise levels, output folder, run store and
    how its runs train (`runtime.Runtime`)."""
    bench: object
    seeds: tuple
    noise_levels: tuple
    out: Path
    store: object
    runtime: object

def default_figures_dir() -> Path:
    "`figures/` of the checkout the current directory is in (found by its settings.ini), else `./figures`."
    for d in (Path.cwd(), *Path.cwd().parents):
        if (d / "settings.ini").exists() and (d / "nbs").is_dir(): return d / "figures"
    return Path.cwd() / "figures"


# %%
#| export
def figures_folder(figures, bench: str, scale: str, precision: str | None = None) -> Path:
    """Where a bench's figures go: `<figures>/<bench>` (`<bench>_<scale>` for scales other than full, and
    `..._bf16` for bfloat16 runs, which never overwrite the float32 ones)."""
    name = bench if scale == "full" else f"{bench}_{scale}"
    return Path(figures) / (name if precision in (None, "fp32") else f"{name}_{precision}")


# %%
test_eq(figures_folder("figures", "resnet20_c10", "smoke", "bf16"), Path("figures/resnet20_c10_smoke_bf16"))
test_eq(figures_folder("f", "lenet_mnist", "full", "fp32"), Path("f/lenet_mnist"))


# %%
#| export
def section_runtime(runtime=None):
    """How a section notebook's runs train: `runtime` as given (a `runtime.Runtime`), or the environment's settings
    (`$PRUNING_REPRO_*`, read here: a notebook's parameters are an edge) with a dict of `Runtime`'s fields over them."""
    from pruning_repro.runtime import Runtime
    if isinstance(runtime, Runtime): return runtime
    names = {f.name for f in fields(Runtime)}
    if runtime is not None and (not isinstance(runtime, dict) or not set(runtime) <= names):
        raise ConfigError(f"runtime must be None or a dict of runtime.Runtime's fields ({', '.join(sorted(names))}), "
                          f"got {runtime!r}")
    return replace(Runtime.from_env(), **(runtime or {}))


# %%
test_eq(section_runtime({"workers": 1, "device": "cpu"}).workers, 1)
test_fail(lambda: section_runtime({"speed": 2}), contains="runtime must be None or a dict")


# %%
#| export
def start_section(section: str, study: Study, runtime=None) -> Section:
    """A section notebook's first step: `study` (built from its parameters, so validated) and `runtime`
    (`section_runtime`) checked — one clear error, `ConfigError` — the device asked for checked on this machine, the
    data found on disk, the section's noise levels resolved (`section_noise`), its output folder named and the run
    store opened; the environment's platform (`runtime.Platform`: folders, loaders) installed for the kernel — the
    first cell is its edge. Writes nothing."""
    from pruning_repro.study import check_device
    from pruning_repro.data import check_available
    from pruning_repro.runtime import Platform, install
    from pruning_repro.store import Store
    install(Platform.from_env())                        # PRUNING_REPRO_STORE="" is the default store, not this folder
    if not isinstance(section, str) or section not in SECTIONS:
        raise ConfigError(f"unknown section {section!r}; choose one of: {', '.join(SECTIONS)}")
    runtime = section_runtime(runtime)
    check_device(runtime.device)
    b, seeds, _ = study.resolved()
    check_available(b.data)
    out = figures_folder(study.figures or default_figures_dir(), study.bench, study.scale, study.precision)
    return Section(b, seeds, section_noise(section, b, study.noise_levels), out, Store(study.store), runtime)


# %% [markdown]
# A section notebook's parameters: each bad one is one `ConfigError` from its first cell, before anything is read
# (`tests/test_faults_params.py` runs the notebooks with them).

# %%
_bad = [dict(bench=[1, 2]), dict(figures=7), dict(store=[1]), dict(noise_levels={0.3: 1}), dict(seeds="0"),
        dict(seeds={0: 1}), dict(seeds=[0.5]), dict(seeds=None), dict(noise_levels=[0.1, 0.1000001]),
        dict(scale=["smoke"]), dict(precision=16)]
for kw in _bad:
    test_fail(lambda: start_section("sec4_noise", Study(**{"bench": "lenet_mnist1d", "scale": "smoke", **kw})),
              exc=ConfigError)
for rt in ({"workers": "x"}, {"workers": -4}, {"device": "tpu"}, {"speed": 2}, ["cpu"]):
    test_fail(lambda: start_section("sec4_noise", Study("lenet_mnist1d", "smoke"), rt), exc=ConfigError)
test_fail(lambda: start_section("sec9", Study("lenet_mnist1d", "smoke")), contains="unknown section 'sec9'")


# %%
#| export
def _relative(path: Path) -> str:
    "`path` relative to this directory when it lies below it (papermill records it in the executed notebook)."
    try: return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError: return str(path)


# %%
test_eq(_relative(Path.cwd() / "a" / "b.ipynb"), str(Path("a") / "b.ipynb"))
test_eq(_relative(Path("/nowhere/b.ipynb")), "/nowhere/b.ipynb")              # not below: as given


# %%
#| export
class SectionFailed(RuntimeError):
    "A section notebook could not be executed to the end (its kernel died, or its output could not be written)."

def _keep_failed(tmp: Path, failed: Path) -> None:
    "Keep a failed execution's notebook as `failed` only when it is a whole, readable notebook; else drop it."
    import nbformat
    try: nbformat.read(str(tmp), as_version=4)
    except Exception: tmp.unlink(missing_ok=True); return      # absent, or truncated by a full disk
    try: tmp.replace(failed)
    except OSError: tmp.unlink(missing_ok=True)


# %%
import tempfile, nbformat
with tempfile.TemporaryDirectory() as _t:
    _t = Path(_t)
    (_t / "run.ipynb").write_text('{"cells": [')                      # truncated: dropped, nothing kept
    _keep_failed(_t / "run.ipynb", _t / "s.failed.ipynb"); test_eq(sorted(_t.iterdir()), [])
    nbformat.write(nbformat.v4.new_notebook(), str(_t / "run.ipynb"))  # whole: kept under the failed name
    _keep_failed(_t / "run.ipynb", _t / "s.failed.ipynb"); test_eq(sorted(_t.iterdir()), [_t / "s.failed.ipynb"])


# %%
#| export
def _section_failure(section: str, e: BaseException) -> BaseException:
    "The one-line error a failed execution becomes: the notebook's own error is kept as is (main names it)."
    from papermill.exceptions import PapermillExecutionError
    if isinstance(e, (PapermillExecutionError, KeyboardInterrupt, SystemExit, ConfigError)): return e
    if isinstance(e, OSError) and e.errno is not None:
        return SectionFailed(f"{section}: cannot write its outputs: {e.strerror}"
                             + (f" (in {Path(e.filename).parent})" if e.filename else "")
                             + "; the previous outputs are kept")
    dead = type(e).__name__ == "DeadKernelError" or "kernel died" in str(e).lower()
    what = "the notebook's kernel died (out of memory, or killed?)" if dead else f"{type(e).__name__}: {str(e)[:300]}"
    return SectionFailed(f"{section}: {what}; the previous outputs are kept")


# %%
import errno
_e = ConfigError("bad"); assert _section_failure("sec4_noise", _e) is _e          # said by main as it is
test_eq(str(_section_failure("sec4_noise", OSError(errno.ENOSPC, "No space left on device", "/f/x.png"))),
        "sec4_noise: cannot write its outputs: No space left on device (in /f); the previous outputs are kept")
test_eq(str(_section_failure("sec4_noise", RuntimeError("Kernel died before replying"))),
        "sec4_noise: the notebook's kernel died (out of memory, or killed?); the previous outputs are kept")


# %%
#| export
@contextmanager
def _kernel_environ(variables: dict[str, str]):
    "`variables` set in this process's environment while a kernel is started from it; the environment restored after."
    before = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try: yield
    finally:
        for k, v in before.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v


# %%
with _kernel_environ({"PRUNING_REPRO_CHECK_VAR": "1"}): test_eq(os.environ["PRUNING_REPRO_CHECK_VAR"], "1")
assert "PRUNING_REPRO_CHECK_VAR" not in os.environ


# %%
#| export
def _execute(src: Path, out_dir: Path, section: str, params: dict) -> Path:
    """Execute notebook `src` with papermill (`params` injected) into `out_dir/<section>.ipynb`, replaced only when the
    execution finished; a failed one is kept as `<section>.failed.ipynb` when it is whole."""
    import papermill as pm
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp, final = out_dir / f".{section}.{os.getpid()}.running.ipynb", out_dir / f"{section}.ipynb"
    try:
        with _kernel_environ(platform().environ()):     # the kernel's first cell reads this process's platform
            pm.execute_notebook(_relative(src), str(tmp), parameters=params, kernel_name="python3",
                                progress_bar=True, cwd=os.getcwd())
    except BaseException as e:
        _keep_failed(tmp, out_dir / f"{section}.failed.ipynb")
        raise _section_failure(section, e) from None
    tmp.replace(final)
    (out_dir / f"{section}.failed.ipynb").unlink(missing_ok=True)      # an earlier failure's copy is stale now
    return final


# %%
#| export
def run_section(section: str, study: Study, runtime: Runtime | None = None) -> Path:
    """Execute one section notebook of `study` with papermill, after training the runs it needs as `runtime` says
    (default `Runtime()`); returns the saved executed notebook."""
    from pruning_repro.data import check_available
    from pruning_repro.store import Store
    from pruning_repro.sweep import train_section
    if section not in SECTIONS:
        raise ConfigError(f"unknown section {section!r}; choose one of: {', '.join(SECTIONS)}")
    runtime, (b, seeds, _) = runtime or Runtime(), study.resolved()
    check_available(b.data)
    src, out = nbs_dir() / f"{section}.ipynb", _out(study)
    check_writable(out, "figures folder")              # before any training
    # train what the section needs here, with progress in the terminal; the notebook then only reads the store
    _, after = train_section(section, b, seeds, section_noise(section, b, study.noise_levels), Store(study.store), runtime)
    # the folders as the user named them (relative to this directory, where the kernel runs): an executed notebook is
    # a page of the docs and carries no machine path of its own
    params = dict(bench=study.bench, scale=study.scale, seeds=list(seeds), figures_dir=study.figures,
                  store_dir=study.store, precision=study.precision, runtime=runtime.to_dict(),
                  trained=after is not None)         # every run is in the store: the notebook does not check them again
    if study.noise_levels is not None: params["noise_levels"] = list(study.noise_levels)   # else the section's own
    return _execute(src, out, section, params)

def _out(study: Study) -> Path:
    "The study's figures folder (`sweep.figures_folder`; its `figures` None: the checkout's figures/)."
    return figures_folder(study.figures or default_figures_dir(), study.bench, study.scale, study.precision)


# %% [markdown]
# `_execute` and `run_section` start a kernel and train: `tests/test_cli.py` runs a section end to end (and its
# failures: a notebook error, a dead kernel, a full disk), not this chapter. A bad input is refused before anything
# trains:

# %%
test_fail(lambda: run_section("sec9", Study("lenet_mnist1d")), contains="unknown section 'sec9'")
test_eq(_out(Study("lenet_mnist1d", "smoke", figures="f", precision="bf16")), Path("f/lenet_mnist1d_smoke_bf16"))


# %% [markdown]
# ## Every learning algorithm at one noise level

# %%
#| export
def compare_algorithms(study: Study, runtime: Runtime | None = None):
    """Train (once, as `runtime` says) and compare every registered learning algorithm (App. C's six and width
    down-scaling) at each noise level of `study`; writes `algorithms_p<noise>` (App. C's notebook writes Table 2,
    without width down-scaling)."""
    from pruning_repro.algorithms import versus_table
    from pruning_repro.results import algorithm_frames
    from pruning_repro.data import check_available
    from pruning_repro.executors import run_many
    from pruning_repro.plots import save_table, to_markdown
    from pruning_repro.store import Store
    b, seeds, levels = study.resolved()
    check_available(b.data)
    st, out = Store(study.store), _out(study)
    tables = {}
    for p in levels:
        runs = algorithm_runs(b, p, seeds)
        run_many({k: v for r in runs.values() for k, v in r.items()}, st, runtime=runtime)
        t = versus_table(algorithm_frames(b, [p], seeds, st, list(runs)), list(runs), [p], b.family)
        save_table(t, out, f"algorithms_p{p:g}", f"{study.bench}, {p:.0%} label noise: optimal test error (%) per learning "
                   f"algorithm, {len(seeds)} seeds; paper: {b.paper_label}")
        print(f"\n{study.bench}, {p:.0%} label noise ({len(seeds)} seeds; paper: {b.paper_label}):")
        print(to_markdown(t))
        tables[p] = t
    return tables
