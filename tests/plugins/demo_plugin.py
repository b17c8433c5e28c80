"""A plugin as a user writes one: a data set that is not in the paper (Gaussian blobs, generated), a model (a small
MLP, any nn.Module), a weight-selection heuristic, and a bench using all three."""
import torch
from torch import nn

from pruning_repro.algorithms import Algorithm, register_algorithm
from pruning_repro.config import Bench, DataSpec, ModelSpec, PruneSpec, TrainSpec, register
from pruning_repro.data import DataInfo, register_dataset
from pruning_repro.models import register_model
from pruning_repro.prune import register_strategy


def blobs(n_generated):
    n = n_generated or 600
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 4
    x = torch.randn(n, 1, 16, generator=g) + 2 * torch.nn.functional.one_hot(y, 16)[:, None, :].float()
    return x[: n * 4 // 5], y[: n * 4 // 5], x[n * 4 // 5:], y[n * 4 // 5:]


def mlp(info, width):
    h = max(1, round(64 * width))
    return nn.Sequential(nn.Flatten(), nn.Linear(16, h), nn.ReLU(), nn.Linear(h, info.num_classes))


def centred(model, names, context):
    "Distance of each weight from its tensor's mean: prune the weights closest to it."
    p = dict(model.named_parameters())
    return {n: (p[n].detach() - p[n].detach().mean()).abs().cpu() for n in names}


register_dataset("demo_blobs", DataInfo(4, (1, 16), (0.0,), (1.0,)), blobs)
register_model("demo_mlp", mlp, prune_output=False, output_name="3", prefers_gpu=False)   # tiny: CPU workers
register_strategy("demo_centred", centred)
register_algorithm(Algorithm("centred", {"strategy": "demo_centred"}, marker="P"))
register(Bench(name="demo_blobs_mlp", data=DataSpec("demo_blobs", n_val=60, n_generated=600),
               model=ModelSpec("demo_mlp"), train=TrainSpec(epochs=3, batch_size=32, optimizer="adam", lr=3e-3),
               prune=PruneSpec(strategy="demo_centred", levels=2), noise_levels=(0.0, 0.3), family="M-LeNet",
               description="a plugin's bench: blobs, an MLP and the centred heuristic", embedded=True,
               scales={"smoke": dict(train=dict(epochs=2), el2n_models=2)}))
