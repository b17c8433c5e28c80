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
# # Executors: training a study locally or on a Slurm cluster
#
# > `sweep` trains every run a study lacks, in the package's one local process pool or as a Slurm job array through
# > submitit; the study itself (which runs, two stages) is `14_sweep`'s.

# %%
#| default_exp executors

# %% [markdown]
# A study (`sweep.study_runs`, and the retrainings its results name: `sweep.train_study`) says *what* to train; this
# chapter says *where*: `sweep(..., executor="local" | "slurm")` hands every missing run to an executor — the one
# local process pool of the package (`imp.run_pool`) or a Slurm job array — and reports what finished and what failed.

# %%
#| export
from __future__ import annotations

import configparser
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from pruning_repro.config import ConfigError, check_workers, resolve_study
from pruning_repro.sweep import SECTION_AFTER, check_sections, train_study

# %%
#| hide
from fastcore.test import test_eq, test_fail

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
    check_workers(workers)
    if executor == "slurm": slurm = slurm or SlurmOptions()
    check_available(b.data)
    st = Store(store)
    given = None if noise_levels is None else levels
    rep, wanted = SweepReport(executor, 0, 0, 0), []
    def execute(todo):
        wanted.append(len(todo))
        if dry_run: return
        st.check_writable()                                # before the first run, not after it failed
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
    from pruning_repro.imp import _terminating_on_sigterm, run_job as job
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
    with _terminating_on_sigterm():
        try: _poll(pending, gone, rep, opts, bar)
        except BaseException:              # Ctrl-C or SIGTERM: the array's jobs must not run on without the sweep
            subprocess.run(["scancel", jobs[0].job_id.split("_")[0]], capture_output=True)
            raise
        finally: bar.close()

def _poll(pending: dict, gone: dict, rep: SweepReport, opts: SlurmOptions, bar) -> None:
    "Wait for the array's jobs: a result, a failure with its log, or a job that left the queue without a result."
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
