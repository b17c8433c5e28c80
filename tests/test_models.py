"""Architectures: parameter counts against published values, prunable tensors as in OpenLTH, the width multiplier."""
import pytest
import torch

from pruning_repro.config import ModelSpec
from pruning_repro.data import INFO
from pruning_repro.models import build_model, count_params

PUBLISHED = {("lenet", "mnist"): 266_610, ("resnet20", "cifar10"): 272_474, ("vgg16", "cifar10"): 14_728_266,
             ("resnet50", "imagenet"): 25_557_032}


@pytest.mark.parametrize("arch,data", list(PUBLISHED))
def test_param_counts(arch, data):
    assert count_params(build_model(ModelSpec(arch), INFO[data])) == PUBLISHED[(arch, data)]


def test_resnet32_cifar100_structure():
    m = build_model(ModelSpec("resnet32"), INFO["cifar100"])
    assert len(m.blocks) == 15 and m.fc.out_features == 100
    assert count_params(m) == 472_756


@pytest.mark.parametrize("arch,data,output_pruned", [("lenet", "mnist", False), ("vgg16", "cifar10", False),
                                                     ("resnet20", "cifar10", True), ("resnet50", "imagenet", True)])
def test_prunable_tensors(arch, data, output_pruned):
    m = build_model(ModelSpec(arch), INFO[data])
    names = m.prunable_names()
    assert ("fc.weight" in names) == output_pruned
    assert all(n.endswith(".weight") and "bn" not in n for n in names)
    params = dict(m.named_parameters())
    assert all(params[n].dim() in (2, 4) for n in names)


def test_kaiming_normal_scale():
    m = build_model(ModelSpec("lenet"), INFO["mnist"], seed=0)
    w = m.fc_layers[0].weight.detach()
    assert abs(float(w.std()) - (2 / 784) ** 0.5) < 0.01 * (2 / 784) ** 0.5 * 10
    b = m.fc_layers[0].bias.detach()                  # OpenLTH leaves biases at PyTorch's U(-1/sqrt(fan_in), ...)
    assert float(b.abs().max()) <= 784 ** -0.5 and float(b.std()) > 0.5 * 784 ** -0.5 / 3 ** 0.5


@pytest.mark.parametrize("arch,data", [("lenet", "mnist"), ("resnet20", "cifar10"), ("vgg16", "cifar10")])
def test_width_scales_hidden_layers(arch, data):
    full, small = (count_params(build_model(ModelSpec(arch, w), INFO[data])) for w in (1.0, 0.8))
    assert 0.55 < small / full < 0.85
