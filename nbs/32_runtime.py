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
from dataclasses import asdict, dataclass

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
