"""Graph rewrites for fast, exact inference: batch norm folded into convolutions, 1x1
convolutions as matrix products, TensorFlow-"same" padding moved into the kernels, and the
inductor-compiled variant. Each rewrite works on a copy made for inference and is checked
against the unmodified forward."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)


def max_relative_difference(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """max |a - b| / max |b| (b is the reference); 0 when both are all zero."""
    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    ref = float(np.max(np.abs(b))) if b.size else 0.0
    return diff / ref if ref > 0 else (0.0 if diff == 0 else float("inf"))


def fold_batch_norm(model: nn.Module, example: Tensor | None = None) -> nn.Module:
    """A copy of `model` (eval mode) with each BatchNorm2d folded into the conv feeding it.

    Which conv feeds which batch norm is observed on one forward pass of `example` (default a
    random (1, 3, 64, 64) image): a BatchNorm2d whose input tensor is the output of a Conv2d is
    folded into it (the conv gets the normalisation as weight scale and bias) and replaced by
    nn.Identity. The folded copy is then checked against the original on the same example; if
    the outputs differ by more than 1e-4 relative (a conv output used elsewhere too), the
    unfolded copy is returned. The original model is not modified.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    if example is None:
        example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    example = example.to(next(fused.parameters(), torch.empty(0)).device)
    conv_outputs: dict[int, tuple[str, Tensor]] = {}
    pairs: list[tuple[str, str]] = []

    def after_conv(name):
        def hook(module, args, output):
            conv_outputs[id(output)] = (name, output)  # keep the tensor alive: ids stay unique
        return hook

    def before_bn(name):
        def hook(module, args):
            if id(args[0]) in conv_outputs:
                pairs.append((conv_outputs[id(args[0])][0], name))
        return hook

    handles = []
    for name, module in fused.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(after_conv(name)))
        elif isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
            handles.append(module.register_forward_pre_hook(before_bn(name)))
    with torch.inference_mode():
        reference = fused(example)
    for handle in handles:
        handle.remove()
    conv_outputs.clear()

    for conv_name, bn_name in dict(pairs).items():  # each conv once
        conv, bn = fused.get_submodule(conv_name), fused.get_submodule(bn_name)
        _set_submodule(fused, conv_name, fuse_conv_bn_eval(conv, bn))
        _set_submodule(fused, bn_name, nn.Identity())
    with torch.inference_mode():
        difference = max_relative_difference(fused(example), reference)
    if difference > 1e-4:
        log.warning("batch-norm folding changed the output (%.2g); running unfolded", difference)
        return copy.deepcopy(model).eval()
    return fused


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def conv1x1_as_matmul(model: nn.Module, example: Tensor | None = None) -> nn.Module:
    """`model` (a copy made for inference, modified in place) with its 1x1 convolutions (stride
    1, no padding, one group, float32) run as matrix products over the channels.

    On a channels-last (B, C, H, W) input that is `F.linear` on the (B, H, W, C) view, with no
    copy, instead of PyTorch's generic im2col path for small 1x1 convolutions. A call with
    another weight than the module's own (e.g. weight standardisation) runs the plain conv. The
    result is checked against the unmodified forward on `example` (default a random
    (1, 3, 64, 64) image); if they differ by more than 1e-4 relative, the module is restored.
    """
    convs = [
        m for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros"
        and not isinstance(m.padding, str) and m.weight.device.type == "cpu"
        and m.weight.dtype == torch.float32
    ]
    if not convs:
        return model
    if example is None:
        example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    example = example.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = model(example)
    for conv in convs:
        forward = _conv_as_matmul(conv)
        if forward is not None:
            conv._conv_forward = forward
    with torch.inference_mode():
        difference = max_relative_difference(model(example), reference)
    if difference > 1e-4:
        log.warning("1x1 convs as matmul changed the output (%.2g); running plain ones", difference)
        for conv in convs:
            conv.__dict__.pop("_conv_forward", None)
    return model


def _conv_as_matmul(conv: nn.Conv2d) -> Callable | None:
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0) \
            or conv.groups != 1:
        return None
    matrix = conv.weight.detach()[:, :, 0, 0].contiguous()  # (out, in)

    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if weight is not conv.weight:  # a subclass passing a derived weight
            return F.conv2d(x, weight, bias)
        # (B, C, H, W) channels-last is a (B, H, W, C) contiguous tensor: no copy either way
        return F.linear(x.permute(0, 2, 3, 1), matrix, bias).permute(0, 3, 1, 2)

    return forward


def optimize_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """The fast inference copy: batch norm folded, channels-last weights, 1x1 convolutions as
    matrix products (see `conv1x1_as_matmul`), eval mode.

    A model without BatchNorm2d (the ViT-based DPT models) has nothing to fold and is returned
    as it is, in eval mode, rather than doubling its memory with a copy.
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model.eval()
    fast = pad_into_kernels(fold_batch_norm(model))
    if channels_last:
        fast = conv1x1_as_matmul(fast.to(memory_format=torch.channels_last))
    return fast.eval()


def pad_into_kernels(model: nn.Module) -> nn.Module:
    """`model` (a copy made for inference, modified in place) with the strided TensorFlow-"same"
    convolutions of its EfficientNet encoder padding their kernel rather than their input
    (`SamePadConv2d._forward_padded_kernel`, exact)."""
    from mixdepth.models.efficientnet import SamePadConv2d

    for module in model.modules():
        if isinstance(module, SamePadConv2d):
            module.pad_into_kernel = True
    return model


def compile_for_inference(model: nn.Module) -> nn.Module:
    """`torch.compile` (inductor, weights frozen into the graph) of the batch-norm-folded,
    channels-last model: the fastest CPU path for many inputs of one size (video frames, one
    camera's photos). Compiling happens at the first call and again for each new input shape
    (seconds to tens of seconds each on a CPU) and needs a C++ compiler; call it under
    inference mode. As in `optimize_for_inference`, a model without BatchNorm2d is used as it
    is (no copy, and its memory layout is left alone)."""
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        model = pad_into_kernels(fold_batch_norm(model)).to(memory_format=torch.channels_last)
    return FrozenCompiled(model.eval())


class FrozenCompiled(nn.Module):
    """A module compiled by inductor with freezing: parameters become constants of the graph, so
    that convolutions run as prepacked oneDNN kernels with their bias and activation fused.
    Inductor reads its freezing switch from its global config when it compiles, which happens
    lazily at calls with a new input shape, so every call runs with the switch set (a
    compile-time `options={"freezing": True}` is not enough) and the global config is left
    as it was."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.compiled = torch.compile(model, dynamic=False)

    def forward(self, x: Tensor) -> Tensor:
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.compiled(x)
