"""Shared fixtures: every test gets its own data root, cache and run store; tiny data sets are written in the exact
on-disk formats the real loaders read."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pruning_repro import formats as FM
from pruning_repro import data as D
from pruning_repro.runtime import install

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    "Fresh PRUNING_REPRO_{DATA,CACHE,STORE} per test, no progress bars, eager training."
    env = {"PRUNING_REPRO_DATA": tmp_path / "data", "PRUNING_REPRO_CACHE": tmp_path / "cache",
           "PRUNING_REPRO_STORE": tmp_path / "store"}
    for k, v in env.items(): monkeypatch.setenv(k, str(v))
    monkeypatch.setenv("PRUNING_REPRO_PROGRESS", "0")
    monkeypatch.setenv("PRUNING_REPRO_COMPILE", "0")      # eager at smoke size; tests/test_speed.py covers compile
    D._load_raw.cache_clear()
    install(None)                                       # no platform a section's first cell installed in an earlier test
    yield tmp_path
    install(None)
    D._load_raw.cache_clear()


@pytest.fixture
def tiny_cifar(isolated):
    "CIFAR-10 and CIFAR-100 in the official pickle layout: 150 training and 60 test images each."
    root = isolated / "data"
    FM.write_cifar(root, "cifar10", n_train=150, n_test=60)
    FM.write_cifar(root, "cifar100", n_train=150, n_test=60)
    return root


@pytest.fixture
def tiny_mnist(isolated):
    root = isolated / "data"
    FM.write_idx(root, "MNIST", n_train=600, n_test=200, gz=True)
    return root


def run(cmd, **kw):
    "Run a command from the repository root; returns the CompletedProcess (text)."
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.run(cmd, cwd=kw.pop("cwd", REPO), capture_output=True, text=True, env=env, **kw)


def tree(path: Path) -> dict:
    "Every file under `path` with its size and mtime (to prove nothing was written or touched)."
    if not path.exists(): return {}
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()}
