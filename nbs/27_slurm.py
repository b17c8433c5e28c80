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
# # Slurm: a study as job arrays
#
# > `sweep --executor slurm`: every missing run of a study as one element of a Slurm job array (submitit), with its resources from flags or a profile; time limits and preemption survived by requeueing and resuming from in-level snapshots.

# %%
#| default_exp slurm

# %% [markdown]
# A study is hundreds of runs (the paper's VGG-16 study alone: 1,095 first-stage runs), most of them on GPUs: a
# cluster is where it trains. This chapter is the Slurm executor of `18_executors.sweep`: it submits the
# runs a study lacks as job arrays, waits for them, and reports each one that finished, failed or was lost; a job that
# meets its time limit or is preempted is requeued and resumes its level from its last snapshot (`26_snapshots`), with
# nobody rerunning the sweep. The tests against a real single-node cluster (slurmctld and slurmd on loopback) are in
# `tests/test_sweep.py`; what needs no cluster is checked here.
#
# A sweep is one submitit job array, one array element per run. Its resources come from `SlurmOptions`
# (command-line flags, or a YAML/INI profile that the flags override): partition, GPUs and CPUs per task, memory,
# time limit, and how many elements may run at once (`--array-parallelism`). Each element runs `executors.run_job` on
# its node with the same Python and the same store path — the store must be on a file system the nodes share. Logs go to
# `<store>/_slurm/<job id>_*`.
#
# Slurm clusters without accounting have no `sacct`, through which submitit reads job states; the sweep therefore
# also asks `squeue` and declares a job **lost** when it has left the queue without writing its result (killed by
# the time limit, out of memory, node failure). A lost or failed run is reported with its log; the runs that
# finished stay in the store, and rerunning the sweep submits only what is still missing.
#
# What a cluster's limits ask of a sweep:
#
# * **arrays under `MaxArraySize`.** A cluster refuses an array with more elements than its `MaxArraySize`
#   (1001 by default; the VGG-16 study alone is 1,095 first-stage runs). The sweep reads the limit from
#   `scontrol show config` and submits as many arrays as it takes; they share `--array-parallelism`;
# * **time limits.** A level can be longer than a job may run (ResNet-50: 90 epochs). Each job is a submitit
#   `Checkpointable` (`SlurmRun`): `SIGUSR2` arrives `signal_delay_s` before the limit, the level in training takes
#   an in-level snapshot (`26_snapshots`), and submitit requeues the job, which continues from the snapshot — up to
#   `max_requeues` times, with nobody rerunning the sweep. Preemption is handled the same way, on the `SIGTERM` Slurm
#   sends a preempted job (snapshot, then requeue while the job is still running; after `scancel` it only exits);
# * **GPUs.** A sweep whose models want a GPU (all but LeNet) and whose jobs ask for none is refused with one error
#   (`slurm_device`) instead of training on CPUs without a word; `--device cpu` says it is meant;
# * **several GPUs per run.** `--tasks-per-node N` (and `--nodes M`) make each array element one data-parallel run
#   of N × M ranks (`23_distributed`), one GPU each with `--gpus-per-task 1`. The job asks Slurm for
#   `--gpus-per-node` = N × GPUs per task, so every rank sees all of its node's GPUs and takes `cuda:<local rank>`
#   (`--gpus-per-task` would hide the others from each rank, and NCCL would lose peer-to-peer/NVLink);
# * **a dry run reads no data**: `--dry-run` counts the runs, levels, epochs and FLOPs the sweep would submit, the
#   App. D/E/K retrainings included before their first stage exists, per section, with GPU-hours from a measured
#   throughput (`plan.study_plan`), and the arrays, on a login node that has no data.

# %%
#| export
from __future__ import annotations

import configparser
import contextlib
import io
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import submitit

from pruning_repro.config import ConfigError
from pruning_repro.executors import SweepReport, run_job, terminating_on_sigterm
from pruning_repro.snapshots import PREEMPTION
from pruning_repro.runtime import Runtime, platform

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Resources

# %%
#| export
@dataclass(frozen=True)
class SlurmOptions:
    "Resources of each Slurm array element (submitit parameters), from flags or a YAML/INI profile."
    partition: str | None = None       # None: the cluster's default partition
    gpus_per_task: int = 0             # GPUs per rank; the job asks for them per node (`--gpus-per-node`)
    cpus_per_task: int = 1
    mem_gb: float | None = None        # None: the partition's default
    time_min: int = 24 * 60            # per job; a run longer than that is requeued and resumes (`max_requeues`)
    array_parallelism: int = 64        # array elements running at once (over all the arrays of a sweep)
    poll_s: float = 5.0                # how often the sweep looks at the queue
    nodes: int = 1                     # a run on several nodes ...
    tasks_per_node: int = 1            # ... and ranks per node: one data-parallel run of nodes x tasks_per_node ranks
    signal_delay_s: int = 120          # SIGUSR2 this long before the time limit: snapshot, then requeue
    max_requeues: int = 20             # time-outs a run may be requeued after (preemptions do not count)

    def __post_init__(self):
        for f, lo in (("gpus_per_task", 0), ("cpus_per_task", 1), ("time_min", 1), ("array_parallelism", 1),
                      ("nodes", 1), ("tasks_per_node", 1), ("signal_delay_s", 1), ("max_requeues", 0)):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"slurm option {f} must be an integer >= {lo}, got {v!r}")
        if self.mem_gb is not None and not (isinstance(self.mem_gb, (int, float)) and self.mem_gb > 0):
            raise ConfigError(f"slurm option mem_gb must be a number > 0, got {self.mem_gb!r}")
        if not (isinstance(self.poll_s, (int, float)) and self.poll_s > 0):
            raise ConfigError(f"slurm option poll_s must be a number > 0, got {self.poll_s!r}")
        if self.partition is not None and not (isinstance(self.partition, str) and self.partition.strip()):
            raise ConfigError(f"slurm option partition must be a name, got {self.partition!r}")

    @property
    def ranks(self) -> int: return self.nodes * self.tasks_per_node

    def submitit_parameters(self, parallelism: int | None = None) -> dict:
        p = dict(timeout_min=self.time_min, cpus_per_task=self.cpus_per_task, tasks_per_node=self.tasks_per_node,
                 nodes=self.nodes, slurm_array_parallelism=parallelism or self.array_parallelism,
                 slurm_signal_delay_s=self.signal_delay_s, name="pruning_repro")
        if self.partition: p["slurm_partition"] = self.partition
        # GPUs per node, not per task: `--gpus-per-task` would show each rank its own GPU alone, and NCCL then loses
        # peer-to-peer/NVLink between the ranks; with all of the node's GPUs visible each rank takes cuda:<local rank>
        if self.gpus_per_task: p["slurm_gpus_per_node"] = self.gpus_per_task * self.tasks_per_node
        if self.mem_gb: p["mem_gb"] = self.mem_gb
        return p


# %% [markdown]
# A data-parallel job of 4 ranks with one GPU each asks for 4 GPUs per node, all of them visible to every rank:

# %%
_p = SlurmOptions(gpus_per_task=1, tasks_per_node=4).submitit_parameters()
test_eq((_p["slurm_gpus_per_node"], _p["tasks_per_node"], "slurm_gpus_per_task" in _p), (4, 4, False))

# %% [markdown]
# A profile holds Slurm's options and the runs' own (`RUN_KEYS`); the flags given on the command line override it.

# %%
#| export
_SLURM_KEYS = {f.name: f.type for f in fields(SlurmOptions)}
# what a profile may also say of the runs themselves (flags override): their precision (part of their specs), the
# device they train on, and the minutes between in-level snapshots
RUN_KEYS = {"precision": "str", "device": "str", "checkpoint_min": "float"}

def _coerce(key: str, value):
    "A profile value (INI gives strings) as the option's type."
    if value is None or not isinstance(value, str): return value
    typ = {**_SLURM_KEYS, **RUN_KEYS}[key]
    try:
        if "int" in typ: return int(value)
        if "float" in typ: return float(value)
    except ValueError: raise ConfigError(f"profile option {key} must be a number, got {value!r}") from None
    return value


# %%
#| export
def load_profile(path: str | Path) -> dict:
    """Options from a YAML (`.yaml`/`.yml`) or INI file: Slurm's (`SlurmOptions`) and the runs' (`RUN_KEYS`), at the top
    level or under `slurm:` / `run:` (INI: sections `[slurm]` and `[run]`)."""
    path = Path(path)
    if not path.is_file(): raise ConfigError(f"slurm profile {str(path)!r} is not a readable file")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml
        try: d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e: raise ConfigError(f"slurm profile {str(path)!r} is not valid YAML: {e}") from None
        if isinstance(d, dict):
            d = {**{k: v for k, v in d.items() if k not in ("slurm", "run")},
                 **(d.get("slurm") if isinstance(d.get("slurm"), dict) else {}),
                 **(d.get("run") if isinstance(d.get("run"), dict) else {})}
    elif path.suffix in (".ini", ".cfg"):
        cp = configparser.ConfigParser()
        try: cp.read_string(text)
        except configparser.Error as e: raise ConfigError(f"slurm profile {str(path)!r} is not valid INI: {e}") from None
        if not (cp.has_section("slurm") or cp.has_section("run")):
            raise ConfigError(f"slurm profile {str(path)!r} has no [slurm] or [run] section")
        d = {k: v for sec in ("slurm", "run") if cp.has_section(sec) for k, v in cp[sec].items()}
    else: raise ConfigError(f"slurm profile {str(path)!r}: use a .yaml, .yml or .ini file")
    if not isinstance(d, dict): raise ConfigError(f"slurm profile {str(path)!r} must hold a mapping of options")
    d = {k.replace("-", "_"): v for k, v in d.items()}
    unknown = sorted(set(d) - set(_SLURM_KEYS) - set(RUN_KEYS))
    if unknown: raise ConfigError(f"slurm profile {str(path)!r}: unknown option {unknown[0]!r}; known: "
                                  f"{', '.join([*_SLURM_KEYS, *RUN_KEYS])}")
    return {k: _coerce(k, v) for k, v in d.items()}


# %%
#| export
def slurm_options(profile: str | Path | None = None, **overrides) -> SlurmOptions:
    "`SlurmOptions` from a profile, with the options given explicitly (not None) taking precedence."
    d = {k: v for k, v in (load_profile(profile) if profile else {}).items() if k in _SLURM_KEYS}
    d.update({k: v for k, v in overrides.items() if v is not None})
    return SlurmOptions(**d)


# %%
#| export
def run_options(profile: str | Path | None = None, **overrides) -> dict:
    "The runs' options (`RUN_KEYS`) of a profile, with those given explicitly (not None) taking precedence."
    d = {k: v for k, v in (load_profile(profile) if profile else {}).items() if k in RUN_KEYS}
    d.update({k: v for k, v in overrides.items() if v is not None})
    return d


# %%
import tempfile
_tmp = Path(tempfile.mkdtemp())
(_tmp / "p.yaml").write_text("slurm:\n  partition: gpu\n  gpus-per-task: 1\n  time_min: 600\nrun:\n  precision: bf16\n")
test_eq(slurm_options(_tmp / "p.yaml", time_min=30), SlurmOptions(partition="gpu", gpus_per_task=1, time_min=30))
test_eq(run_options(_tmp / "p.yaml"), {"precision": "bf16"})
test_eq(run_options(_tmp / "p.yaml", precision="fp32", checkpoint_min=None), {"precision": "fp32"})
(_tmp / "p.ini").write_text("[slurm]\npartition = debug\ncpus_per_task = 2\nmem_gb = 8\ntasks_per_node = 4\n"
                            "[run]\ncheckpoint_min = 20\n")
test_eq(slurm_options(_tmp / "p.ini").submitit_parameters()["mem_gb"], 8.0)
test_eq((slurm_options(_tmp / "p.ini").ranks, run_options(_tmp / "p.ini")), (4, {"checkpoint_min": 20.0}))
(_tmp / "bad.ini").write_text("[slurm]\ngpu = 1\n")
test_fail(lambda: slurm_options(_tmp / "bad.ini"), contains="unknown option 'gpu'")
test_fail(lambda: slurm_options(None, cpus_per_task=0), contains="cpus_per_task must be an integer >= 1")
test_fail(lambda: slurm_options(_tmp / "none.yaml"), contains="not a readable file")


# %% [markdown]
# ## Arrays and devices

# %%
#| export
def max_array_size() -> int | None:
    "The cluster's `MaxArraySize` (array indices run from 0 to one less), from `scontrol show config`; None if unknown."
    import re
    try: r = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired): return None
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", r.stdout, re.M)
    return int(m.group(1)) if m and r.returncode == 0 else None


# %%
#| export
def array_sizes(n: int, limit: int | None) -> list[int]:
    "How `n` runs are split into job arrays of at most `limit` elements (None: one array)."
    if n == 0: return []
    if not limit or n <= limit: return [n]
    return [min(limit, n - i) for i in range(0, n, limit)]


# %%
test_eq(array_sizes(1095, 1001), [1001, 94])
test_eq((array_sizes(5, None), array_sizes(0, 4), array_sizes(9, 4)), ([5], [], [4, 4, 1]))


# %%
#| export
def slurm_device(specs: dict, device, opts: SlurmOptions) -> str:
    """The device the Slurm jobs train on: the one asked for (CUDA needs GPUs per task), else CUDA when the jobs get
    GPUs, else the CPU — and an error, not a silent CPU sweep, when models that want a GPU would get none."""
    from pruning_repro.data import data_info
    from pruning_repro.models import prefers_gpu
    from pruning_repro.placement import requested_device
    asked = requested_device(device)
    if asked is not None and asked.startswith("cuda") and not opts.gpus_per_task:
        raise ConfigError(f"--device {asked} on Slurm needs GPUs in each job: add --gpus-per-task N (or gpus_per_task "
                          f"in the profile)")
    if asked is not None: return asked
    if opts.gpus_per_task: return "cuda"
    want = sorted({s.model.arch for s in specs.values() if prefers_gpu(s.model, data_info(s.data.dataset))})
    if want:
        raise ConfigError(f"the runs of this sweep ({', '.join(want)}) train on GPUs, but the Slurm jobs would get "
                          f"none: add --gpus-per-task N (or gpus_per_task in the profile), or --device cpu to train "
                          f"them on CPUs deliberately")
    return "cpu"


# %%
from pruning_repro.config import get_bench
_r20 = {"r": get_bench("resnet20_c10", "smoke").run_spec()}
test_fail(lambda: slurm_device(_r20, None, SlurmOptions()), contains="train on GPUs")
test_fail(lambda: slurm_device(_r20, "cuda", SlurmOptions()), contains="--gpus-per-task")
test_eq((slurm_device(_r20, None, SlurmOptions(gpus_per_task=1)), slurm_device(_r20, "cpu", SlurmOptions())),
        ("cuda", "cpu"))
test_eq(slurm_device({"l": get_bench("lenet_mnist1d", "smoke").run_spec()}, None, SlurmOptions()), "cpu")


# %% [markdown]
# ## One job
#
# `SlurmRun` is what each array element executes: `executors.run_job`, behind the preemption handler.

# %%
#| export
def _job_state(job_id) -> str | None:
    "This Slurm job's state as `squeue` says it (RUNNING, COMPLETING, CANCELLED...); None when it cannot be asked."
    if not job_id: return None
    try: r = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired): return None
    return (r.stdout.split() or [None])[0] if r.returncode == 0 else None


# %%
#| export
def on_slurm_sigterm(requeue, environ=None, state=None):
    """What `SIGTERM` does in a Slurm job once the level in training has taken its snapshot: rank 0 of a job that
    Slurm still shows RUNNING — preempted, in its grace time — is requeued by `requeue` (submitit's handler, as for
    `SIGUSR2`); a job that is no longer running — `scancel`, whose SIGTERM must not bring the job back — exits. The
    other ranks wait for rank 0 (submitit's rule: they neither requeue nor exit)."""
    import os
    state = state or _job_state
    def on_term(sig, frame):
        e = os.environ if environ is None else environ
        if int(e.get("SLURM_PROCID", 0) or 0) != 0: return
        if state(e.get("SLURM_JOB_ID")) == "RUNNING" and callable(requeue): requeue(sig, frame)
        raise SystemExit(128 + int(sig))
    return on_term


# %% [markdown]
# `SIGTERM` after the snapshot: rank 0 of a preempted job (still RUNNING) is requeued; after `scancel` it only exits;
# the other ranks leave it to rank 0.

# %%
_calls = []
_term = lambda state, rank="0": on_slurm_sigterm(lambda s, f: _calls.append(s), {"SLURM_JOB_ID": "5",
                                                  "SLURM_PROCID": rank}, lambda job: state)
def _exit_code(f):
    try: f()
    except SystemExit as e: return e.code
test_eq((_exit_code(lambda: _term("RUNNING")(15, None)), _calls), (143, [15]))
test_eq((_exit_code(lambda: _term("CANCELLED")(15, None)), _calls), (143, [15]))       # not requeued
test_eq((_term("RUNNING", "1")(15, None), _calls), (None, [15]))


# %%
#| export
class SlurmRun(submitit.helpers.Checkpointable):
    """One run as a Slurm job — in each of its tasks, when it has several: one data-parallel run (`executors.run_job`).
    Checkpointable: at its time limit Slurm sends `SIGUSR2`, and when it preempts the job `SIGTERM`; either way the
    level in training takes a snapshot (`snapshots.PREEMPTION`), then submitit requeues the job (`on_slurm_sigterm`: not
    after an `scancel`), which resumes from the store."""
    def __call__(self, spec_dict: dict, root: str, label, threads, device, runtime, platform=None):
        import os, signal
        usr = signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]
        requeue = signal.getsignal(usr)                 # submitit's checkpoint-and-requeue
        PREEMPTION.install(usr)
        if usr != signal.SIGTERM: PREEMPTION.install(signal.SIGTERM, on_slurm_sigterm(requeue))
        return run_job(spec_dict, root, label, threads, device, runtime, platform)


# %% [markdown]
# ## The sweep on Slurm
#
# Submitting and waiting need a cluster: `tests/test_sweep.py` runs them against one. The messages they give are checked
# here.

# %%
#| export
def sweep_slurm(missing: dict, st, rep: SweepReport, opts: SlurmOptions, device, runtime) -> None:
    """The Slurm executor of `executors.sweep`: the `missing` runs ({RunKey: RunSpec}) as job arrays (under
    `MaxArraySize`) of `SlurmRun`s, waited for (`_poll`), each result or failure written into `rep`; an interrupted
    sweep cancels them."""
    import logging
    from tqdm import tqdm
    logging.getLogger("submitit").setLevel(logging.ERROR)   # without accounting every poll warns about sacct
    runtime = runtime or Runtime()
    folder = st.root / "_slurm"
    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm", slurm_max_num_timeout=opts.max_requeues)
    labels, sizes = list(missing), array_sizes(len(missing), max_array_size())
    # the arrays a sweep is split into share its parallelism
    ex.update_parameters(**opts.submitit_parameters(max(1, -(-opts.array_parallelism // len(sizes)))))
    jobs, start, bar = [], 0, None
    with terminating_on_sigterm():
        try:
            for n in sizes:
                chunk = labels[start:start + n]; start += n
                try:        # submitit echoes a refusing sbatch's stderr: it is in the one error line instead
                    with contextlib.redirect_stderr(io.StringIO()) as echoed:
                        jobs += ex.map_array(SlurmRun(), [missing[k].to_dict() for k in chunk], [str(st.root)] * n,
                                             chunk, [opts.cpus_per_task] * n, [device] * n, [runtime] * n,
                                             [platform()] * n)
                    sys.stderr.write(echoed.getvalue())
                except (submitit.core.utils.FailedJobError, OSError) as e:
                    raise ConfigError(_submission_error(str(e), len(jobs))) from None
            rep.job_ids = [j.job_id for j in jobs]
            arrays = sorted({j.job_id.split("_")[0] for j in jobs})
            bar = tqdm(total=len(jobs), desc=f"runs (slurm array{'s' if len(arrays) > 1 else ''} {', '.join(arrays)})",
                       unit="run", disable=not runtime.progress)
            _poll(dict(zip(labels, jobs)), {}, rep, opts, bar)
        except BaseException:
            # Ctrl-C, SIGTERM, or a later array refused: no job may run on without the sweep that reports it
            _scancel(jobs)
            raise
        finally:
            if bar is not None: bar.close()


# %%
#| export
def _submission_error(text: str, submitted: int) -> str:
    "One line for an `sbatch` that refused the array: the controller unreachable, or sbatch's own last error line."
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    last = next((l for l in reversed(lines) if "error" in l.lower()), lines[-1] if lines else "no message")
    done = f"; {submitted} jobs submitted before were cancelled" if submitted else "; nothing was submitted"
    if "contact slurm controller" in text.lower() or "connection refused" in text.lower():
        return f"the Slurm controller cannot be reached ({last}){done}; check `sinfo`, or retry later"
    return f"sbatch refused the job array ({last}){done}"


# %%
test_eq(_submission_error("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect "
                          "failure)", 0), "the Slurm controller cannot be reached (sbatch: error: Batch job "
        "submission failed: Unable to contact slurm controller (connect failure)); nothing was submitted; check "
        "`sinfo`, or retry later")


# %%
#| export
def _scancel(jobs) -> None:
    ids = sorted({j.job_id.split("_")[0] for j in jobs})
    if not ids: return
    try: subprocess.run(["scancel", *ids], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired): pass       # no scancel, or a controller that does not answer


# %%
#| export
def _squeue_ids() -> set[str] | None:
    "Job ids (array elements expanded) that Slurm still knows; None when squeue cannot be asked."
    try: r = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired): return None
    return set(r.stdout.split()) if r.returncode == 0 else None


# %%
#| export
def _failure_reason(text: str) -> str:
    "The exception line of a remote traceback (submitit wraps it in its own message)."
    import re
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    exc = [l for l in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", l)]
    return (exc or lines or ["no message"])[-1][:300]


# %%
test_eq(_failure_reason("Job (task=0) failed during processing with trace:\n----\nTraceback (most recent call last):\n"
                        "  File \"x.py\", line 1\nRuntimeError: No CUDA GPUs are available\n----\n"
                        "You can check full logs\n  - /x/13_0_log.out"), "RuntimeError: No CUDA GPUs are available")


# %%
#| export
def _poll(pending: dict, gone: dict, rep: SweepReport, opts: SlurmOptions, bar) -> None:
    """Wait for the arrays' jobs: a result (rank 0's, for a data-parallel job), a failure with its log, or a job that
    left the queue without a result. A requeued job stays in the queue (pending again) and is waited for."""
    while pending:
        queued = _squeue_ids()
        for k, j in list(pending.items()):
            if j.done():
                try: rep.finished.append(j.results()[0])
                except Exception as e:
                    rep.failed[k] = f"job {j.job_id} failed ({_failure_reason(str(e))}); log {j.paths.stderr}"
            elif queued is not None and j.job_id not in queued:
                gone[k] = gone.get(k, 0) + 1      # out of the queue without a result: give it two polls to appear
                if gone[k] < 3: continue
                rep.failed[k] = f"job {j.job_id} left the queue without a result (time limit, memory, node?); " \
                                f"log {j.paths.stderr}"
            else: gone.pop(k, None); continue
            del pending[k]; bar.update(1)
        if pending: time.sleep(opts.poll_s)
