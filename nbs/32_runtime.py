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
# # The runtime: how runs train, one value built at the edge
#
# > Device, training processes, compilation, optimizer implementation, progress bars, snapshot interval, runs per GPU: settings that change no result, resolved once.

# %%
#| default_exp runtime

# %% [markdown]
# **Runtime settings** say *how* to train, never *what* (that is `29_study`'s `Study`): they are not part of a run's
# spec (its hash), and results agree across them to float rounding. They are resolved **once, at the edge** — a
# command, a notebook's first cell, a job's entry — into a `Runtime` (from flags, or the environment:
# `$PRUNING_REPRO_COMPILE`, `$PRUNING_REPRO_OPTIMIZER_IMPL`, `$PRUNING_REPRO_PROGRESS`, `$PRUNING_REPRO_DEVICE`,
# ...), and passed down as one value to every pool, worker, level and epoch; nothing below reads these variables (a
# function called without a `Runtime` uses `Runtime()`'s defaults).

# %%
#| export
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from fastcore.basics import patch

from pruning_repro.config import ConfigError

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %% [markdown]
# The settings and their allowed values. Each is checked when a `Runtime` is made, so a bad value fails at the edge
# with one `ConfigError` that names the environment variable a user would have set.

# %%
#| export
OPTIMIZER_IMPLS = ("fused", "foreach", "for-loop")   # torch's three implementations of one update (`04_train`)
COMPILE_MODES = ("auto", "1", "0")                   # `torch.compile`: the model's default on a GPU, always, never

def _check_choice(value, allowed: tuple, var: str, field: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{var} (Runtime.{field}) must be one of {', '.join(allowed)}, got {value!r}")

def _check_counts(checkpoint_min, runs_per_gpu) -> None:
    c, r = checkpoint_min, runs_per_gpu
    if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float)) or not c >= 0):
        raise ConfigError(f"PRUNING_REPRO_CHECKPOINT_MIN (Runtime.checkpoint_min, minutes between in-level "
                          f"snapshots) must be a number >= 0 or 'never', got {c!r}")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"PRUNING_REPRO_RUNS_PER_GPU (Runtime.runs_per_gpu) must be an integer >= 1, got {r!r}")


# %%
test_fail(lambda: _check_choice("yes", COMPILE_MODES, "PRUNING_REPRO_COMPILE", "compile"), contains="auto, 1, 0")
test_fail(lambda: _check_counts(-1, 1), contains="CHECKPOINT_MIN"); test_fail(lambda: _check_counts(None, 0), contains="RUNS_PER_GPU")
_check_counts(None, 2); _check_counts(0, 1)      # never; after every step


# %% [markdown]
# The value itself: frozen, so one built at the edge cannot be changed on its way down.

# %%
#| export
@dataclass(frozen=True)
class Runtime:
    """How to train: `compile` ('auto': the model's default, '1', '0'), `optimizer_impl`, `progress` (bars),
    `checkpoint_min`: minutes between in-level snapshots (`26_snapshots`; 0: after every step, None: never),
    `runs_per_gpu`: how many runs a local pool trains on each GPU at once (`24_placement`), `device` the runs are
    asked to train on (None: each run's preferred one, `placement.run_device`) and `workers`: training processes of
    a local pool (None: one per core, or `runs_per_gpu` per GPU)."""
    compile: str = "auto"
    optimizer_impl: str = "fused"
    progress: bool = True
    checkpoint_min: float | None = 30.0
    runs_per_gpu: int = 1
    device: str | None = None
    workers: int | None = None

    def __post_init__(self):
        from pruning_repro.study import check_workers
        _check_choice(self.compile, COMPILE_MODES, "PRUNING_REPRO_COMPILE", "compile")
        _check_choice(self.optimizer_impl, OPTIMIZER_IMPLS, "PRUNING_REPRO_OPTIMIZER_IMPL", "optimizer_impl")
        _check_counts(self.checkpoint_min, self.runs_per_gpu)
        if self.device in ("", "auto"): object.__setattr__(self, "device", None)     # not asked: each run's own
        elif self.device is not None and not isinstance(self.device, str):
            raise ConfigError(f"PRUNING_REPRO_DEVICE (Runtime.device) must be a device name or None, "
                              f"got {self.device!r}")
        check_workers(self.workers)


# %%
test_fail(lambda: Runtime(optimizer_impl="turbo"), contains="PRUNING_REPRO_OPTIMIZER_IMPL")
test_eq(Runtime(device="auto").device, None)
test_fail(lambda: Runtime(workers=0), contains="workers must be")
test_fail(lambda: Runtime(device=0), contains="a device name or None")


# %% [markdown]
# **From the environment, once.** `from_env` is what the edge calls when a user set variables instead of flags;
# `environ` is the inverse, for processes started from this one (a papermill kernel, a Slurm job). `workers` is never
# inherited: a worker process trains alone.

# %%
#| export
@patch(cls_method=True)
def from_env(cls: Runtime, environ=None) -> Runtime:
    "The settings the environment asks for (read here, once, by the caller at the edge)."
    e = os.environ if environ is None else environ
    c, r = e.get("PRUNING_REPRO_CHECKPOINT_MIN", "30"), e.get("PRUNING_REPRO_RUNS_PER_GPU", "1")
    try: c = None if c.strip().lower() == "never" else float(c)
    except ValueError: pass                     # __post_init__ says what is expected
    try: r = int(r)
    except ValueError: pass
    return cls(e.get("PRUNING_REPRO_COMPILE", "auto"), e.get("PRUNING_REPRO_OPTIMIZER_IMPL", "fused"),
               e.get("PRUNING_REPRO_PROGRESS", "1") != "0", c, r, e.get("PRUNING_REPRO_DEVICE") or None)


# %%
test_eq(Runtime.from_env({}), Runtime("auto", "fused", True, 30.0, 1))
test_eq(Runtime.from_env({"PRUNING_REPRO_CHECKPOINT_MIN": "never"}).checkpoint_min, None)
test_fail(lambda: Runtime.from_env({"PRUNING_REPRO_CHECKPOINT_MIN": "often"}), contains="CHECKPOINT_MIN")
test_eq(Runtime.from_env({"PRUNING_REPRO_COMPILE": "0", "PRUNING_REPRO_PROGRESS": "0"}), Runtime("0", "fused", False))
test_fail(lambda: Runtime.from_env({"PRUNING_REPRO_COMPILE": "yes"}), contains="auto, 1, 0")
test_eq(Runtime.from_env({"PRUNING_REPRO_DEVICE": "cpu"}).device, "cpu")


# %%
#| export
@patch
def environ(self: Runtime) -> dict[str, str]:
    "These settings as the environment variables `from_env` reads (for processes started from this one)."
    return {"PRUNING_REPRO_COMPILE": self.compile, "PRUNING_REPRO_OPTIMIZER_IMPL": self.optimizer_impl,
            "PRUNING_REPRO_PROGRESS": "1" if self.progress else "0",
            "PRUNING_REPRO_CHECKPOINT_MIN": "never" if self.checkpoint_min is None else str(self.checkpoint_min),
            "PRUNING_REPRO_RUNS_PER_GPU": str(self.runs_per_gpu),
            **({"PRUNING_REPRO_DEVICE": self.device} if self.device else {})}

@patch
def to_dict(self: Runtime) -> dict:
    "These settings as plain values (a papermill parameter, JSON); `Runtime(**d)` is the inverse."
    return asdict(self)


# %%
test_eq(Runtime.from_env(Runtime(checkpoint_min=None, runs_per_gpu=3).environ()), Runtime(checkpoint_min=None, runs_per_gpu=3))
test_eq(Runtime.from_env(Runtime(device="cpu", workers=1).environ()).device, "cpu")   # workers: never inherited
test_eq(Runtime(**Runtime(device="cpu", workers=1).to_dict()), Runtime(device="cpu", workers=1))

# %% [markdown]
# ## The platform: this machine's folders and loaders
#
# A second value is resolved at the edge beside the `Runtime`, as OpenLTH's *platform* is: where this machine keeps
# things and how it loads them. `store` (the runs), `data` (the data sets), `cache` (files derived from them: decoded
# idx, generated MNIST-1D), `nbs` (the section notebooks) — each None for its default folder, which is never written
# into a notebook's parameters (an executed notebook carries no machine path) — and ImageNet's loader settings
# (`loader_workers` per rank, `decode` on the CPU or GPU) and the data-parallel timeout. Like the `Runtime`, none of it
# changes a result. A folder set to nothing (`PRUNING_REPRO_STORE=""`, as `export PRUNING_REPRO_STORE=$UNSET_VAR` does)
# means its default, as an unset one does — never the current folder, which `Path("")` is.

# %%
#| export
DECODES = ("auto", "cpu", "gpu")                      # ImageNet's JPEG decoding (`25_imagenet`)

@dataclass(frozen=True)
class Platform:
    """This machine's folders — `store`, `data`, `cache`, `nbs` (None: the default; a blank one is None) — and its
    loaders: `loader_workers` (ImageNet loader processes of one rank; None: from its CPUs), `decode` (`DECODES`) and
    `dist_timeout_min` (minutes a data-parallel rank waits for its peers)."""
    store: str | None = None
    data: str | None = None
    cache: str | None = None
    nbs: str | None = None
    loader_workers: int | None = None
    decode: str = "auto"
    dist_timeout_min: float = 30.0

    def __post_init__(self):
        for k in ("store", "data", "cache", "nbs"):
            v = getattr(self, k)
            if isinstance(v, os.PathLike): v = os.fspath(v)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"{_VARS[k]} (Platform.{k}) must be a folder or None, got {v!r}")
            object.__setattr__(self, k, v if v and v.strip() else None)     # blank: the default, never this folder
        w, t = self.loader_workers, self.dist_timeout_min
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 0):
            raise ConfigError(f"${_VARS['loader_workers']}={w!r}: expected a non-negative integer")
        _check_choice(self.decode, DECODES, _VARS["decode"], "decode")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise ConfigError(f"${_VARS['dist_timeout_min']}={t!r}: expected a number of minutes > 0")

_VARS = {k: f"PRUNING_REPRO_{k.upper()}" for k in ("store", "data", "cache", "nbs", "loader_workers", "decode",
                                                    "dist_timeout_min")}

# %%
test_eq(Platform(store=" ", data="").store, None)
test_eq(Platform(data=Path("/d")).data, "/d")
test_fail(lambda: Platform(loader_workers=-1), contains="PRUNING_REPRO_LOADER_WORKERS")
test_fail(lambda: Platform(decode="fast"), contains="auto, cpu, gpu")
test_fail(lambda: Platform(dist_timeout_min=0), contains="DIST_TIMEOUT_MIN")


# %% [markdown]
# The defaults are fixed folders below the home directory, so `Store()`, the data loaders and the section runner find
# the same place in every process of one user.

# %%
#| export
@patch
def store_root(self: Platform) -> Path:
    "The run store: `store`, or `~/.pruning_repro/store`."
    return Path(self.store or Path.home() / ".pruning_repro" / "store").expanduser()

@patch
def data_root(self: Platform) -> Path:
    "The root of the local data sets: `data`, or `~/.pruning_repro/data`."
    return Path(self.data or Path.home() / ".pruning_repro" / "data").expanduser()

@patch
def cache_dir(self: Platform) -> Path:
    "Files derived from the data (decompressed idx, generated MNIST-1D): `cache`, or `~/.cache/pruning_repro`."
    return Path(self.cache or Path.home() / ".cache" / "pruning_repro").expanduser()


# %%
test_eq(Platform(data="/d").data_root(), Path("/d"))
test_eq(Platform().store_root(), Path.home() / ".pruning_repro" / "store")


# %% [markdown]
# **Read at the edge, installed for the process.** `Platform.from_env` reads the variables (a user's way of giving
# these settings); the edge — the command's `main`, a section notebook's first cell, a worker's or a Slurm job's
# entry (which gets its parent's platform as a value, not through the environment) — installs it with `using`.
# `platform()` is what the code below asks: the installed one, or, in a process no edge configured (a user's script
# calling the package directly), the environment's, read at that call.

# %%
#| export
@patch(cls_method=True)
def from_env(cls: Platform, environ=None) -> Platform:
    "The platform the environment gives (read here, by the caller at the edge)."
    e = os.environ if environ is None else environ
    def number(k, kind, what):
        v = e.get(_VARS[k], "").strip()
        if not v: return None
        try: return kind(v)
        except ValueError: raise ConfigError(f"${_VARS[k]}={v!r}: expected {what}") from None
    t = number("dist_timeout_min", float, "a number of minutes > 0")
    return cls(e.get(_VARS["store"]), e.get(_VARS["data"]), e.get(_VARS["cache"]), e.get(_VARS["nbs"]),
               number("loader_workers", int, "a non-negative integer"), e.get(_VARS["decode"], "").strip() or "auto",
               30.0 if t is None else t)


# %%
test_eq(Platform.from_env({}), Platform())
test_eq(Platform.from_env({"PRUNING_REPRO_STORE": "", "PRUNING_REPRO_DATA": "/d", "PRUNING_REPRO_DECODE": "cpu"}),
        Platform(data="/d", decode="cpu"))
test_fail(lambda: Platform.from_env({"PRUNING_REPRO_LOADER_WORKERS": "many"}), contains="non-negative integer")


# %% [markdown]
# `environ` is the inverse, for a process that reads its platform from its environment (a papermill kernel):
# every variable, an unset folder as an empty one (its default).

# %%
#| export
@patch
def environ(self: Platform) -> dict[str, str]:
    "This platform as the variables `from_env` reads (for a process started from this one: a papermill kernel)."
    lw = self.loader_workers
    return {_VARS["store"]: self.store or "", _VARS["data"]: self.data or "", _VARS["cache"]: self.cache or "",
            _VARS["nbs"]: self.nbs or "", _VARS["loader_workers"]: "" if lw is None else str(lw),
            _VARS["decode"]: self.decode, _VARS["dist_timeout_min"]: str(self.dist_timeout_min)}


# %%
for _p in (Platform(), Platform(data="/d", loader_workers=0, decode="gpu", dist_timeout_min=5)):
    test_eq(Platform.from_env(_p.environ()), _p)

# %%
#| export
_INSTALLED: list = []                               # the platforms installed by the edges of this process, innermost last

def platform() -> Platform:
    "This process's platform: the one an edge installed (`using`), else the environment's."
    return _INSTALLED[-1] if _INSTALLED else Platform.from_env()

@contextmanager
def using(p: Platform):
    "Install `p` as this process's platform while the block runs (an edge: a command, a worker's job)."
    if not isinstance(p, Platform): raise ConfigError(f"expected a runtime.Platform, got {p!r}")
    before = list(_INSTALLED)
    _INSTALLED.append(p)
    try: yield p
    finally: _INSTALLED[:] = before                 # as it was, even if the block installed another (`install`)

def install(p: Platform | None) -> Platform | None:
    """Install `p` for the rest of this process (a section notebook's kernel, from its first cell); None: none, the
    environment's from now on (a test's fresh start). Returns `p`."""
    if p is not None and not isinstance(p, Platform): raise ConfigError(f"expected a runtime.Platform, got {p!r}")
    _INSTALLED[:] = [] if p is None else [p]
    return p


# %%
with using(Platform(data="/elsewhere")): test_eq(platform().data_root(), Path("/elsewhere"))
test_eq(_INSTALLED, [])
with using(Platform(data="/a")): install(Platform(data="/b")); test_eq(platform().data, "/b")
test_eq(_INSTALLED, [])
install(Platform(cache="/c")); test_eq(platform().cache, "/c"); install(None); test_eq(_INSTALLED, [])
