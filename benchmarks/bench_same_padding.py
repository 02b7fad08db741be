"""CPU time of the strided TensorFlow-"same" convolutions of midas_v21_small's encoder: padding
the input (the model as trained and exported) vs padding the kernel (the inference fast path,
`SamePadConv2d.pad_into_kernel`, see docs/inference.md).

For each strided `SamePadConv2d` of the EfficientNet-Lite3 encoder, on the activation it sees
for a (B, 3, S, S) input in channels-last layout (batch norm is not involved: the convolutions
are timed alone), prints ms of both ways, their ratio and the max relative difference of their
outputs. CPU time, one thread, minimum over interleaved repeats (as bench_inference.py).

    python benchmarks/bench_same_padding.py                # 256 px, batch 1 and 8
    python benchmarks/bench_same_padding.py --size 384 --batches 1 --repeats 20
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

from bench_inference import time_min
from mixdepth import models
from mixdepth.inference import max_relative_difference
from mixdepth.models.efficientnet import SamePadConv2d


def strided_convs(size: int, batch: int) -> list[tuple[str, SamePadConv2d, torch.Tensor]]:
    """(name, conv, channels-last input it sees) for each strided SamePadConv2d."""
    torch.manual_seed(0)
    model = models.create("midas_v21_small").eval()
    found, handles = [], []
    for name, module in model.named_modules():
        if isinstance(module, SamePadConv2d) and not module.static:
            handles.append(module.register_forward_hook(
                lambda conv, args, out, name=name: found.append(
                    (name, conv, args[0].contiguous(memory_format=torch.channels_last)))))
    with torch.inference_mode():
        model(torch.randn(batch, 3, size, size))
    for handle in handles:
        handle.remove()
    return found


def padded_kernel(conv: SamePadConv2d, x: torch.Tensor) -> torch.Tensor:
    conv.pad_into_kernel = True
    try:
        return conv(x)
    finally:
        conv.pad_into_kernel = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.size}x{args.size}, CPU time, "
          f"min of {args.repeats} repeats")
    print(f"{'batch':>5} {'conv':<34} {'input (C, H, W)':>16} {'k':>2} {'pad input ms':>12} "
          f"{'pad kernel ms':>13} {'ratio':>6} {'diff':>8}")
    for batch in (int(b) for b in args.batches.split(",")):
        totals = [0.0, 0.0]
        for name, conv, x in strided_convs(args.size, batch):
            conv = conv.to(memory_format=torch.channels_last)
            runs = {"input": partial(conv, x), "kernel": partial(padded_kernel, conv, x)}
            with torch.inference_mode():
                best, outputs = time_min(runs, args.repeats)
            diff = max_relative_difference(outputs["kernel"], outputs["input"])
            totals[0] += best["input"]
            totals[1] += best["kernel"]
            shape = "x".join(str(s) for s in x.shape[1:])
            print(f"{batch:>5} {name:<34} {shape:>16} {conv.kernel_size[0]:>2} "
                  f"{1000 * best['input']:12.3f} {1000 * best['kernel']:13.3f} "
                  f"{best['input'] / best['kernel']:5.2f}x {diff:8.1e}")
        print(f"{batch:>5} {'all strided convs':<34} {'':>16} {'':>2} {1000 * totals[0]:12.3f} "
              f"{1000 * totals[1]:13.3f} {totals[0] / totals[1]:5.2f}x")


if __name__ == "__main__":
    main()
