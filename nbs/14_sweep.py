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
# > A study is the set of runs a section of the paper needs for a bench; a sweep trains each missing run once, in a local process pool or as a Slurm job array through submitit (`18_executors`); what it costs is `30_plan`'s.

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
def named_after(b, sections, seeds, noise_levels, store) -> dict:
    """The second stage of a study whose first is in the store: every App. D, E, K retraining its sections name
    (`dependent_runs`, at each section's noise levels), by key — two keys may name one spec."""
    return {k: v for sec in check_sections(sections)
            for k, v in dependent_runs(sec, b, seeds, section_noise(sec, b, noise_levels), store).items()}

def train_study(b, sections, seeds, noise_levels, store, execute) -> tuple[dict, dict | None]:
    """The one definition of "train a study, then the retrainings its results name": every run of `study_runs` the
    store lacks goes to `execute({RunKey: spec})`; once all are complete, the App. D, E, K retrainings
    (`dependent_runs`, every key, each spec trained once) are named and the missing ones go to `execute` too. Returns (first stage,
    second stage), the second None while the first is incomplete (a failed run, or `execute` trained nothing)."""
    from pruning_repro.study import check_spec
    first = study_runs(b, sections, seeds, noise_levels)
    for s in first.values(): check_spec(s)              # a name no registry holds: one error before anything trains
    todo = {k: s for k, s in first.items() if not store.is_complete(s)}
    if todo: execute(todo)
    if not all(store.is_complete(s) for s in first.values()): return first, None
    # every retraining keeps its key, even when two keys name one spec (two levels of App. D can select the same
    # examples): the analyses read them by key; the spec is trained once
    after = named_after(b, sections, seeds, noise_levels, store)
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
def train_section(section: str, b, seeds, noise_levels, store, runtime=None,
                  trained: bool = False) -> tuple[dict, dict]:
    """Train (where the store lacks them, as `runtime` says) the runs of one section, then its retrainings: (first
    stage, second stage). `trained`: the command executing this notebook has just trained them all
    (`sections.run_section`), so they are named, not checked again in the store."""
    from functools import partial
    from pruning_repro.executors import run_many
    if trained:
        return study_runs(b, [section], seeds, noise_levels), named_after(b, [section], seeds, noise_levels, store)
    return train_study(b, [section], seeds, noise_levels, store, partial(run_many, store=store, runtime=runtime))

def train_with_retrainings(section: str, b, seeds, noise_levels, store, runtime=None, trained: bool = False) -> tuple:
    """A two-stage section (App. D, E, K), trained by `train_section`. Returns (its IMP runs, retrainings,
    `analysis.trajectories` of the IMP runs)."""
    from pruning_repro.analysis import trajectories
    _, after = train_section(section, b, seeds, noise_levels, store, runtime, trained)
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
