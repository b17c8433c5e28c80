# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sweeps: studies, and the engines that train them
#
# > A study is the set of runs a section of the paper needs for a bench; a sweep trains each missing run once, in a
# > local process pool or as a Slurm job array through submitit.

# %%
#| default_exp sweep

# %% [markdown]
# The paper's full study — five benchmarks, up to five noise levels, three seeds, IMP with two rewinding rules,
# three pruning heuristics, extended dense training, width down-scaling, the EL2N models and the leave-out
# retrainings — is thousands of GPU-hours (App. B). Nobody runs it in one notebook: it is submitted to a cluster,
# and the section notebooks then only *read* the run store.
#
# This chapter defines
#
# * **what** each section needs: `section_runs(section, bench, seeds, noise_levels)` returns `{label: RunSpec}`;
#   `study_runs` is their union over sections, deduplicated by spec hash (§3 and §4 share the noiseless IMP runs);
# * **how** the missing ones are trained: `sweep(..., executor="local" | "slurm")`.
#
# **Unit of work.** One job = one run = one `run_imp` call: the dense model and every pruning level of one
# trajectory, in order, in one process. IMP level *k* needs level *k − 1*, so the levels of a trajectory are
# *grouped* into one job rather than chained as dependent jobs: a job killed by the scheduler's time limit is simply
# resubmitted and resumes at its first missing level (the store keeps every finished level). The EL2N models (App.
# B.3) and the runs of the other algorithms depend on nothing and run in parallel; the scores themselves are a cheap
# evaluation done by the notebook that reads them. Runs already complete in the store are never submitted, and two
# jobs asked for the same run (two sweeps at once) serialise on the run's file lock: one trains, the other reuses.
#
# **Two stages.** App. D, E and K retrain dense models on subsets chosen from the pruned models' per-example losses
# (which examples pruning improved, worsened, or gets wrong): those runs cannot be named before the IMP runs exist.
# `dependent_runs(section, ...)` names them from the store; a sweep trains the first stage, then (when it is
# complete) the second, with the same executor. A dry run before the first stage says the second is pending.
#
# **One dense model per (noise, seed).** Every variant of IMP at one noise level and seed — LR or weight rewinding,
# SynFlow, SNIP, random, EDT, one-shot — starts from the same dense training (level 0), which `imp.dense_root` trains
# once and copies into each; a study of seven algorithms trains each dense model once.

# %%
#| export
from __future__ import annotations

import configparser
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

from pruning_repro.algorithms import APPJ_ALGORITHMS, algorithm_runs, table2_algorithms
from pruning_repro.config import ConfigError, RunKey, RunSpec, resolve_study

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## What each section needs

# %%
#| export
def imp_runs(b, seeds, noise_levels) -> dict:
    "One IMP (LR rewinding) trajectory per noise level and seed: {RunKey: RunSpec}."
    return {RunKey(b.name, "LR rewinding", p, s): b.run_spec(p, s) for p in noise_levels for s in seeds}

def _el2n_runs(b, seeds, noise_levels) -> dict:
    "The partially trained models whose EL2N scores the subgroup analyses use (App. B.3), per noise level and seed."
    from pruning_repro.el2n import el2n_specs
    return {RunKey(b.name, "EL2N", p, s, k=n): v for p in noise_levels for s in seeds
            for n, v in el2n_specs(b.run_spec(p, s), b.el2n_models, b.el2n_fraction).items()}

def _sec3_runs(b, seeds, noise_levels) -> dict:
    "§3: IMP (LR rewinding) without label noise, and the EL2N models of those runs."
    return {**imp_runs(b, seeds, [0.0]), **_el2n_runs(b, seeds, [0.0])}

def _sec4_with_el2n(b, seeds, noise_levels) -> dict:
    "§4: IMP per noise level and seed (Figures 3, 4), and the EL2N models of the noisy runs (Figure 5)."
    return {**imp_runs(b, seeds, noise_levels), **_el2n_runs(b, seeds, [p for p in noise_levels if p > 0])}

def _sec5_runs(b, seeds, noise_levels) -> dict:
    "§5: per noise level and seed, IMP (LR rewinding), extended dense training (EDT) and the width sequence (WD)."
    return {k: v for p in noise_levels for runs in algorithm_runs(b, p, seeds, ("LR rewinding", "EDT", "WD")).values()
            for k, v in runs.items()}

def _appC_runs(b, seeds, noise_levels) -> dict:
    "App. C: the six learning algorithms of Table 2 and Figure 8 (every one but width down-scaling)."
    return {k: v for p in noise_levels for runs in algorithm_runs(b, p, seeds, table2_algorithms()).values()
            for k, v in runs.items()}

def _sec1_runs(b, seeds, noise_levels) -> dict:
    "§1: Fig. 1a (pruning vs augmented training = EDT, no noise) and Fig. 1b (EL2N subgroups at two sparsities)."
    return {k: v for p in noise_levels for runs in algorithm_runs(b, p, seeds, ("LR rewinding", "EDT")).values()
            for k, v in runs.items()} | _el2n_runs(b, seeds, noise_levels)

def _imp_only(b, seeds, noise_levels) -> dict:
    "IMP (LR rewinding) per noise level and seed: the first stage of App. D, E and K (their retrainings follow)."
    return imp_runs(b, seeds, noise_levels)

def _appI_runs(b, seeds, noise_levels) -> dict:
    """App. I: IMP and width down-scaling (Fig. 11), one-shot pruning and equalized WD at the same sizes (Fig. 12,
    Table 3), and the EL2N models (Fig. 13)."""
    from pruning_repro.width import oneshot_runs, width_specs
    return {**_sec5_runs(b, seeds, noise_levels), **_el2n_runs(b, seeds, noise_levels),
            **{k: v for p in noise_levels for s in seeds for k, v in width_specs(b, p, s, equalized=True).items()},
            **{k: v for p in noise_levels for s in seeds for k, v in oneshot_runs(b, p, s).items()}}

def _appJ_runs(b, seeds, noise_levels) -> dict:
    "App. J: weight vs LR rewinding (Fig. 14, Table 9), magnitude vs SynFlow vs random selection (Fig. 15, Table 10)."
    return {k: v for p in noise_levels for runs in algorithm_runs(b, p, seeds, APPJ_ALGORITHMS).values()
            for k, v in runs.items()}

def _appL_runs(b, seeds, noise_levels) -> dict:
    "App. L: pruning, EDT and WD with the EL2N models, per noise level (Figures 18-20)."
    return {**_sec5_runs(b, seeds, noise_levels), **_el2n_runs(b, seeds, noise_levels)}

SECTION_RUNS = {"sec1_intro": _sec1_runs, "sec3_training": _sec3_runs, "sec4_noise": _sec4_with_el2n,
                "sec5_isolating": _sec5_runs, "appC_algorithms": _appC_runs, "appD_leave_out": _imp_only,
                "appE_dense_subset": _imp_only, "appI_width": _appI_runs, "appJ_ablations": _appJ_runs,
                "appK_examples": _imp_only, "appL_subgroups": _appL_runs}
SECTIONS = tuple(SECTION_RUNS)
_noisy = lambda b: tuple(p for p in b.noise_levels if p > 0) or b.noise_levels
# the noise levels a section runs at unless told: §1, §3, App. C, D, K without noise (as in the paper), App. E
# (the regularization of noisy data: Table 8 has no 0% column) at the noisy ones, every other (App. J's Tables 9
# and 10 included, whose 0% column reuses App. C's runs) at the bench's
SECTION_NOISE = {"sec1_intro": (0.0,), "sec3_training": (0.0,), "appC_algorithms": (0.0,), "appD_leave_out": (0.0,),
                 "appK_examples": (0.0,), "appE_dense_subset": _noisy}

def section_noise(section: str, b, noise_levels=None) -> tuple:
    "The noise levels a section runs at: those given, else the section's own (`SECTION_NOISE`), else the bench's."
    if noise_levels is not None: return tuple(noise_levels)
    v = SECTION_NOISE.get(section, b.noise_levels)
    return tuple(v(b) if callable(v) else v)

class Section(NamedTuple):
    "What a section notebook works with: the bench at its scale, seeds, noise levels, output folder and run store."
    bench: object
    seeds: tuple
    noise_levels: tuple
    out: Path
    store: object

def default_figures_dir() -> Path:
    "`figures/` of the checkout the current directory is in (found by its settings.ini), else `./figures`."
    for d in (Path.cwd(), *Path.cwd().parents):
        if (d / "settings.ini").exists() and (d / "nbs").is_dir(): return d / "figures"
    return Path.cwd() / "figures"

def figures_folder(figures, bench: str, scale: str) -> Path:
    "Where a bench's figures go: `<figures>/<bench>` (`<bench>_<scale>` for scales other than full)."
    return Path(figures) / (bench if scale == "full" else f"{bench}_{scale}")

def start_section(section: str, bench: str, scale: str = "full", seeds=(0, 1, 2), noise_levels=None,
                  figures_dir=None, store_dir=None) -> Section:
    """A section notebook's first step: validate its parameters (one clear error), check that the data is on disk,
    resolve its noise levels (`section_noise`), name its output folder and open the run store. Writes nothing."""
    from pruning_repro.data import check_available
    from pruning_repro.store import Store
    if section not in SECTION_RUNS:
        raise ConfigError(f"unknown section {section!r}; choose one of: {', '.join(SECTIONS)}")
    b, seeds, levels = resolve_study(bench, scale, seeds, noise_levels)
    check_available(b.data)
    levels = section_noise(section, b, levels if noise_levels is not None else None)
    return Section(b, seeds, levels, figures_folder(figures_dir or default_figures_dir(), bench, scale), Store(store_dir))

def _appD_after(b, seeds, noise_levels, store) -> dict:
    "App. D: per pruning level, dense runs without the top-20% improved examples (TIE) and without 20% random (RND)."
    from pruning_repro.leave_out import tie_rnd_specs
    return {RunKey(b.name, "App. D", p, s, level=lv, kind=k): v for p in noise_levels for s in seeds
            for lv in range(1, b.prune.levels + 1) for k, v in tie_rnd_specs(b.run_spec(p, s), store, lv, 0.2).items()}

def _appE_after(b, seeds, noise_levels, store) -> dict:
    "App. E: per level, the dense model's included, a dense run on the examples it classifies correctly (same steps)."
    from pruning_repro.leave_out import dense_subset_spec
    out = {}
    for p in noise_levels:
        for s in seeds:
            spec = b.run_spec(p, s)
            for lv in range(0, b.prune.levels + 1):   # level 0 too: Table 8's "0% sparsity" dense-subset model
                if bool(store.load_per_example(spec, lv)["train_correct"].all()): continue   # nothing to leave out
                out[RunKey(b.name, "App. E", p, s, level=lv)] = dense_subset_spec(spec, store, lv)
    return out

def _appK_after(b, seeds, noise_levels, store) -> dict:
    "App. K.2: per pruning level, dense runs on 40% subsamples with the top-1% worsened examples (TW) or 1% random."
    from pruning_repro.leave_out import top_worsened_specs
    return {RunKey(b.name, "App. K", p, s, level=lv, kind=k): v for p in noise_levels for s in seeds
            for lv in range(1, b.prune.levels + 1)
            for k, v in top_worsened_specs(b.run_spec(p, s), store, lv).items()}

SECTION_AFTER = {"appD_leave_out": _appD_after, "appE_dense_subset": _appE_after, "appK_examples": _appK_after}

def dependent_frame(runs: dict, store, traj=None):
    """One row per retraining of `dependent_runs` (noise, seed, level, kind — TIE/RND, TW/Rand, or '' — and its
    stored test/val error and number of left-out examples), with the % weights remaining of the level it was
    selected at when the IMP trajectories `traj` (`analysis.trajectories`) are given. Reads the store."""
    import pandas as pd
    rows = []
    for key, spec in runs.items():
        r = store.results(spec).iloc[-1]
        rows.append({"noise": key.noise, "seed": key.seed, "level": key.level, "kind": key.kind,
                     "test_err": r.test_err, "val_err": r.val_err, "n_left_out": len(spec.data.exclude_ids)})
    df = pd.DataFrame(rows, columns=["noise", "seed", "level", "kind", "test_err", "val_err", "n_left_out"])
    if traj is not None: df = df.merge(traj[["noise", "seed", "level", "weights_remaining"]], on=["noise", "seed", "level"])
    return df

def train_study(b, sections, seeds, noise_levels, store, execute) -> tuple[dict, dict | None]:
    """The one definition of "train a study, then the retrainings its results name": every run of `study_runs` the
    store lacks goes to `execute({label: spec})`; once all are complete, the App. D, E, K retrainings
    (`dependent_runs`, each spec once) are named and the missing ones go to `execute` too. Returns (first stage,
    second stage), the second None while the first is incomplete (a failed run, or `execute` trained nothing)."""
    first = study_runs(b, sections, seeds, noise_levels)
    todo = {k: s for k, s in first.items() if not store.is_complete(s)}
    if todo: execute(todo)
    if not all(store.is_complete(s) for s in first.values()): return first, None
    after, seen = {}, set()
    for sec in check_sections(sections):
        for k, v in dependent_runs(sec, b, seeds, section_noise(sec, b, noise_levels), store).items():
            if v.hash() not in seen: seen.add(v.hash()); after[k] = v
    todo = {k: s for k, s in after.items() if not store.is_complete(s)}
    if todo: execute(todo)
    return first, after

def train_section(section: str, b, seeds, noise_levels, store, workers=None) -> tuple[dict, dict]:
    "Train (where the store lacks them) the runs of one section, then its retrainings: (first stage, second stage)."
    from pruning_repro.imp import run_many
    return train_study(b, [section], seeds, noise_levels, store, lambda todo: run_many(todo, store, workers=workers))

def train_with_retrainings(section: str, b, seeds, noise_levels, store, workers=None) -> tuple:
    """A two-stage section (App. D, E, K), trained by `train_section`. Returns (its IMP runs, retrainings,
    `analysis.trajectories` of the IMP runs)."""
    from pruning_repro.analysis import trajectories
    _, after = train_section(section, b, seeds, noise_levels, store, workers)
    imp = imp_runs(b, seeds, noise_levels)
    return imp, after, trajectories({k: store.results(v) for k, v in imp.items()}, imp)

def dependent_runs(section: str, b, seeds, noise_levels, store) -> dict:
    """The runs a section can only name once its first-stage runs are in the store (which examples a retraining
    leaves out depends on the pruned models' per-example losses): App. D, E and K. {} for other sections."""
    f = SECTION_AFTER.get(section)
    return f(b, seeds, noise_levels, store) if f else {}

def section_runs(section: str, bench, seeds, noise_levels) -> dict:
    "The runs ({label: RunSpec}) a section notebook needs; the notebook, `reproduce` and `sweep` share this definition."
    if section not in SECTION_RUNS:
        raise ConfigError(f"unknown section {section!r}; choose one of: {', '.join(SECTIONS)}")
    return SECTION_RUNS[section](bench, seeds, noise_levels)

def check_sections(sections) -> tuple[str, ...]:
    "Validate a list of section names (None or empty: every section)."
    if sections is None: return SECTIONS
    if isinstance(sections, str): sections = [sections]
    sections = tuple(sections)
    if not sections: return SECTIONS
    bad = [s for s in sections if s not in SECTION_RUNS]
    if bad: raise ConfigError(f"unknown section {bad[0]!r}; choose from: {', '.join(SECTIONS)}")
    return tuple(dict.fromkeys(sections))

def study_runs(b, sections=None, seeds=(0, 1, 2), noise_levels=None) -> dict[str, RunSpec]:
    """Every run the `sections` need for bench `b`, each spec once (the first label that names it is kept); with
    `noise_levels` None each section runs at its own (`section_noise`)."""
    out, seen = {}, set()
    for sec in check_sections(sections):
        for label, spec in section_runs(sec, b, seeds, section_noise(sec, b, noise_levels)).items():
            h = spec.hash()
            if h not in seen: seen.add(h); out[label] = spec
    return out


# %% [markdown]
# At smoke scale the MNIST-1D bench's §3 + §4 study with 2 seeds and noise levels {0, 0.3} is 2 × 2 IMP trajectories
# plus 2 EL2N models per (noise, seed): §4 needs the EL2N models of its noisy runs, §3 those of the noiseless ones,
# and the noiseless IMP runs that both need count once:

# %%
from pruning_repro.config import get_bench
_b = get_bench("lenet_mnist1d", "smoke")
_s34 = ["sec3_training", "sec4_noise"]
_r = study_runs(_b, _s34, (0, 1), (0.0, 0.3))
test_eq(len(_r), 2 * 2 + 2 * 2 * 2)
test_eq(len(study_runs(_b, ["sec4_noise"], (0, 1), (0.0, 0.3))), 2 * 2 + 2 * 2)
test_eq(len(study_runs(_b, ["sec3_training"], (0, 1), (0.0, 0.3))), 2 + 2 * 2)
test_fail(lambda: study_runs(_b, ["sec2"], (0,), (0.0,)), contains="unknown section 'sec2'")
list(_r)[:3]

# %% [markdown]
# §5 adds, per noise level and seed, EDT and the width sequence (`width_steps` + 1 dense models of widths 1, r, r², …,
# spanning IMP's range) beside the IMP trajectory §4 already has; App. C adds weight rewinding, SynFlow, SNIP and
# random pruning, by default without label noise (Table 2); App. J weight rewinding, SynFlow and random at every
# noise level (Tables 9 and 10 have a 0% column: those runs are App. C's); App. I one-shot pruning and equalized width
# down-scaling at every width. The whole study is the union, each run once:

# %%
_all = study_runs(_b, None, (0, 1))
_n = len(_b.noise_levels)
from pruning_repro.width import oneshot_runs, width_steps
test_eq(len(study_runs(_b, ["sec5_isolating"], (0, 1))), _n * 2 * (2 + width_steps(_b) + 1))
test_eq(len(study_runs(_b, ["appC_algorithms"], (0, 1))), 2 * 6)
test_eq(len(study_runs(_b, ["appJ_ablations"], (0, 1))), _n * 2 * 4)
test_eq(section_noise("appJ_ablations", _b), _b.noise_levels)              # with the 0% column of Tables 9 and 10
_j0 = study_runs(_b, ["appJ_ablations"], (0, 1), (0.0,))
assert {v.hash() for v in _j0.values()} <= {v.hash() for v in study_runs(_b, ["appC_algorithms"], (0, 1)).values()}
test_eq(len(oneshot_runs(_b, 0.3, 0)), width_steps(_b))
_hashes = {v.hash() for v in _all.values()}
assert all(v.hash() in _hashes for sec in SECTIONS for v in study_runs(_b, [sec], (0, 1)).values())
test_eq(len(_hashes), len(_all))
len(_all)

# %% [markdown]
# ## Engines
#
# **local**: a process pool of `workers` processes (default: one per core, each with `cores // workers` threads —
# on this 2-core machine two 1-thread LeNet runs deliver 0.54 s of wall per epoch against 0.76 s for one 2-thread
# run, `bench/results/latest-cpu.md`). Processes are spawned, not forked, so no worker inherits a parent's threads.
#
# **slurm**: one submitit job array per sweep, one array element per run. Its resources come from `SlurmOptions`
# (command-line flags, or a YAML/INI profile that the flags override): partition, GPUs and CPUs per task, memory,
# time limit, and how many elements may run at once (`--array-parallelism`). Each element runs `imp.run_job` on its node
# with the same Python and the same store path — the store must be on a file system the nodes share. Logs go to
# `<store>/_slurm/<job id>_*`.
#
# Slurm clusters without accounting have no `sacct`, through which submitit reads job states; the sweep therefore
# also asks `squeue` and declares a job **lost** when it has left the queue without writing its result (killed by
# the time limit, out of memory, node failure). A lost or failed run is reported with its log; the runs that
# finished stay in the store, and rerunning the sweep submits only what is still missing.

# %%
#| export
EXECUTORS = ("local", "slurm")

@dataclass(frozen=True)
class SlurmOptions:
    "Resources of each Slurm array element (submitit parameters), from flags or a YAML/INI profile."
    partition: str | None = None       # None: the cluster's default partition
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None        # None: the partition's default
    time_min: int = 24 * 60            # per run (a whole IMP trajectory)
    array_parallelism: int = 64        # array elements running at once
    poll_s: float = 5.0                # how often the sweep looks at the queue

    def __post_init__(self):
        for f, lo in (("gpus_per_task", 0), ("cpus_per_task", 1), ("time_min", 1), ("array_parallelism", 1)):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"slurm option {f} must be an integer >= {lo}, got {v!r}")
        if self.mem_gb is not None and not (isinstance(self.mem_gb, (int, float)) and self.mem_gb > 0):
            raise ConfigError(f"slurm option mem_gb must be a number > 0, got {self.mem_gb!r}")
        if not (isinstance(self.poll_s, (int, float)) and self.poll_s > 0):
            raise ConfigError(f"slurm option poll_s must be a number > 0, got {self.poll_s!r}")
        if self.partition is not None and not (isinstance(self.partition, str) and self.partition.strip()):
            raise ConfigError(f"slurm option partition must be a name, got {self.partition!r}")

    def submitit_parameters(self) -> dict:
        p = dict(timeout_min=self.time_min, cpus_per_task=self.cpus_per_task, tasks_per_node=1, nodes=1,
                 slurm_array_parallelism=self.array_parallelism, name="pruning_repro")
        if self.partition: p["slurm_partition"] = self.partition
        if self.gpus_per_task: p["slurm_gpus_per_task"] = self.gpus_per_task
        if self.mem_gb: p["mem_gb"] = self.mem_gb
        return p

_SLURM_KEYS = {f.name: f.type for f in fields(SlurmOptions)}

def _coerce(key: str, value):
    "A profile value (INI gives strings) as the option's type."
    if value is None or not isinstance(value, str): return value
    typ = _SLURM_KEYS[key]
    try:
        if "int" in typ: return int(value)
        if "float" in typ: return float(value)
    except ValueError: raise ConfigError(f"slurm option {key} must be a number, got {value!r}") from None
    return value

def load_profile(path: str | Path) -> dict:
    "Slurm options from a YAML (`.yaml`/`.yml`, optionally under a `slurm:` key) or INI (`[slurm]` section) file."
    path = Path(path)
    if not path.is_file(): raise ConfigError(f"slurm profile {str(path)!r} is not a readable file")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml
        try: d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e: raise ConfigError(f"slurm profile {str(path)!r} is not valid YAML: {e}") from None
        if isinstance(d, dict) and isinstance(d.get("slurm"), dict): d = d["slurm"]
    elif path.suffix in (".ini", ".cfg"):
        cp = configparser.ConfigParser()
        try: cp.read_string(text)
        except configparser.Error as e: raise ConfigError(f"slurm profile {str(path)!r} is not valid INI: {e}") from None
        if not cp.has_section("slurm"): raise ConfigError(f"slurm profile {str(path)!r} has no [slurm] section")
        d = dict(cp["slurm"])
    else: raise ConfigError(f"slurm profile {str(path)!r}: use a .yaml, .yml or .ini file")
    if not isinstance(d, dict): raise ConfigError(f"slurm profile {str(path)!r} must hold a mapping of options")
    d = {k.replace("-", "_"): v for k, v in d.items()}
    unknown = sorted(set(d) - set(_SLURM_KEYS))
    if unknown: raise ConfigError(f"slurm profile {str(path)!r}: unknown option {unknown[0]!r}; known: "
                                  f"{', '.join(_SLURM_KEYS)}")
    return {k: _coerce(k, v) for k, v in d.items()}

def slurm_options(profile: str | Path | None = None, **overrides) -> SlurmOptions:
    "`SlurmOptions` from a profile, with the options given explicitly (not None) taking precedence."
    d = load_profile(profile) if profile else {}
    d.update({k: v for k, v in overrides.items() if v is not None})
    return SlurmOptions(**d)


# %%
import tempfile
_tmp = Path(tempfile.mkdtemp())
(_tmp / "p.yaml").write_text("slurm:\n  partition: gpu\n  gpus-per-task: 1\n  time_min: 600\n")
test_eq(slurm_options(_tmp / "p.yaml", time_min=30), SlurmOptions(partition="gpu", gpus_per_task=1, time_min=30))
(_tmp / "p.ini").write_text("[slurm]\npartition = debug\ncpus_per_task = 2\nmem_gb = 8\n")
test_eq(slurm_options(_tmp / "p.ini").submitit_parameters()["mem_gb"], 8.0)
(_tmp / "bad.ini").write_text("[slurm]\ngpu = 1\n")
test_fail(lambda: slurm_options(_tmp / "bad.ini"), contains="unknown option 'gpu'")
test_fail(lambda: slurm_options(None, cpus_per_task=0), contains="cpus_per_task must be an integer >= 1")
test_fail(lambda: slurm_options(_tmp / "none.yaml"), contains="not a readable file")


# %% [markdown]
# ### One job
#
# `imp.run_job` is what a worker executes, in a local process or on a Slurm node: it trains one run into the store (a
# no-op when it is complete) and reports where it ran.

# %%
#| export

# %% [markdown]
# ### The sweep

# %%
#| export
@dataclass
class SweepReport:
    "What a sweep found, submitted and got back."
    executor: str
    runs: int                                   # runs in the study
    complete_before: int                        # already in the store: not submitted
    submitted: int
    finished: list = field(default_factory=list)   # run_job reports
    failed: dict = field(default_factory=dict)     # label -> reason (and log)
    job_ids: list = field(default_factory=list)
    pending_stage: list = field(default_factory=list)  # sections whose retrainings wait for their first stage

    @property
    def ok(self) -> bool: return not self.failed

    def summary(self) -> str:
        hosts = sorted({r["host"] for r in self.finished})
        s = (f"{self.runs} runs in the study, {self.complete_before} already complete, {self.submitted} submitted "
             f"({self.executor}), {len(self.finished)} finished" + (f" on {', '.join(hosts)}" if hosts else ""))
        if self.pending_stage: s += (f"; the retrainings of {', '.join(self.pending_stage)} are named once their "
                                     f"first-stage runs are complete (run the sweep again)")
        if self.failed: s += f", {len(self.failed)} FAILED: " + "; ".join(f"{k}: {v}" for k, v in self.failed.items())
        return s

def sweep(bench: str, sections=None, scale: str = "full", seeds=(0, 1, 2), noise_levels=None,
          executor: str = "local", store=None, workers: int | None = None, slurm: SlurmOptions | None = None,
          device: str | None = None, progress: bool | None = None, dry_run: bool = False) -> SweepReport:
    "Train every run of the study (bench × sections × seeds × noise levels) that the store lacks."
    from pruning_repro.data import check_available
    from pruning_repro.store import Store
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    b, seeds, levels = resolve_study(bench, scale, seeds, noise_levels)
    sections = check_sections(sections)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be >= 1, got {workers!r}")
    if executor == "slurm": slurm = slurm or SlurmOptions()
    check_available(b.data)
    st = Store(store)
    given = None if noise_levels is None else levels
    rep, wanted = SweepReport(executor, 0, 0, 0), []
    def execute(todo):
        wanted.append(len(todo))
        if dry_run: return
        rep.submitted += len(todo)
        if executor == "local": _sweep_local(todo, st, rep, workers, device, progress)
        else: _sweep_slurm(todo, st, rep, slurm, device, progress)
    first, after = train_study(b, sections, seeds, given, st, execute)
    rep.runs = len(first) + len(after or {})
    rep.complete_before = rep.runs - sum(wanted)
    if after is None: rep.pending_stage = [s for s in sections if s in SECTION_AFTER]
    return rep


# %%
#| export
def _sweep_local(missing: dict, st, rep: SweepReport, workers, device, progress) -> None:
    "The local executor: `imp.run_pool`, the one process pool of the package."
    from pruning_repro.imp import run_pool
    finished, failed = run_pool(missing, st, workers, device, progress)
    rep.finished += finished
    rep.failed.update({k: f"{type(e).__name__}: {e}" for k, e in failed.items()})

def _failure_reason(text: str) -> str:
    "The exception line of a remote traceback (submitit wraps it in its own message)."
    import re
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    exc = [l for l in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", l)]
    return (exc or lines or ["no message"])[-1][:300]

def _squeue_ids() -> set[str] | None:
    "Job ids (array elements expanded) that Slurm still knows; None when squeue cannot be asked."
    try: r = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired): return None
    return set(r.stdout.split()) if r.returncode == 0 else None

def _sweep_slurm(missing: dict, st, rep: SweepReport, opts: SlurmOptions, device, progress) -> None:
    import logging
    import submitit
    from tqdm.auto import tqdm
    from pruning_repro.imp import run_job as job
    from pruning_repro.train import _progress_enabled
    logging.getLogger("submitit").setLevel(logging.ERROR)   # without accounting every poll warns about sacct
    folder = st.root / "_slurm"
    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
    ex.update_parameters(**opts.submitit_parameters())
    labels = list(missing)
    jobs = ex.map_array(job, [missing[k].to_dict() for k in labels], [str(st.root)] * len(labels), labels,
                        [opts.cpus_per_task] * len(labels), [device] * len(labels))
    rep.job_ids = [j.job_id for j in jobs]
    bar = tqdm(total=len(jobs), desc=f"runs (slurm array {jobs[0].job_id.split('_')[0]})", unit="run",
               disable=not _progress_enabled(progress))
    pending, gone = dict(zip(labels, jobs)), {}
    while pending:
        queued = _squeue_ids()
        for k, j in list(pending.items()):
            if j.done():
                try: rep.finished.append(j.result())
                except Exception as e:
                    rep.failed[k] = f"job {j.job_id} failed ({_failure_reason(str(e))}); log {j.paths.stderr}"
            elif queued is not None and j.job_id not in queued:
                gone[k] = gone.get(k, 0) + 1      # out of the queue without a result: give it two polls to appear
                if gone[k] < 3: continue
                rep.failed[k] = f"job {j.job_id} left the queue without a result (time limit, memory, node?); " \
                                f"log {j.paths.stderr}"
            else: continue
            del pending[k]; bar.update(1)
        if pending: time.sleep(opts.poll_s)
    bar.close()


# %%
test_eq(_failure_reason("Job (task=0) failed during processing with trace:\n----\nTraceback (most recent call last):\n"
                        "  File \"x.py\", line 1\nRuntimeError: No CUDA GPUs are available\n----\n"
                        "You can check full logs\n  - /x/13_0_log.out"), "RuntimeError: No CUDA GPUs are available")

# %% [markdown]
# A local sweep of the smoke study: every run is trained once, and a second sweep finds nothing to do.

# %%
import os as _os
from pruning_repro.store import Store
_os.environ["PRUNING_REPRO_PROGRESS"] = "0"
_st = _tmp / "store"
_rep = sweep("lenet_mnist1d", ["sec3_training"], "smoke", seeds=(0,), store=_st, workers=2)
test_eq((_rep.runs, _rep.complete_before, _rep.submitted, len(_rep.finished), _rep.ok), (3, 0, 3, 3, True))
_again = sweep("lenet_mnist1d", ["sec3_training"], "smoke", seeds=(0,), store=_st, workers=2)
test_eq((_again.complete_before, _again.submitted), (3, 0))
test_fail(lambda: sweep("lenet_mnist1d", executor="kubernetes"), contains="unknown executor 'kubernetes'")
print(_rep.summary())
