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
# # The `pruning-repro` command
#
# > Run a section notebook, the whole reproduction of a bench, or one IMP trajectory, from the shell.

# %%
#| default_exp cli

# %% [markdown]
# ```
# pruning-repro benches                                   # the registry
# pruning-repro reproduce --bench lenet_fashion           # every section notebook of the bench, through papermill
# pruning-repro section sec4_noise --bench resnet20_c10 --scale smoke --seeds 0 1
# pruning-repro imp --bench lenet_mnist --noise 0.1 --seed 0 [--rewind weight] [--width 0.5] [--train-lr 0.05 ...]
# pruning-repro sweep --bench resnet20_c10 --sections sec4_noise --executor slurm --partition gpu --gpus-per-task 1
# pruning-repro report --bench lenet_fashion             # figures/<bench>/REPORT.md: outputs and claims C1-C6
# ```
#
# Every parameter is validated before anything runs: an unknown bench, scale or section, a noise level outside
# [0, 1), an empty seed list or missing data give **one line** `error: ...` on stderr and exit status 2, and nothing
# is written. A section's executed notebook is saved next to its figures (`figures/<bench>/<section>.ipynb`) only
# when it succeeds; a failed execution is kept as `<section>.failed.ipynb` and the previous good one stays.

# %%
#| export
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

from pruning_repro.config import BENCHES, ConfigError, DEFAULT_BENCH, PRECISIONS, SCALES, get_bench
from pruning_repro.study import Study, check_device, check_spec, resolve_study, spec_options, with_options

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %%
#| export
from pruning_repro.executors import EXECUTORS
from pruning_repro.sections import SectionFailed, compare_algorithms, figures_folder, run_section
from pruning_repro.store import check_writable
from pruning_repro.sweep import SECTIONS


# %% [markdown]
# ## The parser
#
# Subcommands share groups of flags: how and where runs train (`_running_args`), which study (`_which_args`; and where
# it goes: `_study_args`), and the Slurm options of `sweep` (`_slurm_args`). Each group is one function, and `_parser`
# composes them.

# %%
#| export
def _running_args(sp: argparse.ArgumentParser, pool: bool = True) -> None:
    "How and where runs train: their precision (part of their specs), device, snapshots, GPU sharing (`pool`)."
    sp.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="fp32 (true float32), tf32 (TF32 allowed, GPUs) or bf16 (bfloat16 "
                         "autocast, GPUs); default: the bench's (fp32)")
    sp.add_argument("--device", default=None, help="cpu, cuda or cuda:<i> (default: a GPU for the models that gain "
                                                   "from one when the machine has GPUs, else the CPU)")
    sp.add_argument("--checkpoint-min", type=float, default=None,
                    help="minutes between in-level snapshots (default 30; 0: after every step)")
    if pool: sp.add_argument("--runs-per-gpu", type=int, default=None, help="local pool: runs trained at once on "
                                                                           "each GPU (default 1)")


# %%
_p = argparse.ArgumentParser(); _running_args(_p, pool=False)
test_eq(vars(_p.parse_args([])), dict(precision=None, device=None, checkpoint_min=None))
test_eq(_p.parse_args(["--precision", "bf16", "--checkpoint-min", "0"]).checkpoint_min, 0.0)


# %%
#| export
def _which_args(sp: argparse.ArgumentParser) -> None:
    "Which study: bench, scale, seeds, noise levels (`reproduce`, `section`, `algorithms` and `sweep`)."
    sp.add_argument("--bench", default=DEFAULT_BENCH, help=f"one of {', '.join(BENCHES)}")
    sp.add_argument("--scale", default="full", help=f"one of {', '.join(SCALES)}")
    sp.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    sp.add_argument("--noise", nargs="+", type=float, default=None, help="label-noise fractions (default: the bench's)")

def _study_args(sp: argparse.ArgumentParser) -> None:
    "`_which_args`; where it goes (figures, store); training processes; `_running_args`."
    _which_args(sp)
    sp.add_argument("--figures", default="figures", help="output folder (figures/<bench>/...)")
    sp.add_argument("--workers", type=int, default=None, help="parallel training processes on CPUs (default: cores)")
    sp.add_argument("--store", default=None, help="run store folder (default $PRUNING_REPRO_STORE or ~/.pruning_repro/store)")
    _running_args(sp)


# %%
_p = argparse.ArgumentParser(); _study_args(_p)
_a = _p.parse_args(["--seeds", "3", "4", "--noise", "0.1"])
test_eq((_a.bench, _a.scale, _a.seeds, _a.noise, _a.runs_per_gpu), (DEFAULT_BENCH, "full", [3, 4], [0.1], None))


# %%
#| export
def _slurm_args(sp: argparse.ArgumentParser) -> None:
    "`sweep --executor slurm`'s options (`slurm.slurm_options` checks them), in their own help group."
    g = sp.add_argument_group("slurm (flags override the profile)")
    g.add_argument("--profile", default=None, help="YAML (.yaml/.yml) or INI ([slurm]) file of the options below")
    g.add_argument("--partition", default=None)
    g.add_argument("--gpus-per-task", type=int, default=None)
    g.add_argument("--cpus-per-task", type=int, default=None)
    g.add_argument("--mem-gb", type=float, default=None)
    g.add_argument("--time-min", type=int, default=None, help="time limit of one job (a longer run is requeued and "
                                                             "resumes from its snapshot)")
    g.add_argument("--array-parallelism", type=int, default=None, help="array elements running at once")
    g.add_argument("--nodes", type=int, default=None, help="nodes of one data-parallel run (default 1)")
    g.add_argument("--tasks-per-node", type=int, default=None, help="ranks of one run per node, one GPU each with "
                                                                   "--gpus-per-task 1 (default 1)")
    g.add_argument("--signal-delay-s", type=int, default=None, help="seconds before the time limit at which a job "
                                                                   "snapshots and is requeued (default 120)")
    g.add_argument("--max-requeues", type=int, default=None, help="time limits a run may be requeued after (default 20)")


# %% [markdown]
# Every Slurm flag is one of `_SLURM_FLAGS` (defined with the `sweep` command below, which checks that none is given
# to a local sweep); the check sits under that definition.

# %%
#| export
def _sweep_args(w: argparse.ArgumentParser) -> None:
    "`sweep`: the study's runs (no figures), the executor and its options, and the dry run's estimates."
    _which_args(w)
    w.add_argument("--sections", nargs="+", default=None, help=f"default: all ({', '.join(SECTIONS)})")
    w.add_argument("--store", default=None, help="run store folder (shared by the nodes for --executor slurm)")
    w.add_argument("--executor", choices=EXECUTORS, default="local")
    w.add_argument("--workers", type=int, default=None, help="local: parallel processes on CPUs (default: cores)")
    _running_args(w)
    w.add_argument("--dry-run", action="store_true", help="only count what would be submitted (runs, epochs, FLOPs, "
                                                          "GPU-hours per section, App. D/E/K retrainings included); "
                                                          "reads no data")
    w.add_argument("--throughput-from", default=None, metavar="FILE",
                   help="dry run: GPU-hours from the training rows of a `python -m bench` results file (CSV: bench, "
                        "what, seconds, examples; or its markdown table), e.g. bench/results/<file>; default: a few "
                        "steps timed on this machine's device")
    _slurm_args(w)


# %%
_p = argparse.ArgumentParser(); _sweep_args(_p)
_a = _p.parse_args(["--executor", "slurm", "--gpus-per-task", "1", "--dry-run"])
test_eq((_a.executor, _a.gpus_per_task, _a.dry_run, _a.partition, _a.sections), ("slurm", 1, True, None, None))


# %%
#| export
def _imp_args(i: argparse.ArgumentParser) -> None:
    "`imp`: one trajectory (bench, scale, noise, seed, store), how it trains, and a flag per spec field."
    i.add_argument("--bench", default=DEFAULT_BENCH); i.add_argument("--scale", default="full")
    i.add_argument("--noise", type=float, default=0.0); i.add_argument("--seed", type=int, default=0)
    i.add_argument("--store", default=None)
    _running_args(i, pool=False)
    spec_options(i)                                     # a flag per field of the run's spec (`29_study`)


# %%
_p = argparse.ArgumentParser(); _imp_args(_p)
_a = _p.parse_args(["--noise", "0.1", "--train-lr", "0.05"])
test_eq((_a.noise, _a.seed, getattr(_a, "train.lr"), getattr(_a, "train.epochs")), (0.1, 0, 0.05, None))


# %%
#| export
def _export_args(x: argparse.ArgumentParser) -> None:
    "`export`: which study's stored levels, and the table's format and file."
    x.add_argument("--bench", default=DEFAULT_BENCH); x.add_argument("--scale", default="full")
    x.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    x.add_argument("--sections", nargs="+", default=None, help=f"default: all ({', '.join(SECTIONS)})")
    x.add_argument("--store", default=None); x.add_argument("--format", choices=("csv", "parquet"), default="csv")
    x.add_argument("--out", default=None, help="file to write (default: figures/<bench>/results.<format>)")
    x.add_argument("--figures", default="figures")
    x.add_argument("--precision", choices=PRECISIONS, default=None, help="the study's precision: fp32 (default), "
                                                                         "tf32 or bf16 (its own runs, figures folder)")


# %%
_p = argparse.ArgumentParser(); _export_args(_p)
test_eq((_p.parse_args([]).format, _p.parse_args(["--format", "parquet"]).format), ("csv", "parquet"))


# %%
#| export
def _parser() -> argparse.ArgumentParser:
    "The `pruning-repro` command line: one subparser per entry of `COMMANDS`."
    p = argparse.ArgumentParser(prog="pruning-repro", description=__doc__ or "Reproduce Jin et al. (NeurIPS 2022).")
    p.add_argument("--plugins", action="append", default=None, metavar="MODULE[,MODULE]",
                   help="module(s) registering data sets, models, heuristics or benches; repeatable, comma-separated "
                        "(also $PRUNING_REPRO_PLUGINS)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("benches", help="list the registered benchmarks")
    _study_args(sub.add_parser("reproduce", help="run every section notebook for a bench")); p.set_defaults(name=None)
    s = sub.add_parser("section", help="run one section notebook"); s.add_argument("name"); _study_args(s)
    _study_args(sub.add_parser("algorithms", help="optimal test error of every learning algorithm at one noise level "
                                                  "(Tables 2/9/10)"))
    _imp_args(sub.add_parser("imp", help="train one IMP trajectory into the store (data-parallel when started by "
                                         "torchrun or as several Slurm tasks)"))
    r = sub.add_parser("report", help="write figures/<bench>/REPORT.md: every figure and table, and claims C1-C6")
    r.add_argument("--bench", default=DEFAULT_BENCH); r.add_argument("--scale", default="full")
    r.add_argument("--figures", default="figures")
    r.add_argument("--precision", choices=PRECISIONS, default=None, help="the study's precision: fp32 (default), "
                                                                         "tf32 or bf16 (own figures/<bench>_<p> folder)")
    _export_args(sub.add_parser("export", help="write every stored level of a bench's study as one tidy table (CSV "
                                               "or Parquet)"))
    _sweep_args(sub.add_parser("sweep", help="train every missing run of a study, in local processes or as a Slurm "
                                             "job array"))
    return p


# %%
_a = _parser().parse_args(["section", "sec4_noise", "--seeds", "0"])
test_eq((_a.cmd, _a.name, _a.seeds, _a.plugins), ("section", "sec4_noise", [0], None))
test_eq(_parser().parse_args(["reproduce"]).name, None)
test_eq({a.dest for a in _parser()._actions if a.dest == "cmd"}, {"cmd"})

# %% [markdown]
# ## The subcommands
#
# Each subcommand is one handler taking the parsed arguments and returning the exit status. The settings of the
# runs are resolved once, here at the edge (`_running`), and checked before anything trains.

# %%
#| export
_SLURM_FLAGS = ("profile", "partition", "gpus_per_task", "cpus_per_task", "mem_gb", "time_min", "array_parallelism",
                "nodes", "tasks_per_node", "signal_delay_s", "max_requeues")
_RUN_FLAGS = ("checkpoint_min", "runs_per_gpu", "device", "workers")

def _running(args, profile: dict | None = None, here: bool = True):
    """How the runs train, resolved once here — the edge: the environment's settings (`Runtime.from_env`, the
    `$PRUNING_REPRO_*` a user set), a Slurm profile's over them and the flags over both. The `Runtime` goes down as
    one value (to pool workers, Slurm jobs, and papermill kernels as their `runtime` parameter); the environment is
    left as it was. The device asked for is checked on this machine when the runs train `here` (not for Slurm jobs,
    whose nodes have the GPUs a login node lacks). Returns (`runtime.Runtime`, the study's precision)."""
    from pruning_repro.runtime import Runtime
    given = {**(profile or {}), **{k: getattr(args, k) for k in (*_RUN_FLAGS, "precision")
                                  if getattr(args, k, None) is not None}}
    runtime = replace(Runtime.from_env(), **{k: v for k, v in given.items() if k in _RUN_FLAGS})
    if here: check_device(runtime.device)
    return runtime, given.get("precision")

def _study(args, precision: str | None, sections=None) -> Study:
    "The study the flags name, validated once (`study.Study`: one `ConfigError` naming the bad flag's value)."
    return Study(args.bench, args.scale, args.seeds, args.noise, store=args.store,
                 figures=getattr(args, "figures", None), precision=precision, sections=sections)


# %% [markdown]
# Nothing given, nothing exported: the runtime is the environment's. A device this machine lacks is refused before it
# is exported (the rest of the plumbing — papermill kernels and pool workers inheriting it — is tested in
# `tests/test_cli.py` and `tests/test_sweep.py`):

# %%
import os
_before = dict(os.environ)
from pruning_repro.runtime import Runtime
test_eq(_running(_parser().parse_args(["imp"]), here=False), (Runtime.from_env(), None))
test_fail(lambda: _running(_parser().parse_args(["imp", "--device", "tpu"])), contains="unknown device 'tpu'")
test_eq(dict(os.environ), _before)
_p = argparse.ArgumentParser(); _slurm_args(_p)
test_eq({a.dest for a in _p._action_groups[-1]._group_actions}, set(_SLURM_FLAGS))    # every Slurm flag is checked


# %%
#| export
def _sweep_command(args) -> int:
    "`sweep`: every missing run of the study, local or on Slurm (options checked here), or only counted (`--dry-run`)."
    import shutil
    from pruning_repro.executors import sweep
    from pruning_repro.slurm import run_options, slurm_options
    given = [f for f in _SLURM_FLAGS if getattr(args, f) is not None]
    if args.executor == "local" and given:
        raise ConfigError(f"--{given[0].replace('_', '-')} is a Slurm option: add --executor slurm")
    opts = None
    if args.executor == "slurm":
        opts = slurm_options(args.profile, **{f: getattr(args, f) for f in _SLURM_FLAGS[1:]})
        if args.workers is not None: raise ConfigError("--workers is for --executor local; Slurm runs use --array-parallelism")
        if args.runs_per_gpu is not None: raise ConfigError("--runs-per-gpu is for --executor local")
        if not args.dry_run and shutil.which("sbatch") is None:
            raise ConfigError("--executor slurm needs Slurm's sbatch on PATH (run from a login node of the cluster)")
    if args.throughput_from is not None and not args.dry_run: raise ConfigError("--throughput-from is for --dry-run")
    runtime, precision = _running(args, run_options(args.profile) if args.executor == "slurm" and args.profile else None,
                                  here=args.executor == "local")
    rep = sweep(_study(args, precision, args.sections), runtime, args.executor, opts, dry_run=args.dry_run,
                throughput=(args.throughput_from or "probe") if args.dry_run else None)
    print(rep.summary())
    if not rep.ok:
        print(f"error: {len(rep.failed)} of {rep.submitted} runs failed (finished runs are kept; rerun to retry)",
              file=sys.stderr)
        return 1
    return 0


# %%
test_fail(lambda: _sweep_command(_parser().parse_args(["sweep", "--partition", "gpu"])), contains="is a Slurm option")
test_fail(lambda: _sweep_command(_parser().parse_args(["sweep", "--throughput-from", "x.csv"])), contains="for --dry-run")
test_fail(lambda: _sweep_command(_parser().parse_args(["sweep", "--executor", "slurm", "--workers", "2", "--dry-run"])),
          contains="--workers is for --executor local")


# %%
#| export
def _benches(args) -> int:
    "`benches`: one line per registered bench."
    for n, b in BENCHES.items():
        print(f"{n:20s} {'embedded' if b.embedded else 'paper   '} {b.description}")
    return 0


# %%
test_eq(_benches(None), 0)


# %%
#| export
@contextlib.contextmanager
def _made_folder(folder: Path):
    "Create `folder` (checked writable) for the block; when the block fails, remove what it created if still empty."
    new = [p for p in (Path(folder), *Path(folder).parents) if not p.exists()]
    check_writable(folder, "figures folder")   # before any training
    try: yield folder
    except BaseException:
        for p in new:                          # deepest first; stops at the first one holding something
            try: p.rmdir()
            except OSError: break
        raise


# %%
import tempfile
with tempfile.TemporaryDirectory() as _t:
    def _fails():
        with _made_folder(Path(_t) / "a" / "b"): raise ValueError("before anything is written")
    test_fail(_fails, contains="before anything")
    test_eq(list(Path(_t).iterdir()), [])                          # both folders it made are gone
    with _made_folder(Path(_t) / "a" / "b") as _f: (_f / "x.md").write_text("kept")
    test_eq((Path(_t) / "a" / "b" / "x.md").read_text(), "kept")


# %%
#| export
def _sections(args) -> int:
    "`reproduce` (the whole study in one process pool, every section, the report) and `section` (one)."
    reproduce = args.name is None
    sections = SECTIONS if reproduce else (args.name,)
    if not reproduce and args.name not in SECTIONS:     # before any folder is made
        raise ConfigError(f"unknown section {args.name!r}; choose one of: {', '.join(SECTIONS)}")
    runtime, precision = _running(args)
    study = _study(args, precision)            # validated before the first section
    folder = figures_folder(study.figures, study.bench, study.scale, study.precision)
    with _made_folder(folder):                 # an error before anything is written leaves no empty folder behind
        return _run_sections(study, runtime, sections, reproduce, folder)


# %%
test_fail(lambda: _sections(_parser().parse_args(["section", "sec9"])), contains="unknown section 'sec9'")
test_fail(lambda: _sections(_parser().parse_args(["reproduce", "--scale", "huge"])), contains="huge")


# %%
#| export
def _run_sections(study, runtime, sections, reproduce: bool, folder: Path) -> int:
    "Train the study (`reproduce`: every run first, in one pool), execute the section notebooks, write the report."
    t0 = time.time()
    if reproduce:
        # the whole study first, in one process pool (balanced over the cores), then the notebooks only read
        from pruning_repro.executors import sweep
        rep = sweep(study, runtime)
        print(rep.summary())
        if not rep.ok:
            print(f"error: {len(rep.failed)} runs failed (finished runs are kept; rerun to retry)", file=sys.stderr)
            return 1
    for sec in sections:
        out = run_section(sec, study, runtime)
        print(f"{sec}: {out}")
    if reproduce:
        from pruning_repro.report import write_report
        print(f"report: {write_report(study.bench, folder)}")
    print(f"done in {time.time() - t0:.0f} s; figures in {folder}")
    return 0


# %% [markdown]
# `_run_sections` trains and executes notebooks: it is checked end to end by `tests/test_cli.py` (`section` and
# `reproduce` on the smoke scale), not in this chapter.

# %%
#| export
def _report(args) -> int:
    "`report`: write REPORT.md from the section outputs; exit 1 when a claim cannot be judged (a damaged output)."
    from pruning_repro.report import claims, write_report
    get_bench(args.bench, args.scale, args.precision)
    out = write_report(args.bench, figures_folder(args.figures, args.bench, args.scale, args.precision))
    c = claims(out.parent)
    print(c[["claim", "status"]].to_string(index=False))
    print(f"report: {out}")
    damaged = sorted({e.split(": ", 1)[1] for e in c.evidence if e.startswith("cannot be judged: ")})
    if damaged:      # the report is written, with those claims marked; the exit status says it is incomplete
        print(f"error: {len(c[c.status == 'cannot be judged'])} claim(s) cannot be judged: {'; '.join(damaged)} "
              f"(rerun the sections that write them)", file=sys.stderr)
        return 1
    return 0


# %%
test_fail(lambda: _report(_parser().parse_args(["report", "--bench", "nope"])), contains="unknown bench 'nope'")


# %%
#| export
def _algorithms(args) -> int:
    "`algorithms`: Tables 2/9/10's comparison at one noise level (`compare_algorithms`)."
    runtime, precision = _running(args)
    compare_algorithms(_study(args, precision), runtime)
    return 0


# %%
#| export
def _imp(args) -> int:
    "One trajectory; under torchrun (or as several Slurm tasks) one data-parallel run, rank 0 printing."
    from pruning_repro.data import check_available
    from pruning_repro.distributed import launched_world
    from pruning_repro.imp import run_imp
    from pruning_repro.config import RunKey
    from pruning_repro.placement import check_fits, run_device
    from pruning_repro.store import Store
    runtime, precision = _running(args)
    b, (seed,), (noise,) = resolve_study(args.bench, args.scale, [args.seed], [args.noise], precision)
    spec = b.run_spec(noise, seed)
    spec = with_options(spec, args)                     # the spec's own flags (--train-lr, --prune-strategy, ...)
    check_spec(spec)                                    # every registered name, before any data is read or trained
    check_available(b.data)
    device = run_device(spec, runtime.device)
    with launched_world(device) as world:
        if device.startswith("cuda"):                   # a step too big for one GPU: refused before anything trains
            check_fits({RunKey(args.bench, "LR rewinding", noise, seed): spec}, ranks=world.size if world else 1)
        res = run_imp(spec, Store(args.store), device=device, runtime=runtime, world=world,
                      label=f"{args.bench} p={noise} seed={seed}")
    if world is None or world.main:
        print(res[["level", "density", "train_err", "val_err", "test_err"]].to_string(index=False)
              + (f"\n({world.size} ranks)" if world else ""))
    return 0


# %% [markdown]
# `_algorithms` and `_imp` train: `tests/test_cli.py` runs both on the smoke scale (and `imp`'s spec flags reaching
# the stored spec); a bad value is refused before any data is read:

# %%
test_fail(lambda: _imp(_parser().parse_args(["imp", "--bench", "lenet_mnist1d", "--train-lr", "-1"])),
          contains="lr must be > 0")


# %%
#| export
def _export(args) -> int:
    "`export`: every stored level of the study as one tidy table; what the table lacks is said on stderr."
    from pruning_repro.store import Store
    from pruning_repro.results import export_target, results_table, write_table
    from pruning_repro.sweep import check_sections
    b, seeds, _ = resolve_study(args.bench, args.scale, args.seeds, None, args.precision)
    sections = check_sections(args.sections)
    out = export_target(args.out, figures_folder(args.figures, args.bench, args.scale, args.precision), args.format)
    t = results_table(b, Store(args.store), sections, seeds)
    if t.empty: raise ConfigError(f"the store holds no run of {args.bench} ({args.scale}"
                                  f"{', ' + args.precision if args.precision else ''}): nothing to export")
    write_table(t, out, args.format)
    print(f"{len(t)} levels of {t.run.nunique()} runs, {len(t.columns)} columns -> {out}")
    left = t.attrs.get("left_out", [])
    if left:        # said, not silent: what the table lacks and how to get it
        print(f"warning: {len(left)} item(s) of the study are not in the table:\n  " + "\n  ".join(left[:20])
              + (f"\n  ... and {len(left) - 20} more" if len(left) > 20 else "")
              + f"\n(`pruning-repro sweep --bench {args.bench} --scale {args.scale} --seeds "
              + " ".join(map(str, seeds)) + "` trains or recomputes them)", file=sys.stderr)
    return 0


# %%
with tempfile.TemporaryDirectory() as _t:
    test_fail(lambda: _export(_parser().parse_args(["export", "--bench", "lenet_mnist1d", "--scale", "smoke",
                                                    "--store", f"{_t}/store", "--out", f"{_t}/r.csv"])),
              contains="nothing to export")
    test_eq(list(Path(_t).glob("*.csv")), [])


# %%
#| export
def _blank_is_default(args) -> None:
    """An empty folder flag (`--store ""`, `--figures ""`) means the default, as when it is not given — never the
    current folder, which an empty path is (a blank folder variable is `runtime.Platform`'s)."""
    defaults = {"store": None, "figures": "figures"}
    for k, d in defaults.items():
        v = getattr(args, k, None)
        if isinstance(v, str) and not v.strip(): setattr(args, k, d)


# %%
_a = _parser().parse_args(["section", "sec4_noise", "--store", " ", "--figures", ""]); _blank_is_default(_a)
test_eq((_a.store, _a.figures), (None, "figures"))


# %%
#| export
def _failure(e: BaseException) -> str | None:
    "The one `error:` line (exit 1) for a failure met while running a command; None for one `main` does not expect."
    from papermill.exceptions import PapermillExecutionError
    from pruning_repro.distributed import RankFailed
    from pruning_repro.store import CorruptRun
    from pruning_repro.train import Diverged
    if isinstance(e, Diverged): return f"training diverged: {e}"
    if isinstance(e, (RankFailed, SectionFailed)): return str(e)
    if isinstance(e, CorruptRun):     # a damaged file met where nothing recomputes it (training commands do)
        return f"a stored file is damaged: {e} (a rerun of the command that trained it recomputes it)"
    if isinstance(e, PapermillExecutionError):
        return f"the notebook failed: {e.ename}: {e.evalue} (executed copy kept as *.failed.ipynb)"
    if isinstance(e, OSError) and e.errno is not None:   # a full disk, a folder gone: what was written stays
        import errno
        full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
        return f"cannot {'write' if full else 'access'} {e.filename or 'a file'}: {e.strerror}"
    return None


# %%
import errno
test_eq(_failure(OSError(errno.ENOSPC, "No space left on device", "/x/run.pt")),
        "cannot write /x/run.pt: No space left on device")
test_eq(_failure(SectionFailed("sec4_noise: missing")), "sec4_noise: missing")
test_eq(_failure(OSError("no errno")), None)
test_eq(_failure(KeyError("a bug")), None)

# %%
#| export
COMMANDS = {"export": _export, "benches": _benches, "reproduce": _sections, "section": _sections, "report": _report,
            "sweep": _sweep_command, "algorithms": _algorithms, "imp": _imp}   # one handler per subcommand

def main(argv: list[str] | None = None) -> int:
    """The `pruning-repro` command: a bad input is one `error:` line and exit 2; a failed notebook exit 1. The edge:
    the environment's platform (`runtime.Platform`: folders, loaders) is read here and installed while it runs."""
    from pruning_repro.plugins import load_plugins
    from pruning_repro.runtime import Platform, using
    args = _parser().parse_args(argv)
    try:
        _blank_is_default(args)
        load_plugins(args.plugins)                      # before any name (bench, data set, model) is looked up
        with using(Platform.from_env()): return COMMANDS[args.cmd](args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BaseException as e:
        message = _failure(e)
        if message is None: raise
        print(f"error: {message}", file=sys.stderr)
        return 1


# %%
test_eq(main(["benches"]), 0)
test_eq(main(["imp", "--bench", "nope"]), 2)
test_eq(main(["section", "sec9", "--bench", "lenet_mnist"]), 2)
# values at the edge: one line and status 2, before any data is read (a width JSON cannot hold, a device not here)
for bad in (["--width", "inf"], ["--width", "1e300"], ["--width", "1e-300"], ["--device", "meta"], ["--device", "tpu"],
            ["--device", "cuda:99"]):
    test_eq(main(["imp", "--bench", "lenet_mnist1d", "--scale", "smoke", *bad]), 2)
test_eq(main(["sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--noise", "0.1", "0.1000001", "--dry-run"]), 2)
assert "PRUNING_REPRO_DEVICE" not in os.environ or os.environ["PRUNING_REPRO_DEVICE"] not in ("meta", "tpu", "cuda:99")
test_eq(figures_folder("figures", "resnet20_c10", "smoke"), Path("figures/resnet20_c10_smoke"))

# %%
#| export
#| eval: false
if __name__ == "__main__": sys.exit(main())     # `python -m pruning_repro.cli` (e.g. `torchrun -m pruning_repro.cli imp`)
