"""Sweeps on a real single-node Slurm cluster (slurmctld + slurmd on loopback, jobs through submitit) and locally,
and the run store under SIGKILL, corruption, two processes at once, and a checkpoint that carries a pickle payload."""
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import BIN, REPO, run
from pruning_repro.config import get_bench
from pruning_repro.store import CorruptRun, Store
from pruning_repro.sweep import study_runs
from pruning_repro.runtime import Runtime

CLI = str(BIN / "pruning-repro")


# ---- a real Slurm cluster, one node on loopback -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout: float, what: str):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond(): return
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


MAX_ARRAY = 5      # a small MaxArraySize (the default is 1001): the smoke sweep of 12 runs becomes 3 arrays


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """slurmctld + slurmd from Debian's slurm-wlm with a generated slurm.conf (one node = this machine, loopback,
    no accounting, arrays of at most MAX_ARRAY elements so that sweeps are split), munged started if it is not
    running; everything stopped afterwards. Needs root (the test command installs slurm-wlm and munge)."""
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol") if not shutil.which(b)]
    assert not missing, f"Slurm is not installed ({', '.join(missing)} missing): `make test` installs slurm-wlm and munge"
    assert os.geteuid() == 0, "the single-node Slurm cluster of this test is started as root"
    d = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=pruningrepro", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "SchedulerType=sched/backfill",
        "MpiDefault=none", "ReturnToService=2", "JobCompType=jobcomp/none",
        "AccountingStorageType=accounting_storage/none",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        f"StateSaveLocation={d}/state", f"SlurmdSpoolDir={d}/spool",
        f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd.pid",
        f"SlurmctldLogFile={d}/slurmctld.log", f"SlurmdLogFile={d}/slurmd.log",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
        f"MaxArraySize={MAX_ARRAY}", "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    (d / "state").mkdir(); (d / "spool").mkdir()
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    started_munge = False
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        subprocess.run(["munged", "--force"], check=True, capture_output=True)
        started_munge = True
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, capture_output=True)
        subprocess.run(["slurmd", "-f", str(conf)], check=True, capture_output=True)
        def idle():
            r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.strip() == "idle"
        _wait(idle, 60, "the Slurm node to become idle")
        yield {"conf": conf, "dir": d, "host": host}
    finally:
        subprocess.run(["scontrol", "shutdown"], capture_output=True)
        for pid_file in ("slurmd.pid", "slurmctld.pid"):
            try: os.kill(int((d / pid_file).read_text()), signal.SIGTERM)
            except (OSError, ValueError): pass
        if started_munge: subprocess.run(["pkill", "-x", "munged"], capture_output=True)
        if old is None: os.environ.pop("SLURM_CONF", None)
        else: os.environ["SLURM_CONF"] = old


def test_smoke_sweep_on_slurm(slurm_cluster, isolated):
    store = isolated / "store"
    argv = [CLI, "sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "1", "--noise", "0", "0.3",
            "--sections", "sec3_training", "sec4_noise", "--executor", "slurm", "--partition", "debug", "--cpus-per-task", "1", "--time-min", "10",
            "--store", str(store)]
    r = run(argv, timeout=900)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = study_runs(get_bench("lenet_mnist1d", "smoke"), ["sec3_training", "sec4_noise"], (0, 1), (0.0, 0.3))
    assert f"{len(runs)} runs in the study, 0 already complete, {len(runs)} submitted (slurm), {len(runs)} finished " \
           f"on {socket.gethostname()}" in r.stdout
    # split under the cluster's MaxArraySize, read from `scontrol show config`: 12 runs -> arrays of 5, 5 and 2
    from pruning_repro.slurm import array_sizes
    sizes = array_sizes(len(runs), MAX_ARRAY)
    assert len(sizes) > 1 and f"{len(sizes)} job array(s) of {', '.join(map(str, sizes))}" in r.stdout, r.stdout
    st = Store(store)
    for spec in runs.values():                              # every run complete, every checkpoint loads
        assert st.levels_done(spec) == list(range(spec.prune.levels + 1))
        st.load_state(spec, spec.prune.levels)
    logs = list((store / "_slurm").glob("*/*_result.pkl"))
    assert len(logs) == len(runs)                            # one submitit result per array element
    arrays = {p.name.split("_")[0] for p in logs}
    assert len(arrays) == len(sizes)                         # in as many arrays
    # a second sweep submits nothing
    r2 = run(argv, timeout=300)
    assert r2.returncode == 0 and f"{len(runs)} already complete, 0 submitted" in r2.stdout, r2.stdout + r2.stderr


def test_plugin_sweep_on_slurm(slurm_cluster, isolated):
    "A plugin named once on the command line reaches the Slurm jobs (its bench, data set, model and heuristic)."
    plugins = str(Path(__file__).parent / "plugins")
    r = run([CLI, "--plugins", "demo_plugin", "sweep", "--bench", "demo_blobs_mlp", "--scale", "smoke", "--seeds", "0",
             "--noise", "0.3", "--sections", "sec4_noise", "--executor", "slurm", "--partition", "debug",
             "--cpus-per-task", "1", "--time-min", "10", "--store", str(isolated / "store")],
            env={"PYTHONPATH": plugins + os.pathsep + os.environ.get("PYTHONPATH", "")}, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 runs in the study, 0 already complete, 3 submitted (slurm), 3 finished" in r.stdout, r.stdout


def test_sigterm_cancels_the_slurm_array(slurm_cluster, isolated):
    "SIGTERM to a Slurm sweep cancels its array: no job runs on without the sweep that reports it."
    p = subprocess.Popen([CLI, "sweep", "--bench", "lenet_fashion", "--seeds", "0", "--sections", "sec4_noise",
                          "--executor", "slurm", "--partition", "debug", "--cpus-per-task", "1", "--time-min", "10",
                          "--store", str(isolated / "store")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PRUNING_REPRO_PROGRESS": "0"})
    queued = lambda: subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
    _wait(lambda: len(queued()) > 0, 120, "the array in the queue")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    _wait(lambda: not queued(), 60, "the array to be cancelled")
    assert p.returncode != 0


def test_failed_slurm_job_is_reported_and_the_rest_kept(slurm_cluster, isolated):
    store = isolated / "store"
    # the jobs cannot write the data cache (a file stands where its folder should be): every job fails when it loads
    # its data; the sweep says so with the log, exits 1, writes no level
    (isolated / "not_a_folder").write_text("")
    r = run([CLI, "sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "--noise", "0",
             "--sections", "sec3_training", "--executor", "slurm", "--time-min", "5",
             "--store", str(store)], env={"PRUNING_REPRO_CACHE": str(isolated / "not_a_folder" / "cache")}, timeout=600)
    print(r.stdout, r.stderr)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 FAILED" in r.stdout and ".err" in r.stdout and "Error" in r.stdout
    assert len([l for l in r.stderr.splitlines() if l.startswith("error:")]) == 1
    assert not list(store.glob("*/level_*/metrics.json"))


def test_time_limited_job_is_requeued_and_resumes_from_its_snapshot(slurm_cluster, isolated):
    """One run of about 40 s of training under a one-minute time limit: Slurm signals the job (SIGUSR2, asked 30 s
    before the limit; Slurm may send it up to a minute early), the level in training takes a snapshot, submitit
    requeues the job, and the requeued job continues from the snapshot — the sweep waits for it and reports it
    finished; nobody reruns the sweep. (Slurm holds a requeued job for about two minutes, `Reason=BeginTime`; the
    test releases it after 3 s. Not at once: slurmd revokes the old launch's credential with one-second resolution,
    and a job restarted within that second is killed as "Job credential revoked", which a real cluster's hold
    never meets.)"""
    plugins = str(Path(__file__).parent / "plugins")
    store = isolated / "store"
    p = subprocess.Popen([CLI, "--plugins", "slow_plugin", "sweep", "--bench", "slow_mnist1d", "--seeds", "0",
                          "--noise", "0", "--sections", "sec4_noise", "--executor", "slurm", "--partition", "debug",
                          "--cpus-per-task", "1", "--time-min", "1", "--signal-delay-s", "30", "--checkpoint-min",
                          "0.05", "--store", str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": plugins + os.pathsep + os.environ.get("PYTHONPATH", "")})
    held_since, t0 = {}, time.time()
    while p.poll() is None and time.time() - t0 < 1200:
        q = subprocess.run(["squeue", "-h", "-o", "%i %r"], capture_output=True, text=True).stdout.split("\n")
        holding = [l.split()[0] for l in q if l.strip().endswith("BeginTime")]
        held_since = {job: held_since.get(job, time.time()) for job in holding}
        for job, since in held_since.items():
            if time.time() - since >= 3:
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        time.sleep(1)
    out, err = p.communicate(timeout=60)
    print(out[-2000:], err[-2000:])
    assert p.returncode == 0, out + err
    assert "1 runs in the study, 0 already complete, 1 submitted (slurm), 1 finished" in out, out
    logs = "".join(f.read_text(errors="replace") for f in (store / "_slurm").rglob("*_log.*"))
    assert "Caught signal SIGUSR2" in logs and "Requeued job" in logs, logs[-3000:]
    # the run and its dense root, read from the store (the plugin's bench is not registered in this process)
    from pruning_repro.config import RunSpec
    specs = [RunSpec.from_dict(json.loads(f.read_text())["spec"]) for f in store.glob("*/spec.json")]
    st = Store(store)
    assert sorted(s.prune.levels for s in specs) == [0, 1] and all(st.is_complete(s) for s in specs)
    resumed = [lv for s in specs for lv in range(s.prune.levels + 1) if "resumed_at_step" in st.metrics(s, lv)["written_by"]]
    assert resumed, "no level was resumed from an in-level snapshot"


def test_two_task_data_parallel_run_on_slurm(slurm_cluster, isolated):
    "Each array element one run of 2 ranks (2 Slurm tasks, gloo): every level stored once, by rank 0, as 2 ranks."
    from pruning_repro.imp import run_imp
    store = isolated / "store"
    r = run([CLI, "sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "--noise", "0.3",
             "--sections", "sec4_noise", "--executor", "slurm", "--partition", "debug", "--cpus-per-task", "1",
             "--tasks-per-node", "2", "--time-min", "10", "--store", str(store)], timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = study_runs(get_bench("lenet_mnist1d", "smoke"), ["sec4_noise"], (0,), (0.3,))
    assert f"{len(runs)} runs in the study, 0 already complete, {len(runs)} submitted (slurm), {len(runs)} finished" \
        in r.stdout, r.stdout
    st, one = Store(store), Store(isolated / "one")
    for k, spec in runs.items():
        assert st.is_complete(spec)
        ref = run_imp(spec, one, "cpu", runtime=Runtime(progress=False))                   # the same run in one process
        for lv in range(spec.prune.levels + 1):
            m = st.metrics(spec, lv)
            assert m["written_by"]["ranks"] == 2, (k, lv)
            assert abs(m["test_err"] - ref.test_err[lv]) <= 1.01 / 200, (k, lv)


def test_local_sweep_matches_the_study(isolated):
    # every section at its own noise levels (the bench's; none for App. C)
    r = run([CLI, "sweep", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0", "--workers", "2"],
            timeout=600)
    assert r.returncode == 0, r.stderr
    from pruning_repro.store import Store
    from pruning_repro.sweep import SECTION_AFTER, dependent_runs, section_noise
    b, st = get_bench("lenet_mnist1d", "smoke"), Store(isolated / "store")
    first = study_runs(b, None, (0,))
    # then the second stage: the retrainings of App. D, E and K, named from the first stage's results
    after = {v.hash(): v for sec in SECTION_AFTER for v in dependent_runs(sec, b, (0,), section_noise(sec, b), st).values()}
    assert after and all(len(st.levels_done(v)) == 1 for v in after.values())
    n = len(first) + len(after)
    assert f"{n} runs in the study, 0 already complete, {n} submitted (local), {n} finished" in r.stdout


# ---- the store under kills, corruption and concurrency -------------------------------------------------------------
TRAIN = """
import sys, torch
from dataclasses import replace
torch.set_num_threads({threads})
from pruning_repro.config import get_bench
from pruning_repro.imp import run_imp
from pruning_repro.store import Store
from pruning_repro.runtime import Runtime
s = get_bench("lenet_mnist", "smoke").run_spec(0.1, 0)
s = replace(s, train=replace(s.train, epochs={epochs}), prune=replace(s.prune, levels={levels}))
res = run_imp(s, Store(), "cpu", runtime=Runtime(progress=False))
print("RESULT", res.test_err.round(6).tolist(), flush=True)
"""


def _spec(epochs, levels):
    from dataclasses import replace
    s = get_bench("lenet_mnist", "smoke").run_spec(0.1, 0)
    return replace(s, train=replace(s.train, epochs=epochs), prune=replace(s.prune, levels=levels))


def _script(epochs, levels):
    return TRAIN.format(threads=torch.get_num_threads(), epochs=epochs, levels=levels)


def test_sigkill_mid_level_resumes_bit_identical(tiny_mnist, isolated):
    epochs, levels = 40, 4
    spec, st = _spec(epochs, levels), Store()
    p = subprocess.Popen([sys.executable, "-c", _script(epochs, levels)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    _wait(lambda: 1 in st.levels_done(spec) or p.poll() is not None, 300, "level 1 to finish")
    p.send_signal(signal.SIGKILL)
    p.wait()
    done = st.levels_done(spec)
    print(f"killed with levels {done} of 0..{levels} finished")
    assert p.returncode == -signal.SIGKILL and done and done[-1] < levels, (p.returncode, done)
    # resume in this process; the reference is an uninterrupted run in another store
    from pruning_repro.imp import run_imp
    resumed = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    ref_store = Store(isolated / "ref")
    ref = run_imp(spec, ref_store, "cpu", runtime=Runtime(progress=False))
    assert resumed.test_err.tolist() == ref.test_err.tolist()
    for lv in range(levels + 1):
        a, b = st.load_state(spec, lv)[0], ref_store.load_state(spec, lv)[0]
        assert all(torch.equal(a[k], b[k]) for k in a), f"level {lv} differs"
        pa, pb = st.load_per_example(spec, lv), ref_store.load_per_example(spec, lv)
        assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_two_processes_same_run_train_it_once(tiny_mnist):
    epochs, levels = 10, 2
    spec, st = _spec(epochs, levels), Store()
    procs = [subprocess.Popen([sys.executable, "-c", _script(epochs, levels)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [next(l for l in o[0].splitlines() if l.startswith("RESULT")) for o in outs]
    assert results[0] == results[1]                          # the waiting process reused the other's levels
    writers = {st.metrics(spec, lv)["written_by"]["pid"] for lv in range(levels + 1)}
    print(f"processes {[p.pid for p in procs]}, levels written by {writers}")
    assert len(writers) == 1 and writers <= {p.pid for p in procs}   # every level written by one process
    assert not list(st.run_dir(spec).rglob("*.tmp*"))         # no half-written files left
    for lv in range(levels + 1): st.load_state(spec, lv)     # every checksum holds


def test_checkpoint_never_unpickled(tiny_mnist, isolated):
    from pruning_repro.imp import run_imp
    spec, st = _spec(2, 1), Store()
    ref = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    stored = {p.suffix for p in st.run_dir(spec).rglob("*") if p.is_file()}
    assert stored <= {".json", ".safetensors", ".sha256", ".lock"}, stored   # no pickle anywhere
    # an attacker's pickle in place of a checkpoint, even with a matching checksum, is refused and never executed
    sentinel = isolated / "pwned"
    class Payload:
        def __reduce__(self): return (os.system, (f"touch {sentinel}",))
    lv = st.level_dir(spec, 0)
    (lv / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    m = json.loads((lv / "metrics.json").read_text())
    from pruning_repro.store import _sha256
    m["sha256"]["model.safetensors"] = _sha256(lv / "model.safetensors")
    (lv / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(CorruptRun, match="not a valid safetensors file"):
        st.load_state(spec, 0)
    assert not sentinel.exists()
    # IMP recomputes the level (its successor needs it) and ends where it did before
    st.discard_level(spec, 1)
    again = run_imp(spec, st, "cpu", runtime=Runtime(progress=False))
    assert again.test_err.tolist() == ref.test_err.tolist() and not sentinel.exists()


def test_local_sweep_trains_dependent_retrainings_once(isolated):
    "App. D's TIE/RND retrainings are named by the IMP run's per-example losses: the sweep trains both stages."
    from pruning_repro.config import get_bench
    from pruning_repro.executors import sweep
    b = get_bench("lenet_mnist1d", "smoke")
    from pruning_repro.study import Study
    from pruning_repro.runtime import Runtime
    study = Study("lenet_mnist1d", "smoke", seeds=(0,), store=isolated / "store", sections=["appD_leave_out"])
    rep = sweep(study, Runtime(workers=2))
    assert rep.ok and rep.runs == 1 + 2 * b.prune.levels and rep.submitted == rep.runs, rep.summary()
    again = sweep(study, Runtime(workers=2))
    assert (again.runs, again.complete_before, again.submitted) == (rep.runs, rep.runs, 0)
    dry = sweep(Study("lenet_mnist1d", "smoke", seeds=(0,), store=isolated / "store2", sections=["appE_dense_subset"]),
                dry_run=True)
    assert dry.pending_stage == ["appE_dense_subset"] and "named once" in dry.summary()


# issue 22: App. K.2's retrainings run where the paper ran them (ResNet-20, VGG-16 on CIFAR-10) and, as an extra,
# on the embedded benches; never on ResNet-32 / ResNet-50 / LeNet-MNIST, where they are compute the paper never spent
def test_appK2_retrainings_only_where_the_paper_ran_them(tmp_path):
    from pruning_repro.config import get_bench
    from pruning_repro.store import Store
    from pruning_repro.sweep import SECTION_AFTER, runs_appK2
    assert runs_appK2(get_bench("resnet20_c10")) and runs_appK2(get_bench("vgg16_c10"))
    assert runs_appK2(get_bench("lenet_fashion_e60_l5", "smoke"))
    for name in ("resnet32_c100", "resnet50_imagenet", "lenet_mnist"):
        b = get_bench(name, "smoke")
        assert not runs_appK2(b)
        # nothing is named, and the store is not read (the first stage need not exist)
        assert SECTION_AFTER["appK_examples"](b, (0,), (0.0,), Store(tmp_path)) == {}
