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
# # Sweeps: studies, and the engines that train them
#
# > A study is the set of runs a section of the paper needs for a bench; a sweep trains each missing run once, in a local process pool or as a Slurm job array through submitit.

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
# * **what** each section needs: `section_runs(section, bench, seeds, noise_levels)` returns `{RunKey: RunSpec}`;
#   `study_runs` is their union over sections, deduplicated by spec hash (§3 and §4 share the noiseless IMP runs);
# * **how** the missing ones are trained: `train_study` runs the two stages with any executor; `train_section` with
#   the local pool (`executors.run_many`), `executors.sweep(..., executor="local" | "slurm")` on a cluster.
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

from collections.abc import Hashable
from pathlib import Path

from pruning_repro.algorithms import APPJ_ALGORITHMS, algorithm_runs, table2_algorithms
from pruning_repro.config import ConfigError, RunKey, RunSpec

# %%
#| hide
from fastcore.test import test_eq, test_fail
from pruning_repro.config import get_bench


# %% [markdown]
# ## What each section needs

# %%
#| export
def imp_runs(b, seeds, noise_levels) -> dict:
    "One IMP (LR rewinding) trajectory per noise level and seed: {RunKey: RunSpec}."
    return {RunKey(b.name, "LR rewinding", p, s): b.run_spec(p, s) for p in noise_levels for s in seeds}

def _el2n_runs(b, seeds, noise_levels) -> dict:
    "The partially trained models whose EL2N scores the subgroup analyses use (App. B.3), per noise level and seed."
    from pruning_repro.el2n import el2n_keys, el2n_specs
    return {k: v for p in noise_levels for s in seeds
            for k, v in zip(el2n_keys(b.run_spec(p, s), b.el2n_models, RunKey(b.name, "LR rewinding", p, s)),
                            el2n_specs(b.run_spec(p, s), b.el2n_models, b.el2n_fraction).values())}


# %%
_b = get_bench("lenet_mnist1d", "smoke")
test_eq(len(imp_runs(_b, (0, 1), (0.0, 0.3))), 4)
test_eq(len(_el2n_runs(_b, (0,), (0.3,))), _b.el2n_models)   # EL2N models: keyed by their IMP run


# %%
#| export
def _sec3_runs(b, seeds, noise_levels) -> dict:
    "§3: IMP (LR rewinding) without label noise, and the EL2N models of those runs."
    return {**imp_runs(b, seeds, [0.0]), **_el2n_runs(b, seeds, [0.0])}

def _sec4_with_el2n(b, seeds, noise_levels) -> dict:
    "§4: IMP per noise level and seed (Figures 3, 4), and the EL2N models of the noisy runs (Figure 5)."
    return {**imp_runs(b, seeds, noise_levels), **_el2n_runs(b, seeds, [p for p in noise_levels if p > 0])}


# %%
#| export
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


# %%
#| export
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


# %%
#| export
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


# %%
test_eq(section_noise("sec1_intro", _b), (0.0,))                     # §1 and §3: no noise, as the paper
test_eq(section_noise("appE_dense_subset", _b), tuple(p for p in _b.noise_levels if p > 0))
test_eq(section_noise("sec4_noise", _b, [0.1]), (0.1,))                 # given: as given


# %%
#| export
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


# %%
#| export
# App. K.2 as the paper ran it: on ResNet-20 and VGG-16 / CIFAR-10 only (Fig. 17). The embedded benches keep it as
# an extra (cheap there, and the only place a CPU user sees it); elsewhere it would be compute the paper never spent
# (on ResNet-50 about 2.4 IMP trajectories).
K2_BENCHES = ("resnet20_c10", "vgg16_c10")

def runs_appK2(b) -> bool:
    "Whether App. K.2's retrainings run on bench `b`: the paper's two benches, and the embedded ones as an extra."
    return b.name in K2_BENCHES or bool(getattr(b, "embedded", False))

def _appK_after(b, seeds, noise_levels, store) -> dict:
    "App. K.2: per pruning level, dense runs on 40% subsamples with the top-1% worsened examples (TW) or 1% random."
    from pruning_repro.leave_out import top_worsened_specs
    if not runs_appK2(b): return {}
    return {RunKey(b.name, "App. K", p, s, level=lv, kind=k): v for p in noise_levels for s in seeds
            for lv in range(1, b.prune.levels + 1)
            for k, v in top_worsened_specs(b.run_spec(p, s), store, lv).items()}

SECTION_AFTER = {"appD_leave_out": _appD_after, "appE_dense_subset": _appE_after, "appK_examples": _appK_after}

# %%
test_eq((runs_appK2(get_bench("resnet20_c10")), runs_appK2(get_bench("resnet50_imagenet")), runs_appK2(_b)),
        (True, False, True))
test_eq(set(SECTION_AFTER), {"appD_leave_out", "appE_dense_subset", "appK_examples"})


# %%
#| export
def train_study(b, sections, seeds, noise_levels, store, execute) -> tuple[dict, dict | None]:
    """The one definition of "train a study, then the retrainings its results name": every run of `study_runs` the
    store lacks goes to `execute({RunKey: spec})`; once all are complete, the App. D, E, K retrainings
    (`dependent_runs`, every key, each spec trained once) are named and the missing ones go to `execute` too. Returns (first stage,
    second stage), the second None while the first is incomplete (a failed run, or `execute` trained nothing)."""
    from pruning_repro.config import check_spec
    first = study_runs(b, sections, seeds, noise_levels)
    for s in first.values(): check_spec(s)              # a name no registry holds: one error before anything trains
    todo = {k: s for k, s in first.items() if not store.is_complete(s)}
    if todo: execute(todo)
    if not all(store.is_complete(s) for s in first.values()): return first, None
    # every retraining keeps its key, even when two keys name one spec (two levels of App. D can select the same
    # examples): the analyses read them by key; the spec is trained once
    after = {k: v for sec in check_sections(sections)
             for k, v in dependent_runs(sec, b, seeds, section_noise(sec, b, noise_levels), store).items()}
    for v in after.values(): check_spec(v)
    todo, seen = {}, set()
    for k, v in after.items():
        if v.hash() not in seen and not store.is_complete(v): seen.add(v.hash()); todo[k] = v
    if todo: execute(todo)
    return first, after


# %%
# `train_study` trains: `tests/test_sweep.py` runs it through `sweep` (both stages; a second call trains nothing),
# `tests/test_faults_params.py` its refusal of a bad spec before anything trains.

# %%
#| export
def train_section(section: str, b, seeds, noise_levels, store, runtime=None) -> tuple[dict, dict]:
    """Train (where the store lacks them, as `runtime` says) the runs of one section, then its retrainings: (first
    stage, second stage)."""
    from pruning_repro.executors import run_many
    return train_study(b, [section], seeds, noise_levels, store, lambda todo: run_many(todo, store, runtime=runtime))

def train_with_retrainings(section: str, b, seeds, noise_levels, store, runtime=None) -> tuple:
    """A two-stage section (App. D, E, K), trained by `train_section`. Returns (its IMP runs, retrainings,
    `analysis.trajectories` of the IMP runs)."""
    from pruning_repro.analysis import trajectories
    _, after = train_section(section, b, seeds, noise_levels, store, runtime)
    imp = imp_runs(b, seeds, noise_levels)
    return imp, after, trajectories({k: store.results(v) for k, v in imp.items()}, imp)


# %%
#| export
def dependent_runs(section: str, b, seeds, noise_levels, store) -> dict[RunKey, RunSpec]:
    """The runs a section can only name once its first-stage runs are in the store (which examples a retraining
    leaves out depends on the pruned models' per-example losses): App. D, E and K. {} for other sections."""
    f = SECTION_AFTER.get(section)
    return f(b, seeds, noise_levels, store) if f else {}

def section_runs(section: str, bench, seeds, noise_levels) -> dict[RunKey, RunSpec]:
    "The runs ({RunKey: RunSpec}) a section notebook needs; the notebook, `reproduce` and `sweep` share this one."
    if section not in SECTION_RUNS:
        raise ConfigError(f"unknown section {section!r}; choose one of: {', '.join(SECTIONS)}")
    return SECTION_RUNS[section](bench, seeds, noise_levels)


# %%
#| export
def check_sections(sections) -> tuple[str, ...]:
    "Validate a list of section names (None or empty: every section)."
    if sections is None: return SECTIONS
    if isinstance(sections, str): sections = [sections]
    sections = tuple(sections)
    if not sections: return SECTIONS
    bad = [s for s in sections if s not in SECTION_RUNS]
    if bad: raise ConfigError(f"unknown section {bad[0]!r}; choose from: {', '.join(SECTIONS)}")
    return tuple(dict.fromkeys(sections))


# %%
test_eq(check_sections(None), SECTIONS)
test_eq(check_sections("sec4_noise"), ("sec4_noise",))
test_eq(check_sections(["sec4_noise", "sec1_intro", "sec4_noise"]), ("sec4_noise", "sec1_intro"))
test_fail(lambda: check_sections(["sec9"]), contains="unknown section 'sec9'")


# %%
#| export
def study_runs(b, sections=None, seeds=(0, 1, 2), noise_levels=None) -> dict[RunKey, RunSpec]:
    """Every run the `sections` need for bench `b`, each spec once (the first `RunKey` that names it is kept); with
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
# ## What a study costs
#
# Before a study goes to a cluster, `study_cost` says what it would train, without reading any data (a login node
# often has none): the runs, the pruning levels and epochs still missing from the store, and the floating-point
# operations — 3 × the forward FLOPs (`models.forward_flops`) per training example and epoch, plus one forward pass
# over every split per level for the per-example evaluation. Counts are dense: masks zero weights but a GPU still
# multiplies them. A variant's dense level that its dense root (`imp.dense_root`) provides is counted once, where it is
# trained. The retrainings of App. D, E and K are named by the first stage's results, so they are counted once
# those exist; before that, `study_plan` counts them from the plan's rule (below).

# %%
#| export
def _cost() -> dict: return {"runs": 0, "levels": 0, "epochs": 0, "examples": 0, "flops": 0.0}

def _levels_to_train(specs: dict, store) -> list[tuple]:
    """(key, spec, levels) of what training `specs` would train: the levels each lacks, a variant's missing dense level
    in its dense root (`imp.dense_root`), each root once."""
    from pruning_repro.imp import dense_root
    work, roots = [], set()
    for label, spec in specs.items():
        lvs = store.levels_to_train(spec)
        if not lvs: continue
        if lvs[0] == 0 and spec.prune.levels > 0 and dense_root(spec) != spec:
            lvs, root = lvs[1:], dense_root(spec)           # the shared dense level: trained once, in its root
            if root.hash() not in roots and not store.level_ok(root, 0):
                roots.add(root.hash()); work.append((label, root, [0]))
        work.append((label, spec, lvs))
    return work


# %%
from pruning_repro.store import Store
import tempfile
from pruning_repro.imp import dense_root
_j = study_runs(_b, ["appJ_ablations"], (0,), (0.3,))
with tempfile.TemporaryDirectory() as _d: _w = _levels_to_train(_j, Store(_d))
# four variants at one (noise, seed) share one dense root: its level 0 once, then each variant's pruned levels
test_eq([lvs for _, _, lvs in _w], [[0]] + [list(range(1, _b.prune.levels + 1))] * 4)
test_eq(_w[0][1], dense_root(next(iter(_j.values()))))


# %%
#| export
def study_cost(specs: dict[Hashable, RunSpec], store, group=None) -> dict:
    """What training the runs of `specs` ({key: RunSpec}: `RunKey`s, or `study_plan`'s (stage, `RunKey`)) that `store`
    lacks would take: runs, levels, epochs, training examples processed and FLOPs (both None when a data set declares
    no sizes), without reading the data. `group(key)` names each run's group: the same counts per group under
    "groups" (a shared dense level is counted in the group of the first run that needs it)."""
    from pruning_repro.data import data_info, split_sizes
    from pruning_repro.models import forward_flops
    work = _levels_to_train(specs, store)
    total, groups = _cost(), {}
    for label, spec in specs.items():
        if not store.is_complete(spec):
            total["runs"] += 1
            if group is not None: groups.setdefault(group(label), _cost())["runs"] += 1
    for label, s, lvs in work:
        sizes, per_example = split_sizes(s.data), forward_flops(s.model, data_info(s.data.dataset))
        seen = s.train.steps_per_epoch * s.train.batch_size if s.train.steps_per_epoch else sizes and sizes[0]
        for c in (total, *((groups.setdefault(group(label), _cost()),) if group is not None else ())):
            for lv in lvs:
                ep = s.train.epochs if lv == 0 else s.train.epochs - s.prune.rewind_epoch
                c["levels"], c["epochs"] = c["levels"] + 1, c["epochs"] + ep
                c["examples"] = None if c["examples"] is None or seen is None else c["examples"] + seen * ep
                if c["flops"] is None or sizes is None: c["flops"] = None; continue
                c["flops"] += 3 * per_example * seen * ep + per_example * sum(sizes)
    if group is not None: total["groups"] = groups
    return total


# %%
from pruning_repro.store import Store
import tempfile
with tempfile.TemporaryDirectory() as _d:
    _c = study_cost(study_runs(_b, ["sec4_noise"], (0,), (0.3,)), Store(_d))
# one IMP trajectory (2 epochs on level 0, 2 on each of 3 pruned levels) and 2 EL2N models of 1 epoch each
test_eq((_c["runs"], _c["levels"], _c["epochs"]), (3, 4 + 2, 4 * 2 + 2 * 1))
_r50 = get_bench("resnet50_imagenet")
with tempfile.TemporaryDirectory() as _d:
    _c50 = study_cost(imp_runs(_r50, (0,), (0.0,)), Store(_d))
# one ResNet-50 trajectory: 90 + 9 x 80 epochs, ~25 EFLOP (3 x 8.2 GFLOP x 1.23M images x 810 epochs, + evaluation)
test_eq((_c50["levels"], _c50["epochs"]), (10, 90 + 9 * 80))
assert 2.4e19 < _c50["flops"] < 2.6e19, _c50
_c50


# %% [markdown]
# ## A cost plan before a sweep
#
# A dry run that left out the retrainings of App. D, E and K would leave out about a fifth of a full study's epochs.
# Their examples are chosen by the first stage's results, but their number and epochs are fixed by each section's
# rule (`SECTION_AFTER`), so `planned_retrainings` counts them from the rule alone — stand-in specs with the epochs
# and the examples per epoch the real ones will have, per noise level and seed:
#
# * **App. D**: per pruning level 1…L, two dense runs (TIE, RND) of the bench's epochs on 80% of the training set;
# * **App. E**: per level 0…L, one dense run with the dense run's steps per epoch (as many examples as a full epoch);
# * **App. K.2** (on `runs_appK2` benches): per level 1…L, two dense runs (TW, Rand) on 40% of the training set.
#
# This is the plan's upper bound, and its exact count but for two cases the results decide: App. E skips a level
# whose model fits every training example, and two retrainings that happen to select the same examples train once.
#
# `study_plan` adds the hours: training examples × seconds per training example of the bench, from a results file of
# `python -m bench` (`read_throughput`: a CSV with columns bench, what, seconds, examples — its first `train …` row
# per bench — or a markdown table with columns bench, what, seconds, examples/s — its `train epoch` rows), or, with
# none, from a short probe on the device at hand (`probe_throughput`: a few SGD steps of the bench's model on
# synthetic inputs, no data read). Evaluation (one forward pass over the splits per level: under 1% of a ResNet-50
# level, a few % of LeNet's) and the stores' writes are not counted.

# %%
#| export
def _stand_in(spec: RunSpec, n_examples: int | None) -> RunSpec:
    "A dense stand-in of `spec` seeing `n_examples` per epoch (its batches: `TrainSpec.steps_per_epoch`; None: unknown)."
    from dataclasses import replace
    steps = -(-n_examples // spec.train.batch_size) if n_examples is not None else None
    return replace(spec, prune=replace(spec.prune, levels=0), train=replace(spec.train, steps_per_epoch=steps))


# %%
_st = _stand_in(_b.run_spec(0.3, 0), 1000)
test_eq((_st.prune.levels, _st.train.steps_per_epoch), (0, -(-1000 // _b.train.batch_size)))
test_eq(_stand_in(_b.run_spec(), None).train.steps_per_epoch, None)


# %%
#| export
def planned_retrainings(b, sections, seeds, noise_levels=None) -> dict[RunKey, RunSpec]:
    """Stand-ins ({RunKey: RunSpec}) for the App. D, E, K retrainings of `sections` while their first stage is not in
    the store: each dense, with the epochs and the examples per epoch (`TrainSpec.steps_per_epoch`) the real one will
    have (see above)."""
    from pruning_repro.data import split_sizes
    out = {}
    for sec in check_sections(sections):
        if sec not in SECTION_AFTER or (sec == "appK_examples" and not runs_appK2(b)): continue
        for p in section_noise(sec, b, noise_levels):
            for s in seeds:
                spec = b.run_spec(p, s)
                sizes = split_sizes(spec.data)
                n = sizes[0] if sizes else None
                L = b.prune.levels
                if sec == "appD_leave_out":     # `leave_out.tie_rnd_specs`: 20% left out
                    for lv in range(1, L + 1):
                        for k in ("TIE", "RND"):
                            out[RunKey(b.name, "App. D", p, s, level=lv, kind=k)] = \
                                _stand_in(spec, None if n is None else n - int(round(0.2 * n)))
                elif sec == "appE_dense_subset":    # `leave_out.dense_subset_spec`: the dense run's steps
                    for lv in range(0, L + 1):
                        out[RunKey(b.name, "App. E", p, s, level=lv)] = _stand_in(spec, n)
                else:                               # `leave_out.top_worsened_specs`: 40% subsamples
                    for lv in range(1, L + 1):
                        for k in ("TW", "Rand"):
                            out[RunKey(b.name, "App. K", p, s, level=lv, kind=k)] = \
                                _stand_in(spec, None if n is None else int(round(0.4 * n)))
    return out


# %% [markdown]
# The plan's rule, counted for the MNIST-1D smoke bench (3 pruning levels, one seed, its App. E at its noisy levels):

# %%
_pr = planned_retrainings(_b, ["appD_leave_out", "appE_dense_subset", "appK_examples"], (0,))
_L, _nE = _b.prune.levels, len(section_noise("appE_dense_subset", _b))
test_eq(sorted({k.algorithm for k in _pr}), ["App. D", "App. E", "App. K"])
test_eq(len(_pr), 2 * _L + _nE * (_L + 1) + 2 * _L)
assert all(v.prune.levels == 0 for v in _pr.values())


# %%
#| export
def _num(x: str) -> float: return float(x.replace(",", "").strip())

def _throughput_rows(path, lines: list[str]) -> list[tuple]:
    "(bench, what, seconds per training example) of each training row of a results file's `lines` (see `read_throughput`)."
    import csv
    rows = []
    try:
        if path.suffix == ".md":
            table = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines if l.strip().startswith("|")]
            head = [h.lower() for h in table[0]] if table else []
            if not {"bench", "what", "seconds", "examples/s"} <= set(head): raise KeyError("columns")
            for r in table[1:]:
                d = dict(zip(head, r))
                if d["what"].startswith("train epoch") and d["examples/s"]:
                    rows.append((d["bench"], d["what"], 1 / _num(d["examples/s"])))
        else:
            data = list(csv.DictReader(l for l in lines if l.strip() and not l.startswith("#")))
            if not data or not {"bench", "what", "seconds", "examples"} <= set(data[0]): raise KeyError("columns")
            for d in data:
                if d["what"].startswith("train") and d["seconds"] and d["examples"]:
                    rows.append((d["bench"], d["what"], _num(d["seconds"]) / _num(d["examples"])))
    except (KeyError, ValueError, ZeroDivisionError):
        raise ConfigError(f"throughput file {str(path)!r}: expected a CSV with columns bench, what, seconds, examples "
                          f"(or a markdown table with bench, what, seconds, examples/s) and numbers in them") from None
    return rows


# %%
test_eq(_throughput_rows(Path("r.csv"), ["# c", "bench,what,seconds,examples", "x,train epoch,2,1000", "x,eval,1,10"]),
        [("x", "train epoch", 0.002)])
test_eq(_throughput_rows(Path("r.md"), ["| bench | what | seconds | examples/s |", "|---|---|---|---|",
                                        "| x | train epoch bf16 | 1 | 2,000 |"]), [("x", "train epoch bf16", 0.0005)])
test_fail(lambda: _throughput_rows(Path("r.csv"), ["bench,what", "x,train"]), contains="expected a CSV")


# %%
#| export
def read_throughput(path, precision: str = "fp32") -> dict:
    """{bench: (seconds per training example, what the row says)} from a results file of `python -m bench`: a CSV
    (comment lines `#`; columns bench, what, seconds, examples; per bench its first row whose `what` starts with
    'train') or a markdown table (columns bench, what, seconds, examples/s; its 'train epoch' rows). A bench with a
    row naming `precision` (e.g. 'train epoch bf16') takes that row."""
    path = Path(path)
    if not path.is_file(): raise ConfigError(f"throughput file {str(path)!r} is not a readable file")
    rows = _throughput_rows(path, path.read_text(errors="replace").splitlines())
    out, other = {}, {"fp32", "bf16"} - {precision}
    for bench in dict.fromkeys(r[0] for r in rows):
        mine = [(spe, what) for b_, what, spe in rows if b_ == bench]
        pick = next((r for r in mine if precision in r[1]), None) or \
            next((r for r in mine if not any(o in r[1] for o in other)), None)
        if pick: out[bench] = pick
    if not out: raise ConfigError(f"throughput file {str(path)!r} has no training row (`what` starting with 'train')")
    return out

def _probe_batch(spec: RunSpec, dev) -> int:
    "The batch a probe times: on a GPU the bench's, or one rank's share where its step does not fit; 4 on the CPU."
    from pruning_repro.placement import gpu_memory, train_step_bytes
    if dev.type != "cuda": return min(4, spec.train.batch_size)
    ranks, mem = 1, gpu_memory()
    while mem and ranks < spec.train.batch_size and train_step_bytes(spec, ranks) > mem: ranks *= 2
    return -(-spec.train.batch_size // ranks)


# %%
import torch
test_eq(_probe_batch(_b.run_spec(), torch.device("cpu")), min(4, _b.train.batch_size))


# %%
#| export
def probe_throughput(b, device=None, steps: int = 2, batch: int | None = None) -> tuple[float, str]:
    """(seconds per training example, what was timed) of bench `b`'s model: `steps` SGD steps (after one warm-up)
    on synthetic inputs on `device` (default: where its runs train), batch `batch` (default: the bench's on a GPU,
    whose memory `placement.train_step_bytes` allows; 4 on the CPU). Reads no data."""
    import time
    import torch
    import torch.nn.functional as F
    from pruning_repro.data import data_info
    from pruning_repro.models import build_model
    from pruning_repro.placement import run_device
    spec, info = b.run_spec(), data_info(b.data.dataset)
    dev = torch.device(run_device(spec, device))
    batch = batch or _probe_batch(spec, dev)
    model = build_model(spec.model, info).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, *info.input_shape, device=dev)
    y = torch.randint(0, info.num_classes, (batch,), device=dev)
    bf16 = spec.train.precision == "bf16" and dev.type == "cuda"
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, torch.bfloat16, enabled=bf16): loss = F.cross_entropy(model(x).float(), y)
        loss.backward(); opt.step()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    step(); sync()
    t0 = time.perf_counter()
    for _ in range(steps): step()
    sync()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return (time.perf_counter() - t0) / (steps * batch), f"probe: {steps} steps of batch {batch} on {name}"


# %% [markdown]
# The probe trains a bench's model for a few steps on random inputs: `tests/test_gpu_plan.py` runs it and a dry run
# that uses it, not this chapter.

# %%
#| export
def _rate(b, throughput, device) -> tuple:
    """(seconds per training example, its source) of bench `b`: from `throughput` (a results file, `read_throughput`;
    a probe where it has no row for `b`), a probe (`probe_throughput`) when it is 'probe', (None, None) when None."""
    if throughput is None: return None, None
    if throughput == "probe": return probe_throughput(b, device)
    rates = read_throughput(throughput, b.train.precision)
    if b.name in rates: return rates[b.name][0], f"{throughput}: {rates[b.name][1]}"
    spe, source = probe_throughput(b, device)
    return spe, source + f" ({b.name} has no row in {throughput})"


# %%
test_eq(_rate(_b, None, None), (None, None))


# %%
#| export
def _named_retrainings(b, sections, seeds, noise_levels, store) -> dict[RunKey, RunSpec]:
    "The App. D/E/K retrainings the store's complete first stage names (`dependent_runs`), each spec once."
    after, seen = {}, set()
    for sec in sections:
        for k, v in dependent_runs(sec, b, seeds, section_noise(sec, b, noise_levels), store).items():
            if v.hash() not in seen: seen.add(v.hash()); after[k] = v
    return after


# %%
#| export
def study_plan(b, sections, seeds, noise_levels, store, throughput=None, device=None) -> dict:
    """The cost plan of a study before a sweep, without reading data: `study_cost` of the runs the store lacks, the
    App. D/E/K retrainings included (named from the store when the first stage is complete, else counted by
    `planned_retrainings`), per section (a run shared by sections counts in the first that names it) and in total,
    with hours = training examples × seconds per example: from `throughput` (a results file, `read_throughput`),
    else a probe (`probe_throughput`) when `throughput` is 'probe', else none."""
    from pruning_repro.config import check_spec
    sections = check_sections(sections)
    first = study_runs(b, sections, seeds, noise_levels)
    for v in first.values(): check_spec(v)
    section_of = {}
    for sec in sections:
        for v in section_runs(sec, b, seeds, section_noise(sec, b, noise_levels)).values():
            section_of.setdefault(v.hash(), sec)
    complete = all(store.is_complete(v) for v in first.values())
    after = (_named_retrainings(b, sections, seeds, noise_levels, store) if complete
             else planned_retrainings(b, sections, seeds, noise_levels))
    sec_after = {"App. D": "appD_leave_out", "App. E": "appE_dense_subset", "App. K": "appK_examples"}
    specs = {("1", k): v for k, v in first.items()} | {("2", k): v for k, v in after.items()}
    group = lambda lab: (sec_after[lab[1].algorithm] if lab[0] == "2" else section_of[specs[lab].hash()])
    cost = study_cost(specs, store, group)
    retr = study_cost({k: v for k, v in specs.items() if k[0] == "2"}, store)
    spe, source = _rate(b, throughput, device)
    hours = lambda c: None if spe is None or c["examples"] is None else c["examples"] * spe / 3600
    for c in (cost, retr, *cost["groups"].values()): c["hours"] = hours(c)
    cost["sections"] = {sec: cost["groups"].get(sec, {**_cost(), "hours": hours(_cost())}) for sec in sections}
    del cost["groups"]
    cost.update(bench=b.name, retrainings=retr, retrainings_counted="named" if complete else "planned",
                seconds_per_example=spe, source=source)
    return cost


# %% [markdown]
# `study_plan` is checked on the MNIST-1D smoke bench below, with a throughput file; `plan_text` prints it.

# %%
#| export
def plan_text(c: dict) -> str:
    "The lines a dry run prints for `study_plan`'s cost `c`: per section, the retrainings, and the bench's total."
    cpu = c["source"] is not None and c["source"].startswith("probe") and c["source"].split(" (")[0].endswith(" cpu")
    unit = "CPU-hours" if cpu else "GPU-hours"
    h = lambda x: "?" if x.get("hours") is None else f"{x['hours']:,.1f}"
    row = lambda name, x: f"  {name:<38} {x['runs']:>7,} {x['epochs']:>9,} {h(x):>12}"
    rate = (f"{c['seconds_per_example']:.3g} s per training example ({c['source']})"
            if c["seconds_per_example"] is not None else "no throughput given")
    lines = [f"cost plan of {c['bench']}, the runs the store lacks; {unit} = training examples x {rate}"
             + ("; a GPU's hours need a measured throughput: --throughput-from bench/results/<file>" if cpu else ""),
             f"  {'section':<38} {'runs':>7} {'epochs':>9} {unit:>12}"]
    lines += [row(sec, x) for sec, x in c["sections"].items()]
    lines.append(row(f"  of which retrainings ({c['retrainings_counted']})", c["retrainings"]))
    lines.append(row(f"{c['bench']} (all sections)", c))
    return "\n".join(lines)


# %% [markdown]
# The MNIST-1D smoke bench's App. D with one seed, before its IMP run exists: 3 pruning levels × (TIE, RND) = 6
# retrainings of 2 epochs each on 80% of the training set; at 1 ms per example (a throughput file) the hours are
# examples × 0.001 / 3600.

# %%
from fastcore.test import test_close
from pruning_repro.data import split_sizes
with tempfile.TemporaryDirectory() as _d:
    _f = Path(_d) / "t.csv"
    _f.write_text("# a results file\nbench,what,seconds,examples\nlenet_mnist1d,train epoch (masks on),9.6,9600\n")
    _p = study_plan(_b, ["appD_leave_out"], (0,), None, Store(_d), throughput=_f)
_n_train = split_sizes(_b.run_spec().data)[0]
test_eq((_p["retrainings"]["runs"], _p["retrainings"]["epochs"]), (2 * _b.prune.levels, 2 * _b.prune.levels * 2))
test_eq(_p["retrainings"]["examples"], 2 * _b.prune.levels * 2 * -(-(_n_train - round(0.2 * _n_train)) // _b.train.batch_size) * _b.train.batch_size)
test_close(_p["hours"], _p["examples"] * 0.001 / 3600, eps=1e-9)
test_eq(_p["runs"], 1 + 2 * _b.prune.levels)                      # the IMP run and its retrainings
print(plan_text(_p))
