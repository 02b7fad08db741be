"""CPU inference speed: eager PyTorch vs the optimised Predictor path vs onnxruntime.

For each model and batch size, prints ms/image of the network forward pass (normalised
(B, 3, S, S) input -> (B, S, S) output) for

- eager:  the model as built, NCHW float32, under torch.inference_mode;
- fast:   the PyTorch fast path, what `Predictor(runtime="torch")` runs and the default's
          fallback (`optimize_for_inference`: batch norm folded into convs, channels-last,
          1x1 convs as matrix products);
- compiled: what `Predictor(compile=True)` / `mixdepth predict --compile` runs
          (`compile_for_inference`: torch.compile with frozen weights of the folded,
          channels-last model), timed after its one-off compilation, which is printed too;
- onnx:   the graph written by `mixdepth export`, in onnxruntime (CPU provider): what the
          default `Predictor` runs on the CPU in float32 (through its cached export; the
          whole default pipeline against the official one is benchmarks/bench_predict.py);
- bf16:   with --bf16, the fast path under bfloat16 autocast (`--dtype bfloat16`), which
          trades precision (its difference to eager is printed) for speed on CPUs with
          native bf16 (AVX512-BF16, AMX); not an "identical output" path;

with the parameter count, the speed-up of each against eager measured in the same run, and the
max relative difference of each output to eager. Target: the optimised path >= 1.5x eager at
max relative difference <= 1e-3.

Times are CPU time of the process (time.process_time) with one thread by default: on a shared
machine that is far less noisy than wall time. With --threads N > 1 use --wall, since CPU time
then adds up the threads.

Models have random weights (no weights ship with the repository). Batch-norm running
statistics are randomised so that folding is not a no-op, and the final ReLU is disabled
(non_negative=False) so that the outputs compared are not all zero. Timings are the minimum
over interleaved repeats (the machine is shared; minima are the least noisy statistic).

    python benchmarks/bench_inference.py                        # midas_v21_small b1/b8 + tiny
    python benchmarks/bench_inference.py --models tiny --repeats 5 --exporter none --no-compile
    python benchmarks/bench_inference.py --bf16           # adds the bfloat16 column
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from mixdepth import models
from mixdepth.inference import (
    compile_for_inference,
    max_relative_difference,
    optimize_for_inference,
)
from mixdepth.inference.onnx import INPUT_NAME, export_onnx


def random_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A model with random weights and random batch-norm statistics, output not clamped."""
    torch.manual_seed(seed)
    model = models.create(name, non_negative=False).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model


def time_min(runs: dict[str, Callable[[], torch.Tensor]], repeats: int, clock=time.process_time
             ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Minimum time (s, by `clock`) of each callable over `repeats` interleaved rounds after
    one warm-up call, and each callable's output."""
    outputs = {key: run() for key, run in runs.items()}
    best = {key: float("inf") for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = clock()
            run()
            best[key] = min(best[key], clock() - start)
    return best, outputs


def bench(name: str, size: int, batches: list[int], repeats: int, threads: int,
          exporter: str | None, clock, compiled: bool, bf16: bool = False) -> list[dict]:
    import onnxruntime as ort

    model = random_model(name)
    fast = optimize_for_inference(model)
    compiled_model = compile_for_inference(model) if compiled else None
    params = sum(p.numel() for p in model.parameters())
    session = None
    if exporter:
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = export_onnx(model, Path(tmp) / f"{name}.onnx", size, size, exporter=exporter)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        runs = {"eager": partial(model, x), "fast": partial(fast, x_cl)}
        row = {"model": name, "params": params, "batch": batch}
        if compiled_model is not None:
            runs["compiled"] = partial(compiled_model, x_cl)
            with torch.inference_mode():
                start = time.perf_counter()
                compiled_model(x_cl)  # compiles for this input shape
                row["compile_s"] = time.perf_counter() - start
        if session is not None:
            runs["onnx"] = partial(run_onnx, session, x)
        if bf16:
            runs["bf16"] = partial(run_bf16, fast, x_cl)
        with torch.inference_mode():
            best, outputs = time_min(runs, repeats, clock)
        for key, seconds in best.items():
            row[f"{key}_ms"] = 1000 * seconds / batch
            row[f"{key}_diff"] = max_relative_difference(outputs[key], outputs["eager"])
        rows.append(row)
    return rows


def run_bf16(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(x).float()


def run_onnx(session, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="midas_v21_small,tiny")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    parser.add_argument("--exporter", default="torchscript",
                        choices=("torchscript", "dynamo", "none"),
                        help="ONNX exporter for the onnxruntime column (none: skip it)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the torch.compile column (it compiles for each batch size)")
    parser.add_argument("--bf16", action="store_true",
                        help="add the fast path under bfloat16 autocast (less precise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.wall else time.process_time
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.size}x{args.size}, "
          f"{'wall' if args.wall else 'CPU'} time, min of {args.repeats} repeats, random weights, "
          f"ONNX via {args.exporter} exporter")
    header = (f"{'model':<16} {'params':>7} {'batch':>5} {'eager ms':>9} {'fast ms':>8} "
              f"{'speed-up':>8} {'diff':>8}")
    if args.compile:
        header += f" {'compiled ms':>11} {'speed-up':>8} {'diff':>8} {'compile s':>9}"
    if args.exporter != "none":
        header += f" {'onnx ms':>8} {'speed-up':>8} {'diff':>8}"
    if args.bf16:
        header += f" {'bf16 ms':>8} {'speed-up':>8} {'diff':>8}"
    print(header)
    for name in args.models.split(","):
        for row in bench(name, args.size, [int(b) for b in args.batches.split(",")],
                         args.repeats, args.threads,
                         None if args.exporter == "none" else args.exporter, clock,
                         args.compile, args.bf16):
            line = (f"{row['model']:<16} {row['params'] / 1e6:6.2f}M {row['batch']:>5} "
                    f"{row['eager_ms']:9.1f} {row['fast_ms']:8.1f} "
                    f"{row['eager_ms'] / row['fast_ms']:7.2f}x {row['fast_diff']:8.1e}")
            if "compiled_ms" in row:
                speed_up = row["eager_ms"] / row["compiled_ms"]
                line += (f" {row['compiled_ms']:11.1f} {speed_up:7.2f}x "
                         f"{row['compiled_diff']:8.1e} {row['compile_s']:9.0f}")
            if "onnx_ms" in row:
                line += (f" {row['onnx_ms']:8.1f} {row['eager_ms'] / row['onnx_ms']:7.2f}x "
                         f"{row['onnx_diff']:8.1e}")
            if "bf16_ms" in row:
                line += (f" {row['bf16_ms']:8.1f} {row['eager_ms'] / row['bf16_ms']:7.2f}x "
                         f"{row['bf16_diff']:8.1e}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
