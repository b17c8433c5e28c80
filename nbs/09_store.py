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
#   tensor files and which host and process wrote the level (`written_by`). A level is finished iff its
#   `metrics.json` exists;
# * every file is written to a temporary name and renamed into place (atomic on POSIX), so a killed process leaves
#   either the old state or the new one, never half a file;
# * a checkpoint is loaded only when its checksum matches; a corrupt one raises `CorruptRun`, and the level is
#   recomputed (`discard_level`);
# * checkpoints are safetensors: loading them executes no code;
# * a lock file (`filelock`) serialises writers of one run: two processes asked for the same run do not train it
#   twice; the second waits and then finds the levels done.
#
# * a level that takes longer than a job may run (ResNet-50 trains 90 epochs per level) is **snapshotted while it
#   trains** (`06_imp`): `snapshot_<level>.json` names a checksum-named safetensors file with where the training
#   stands; a rerun — or a Slurm job requeued after its time limit — continues from it. Saving the level removes its
#   snapshot; discarding a level removes the snapshots of the later ones.
#
# Layout: `<root>/<hash[:16]>/{spec.json, run.lock, data.safetensors, rewind.safetensors, level_000/, level_001/, ...,
# snapshot_<level>.json}`, with `<root>` = `$PRUNING_REPRO_STORE` (default `~/.pruning_repro/store`).

# %%
#| export
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock
from safetensors.torch import load_file, save_file

from pruning_repro.config import RunSpec

# %%
#| hide
import tempfile
from fastcore.test import test_eq, test_fail


# %%
#| export
class CorruptRun(RuntimeError):
    "A stored file does not match its recorded checksum."

def store_root() -> Path:
    return Path(os.environ.get("PRUNING_REPRO_STORE", Path.home() / ".pruning_repro" / "store")).expanduser()

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
    return h.hexdigest()

def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data); f.flush(); os.fsync(f.fileno())
    os.replace(tmp, path)

def _atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}, str(tmp))
    digest = _sha256(tmp)
    os.replace(tmp, path)
    return digest


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
        from pruning_repro.config import ConfigError
        raise ConfigError(f"cannot write the {what} {folder}: {e.strerror or e}") from None
    return folder

class Store:
    "A directory of runs, one sub-directory per spec hash."
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else store_root()

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
            _atomic_write_bytes(d / "spec.json", json.dumps({"hash": spec.hash(), "label": label, "spec": spec.to_dict()},
                                                            indent=1).encode())
        return d

    def lock(self, spec: RunSpec) -> FileLock:
        "An inter-process lock on the run (use as a context manager)."
        self.run_dir(spec).mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.run_dir(spec) / "run.lock"))

    # ---- levels ---------------------------------------------------------------------------------------------
    def levels_done(self, spec: RunSpec) -> list[int]:
        d = self.run_dir(spec)
        if not d.exists(): return []
        return sorted(int(p.parent.name[6:]) for p in d.glob("level_*/metrics.json"))

    def level_ok(self, spec: RunSpec, level: int) -> bool:
        """Whether `level` is stored whole: a `metrics.json` that parses, with the keys every analysis reads, and the
        tensor files it records (their checksums are verified when they are read)."""
        d = self.level_dir(spec, level)
        try: m = self._read_metrics(d / "metrics.json")
        except CorruptRun: return False
        return all((d / f).exists() for f in m["sha256"])

    def is_complete(self, spec: RunSpec) -> bool:
        "Whether every level of `spec` (dense level 0 and its `prune.levels` pruning levels) and its data record are whole."
        return all(self.level_ok(spec, lv) for lv in range(spec.prune.levels + 1)) and self.extra_ok(spec, "data")

    def levels_to_train(self, spec: RunSpec) -> list[int]:
        "The levels of `spec` a run must (re)train: the first damaged or missing one and every later one (they depend on it)."
        first = next((lv for lv in range(spec.prune.levels + 1) if not self.level_ok(spec, lv)), None)
        return [] if first is None else list(range(first, spec.prune.levels + 1))

    def clean_partial(self, spec: RunSpec, level: int) -> None:
        "Remove what a killed writer left of `level` (temporary files), before the level is written again."
        for p in self.level_dir(spec, level).glob("*.tmp*"): p.unlink(missing_ok=True)
        for p in self.run_dir(spec).glob(f"snapshot_{level:03d}*.tmp*"): p.unlink(missing_ok=True)

    def save_level(self, spec: RunSpec, level: int, metrics: dict, per_example: dict[str, torch.Tensor],
                   state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
        "Write one finished level; `metrics.json` goes last and records the checksums of the tensor files."
        d = self.level_dir(spec, level); d.mkdir(parents=True, exist_ok=True)
        # masks are 0/1: stored as uint8 (a quarter of float32's bytes), read back as float32
        tensors = {f"state.{k}": v for k, v in state.items()} | {f"mask.{k}": v.to(torch.uint8) for k, v in masks.items()}
        sums = {"model.safetensors": _atomic_save_tensors(d / "model.safetensors", tensors),
                "per_example.safetensors": _atomic_save_tensors(
                    d / "per_example.safetensors", {k: v if v.dtype != torch.bool else v.to(torch.uint8)
                                                    for k, v in per_example.items()})}
        _atomic_write_bytes(d / "metrics.json", json.dumps({**metrics, "level": level, "sha256": sums}, indent=1).encode())
        self.discard_snapshot(spec, level)          # the level is whole: its in-level snapshot has served

    METRIC_KEYS = ("val_err", "sha256")    # a level is chosen by its val_err and read through its checksums

    def _read_metrics(self, path: Path) -> dict:
        try: m = json.loads(path.read_text())
        except (OSError, ValueError) as e: raise CorruptRun(f"{path} cannot be read ({type(e).__name__}: {e})") from None
        if not isinstance(m, dict) or any(k not in m for k in self.METRIC_KEYS):
            raise CorruptRun(f"{path} lacks {', '.join(k for k in self.METRIC_KEYS if k not in m) if isinstance(m, dict) else 'a JSON object'}")
        return m

    def metrics(self, spec: RunSpec, level: int) -> dict:
        "The metrics of a stored level; `CorruptRun` naming the file when it is damaged."
        return self._read_metrics(self.level_dir(spec, level) / "metrics.json")

    def _load_checked(self, spec: RunSpec, level: int, fname: str) -> dict[str, torch.Tensor]:
        path = self.level_dir(spec, level) / fname
        want = self.metrics(spec, level)["sha256"][fname]
        if not path.exists() or _sha256(path) != want:
            raise CorruptRun(f"{path} is missing or does not match its recorded checksum")
        try: return load_file(str(path))      # safetensors: a header and raw tensors, no code is ever executed
        except Exception as e: raise CorruptRun(f"{path} is not a valid safetensors file: {e}") from None

    def load_state(self, spec: RunSpec, level: int) -> tuple[dict, dict]:
        "(state, masks) saved at the end of `level`, checksum-verified."
        t = self._load_checked(spec, level, "model.safetensors")
        state = {k[6:]: v for k, v in t.items() if k.startswith("state.")}
        masks = {k[5:]: v.float() for k, v in t.items() if k.startswith("mask.")}
        return state, masks

    def load_per_example(self, spec: RunSpec, level: int) -> dict[str, torch.Tensor]:
        t = self._load_checked(spec, level, "per_example.safetensors")
        return {k: (v.bool() if k.endswith("correct") else v) for k, v in t.items()}

    def discard_level(self, spec: RunSpec, level: int) -> None:
        """Forget a level (and every later one, which depends on it), and the in-level snapshots of the later ones
        (the snapshot of `level` itself started from the level before, which stays: it is kept)."""
        for lv in self.levels_done(spec):
            if lv >= level: shutil.rmtree(self.level_dir(spec, lv), ignore_errors=True)
        for lv in self.snapshot_levels(spec):
            if lv > level: self.discard_snapshot(spec, lv)

    # ---- in-level snapshots: resume inside a level ------------------------------------------------------------
    def snapshot_levels(self, spec: RunSpec) -> list[int]:
        "The levels that have an in-level snapshot."
        d = self.run_dir(spec)
        return sorted(int(p.stem[9:]) for p in d.glob("snapshot_[0-9][0-9][0-9].json")) if d.exists() else []

    def save_snapshot(self, spec: RunSpec, level: int, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Record where the training of `level` stands: `tensors` (weights, optimizer state, generator...) and
        `meta` (JSON). The tensors go to a file named by their checksum, the JSON that names it replaces the old
        one, and only then is the old file removed: a writer killed at any moment leaves one whole snapshot."""
        d = self.init_run(spec)
        tmp = d / f"snapshot_{level:03d}.safetensors.tmp{os.getpid()}"
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        digest = _sha256(tmp)
        name = f"snapshot_{level:03d}.{digest[:16]}.safetensors"
        os.replace(tmp, d / name)
        _atomic_write_bytes(d / f"snapshot_{level:03d}.json",
                            json.dumps({**meta, "file": name, "sha256": digest}, indent=1).encode())
        for old in d.glob(f"snapshot_{level:03d}.*.safetensors"):
            if old.name != name: old.unlink(missing_ok=True)

    def load_snapshot(self, spec: RunSpec, level: int) -> tuple[dict, dict] | None:
        "(tensors, meta) of `level`'s in-level snapshot, checksum-verified; None when there is none or it is damaged."
        d = self.run_dir(spec)
        try:
            meta = json.loads((d / f"snapshot_{level:03d}.json").read_text())
            path = d / meta["file"]
            if _sha256(path) != meta["sha256"]: return None
            return load_file(str(path)), meta
        except Exception: return None      # missing, unreadable, truncated: no snapshot, the level starts over

    def discard_snapshot(self, spec: RunSpec, level: int) -> None:
        d = self.run_dir(spec)
        (d / f"snapshot_{level:03d}.json").unlink(missing_ok=True)
        for p in d.glob(f"snapshot_{level:03d}.*"): p.unlink(missing_ok=True)

    # ---- run-wide tensors (rewind point, data description) ---------------------------------------------------
    def save_extra(self, spec: RunSpec, name: str, tensors: dict[str, torch.Tensor]) -> None:
        d = self.init_run(spec)
        digest = _atomic_save_tensors(d / f"{name}.safetensors", tensors)
        _atomic_write_bytes(d / f"{name}.sha256", digest.encode())

    def load_extra(self, spec: RunSpec, name: str) -> dict[str, torch.Tensor]:
        d = self.run_dir(spec)
        p, s = d / f"{name}.safetensors", d / f"{name}.sha256"
        if not (p.exists() and s.exists()) or _sha256(p) != s.read_text():
            raise CorruptRun(f"{p} is missing or does not match its recorded checksum")
        return load_file(str(p))

    def has_extra(self, spec: RunSpec, name: str) -> bool:
        return (self.run_dir(spec) / f"{name}.sha256").exists()

    def extra_ok(self, spec: RunSpec, name: str) -> bool:
        "Whether the run-wide tensors `name` are stored and match their checksum."
        d = self.run_dir(spec)
        p, s = d / f"{name}.safetensors", d / f"{name}.sha256"
        return p.exists() and s.exists() and _sha256(p) == s.read_text()

    def results(self, spec: RunSpec) -> pd.DataFrame:
        "One row per finished level with its metrics."
        rows = [{k: v for k, v in self.metrics(spec, lv).items() if k not in ("sha256", "written_by")}
                for lv in self.levels_done(spec)]
        return pd.DataFrame(rows)


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
