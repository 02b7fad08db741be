import logging

import torch
from predict_helpers import random_tiny

import mixdepth.inference.graph as graph_module
from mixdepth.inference import (
    conv1x1_as_matmul,
    fold_batch_norm,
    max_relative_difference,
    optimize_for_inference,
)


def replaced_convs(model: torch.nn.Module) -> list[torch.nn.Conv2d]:
    return [
        m for m in model.modules()
        if isinstance(m, torch.nn.Conv2d) and "_conv_forward" in m.__dict__
    ]


def test_fast_path_equals_eager_at_two_shapes_and_a_batch():
    model = random_tiny()
    fast = optimize_for_inference(model)
    replaced = replaced_convs(fast)
    assert replaced and all(m.kernel_size == (1, 1) for m in replaced)
    generator = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        for shape in [(1, 3, 64, 64), (1, 3, 96, 160), (3, 3, 64, 96), (1, 3, 64, 64)]:
            x = torch.randn(*shape, generator=generator)
            got = fast(x.contiguous(memory_format=torch.channels_last))
            assert got.shape == (shape[0], shape[2], shape[3])
            assert max_relative_difference(got, model(x)) < 1e-3
            assert max_relative_difference(fast(x), model(x)) < 1e-3  # NCHW input works too


class DoubledWeightConv(torch.nn.Conv2d):
    """A conv that calls the convolution with a weight derived from its own."""

    def forward(self, x):
        return self._conv_forward(x, 2 * self.weight, self.bias)


def test_a_derived_weight_is_respected():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        DoubledWeightConv(3, 8, 3, padding=1), DoubledWeightConv(8, 4, 1)
    ).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        reference = model(x)
    fast = conv1x1_as_matmul(model.to(memory_format=torch.channels_last))
    assert len(replaced_convs(fast)) == 1
    with torch.inference_mode():
        got = fast(x.contiguous(memory_format=torch.channels_last))
    assert max_relative_difference(got, reference) < 1e-5


def test_falls_back_when_the_output_changes(monkeypatch, caplog):
    model = fold_batch_norm(random_tiny()).to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        reference = model(x)

    right_matmul = graph_module._conv_as_matmul

    def wrong_matmul(conv):  # a 1x1 convolution that adds 1
        forward = right_matmul(conv)
        return forward and (lambda x, weight, bias: forward(x, weight, bias) + 1.0)

    monkeypatch.setattr(graph_module, "_conv_as_matmul", wrong_matmul)
    with caplog.at_level(logging.WARNING, logger="mixdepth.inference.graph"):
        fast = conv1x1_as_matmul(model)
    assert "running plain ones" in caplog.text
    assert replaced_convs(fast) == []
    with torch.inference_mode():
        assert max_relative_difference(fast(x), reference) < 1e-6
