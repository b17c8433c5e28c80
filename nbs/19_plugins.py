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
# # Plugins: your own data, models, heuristics and benches
#
# > Your own data sets, models, pruning heuristics and benches: a module of yours registers them; named once, it is imported by every process that runs work.

# %%
#| default_exp plugins

# %% [markdown]
# The registries are plain dictionaries of one process: `data.register_dataset`, `models.register_model`,
# `prune.register_strategy`, `algorithms.register_algorithm` and `config.register` (benches). A sweep with several
# local workers (spawned processes), a Slurm job, or a papermill kernel is another process, which would not know what a
# notebook or script registered. A **plugin** is a module that makes those calls when imported; it is named once —
#
# * `pruning-repro --plugins my_module ...`, or `load_plugins(["my_module"])` in Python,
# * the environment variable `$PRUNING_REPRO_PLUGINS` (comma-separated module names),
# * or an entry point of the group `pruning_repro.plugins` in the plugin's own package —
#
# and `load_plugins` imports it in every process that runs work: the command line and the section notebooks
# (their first cell, before its `Study` names a plugin's bench), each local worker and each Slurm job (`executors.run_job`). Names given to `load_plugins` are
# added to `$PRUNING_REPRO_PLUGINS`, which every process started from this one inherits. Registering a name twice is
# an error, so two plugins can never silently replace each other's definitions.

# %%
#| export
from __future__ import annotations

import importlib
import importlib.metadata
import os

from pruning_repro.config import ConfigError

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %%
#| export
ENV = "PRUNING_REPRO_PLUGINS"
GROUP = "pruning_repro.plugins"
_loaded: dict[str, object] = {}

def load_plugins(names=None) -> list[str]:
    """Import every plugin named by `names`, `$PRUNING_REPRO_PLUGINS` and the `pruning_repro.plugins` entry points,
    once per process (an entry point naming a callable is called); returns their names. An unimportable plugin is one
    `ConfigError` naming it."""
    given = [n.strip() for g in (names or []) for n in str(g).split(",") if n.strip()]
    env = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    mods = list(dict.fromkeys(env + given))
    if given: os.environ[ENV] = ",".join(mods)          # every process started from here imports them too
    for name in mods:
        if name in _loaded: continue
        try: _loaded[name] = importlib.import_module(name)
        except ConfigError as e: raise ConfigError(f"plugin {name!r}: {e}") from None
        except Exception as e:
            raise ConfigError(f"plugin {name!r} cannot be imported ({type(e).__name__}: {e}); name an importable "
                              f"module (on PYTHONPATH or installed)") from None
    for ep in importlib.metadata.entry_points(group=GROUP):
        key = f"entry point {ep.name}"
        if key in _loaded: continue
        try:
            obj = ep.load()
            if callable(obj): obj()
        except ConfigError as e: raise ConfigError(f"plugin {ep.name!r} ({ep.value}): {e}") from None
        except Exception as e:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) failed: {type(e).__name__}: {e}") from None
        _loaded[key] = obj; mods.append(key)
    return mods


# %% [markdown]
# A plugin written on the fly: importing it registers a data set, a model, a heuristic and a bench; a second load
# imports nothing again; an unknown module is one clear error.

# %%
import sys, tempfile, textwrap
from pathlib import Path
_d = Path(tempfile.mkdtemp())
(_d / "demo_plugin_nb.py").write_text(textwrap.dedent('''
    import torch
    from torch import nn
    from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, register
    from pruning_repro.data import DataInfo, register_dataset
    from pruning_repro.models import register_model
    def blobs(n):
        g = torch.Generator().manual_seed(0); y = torch.arange(200) % 3
        x = torch.randn(200, 8, generator=g) + y[:, None].float()
        return x[:150], y[:150], x[150:], y[150:]
    register_dataset("nb_blobs", DataInfo(3, (8,), (0.0,), (1.0,)), blobs)
    register_model("nb_mlp", lambda info, w: nn.Sequential(nn.Flatten(), nn.Linear(8, max(1, int(32 * w))), nn.ReLU(),
                                                            nn.Linear(max(1, int(32 * w)), 3)), output_name="3")
    register(Bench(name="nb_blobs_mlp", data=DataSpec("nb_blobs", n_val=30), model=ModelSpec("nb_mlp"),
                   train=TrainSpec(epochs=2, batch_size=32, optimizer="adam", lr=1e-2), prune=PruneSpec(levels=2),
                   noise_levels=(0.0, 0.3), family="M-LeNet"))
'''))
sys.path.insert(0, str(_d))
_env_before = os.environ.get(ENV)
test_eq(load_plugins(["demo_plugin_nb"])[-1], "demo_plugin_nb")
test_eq(os.environ[ENV].split(",")[-1], "demo_plugin_nb")
from pruning_repro.config import get_bench
from pruning_repro.data import load_data
from pruning_repro.models import build_model
_b = get_bench("nb_blobs_mlp")
_data = load_data(_b.data, 0)
test_eq((len(_data.train), _data.info.num_classes), (120, 3))
test_eq(build_model(_b.model, _data.info, 0).prunable_names(), ["1.weight", "3.weight"])   # output pruned: declared
load_plugins(["demo_plugin_nb"])                          # imported once: registering twice would be an error
test_fail(lambda: load_plugins(["no_such_plugin_module"]), contains="cannot be imported")
if _env_before is None: os.environ.pop(ENV)
else: os.environ[ENV] = _env_before
