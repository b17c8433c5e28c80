"""Plugins that must be refused with one clear error: each registers through an environment variable's choice."""
import os

import torch
from torch import nn

from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, get_bench, register
from pruning_repro.data import DataInfo, register_dataset
from pruning_repro.models import register_model

fault = os.environ.get("BAD_PLUGIN_FAULT")
if fault == "twice":                                   # a name the package already has
    register(get_bench("lenet_mnist"))
if fault == "no_prunable":                             # a model without conv or linear weights
    register_model("bad_identity", lambda info, w: nn.Sequential(nn.Flatten(), nn.BatchNorm1d(16)))
    register_dataset("bad_blobs_ok", DataInfo(4, (1, 16), (0.0,), (1.0,)),
                     lambda n: (torch.randn(100, 1, 16), torch.arange(100) % 4, torch.randn(40, 1, 16), torch.arange(40) % 4))
    register(Bench(name="bad_model_bench", data=DataSpec("bad_blobs_ok", n_val=20), model=ModelSpec("bad_identity"),
                   train=TrainSpec(epochs=1, batch_size=32, optimizer="adam", lr=1e-3), prune=PruneSpec(levels=1),
                   noise_levels=(0.0,), family="M-LeNet", embedded=True))
if fault in ("shape", "labels"):                       # a data function returning what it did not declare
    bad = (lambda n: (torch.randn(100, 16), torch.arange(100) % 4, torch.randn(40, 16), torch.arange(40) % 4)) \
        if fault == "shape" else \
        (lambda n: (torch.randn(100, 1, 16), torch.arange(100) % 7, torch.randn(40, 1, 16), torch.arange(40) % 4))
    register_dataset("bad_blobs", DataInfo(4, (1, 16), (0.0,), (1.0,)), bad)
    register(Bench(name="bad_data_bench", data=DataSpec("bad_blobs", n_val=20), model=ModelSpec("lenet"),
                   train=TrainSpec(epochs=1, batch_size=32, optimizer="adam", lr=1e-3), prune=PruneSpec(levels=1),
                   noise_levels=(0.0,), family="M-LeNet", embedded=True))
