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
# # The run store
#
# > Content-addressed run directories, atomic per-level results, checksummed safetensors checkpoints, a file lock.

# %%
#| default_exp store

# %% [markdown]
# Every figure of the paper is computed from the same trajectories: the dense model and its pruning levels, per
# (bench, noise, seed). The store makes sure each is trained **once**, whichever notebook asks first:
#
# * a run's directory is named by the hash of its canonical spec (`RunSpec.hash`), so equal specs share results and
#   any change of a hyperparameter makes a new run;
# * each level is saved when it finishes: the weights and masks (`model.safetensors`), the per-example training loss
#   and correctness (`per_example.safetensors`), and last `metrics.json`, which records the SHA-256 of the two
#   tensor files, which host and process wrote the level (`written_by`) and on what (`numerics`: device, torch /
#   CUDA / cuDNN / NCCL versions, precision, TF32 flags, compiled or not; `35_forward`), in strict JSON (a non-finite
#   metric is refused, never written as a bare `NaN`). A level is whole iff its `metrics.json` is valid (the metrics that
#   choose an optimum are finite numbers) and its files match their checksums;
# * every file is written to a temporary name and renamed into place (atomic on POSIX), so a killed process leaves
#   either the old state or the new one, never half a file;
# * a checkpoint is loaded only when its checksum matches; a corrupt one raises `CorruptRun`, and the level is
#   recomputed (`discard_level`; a damaged per-example file alone is re-evaluated from the level's weights). A file
#   whose bytes may be whole but that this machine cannot read (permissions, an I/O error) raises `StoreUnreadable`,
#   and nothing is deleted;
# * checkpoints are safetensors: loading them executes no code;
# * a lock file (`filelock`) serialises writers of one run: two processes asked for the same run do not train it
#   twice; the second waits — saying whose lock it waits for — and then finds the levels done.
#
# * a level that takes longer than a job may run (ResNet-50 trains 90 epochs per level) is **snapshotted while it
#   trains** (`26_snapshots`): `snapshot_<level>.json` names a checksum-named safetensors file with where the training
#   stands; a rerun — or a Slurm job requeued after its time limit — continues from it. Saving the level removes its
#   snapshot; discarding a level removes the snapshots of the later ones.
#
# Layout: `<root>/<hash[:16]>/{spec.json, run.lock, run.lock.owner, data.safetensors, rewind.safetensors, level_000/, level_001/, ...,
# snapshot_<level>.json}`, with `<root>` = `$PRUNING_REPRO_STORE` (default `~/.pruning_repro/store`).

# %%
#| export
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock, Timeout
from fastcore.basics import patch
from safetensors.torch import load as st_load, save as st_save

from pruning_repro.config import ConfigError, RunSpec
from pruning_repro.runtime import platform

# %%
#| hide
import tempfile
from fastcore.test import test_eq, test_fail


# %%
#| export
class CorruptRun(RuntimeError):
    "A stored file is missing or its bytes do not match its recorded checksum: the level it belongs to is recomputed."

class StoreUnreadable(ConfigError):
    """A stored file this machine cannot read (permissions, an I/O error, a path it cannot encode), whose bytes may
    well be whole: never a reason to delete anything. One error line; the run is left as it is."""

def store_root() -> Path:
    "The platform's run store (`runtime.Platform.store`, `$PRUNING_REPRO_STORE`; default `~/.pruning_repro/store`)."
    return platform().store_root()

def _unreadable(path: Path, e: OSError) -> StoreUnreadable:
    return StoreUnreadable(f"cannot read the stored file {os.fsdecode(path)!r}: {e.strerror or e} (nothing was "
                           f"deleted: the file may be whole; fix access to it and rerun)")

def _read_bytes(path: Path) -> bytes:
    "The bytes of a stored file; `CorruptRun` when it is missing, `StoreUnreadable` when it cannot be read."
    try: return Path(path).read_bytes()
    except FileNotFoundError: raise CorruptRun(f"{path} is missing") from None
    except OSError as e: raise _unreadable(path, e) from None

def _sha256_bytes(b: bytes) -> str: return hashlib.sha256(b).hexdigest()

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
    return h.hexdigest()


# %% [markdown]
# **Checksums, verified once.** Whether a level is whole means its files match their recorded checksums, so
# every reader — `is_complete`, the second stage's planning, the analyses, `export` — hashes them. A file is hashed
# once per process: its digest is remembered under its (path, size, modification time), so a big store is not
# read twice, and a file changed since (a flipped byte rewrites it) is hashed again. A file modified in the last two
# seconds is not remembered yet: a file system's clock has a grain of milliseconds, and a byte flipped within it
# would otherwise keep the old key.

# %%
#| export
_DIGESTS: dict = {}     # (path, size, mtime_ns) -> sha256 of the file's bytes, as hashed (or written) by this process

def _stat_key(path: Path):
    "(path, size, mtime) of a file, or None while its mtime is within 2 s of now (the clock's grain: not yet a key)."
    st = os.stat(path)
    return None if time.time_ns() - st.st_mtime_ns < 2_000_000_000 else (os.fsdecode(path), st.st_size, st.st_mtime_ns)

def file_digest(path: Path) -> str | None:
    "SHA-256 of `path` (cached by path, size and mtime); None when it is missing; `StoreUnreadable` when unreadable."
    try:
        key = _stat_key(path)
        if key is None: return _sha256(path)
        if key not in _DIGESTS: _DIGESTS[key] = _sha256(path)
        return _DIGESTS[key]
    except FileNotFoundError: return None
    except OSError as e: raise _unreadable(path, e) from None

def _remember(path: Path, digest: str) -> None:
    try: key = _stat_key(path)
    except OSError: return
    if key is not None: _DIGESTS[key] = digest


# %%
with tempfile.TemporaryDirectory() as tmp:
    p = Path(tmp) / "f.bin"; p.write_bytes(b"abc")
    test_eq(file_digest(p), hashlib.sha256(b"abc").hexdigest())
    os.utime(p, ns=(1, 1)); test_eq(file_digest(p), hashlib.sha256(b"abc").hexdigest())    # remembered
    p.write_bytes(b"abd"); os.utime(p, ns=(2, 2))                      # changed: another key, hashed again
    test_eq(file_digest(p), hashlib.sha256(b"abd").hexdigest())
    test_eq(file_digest(Path(tmp) / "none"), None)


# %%
#| export
def _atomic_write_bytes(path: Path, data: bytes) -> str:
    "Write `data` to a temporary name and rename it into place; a failed write (a full disk) leaves no temporary."
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data); f.flush(); os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try: os.unlink(tmp)
        except OSError: pass
        raise
    digest = _sha256_bytes(data)
    _remember(path, digest)
    return digest


# %%
with tempfile.TemporaryDirectory() as _d:
    _f = Path(_d) / "x.bin"
    test_eq(_atomic_write_bytes(_f, b"abc"), hashlib.sha256(b"abc").hexdigest())    # the checksum of what it wrote
    test_eq((_f.read_bytes(), [p.name for p in Path(_d).iterdir()]), (b"abc", ["x.bin"]))   # no temporary left


# %%
#| export
def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()})

def _atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    return _atomic_write_bytes(path, _tensor_bytes(tensors))

def _load_tensors(path: Path, want: str | None) -> dict[str, torch.Tensor]:
    """The tensors of a checksummed safetensors file (loading executes no code; the bytes are read by Python, so any
    path the file system holds can be read). Bytes other than `want` (or none), or bytes that are no safetensors:
    `CorruptRun`; a file this machine cannot read (permissions, I/O): `StoreUnreadable`."""
    data = _read_bytes(path)
    digest = _sha256_bytes(data)
    if want is None or digest != want:
        raise CorruptRun(f"{path} does not match its recorded checksum")
    _remember(path, digest)
    try: return dict(sorted(st_load(data).items()))    # in the file's (sorted) order, as `load_file` reads it
    except Exception as e:               # bytes that match a recorded checksum and are no safetensors: a bad record
        raise CorruptRun(f"{path} is not a valid safetensors file: {e}") from None


# %%
with tempfile.TemporaryDirectory() as _d:
    _f = Path(_d) / "t.safetensors"
    _sum = _atomic_save_tensors(_f, {"b": torch.ones(2), "a": torch.arange(3)})
    test_eq(list(_load_tensors(_f, _sum)), ["a", "b"])                              # the file's (sorted) order
    test_fail(lambda: _load_tensors(_f, "0" * 64), contains="does not match its recorded checksum")
    _f.write_bytes(b"not tensors"); test_fail(lambda: _load_tensors(_f, hashlib.sha256(b"not tensors").hexdigest()),
                                              contains="not a valid safetensors file")


# %%
#| export
def strict_json(obj) -> bytes:
    "JSON that every parser reads: a non-finite number is refused (`ValueError`), never written as a bare `NaN`."
    return json.dumps(obj, indent=1, allow_nan=False).encode()


# %%
test_eq(json.loads(strict_json({"a": 1.5})), {"a": 1.5})
test_fail(lambda: strict_json({"a": float("nan")}), exc=ValueError)


# %%
#| export
def check_writable(folder: Path, what: str = "folder") -> Path:
    "Create `folder` if needed and prove a file can be written in it; else one `ConfigError` naming it."
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.write_bytes(b""); probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write the {what} {folder}: {e.strerror or e}") from None
    return folder


# %% [markdown]
# **Whose lock.** Two processes asked for one run share its training: the second waits on the run's lock. Waiting
# says for whom — the holder's pid and host, written beside the lock when it was taken, and whether that process is
# stopped or gone when it runs on this host — so a stopped holder does not hang a command silently.

# %%
#| export
def _holder_state(pid: int) -> str:
    "'running', 'stopped' or 'gone' for a process of this host."
    try: status = Path(f"/proc/{pid}/status").read_text()
    except OSError: return "gone" if not Path("/proc/self").exists() or not _alive(pid) else "running"
    state = next((l.split()[1] for l in status.splitlines() if l.startswith("State:")), "R")
    return "stopped" if state in ("T", "t") else "gone" if state in ("Z", "X") else "running"

def _alive(pid: int) -> bool:
    try: os.kill(pid, 0); return True
    except ProcessLookupError: return False
    except OSError: return True


# %%
test_eq((_holder_state(os.getpid()), _alive(os.getpid())), ("running", True))


# %%
#| export
class RunLock:
    "The run's inter-process lock (`filelock`), which records its holder and names it to whoever waits."
    def __init__(self, path: Path, label: str = "", notice_s: float = 5.0, repeat_s: float = 300.0):
        self.lock, self.owner, self.label = FileLock(str(path)), Path(str(path) + ".owner"), label
        self.notice_s, self.repeat_s = notice_s, repeat_s

    def holder(self) -> str:
        try: h = json.loads(self.owner.read_text())
        except (OSError, ValueError): return "another process"
        where = f"pid {h.get('pid')} on {h.get('host')}"
        if h.get("host") == socket.gethostname() and isinstance(h.get("pid"), int): where += f" ({_holder_state(h['pid'])})"
        return where + (f", since {h['since']}" if h.get("since") else "")

    def __enter__(self):
        try: self.lock.acquire(timeout=self.notice_s)
        except Timeout:
            while True:
                print(f"waiting for the lock of run {self.label} ({self.lock.lock_file}), held by {self.holder()}",
                      file=sys.stderr, flush=True)
                try: self.lock.acquire(timeout=self.repeat_s); break
                except Timeout: continue
        try: self.owner.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                               "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        except OSError: pass
        return self

    def __exit__(self, *exc):
        try: self.owner.unlink(missing_ok=True)
        except OSError: pass
        self.lock.release()
        return False


# %%
#| export
class Store:
    """A directory of runs, one sub-directory per spec hash. Its methods are defined below, a few per cell
    (`@patch`): levels and their checksums, writing, reading, in-level snapshots, run-wide tensors, results."""
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root not in (None, "") else store_root()

    def check_writable(self) -> None:
        "Fail with one clear error, before any training, when runs cannot be written under the root."
        check_writable(self.root, "run store")

    def run_dir(self, spec: RunSpec) -> Path: return self.root / spec.hash()[:16]
    def level_dir(self, spec: RunSpec, level: int) -> Path: return self.run_dir(spec) / f"level_{level:03d}"

    def init_run(self, spec: RunSpec, label: str = "") -> Path:
        "Create the run directory and its `spec.json` (idempotent)."
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "spec.json").exists():
            _atomic_write_bytes(d / "spec.json", strict_json({"hash": spec.hash(), "label": label, "spec": spec.to_dict()}))
        return d

    def lock(self, spec: RunSpec) -> RunLock:
        "An inter-process lock on the run (use as a context manager); a waiter is told who holds it."
        self.run_dir(spec).mkdir(parents=True, exist_ok=True)
        return RunLock(self.run_dir(spec) / "run.lock", spec.hash()[:16])

    METRIC_KEYS = ("val_err", "sha256")    # a level is chosen by its val_err and read through its checksums
    FINITE_KEYS = ("val_err", "test_err", "train_err", "val_loss", "test_loss", "train_loss", "density")


# %%
_tmp = tempfile.mkdtemp()                        # one store for this chapter's checks (removed at its end)
from pruning_repro.config import get_bench
spec = get_bench("lenet_mnist", "smoke").run_spec(0.1, seed=0)
st = Store(_tmp)
test_eq(st.init_run(spec, "demo"), Path(_tmp) / spec.hash()[:16])                  # the run's folder: its hash
test_eq(json.loads((st.run_dir(spec) / "spec.json").read_text())["label"], "demo")
test_eq(st.level_dir(spec, 2).name, "level_002")
test_eq(Store("").root, store_root())                                              # '' is the default root


# %% [markdown]
# Reading: the metrics are checked (the keys a level is read by, finite numbers) before any tensor file is trusted.

# %%
#| export
def _finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

@patch
def _read_metrics(self: Store, path: Path) -> dict:
    try: m = json.loads(_read_bytes(path))
    except ValueError as e: raise CorruptRun(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(m, dict) or any(k not in m for k in self.METRIC_KEYS):
        raise CorruptRun(f"{path} lacks {', '.join(k for k in self.METRIC_KEYS if k not in m) if isinstance(m, dict) else 'a JSON object'}")
    bad = [k for k in self.FINITE_KEYS if k in m and not _finite_number(m[k])]
    if bad or not isinstance(m["sha256"], dict):
        raise CorruptRun(f"{path}: {', '.join(f'{k}={m[k]!r}' for k in bad) or 'sha256'} is not a finite number")
    return m

@patch
def metrics(self: Store, spec: RunSpec, level: int) -> dict:
    "The metrics of a stored level; `CorruptRun` naming the file when it is damaged."
    return self._read_metrics(self.level_dir(spec, level) / "metrics.json")


# %%
_m = st.level_dir(spec, 5) / "metrics.json"; _m.parent.mkdir(parents=True)
_m.write_text('{"val_err": 0.5, "sha256": {}}'); test_eq(st.metrics(spec, 5), {"val_err": 0.5, "sha256": {}})
_m.write_text('{"val_err": Infinity, "sha256": {}}')
test_fail(lambda: st.metrics(spec, 5), contains="val_err=inf is not a finite number")
_m.write_text('{"sha256": {}}'); test_fail(lambda: st.metrics(spec, 5), contains="lacks val_err")
shutil.rmtree(_m.parent)


# %% [markdown]
# A level is whole when its `metrics.json` is valid and every tensor file matches the checksum it records; the
# levels a run must train are the first damaged one and every later one.

# %%
#| export
@patch
def levels_done(self: Store, spec: RunSpec) -> list[int]:
    d = self.run_dir(spec)
    if not d.exists(): return []
    return sorted(int(p.parent.name[6:]) for p in d.glob("level_*/metrics.json"))

@patch
def damaged(self: Store, spec: RunSpec, level: int) -> set[str]:
    """The files of `level` that are missing or do not match their recorded checksums (`metrics.json` when it
    cannot be trusted: then all of them); empty when the level is whole. Hashes are cached (`file_digest`)."""
    d = self.level_dir(spec, level)
    try: m = self._read_metrics(d / "metrics.json")
    except CorruptRun: return {"metrics.json", "model.safetensors", "per_example.safetensors"}
    return {f for f, want in m["sha256"].items() if file_digest(d / f) != want}

@patch
def level_ok(self: Store, spec: RunSpec, level: int) -> bool:
    "Whether `level` is stored whole: a valid `metrics.json` and tensor files matching its checksums."
    return not self.damaged(spec, level)


# %%
test_eq((st.levels_done(spec), st.level_ok(spec, 0)), ([], False))
test_eq(st.damaged(spec, 0), {"metrics.json", "model.safetensors", "per_example.safetensors"})


# %%
#| export
@patch
def is_complete(self: Store, spec: RunSpec) -> bool:
    """Whether every level of `spec` (dense level 0 and its `prune.levels` pruning levels), its rewind point and
    its data record are whole."""
    return (all(self.level_ok(spec, lv) for lv in range(spec.prune.levels + 1)) and self.extra_ok(spec, "data")
            and self.extra_ok(spec, "rewind"))

@patch
def levels_to_train(self: Store, spec: RunSpec) -> list[int]:
    """The levels of `spec` a run must (re)train: the first one whose weights or metrics are damaged or missing, and
    every later one (they depend on it). A damaged per-example file alone is re-evaluated, not retrained."""
    first = next((lv for lv in range(spec.prune.levels + 1)
                  if self.damaged(spec, lv) - {"per_example.safetensors"}), None)
    return [] if first is None else list(range(first, spec.prune.levels + 1))

@patch
def clean_partial(self: Store, spec: RunSpec, level: int) -> None:
    "Remove what a killed writer left of `level` (temporary files), before the level is written again."
    for p in self.level_dir(spec, level).glob("*.tmp*"): p.unlink(missing_ok=True)
    for p in self.run_dir(spec).glob(f"snapshot_{level:03d}*.tmp*"): p.unlink(missing_ok=True)
    for p in self.run_dir(spec).glob(".*.tmp"): p.unlink(missing_ok=True)


# %%
test_eq((st.is_complete(spec), st.levels_to_train(spec)), (False, list(range(spec.prune.levels + 1))))
(st.level_dir(spec, 0)).mkdir(parents=True, exist_ok=True); (st.level_dir(spec, 0) / "x.tmp1").write_bytes(b"")
st.clean_partial(spec, 0); test_eq(list(st.level_dir(spec, 0).iterdir()), [])


# %% [markdown]
# In-level snapshots (`26_snapshots`) let a preempted run resume inside a level: the tensors are written under their
# checksum's name, then the JSON naming them, then the older file goes.

# %%
#| export
@patch
def snapshot_levels(self: Store, spec: RunSpec) -> list[int]:
    "The levels that have an in-level snapshot."
    d = self.run_dir(spec)
    return sorted(int(p.stem[9:]) for p in d.glob("snapshot_[0-9][0-9][0-9].json")) if d.exists() else []

@patch
def save_snapshot(self: Store, spec: RunSpec, level: int, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Record where the training of `level` stands: `tensors` (weights, optimizer state, generator...) and
    `meta` (JSON). The tensors go to a file named by their checksum, the JSON that names it replaces the old
    one, and only then is the old file removed: a writer killed at any moment leaves one whole snapshot."""
    d = self.init_run(spec)
    data = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    digest = _sha256_bytes(data)
    name = f"snapshot_{level:03d}.{digest[:16]}.safetensors"
    _atomic_write_bytes(d / name, data)
    _atomic_write_bytes(d / f"snapshot_{level:03d}.json", strict_json({**meta, "file": name, "sha256": digest}))
    for old in d.glob(f"snapshot_{level:03d}.*.safetensors"):
        if old.name != name: old.unlink(missing_ok=True)


# %%
st.save_snapshot(spec, 1, {"w": torch.zeros(2)}, {"step": 3}); test_eq(st.snapshot_levels(spec), [1])


# %%
#| export
@patch
def load_snapshot(self: Store, spec: RunSpec, level: int) -> tuple[dict, dict] | None:
    """(tensors, meta) of `level`'s in-level snapshot, checksum-verified; None when there is none or it is damaged
    (the level starts over); `StoreUnreadable` when it cannot be read."""
    d = self.run_dir(spec)
    try:
        meta = json.loads(_read_bytes(d / f"snapshot_{level:03d}.json"))
        return _load_tensors(d / meta["file"], meta["sha256"]), meta
    except (CorruptRun, ValueError, KeyError, TypeError): return None

@patch
def discard_snapshot(self: Store, spec: RunSpec, level: int) -> None:
    d = self.run_dir(spec)
    (d / f"snapshot_{level:03d}.json").unlink(missing_ok=True)
    for p in d.glob(f"snapshot_{level:03d}.*"): p.unlink(missing_ok=True)


# %%
_t, _meta = st.load_snapshot(spec, 1); test_eq((_t["w"], _meta["step"]), (torch.zeros(2), 3))
st.discard_snapshot(spec, 1); test_eq((st.snapshot_levels(spec), st.load_snapshot(spec, 1)), ([], None))


# %% [markdown]
# Writing a level: the tensor files first, `metrics.json` (with their checksums) last, so a killed writer never
# leaves a level that reads as whole.

# %%
#| export
def _per_example_out(per_example: dict) -> dict:
    return {k: v if v.dtype != torch.bool else v.to(torch.uint8) for k, v in per_example.items()}

@patch
def save_level(self: Store, spec: RunSpec, level: int, metrics: dict, per_example: dict[str, torch.Tensor],
               state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Write one finished level; `metrics.json` goes last and records the checksums of the tensor files. Metrics
    that are not strict JSON (a NaN) are refused before anything is written."""
    strict_json(metrics)
    d = self.level_dir(spec, level); d.mkdir(parents=True, exist_ok=True)
    # masks are 0/1: stored as uint8 (a quarter of float32's bytes), read back as float32
    tensors = {f"state.{k}": v for k, v in state.items()} | {f"mask.{k}": v.to(torch.uint8) for k, v in masks.items()}
    sums = {"model.safetensors": _atomic_save_tensors(d / "model.safetensors", tensors),
            "per_example.safetensors": _atomic_save_tensors(d / "per_example.safetensors", _per_example_out(per_example))}
    _atomic_write_bytes(d / "metrics.json", strict_json({**metrics, "level": level, "sha256": sums}))
    self.discard_snapshot(spec, level)          # the level is whole: its in-level snapshot has served

@patch
def save_per_example(self: Store, spec: RunSpec, level: int, per_example: dict[str, torch.Tensor],
                     metrics: dict | None = None) -> None:
    "Rewrite the per-example file of a stored level (its weights unchanged), then its metrics with the new checksum."
    strict_json(metrics or {})
    d, m = self.level_dir(spec, level), self.metrics(spec, level)
    digest = _atomic_save_tensors(d / "per_example.safetensors", _per_example_out(per_example))
    m.update(metrics or {}); m["sha256"] = {**m["sha256"], "per_example.safetensors": digest}
    _atomic_write_bytes(d / "metrics.json", strict_json(m))


# %%
st.save_level(spec, 0, {"val_err": 0.5}, {"train_correct": torch.tensor([True, False])}, {"w": torch.ones(2)},
              {"w": torch.ones(2)})
test_eq((st.levels_done(spec), st.level_ok(spec, 0)), ([0], True))
test_eq(st.levels_to_train(spec), list(range(1, spec.prune.levels + 1)))
test_fail(lambda: st.save_level(spec, 1, {"val_err": float("nan")}, {}, {}, {}), contains="not JSON compliant")
test_eq(st.levels_done(spec), [0])                                                  # nothing of level 1 written
st.save_per_example(spec, 0, {"train_correct": torch.tensor([True, True])}, {"note": 1})
test_eq((st.level_ok(spec, 0), st.metrics(spec, 0)["note"]), (True, 1))


# %%
#| export
@patch
def _load_checked(self: Store, spec: RunSpec, level: int, fname: str) -> dict[str, torch.Tensor]:
    return _load_tensors(self.level_dir(spec, level) / fname, self.metrics(spec, level)["sha256"].get(fname))

@patch
def load_state(self: Store, spec: RunSpec, level: int) -> tuple[dict, dict]:
    "(state, masks) saved at the end of `level`, checksum-verified."
    t = self._load_checked(spec, level, "model.safetensors")
    state = {k[6:]: v for k, v in t.items() if k.startswith("state.")}
    masks = {k[5:]: v.float() for k, v in t.items() if k.startswith("mask.")}
    return state, masks

@patch
def load_per_example(self: Store, spec: RunSpec, level: int) -> dict[str, torch.Tensor]:
    t = self._load_checked(spec, level, "per_example.safetensors")
    return {k: (v.bool() if k.endswith("correct") else v) for k, v in t.items()}


# %%
_state, _masks = st.load_state(spec, 0)
test_eq((_state["w"], _masks["w"].dtype), (torch.ones(2), torch.float32))                # masks stored as uint8
test_eq(st.load_per_example(spec, 0)["train_correct"], torch.tensor([True, True]))      # bools back as bools


# %%
#| export
@patch
def discard_level(self: Store, spec: RunSpec, level: int) -> None:
    """Forget a level (and every later one, which depends on it), and the in-level snapshots of the later ones
    (the snapshot of `level` itself started from the level before, which stays: it is kept)."""
    for lv in self.levels_done(spec):
        if lv >= level: shutil.rmtree(self.level_dir(spec, lv), ignore_errors=True)
    for lv in self.snapshot_levels(spec):
        if lv > level: self.discard_snapshot(spec, lv)


# %%
st.discard_level(spec, 0); test_eq(st.levels_done(spec), [])


# %% [markdown]
# Run-wide tensors (the rewind point, the data record) sit beside the levels, each with its checksum file.

# %%
#| export
@patch
def save_extra(self: Store, spec: RunSpec, name: str, tensors: dict[str, torch.Tensor]) -> None:
    d = self.init_run(spec)
    digest = _atomic_save_tensors(d / f"{name}.safetensors", tensors)
    _atomic_write_bytes(d / f"{name}.sha256", digest.encode())

@patch
def _extra_sum(self: Store, spec: RunSpec, name: str) -> str | None:
    try: return _read_bytes(self.run_dir(spec) / f"{name}.sha256").decode("ascii", "replace").strip()
    except CorruptRun: return None

@patch
def load_extra(self: Store, spec: RunSpec, name: str) -> dict[str, torch.Tensor]:
    return _load_tensors(self.run_dir(spec) / f"{name}.safetensors", self._extra_sum(spec, name))

@patch
def has_extra(self: Store, spec: RunSpec, name: str) -> bool:
    return (self.run_dir(spec) / f"{name}.sha256").exists()

@patch
def extra_ok(self: Store, spec: RunSpec, name: str) -> bool:
    "Whether the run-wide tensors `name` are stored and match their checksum."
    want = self._extra_sum(spec, name)
    return want is not None and file_digest(self.run_dir(spec) / f"{name}.safetensors") == want


# %%
st.save_extra(spec, "rewind", {"w": torch.arange(3.)})
test_eq((st.has_extra(spec, "rewind"), st.extra_ok(spec, "rewind"), st.extra_ok(spec, "data")), (True, True, False))
test_eq(st.load_extra(spec, "rewind")["w"], torch.arange(3.))


# %%
#| export
@patch
def results(self: Store, spec: RunSpec) -> pd.DataFrame:
    """One row per finished level with its metrics (an undefined one, stored as null, reads as NaN); what wrote it
    and how (`written_by`, `numerics`: device, versions, TF32, compiled) stays in `metrics`."""
    rows = [{k: (float("nan") if v is None else v) for k, v in self.metrics(spec, lv).items()
             if k not in ("sha256", "written_by", "numerics")} for lv in self.levels_done(spec)]
    return pd.DataFrame(rows)


# %%
st.save_level(spec, 0, {"val_err": 0.5, "noisy_train_err": None}, {}, {"w": torch.ones(2)}, {"w": torch.ones(2)})
test_eq(list(st.results(spec).columns), ["val_err", "noisy_train_err", "level"])
assert math.isnan(st.results(spec).noisy_train_err[0])                             # null (no noisy example) reads as NaN
shutil.rmtree(_tmp)

# %% [markdown]
# Checks: a round trip, the checksum catching a flipped byte, discard, and the hash-named directory.

# %%
from pruning_repro.config import get_bench
spec = get_bench("lenet_mnist", "smoke").run_spec(0.1, seed=0)
with tempfile.TemporaryDirectory() as tmp:
    st = Store(tmp)
    st.init_run(spec, "demo")
    test_eq(st.run_dir(spec).name, spec.hash()[:16])
    st.save_level(spec, 0, {"val_err": 0.5}, {"train_loss": torch.ones(3), "train_correct": torch.tensor([True, False, True])},
                  {"w": torch.arange(4.)}, {"w": torch.ones(4)})
    test_eq(st.levels_done(spec), [0])
    state, masks = st.load_state(spec, 0); test_eq(state["w"], torch.arange(4.))
    test_eq(st.load_per_example(spec, 0)["train_correct"], torch.tensor([True, False, True]))
    p = st.level_dir(spec, 0) / "model.safetensors"
    b = bytearray(p.read_bytes()); b[-1] ^= 1; p.write_bytes(bytes(b))
    test_fail(lambda: st.load_state(spec, 0), contains="checksum")
    st.discard_level(spec, 0); test_eq(st.levels_done(spec), [])
    # snapshots: the latest one is read back; a damaged one reads as none; saving the level removes it
    for k in (1., 2.): st.save_snapshot(spec, 0, {"w": torch.full((3,), k)}, {"step": int(k)})
    t, meta = st.load_snapshot(spec, 0); test_eq((t["w"][0].item(), meta["step"]), (2., 2))
    test_eq(len(list(st.run_dir(spec).glob("snapshot_000.*.safetensors"))), 1)      # the older file is gone
    f = st.run_dir(spec) / meta["file"]; f.write_bytes(f.read_bytes()[:-1])
    test_eq(st.load_snapshot(spec, 0), None)
    st.save_snapshot(spec, 0, {"w": torch.zeros(1)}, {}); test_eq(st.snapshot_levels(spec), [0])
    st.save_level(spec, 0, {"val_err": 0.5}, {"train_loss": torch.ones(3)}, {"w": torch.arange(4.)}, {"w": torch.ones(4)})
    test_eq(st.snapshot_levels(spec), [])
