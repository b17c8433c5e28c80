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
# # The study: one value built at the edge
#
# > What a reproduction studies, validated once before anything trains; the checks a spec and a device pass first; a run's spec as the `imp` command's flags.

# %%
#| default_exp study

# %% [markdown]
# `00_config` defines what one run is (its spec) and the benches (their defaults). A *study* is what a reproduction
# asks of a bench: which seeds, which noise levels, which sections, where runs are stored and figures written. The
# command line builds it from its flags, a section notebook from its papermill parameters; either way it is built
# (and so validated) once, at the edge, and goes down as one value. How the runs train (device, workers, compilation)
# is the other value, `runtime.Runtime`.

# %%
#| export
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, fields, replace

from fastcore.basics import patch

from pruning_repro.config import (Bench, ConfigError, DataSpec, ModelSpec, PruneSpec, RunSpec, TrainSpec, check_noise,
                                  get_bench)

# %%
#| hide
from dataclasses import replace

from fastcore.test import test_eq, test_fail

s = get_bench("lenet_mnist").run_spec(0.1, seed=1)   # a spec to check


# %% [markdown]
# ## Parameters of a study
#
# Section notebooks and the command line take `bench`, `scale`, `seeds` and `noise_levels` from a user (papermill
# parameters or flags). `resolve_study` validates all of them at once, before anything is computed or written, and
# fills in the bench's defaults.

# %%
#| export
def check_seeds(seeds) -> tuple[int, ...]:
    "A non-empty tuple of distinct non-negative integer seeds."
    if isinstance(seeds, int) and not isinstance(seeds, bool): seeds = [seeds]
    if isinstance(seeds, (str, bytes, dict)) or not hasattr(seeds, "__iter__"):   # a dict would be read as its keys
        raise ConfigError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    seeds = list(seeds)
    if not seeds: raise ConfigError("seeds must be a non-empty list of integers, got an empty list")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds must be non-negative integers, got {s!r} in {seeds!r}")
    if len(set(seeds)) != len(seeds): raise ConfigError(f"seeds must be distinct, got {seeds!r}")
    return tuple(seeds)


# %%
test_eq(check_seeds(3), (3,)); test_eq(check_seeds([2, 0]), (2, 0))
test_fail(lambda: check_seeds([]), contains="non-empty"); test_fail(lambda: check_seeds(["a"]), contains="integers")
test_fail(lambda: check_seeds({0: 1}), contains="non-empty list of integers"); test_fail(lambda: check_seeds([1, 1]), contains="distinct")


# %%
#| export
def check_workers(workers) -> int | None:
    """Validate a number of training processes a user asked for: None (one per core) or an integer from 1 to the
    cores of this machine (each process holds its own copy of the data and model: more than the cores only adds
    memory, and thousands would exhaust it)."""
    import os
    if workers is None: return None
    cores = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= cores:
        raise ConfigError(f"workers must be an integer from 1 to {cores} (the cores of this machine), got {workers!r}")
    return workers


# %%
test_eq((check_workers(None), check_workers(1)), (None, 1))
test_fail(lambda: check_workers(100_000), contains="the cores of this machine")
test_fail(lambda: check_workers(0), contains="from 1 to")


# %% [markdown]
# `resolve_study` fills in the bench's defaults; two noise levels the tables would print alike (`0.1`,
# `0.1000001`: two rows labelled 10%) are refused, and a repeated level is one.

# %%
#| export
def resolve_study(bench: str, scale: str = "full", seeds=(0, 1, 2), noise_levels=None,
                  precision: str | None = None) -> tuple[Bench, tuple, tuple]:
    """Validate a study's parameters; returns (bench at scale and precision, seeds, noise levels — the bench's own
    when None)."""
    b = get_bench(bench, scale, precision)
    seeds = check_seeds(seeds)
    return b, seeds, check_noise_levels(b.noise_levels if noise_levels is None else noise_levels)

def _printed(p: float) -> tuple[str, str]:
    "How a noise level is printed: in the figures' legends and the report (`10%`), in run labels and file names (`0.1`)."
    return f"{p:.0%}", f"{p:g}"

def check_noise_levels(noise_levels) -> tuple[float, ...]:
    """The sorted distinct noise levels of a study. Refused: anything but a number or a non-empty list of them (a dict
    would be read as its keys), and two levels the tables print alike (0.1 and 0.1000001 are two rows both
    labelled 10%): each level must be a row of its own."""
    if isinstance(noise_levels, (int, float)) and not isinstance(noise_levels, bool): noise_levels = [noise_levels]
    if (isinstance(noise_levels, (str, bytes, dict)) or not hasattr(noise_levels, "__iter__")
            or not list(noise_levels)):
        raise ConfigError(f"noise_levels must be a non-empty list of fractions in [0, 1), got {noise_levels!r}")
    levels = tuple(sorted({check_noise(p) for p in noise_levels}))
    for a, b in zip(levels, levels[1:]):
        same = [f for f, g in zip(_printed(a), _printed(b)) if f == g]
        if same:
            raise ConfigError(f"noise levels {a!r} and {b!r} would be two rows printed alike ({same[0]}): "
                              f"give levels that differ in whole percent")
    return levels


# %%
test_eq(resolve_study("lenet_mnist", seeds=[2, 0])[1:], ((2, 0), (0.0, 0.05, 0.10, 0.15)))
test_eq(resolve_study("lenet_mnist", noise_levels=0.3)[2], (0.3,))
test_fail(lambda: resolve_study("lenet_mnist", seeds=[]), contains="non-empty")
test_fail(lambda: resolve_study("lenet_mnist", seeds=["a"]), contains="integers")
test_fail(lambda: resolve_study("lenet_mnist", noise_levels=[0.1, 1.2]), contains="[0, 1)")
test_fail(lambda: resolve_study("lenet_mnist", noise_levels=[0.1, 0.1000001]), contains="0.1 and 0.1000001")
test_fail(lambda: resolve_study("lenet_mnist", noise_levels=[0.1, 0.104]), contains="printed alike (10%)")
test_eq(resolve_study("lenet_mnist", noise_levels=[0.1, 0.1, 0.11])[2], (0.1, 0.11))   # a repeated level is one
test_fail(lambda: resolve_study("lenet_mnist", noise_levels={0.3: 1}), contains="non-empty list")
test_fail(lambda: resolve_study("lenet_mnist", seeds={0: 1}), contains="non-empty list of integers")
test_fail(lambda: resolve_study(["lenet_mnist"]), contains="bench must be a name")


# %% [markdown]
# ## The study, one value
#
# What a reproduction studies — the bench at a scale and precision, the seeds, the noise levels, the sections, where
# runs are stored and figures written — is one frozen `Study`, built (and so validated) once at the edge: by the
# command from its flags, by a section notebook from its papermill parameters. It goes down as one value; `to_dict`
# is the same value as plain data (a papermill parameter, a job's argument). How the runs train is the other value,
# `runtime.Runtime`.

# %%
#| export
def _folder(folder, what: str) -> str | None:
    "A folder setting: None (its default; '' counts as None) or a path, kept as the user wrote it (no machine path)."
    import os
    if folder is None or folder == "": return None
    if isinstance(folder, os.PathLike) or (isinstance(folder, str) and folder.strip()): return str(folder)
    raise ConfigError(f"{what} must be a folder (a path) or None, got {folder!r}")


# %%
from pathlib import Path
test_eq((_folder("", "store_dir"), _folder(Path("figs"), "figures_dir")), (None, "figs"))
test_fail(lambda: _folder(7, "figures_dir"), contains="figures_dir must be a folder")


# %%
#| export
@dataclass(frozen=True)
class Study:
    """A study: `bench` at `scale` and `precision`, `seeds`, `noise_levels` (None: the bench's own, or a section's),
    `store` (runs; None: `Store`'s default), `figures` (None: the checkout's figures/) and `sections` (None: every
    one). Validated when built: one `ConfigError` naming the bad setting."""
    bench: str
    scale: str = "full"
    seeds: tuple = (0, 1, 2)
    noise_levels: tuple | None = None
    store: str | None = None
    figures: str | None = None
    precision: str | None = None
    sections: tuple | None = None

    def __post_init__(self):
        _, seeds, levels = resolve_study(self.bench, self.scale, self.seeds, self.noise_levels, self.precision)
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("seeds", seeds)
        if self.noise_levels is not None: set_("noise_levels", levels)
        set_("store", _folder(self.store, "store_dir")); set_("figures", _folder(self.figures, "figures_dir"))
        if self.sections is not None:
            from pruning_repro.sweep import check_sections
            set_("sections", check_sections(self.sections))



# %%
test_fail(lambda: Study("lenet_mnist", seeds="0"), contains="seeds must be a non-empty list")
test_fail(lambda: Study("lenet_mnist", sections=["sec9"]), contains="unknown section 'sec9'")


# %% [markdown]
# `resolved` gives the bench and the study's numbers; `to_dict` the study as plain values (a papermill parameter, a
# job's argument).

# %%
#| export
@patch
def resolved(self: Study) -> tuple[Bench, tuple, tuple]:
    "(the bench at scale and precision, seeds, noise levels — the bench's own when none were given)."
    return resolve_study(self.bench, self.scale, self.seeds, self.noise_levels, self.precision)

@patch
def to_dict(self: Study) -> dict:
    "The study as plain values (lists for tuples); `Study(**d)` is the inverse."
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# %%
_st = Study("lenet_mnist", "smoke", [1, 0], [0.1], store="", figures=Path("figs"))
test_eq((_st.seeds, _st.noise_levels, _st.store, _st.figures), ((1, 0), (0.1,), None, "figs"))
test_eq(Study(**_st.to_dict()), _st)
test_eq(Study("lenet_mnist").resolved()[2], (0.0, 0.05, 0.10, 0.15))
test_fail(lambda: Study("lenet_mnist", figures=7), contains="figures_dir must be a folder")


# %% [markdown]
# **Before anything trains.** `check_spec` looks up every registered name of a spec — data set, architecture (built
# on the meta device: no memory), pruning strategy and the settings that strategy owns — so a typo fails in a second,
# not after the dense level trained for days. It looks the names up when called, so a name a plugin registered is found.
# `check_device` refuses a device this machine cannot train on (a GPU it lacks, `meta`, `mps` without Metal) with
# one line, instead of PyTorch's traceback from the first tensor moved there.

# %%
#| export
def check_spec(spec: RunSpec) -> RunSpec:
    """Fail before any training if `spec` names a data set, architecture or pruning strategy no registry holds (or a
    model that cannot be built, or a strategy setting its strategy refuses); returns `spec`. The optimizer, initialisation and rewinding rule are checked when a
    spec is made (a fixed set of names); these registries can grow with plugins, so they are checked at run time."""
    from pruning_repro.data import data_info
    from pruning_repro.models import check_model
    from pruning_repro.prune import strategy_settings
    for what, v in (("dataset", spec.data.dataset), ("architecture", spec.model.arch), ("pruning strategy",
                                                                                          spec.prune.strategy)):
        if not isinstance(v, str): raise ConfigError(f"{what} must be a registered name, got {v!r}")
    strategy_settings(spec.prune)                   # a known strategy, its settings valid, no other strategy's given
    check_model(spec.model, data_info(spec.data.dataset))
    return spec


# %%
test_fail(lambda: check_spec(replace(s, prune=replace(s.prune, strategy="magnitud"))), contains="unknown pruning strategy 'magnitud'")
test_fail(lambda: check_spec(replace(s, prune=replace(s.prune, strategy="snip", snip_per_class=0))), contains="snip_per_class must be")
test_fail(lambda: check_spec(replace(s, prune=replace(s.prune, synflow_rounds=10))), contains="a setting of the 'synflow' strategy")
test_fail(lambda: check_spec(replace(s, model=replace(s.model, arch="lenett"))), contains="unknown architecture")
test_fail(lambda: check_spec(replace(s, data=replace(s.data, dataset="mnistt"))), contains="unknown dataset")
test_eq(check_spec(s), s)


# %%
#| export
def check_device(device: str | None) -> str | None:
    """Validate a device a user asked for (`--device`, `$PRUNING_REPRO_DEVICE`): None, '' and 'auto' (not asked) are
    returned as given; 'cpu', 'cuda' or 'cuda:<i>' with that GPU visible, or 'mps' where it is available, as PyTorch
    names them; anything else is one error."""
    if device in (None, "", "auto"): return device
    import torch
    try: d = torch.device(device)
    except (RuntimeError, TypeError, ValueError): d = None
    if d is None or d.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:<index> (or auto)")
    if d.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0: raise ConfigError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU on this machine; "
                                     f"use --device cpu (or auto)")
        if d.index is not None and d.index >= n:
            raise ConfigError(f"device {device!r} asked for, but this machine has {n} CUDA GPU(s): cuda:0 to cuda:{n - 1}")
    if d.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} asked for, but MPS (Apple Metal) is not available here; use --device cpu")
    return str(d)


# %%
test_eq((check_device(None), check_device("auto"), check_device("cpu")), (None, "auto", "cpu"))
for d in ("meta", "tpu", "cuda:x", "xla"): test_fail(lambda: check_device(d), contains="unknown device")
import torch
if not torch.cuda.is_available(): test_fail(lambda: check_device("cuda"), contains="no CUDA GPU")
test_fail(lambda: check_device("cuda:99"), contains="cuda")
if not torch.backends.mps.is_available(): test_fail(lambda: check_device("mps"), contains="not available")

# %% [markdown]
# ## A run's spec as flags
#
# The `imp` command's flags (`15_cli`) are the run spec's fields (as OpenLTH's hparam dataclasses are its command line): one
# flag per field of `DataSpec`, `ModelSpec`, `TrainSpec` and `PruneSpec`, named `--<group>-<field>`, default the
# bench's. The label noise and the precision are the study's (`--noise`, `--precision`); four fields keep the short
# names they had (`--epochs`, `--width`, `--levels`, `--rewind`).

# %%
#| export
SPEC_GROUPS = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec, "prune": PruneSpec}
_STUDY_FIELDS = {("data", "noise"), ("train", "precision")}            # given as --noise and --precision
_SHORT = {("train", "epochs"): "--epochs", ("model", "width"): "--width", ("prune", "levels"): "--levels",
          ("prune", "rewind"): "--rewind"}
_NONE = "none"                                                          # `--data-n-train none`: the field set to None

def _number(text: str):
    try: return int(text)
    except ValueError: return float(text)

def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"): return True
    if text.lower() in ("false", "0", "no"): return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")

def _int_or_none(text: str):
    return _NONE if text.lower() == _NONE else int(text)

_FIELD_KINDS = {"str": (str, None), "int": (int, None), "float": (float, None), "bool": (_flag, None),
                "int | None": (_int_or_none, None), "tuple": (_number, "*")}


# %%
#| export
def spec_options(parser: argparse.ArgumentParser) -> None:
    "Add one flag per field of a run's spec to `parser` (default None: the bench's value)."
    for group, cls in SPEC_GROUPS.items():
        g = parser.add_argument_group(f"{group} ({cls.__name__}; default: the bench's)")
        for f in fields(cls):
            if (group, f.name) in _STUDY_FIELDS: continue
            kind, nargs = _FIELD_KINDS[f.type]
            names = [f"--{group}-{f.name.replace('_', '-')}", *([_SHORT[group, f.name]] if (group, f.name) in _SHORT else [])]
            g.add_argument(*names, dest=f"{group}.{f.name}", type=kind, nargs=nargs, default=None,
                           metavar=f.name.upper())

def with_options(spec: RunSpec, args: argparse.Namespace) -> RunSpec:
    "`spec` with each field given by a `spec_options` flag in `args` replaced (validated by the spec's dataclasses)."
    for group in SPEC_GROUPS:
        given = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith(f"{group}.") and v is not None}
        given = {k: None if v == _NONE else tuple(v) if isinstance(v, list) else v for k, v in given.items()}
        if given: spec = replace(spec, **{group: replace(getattr(spec, group), **given)})
    return spec


# %% [markdown]
# Every field has a flag; a field left out keeps the bench's value, one given replaces it and goes through the
# dataclass's own validation:

# %%
_p = argparse.ArgumentParser(); spec_options(_p)
_dests = {a.dest for a in _p._actions if "." in a.dest}
test_eq(_dests, {f"{g}.{f.name}" for g, c in SPEC_GROUPS.items() for f in fields(c)} - {"data.noise", "train.precision"})
_base = get_bench("lenet_mnist1d").run_spec(0.1, 0)
test_eq(with_options(_base, _p.parse_args([])), _base)
_s = with_options(_base, _p.parse_args(["--epochs", "7", "--train-lr", "0.05", "--train-milestones", "3", "5",
                                        "--prune-strategy", "random", "--data-n-train", "none", "--data-augment", "true"]))
test_eq((_s.train.epochs, _s.train.lr, _s.train.milestones, _s.prune.strategy, _s.data.n_train, _s.data.augment),
        (7, 0.05, (3, 5), "random", None, True))
test_eq(_s.data.noise, 0.1)
test_fail(lambda: with_options(_base, _p.parse_args(["--train-lr", "-1"])), contains="lr must be > 0")
