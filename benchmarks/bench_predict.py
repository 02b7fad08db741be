"""The default `Predictor` path against the official MiDaS `run.py` pipeline, on one photo.

Both sides start from the decoded photo (Middlebury *motorcycle*, 741 x 500, shipped with
scikit-image) and end with a depth map at its resolution, on the same network weights:

- official: what run.py does, in its few lines (RGB / 255 as float64, cv2.INTER_CUBIC resize
  to the network shape, mean/std, float32 NCHW, `model(sample)` under torch.no_grad, torch
  bicubic resize back with align_corners=False), with the eager model as built;
- default: `Predictor(model).predict(rgb)` with no options (on this CPU in float32:
  onnxruntime on the model's cached ONNX export, see docs/inference.md);
- torch: `Predictor(model, runtime="torch")` (the PyTorch fast copy), for reference.

Printed per model: milliseconds (median and min of --repeats interleaved runs, wall time,
--threads threads for PyTorch and onnxruntime alike), the speed-up of the default path over
the official pipeline (target >= 1.5x), the mean relative difference of the two outputs
(target <= 5e-3), the first call (constructing the Predictor and predicting once, in a fresh
process) with a cold and with a warm export cache, and the default path's time as a
multiple of the FLOP floor: the network's FLOPs at this input (counted by
torch.utils.flop_counter) divided by this CPU's float32 matrix-multiply throughput at the
same thread count (2048^3 products, the faster of PyTorch's and onnxruntime's kernels).

Models: `midas_v21_small` with random weights in the official layout (random batch-norm
statistics, no final ReLU so that outputs are not all zero; the official weights are not on
disk) and the bundled default weights (`Predictor()`, if this installation ships them).

    python benchmarks/bench_predict.py                  # both models, 2 threads
    python benchmarks/bench_predict.py --models midas_v21_small --repeats 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# the official pipeline's resize rule and test model, shared with the tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "predict"))
from predict_helpers import official_shape, random_midas_small  # noqa: E402

from mixdepth.inference import Predictor, build_model, default_weights_path

PHOTO_NAME = "motorcycle_left.png"


def photo() -> np.ndarray:
    """The benchmark photo as uint8 (H, W, 3) RGB (a smooth random image if it is missing)."""
    try:
        import skimage

        path = Path(skimage.__file__).parent / "data" / PHOTO_NAME
        if path.is_file():
            import cv2

            return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (500, 741, 3), dtype=np.uint8)


def load(name: str) -> torch.nn.Module:
    return random_midas_small() if name == "midas_v21_small" else build_model(None, None)


# --------------------------------------------------------------------------- official run.py


def official_pipeline(model: torch.nn.Module, rgb: np.ndarray, config) -> np.ndarray:
    """run.py on a decoded RGB photo: resize, normalise, forward, resize back."""
    import cv2

    image = rgb / 255.0
    height, width = image.shape[:2]
    net_h, net_w = official_shape(height, width, config.input_size, config.resize_mode)
    image = cv2.resize(image, (net_w, net_h), interpolation=cv2.INTER_CUBIC)
    image = (image - np.array(config.mean)) / np.array(config.std)
    sample = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))[None]
    with torch.no_grad():
        prediction = model(sample)
        prediction = F.interpolate(prediction[:, None], size=(height, width), mode="bicubic",
                                   align_corners=False)
    return prediction[0, 0].numpy()


# --------------------------------------------------------------------------- measurements


def best_seconds(run, repeats: int = 5) -> float:
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_throughput(threads: int, size: int = 2048) -> dict[str, float]:
    """float32 (size x size) @ (size x size) FLOP/s at `threads` threads, through PyTorch
    (MKL) and through onnxruntime (MLAS), whose kernels differ in speed on some CPUs."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    flops = 2 * size**3
    result = {"torch": flops / best_seconds(lambda: torch.mm(a, b))}
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return result
    tensors = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              tensors[:2], tensors[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": b.numpy()}
    result["onnxruntime"] = flops / best_seconds(lambda: session.run(None, feeds))
    return result


def network_flops(model: torch.nn.Module, shape: tuple[int, int]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, *shape))
    return counter.get_total_flops()


def interleaved(runs: dict, repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each callable over `repeats` interleaved rounds after one warm-up."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    return times


def first_call(name: str, cache: Path, threads: int) -> dict[str, float]:
    """In a fresh process: seconds to construct the default Predictor, and to predict once."""
    environment = dict(os.environ, MIXDEPTH_CACHE_DIR=str(cache))
    command = [sys.executable, __file__, "--first-call", name, "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def first_call_child(name: str) -> None:
    rgb = photo()
    model = load(name)
    start = time.perf_counter()
    predictor = Predictor(model)
    built = time.perf_counter()
    predictor.predict(rgb)
    done = time.perf_counter()
    print(json.dumps({"construct_s": built - start, "first_predict_s": done - built,
                      "runtime": predictor.runtime}))


def bench(name: str, repeats: int, threads: int) -> dict:
    rgb = photo()
    model = load(name)
    with tempfile.TemporaryDirectory(prefix="mixdepth-bench-cache-") as folder:
        cold = first_call(name, Path(folder), threads)
        warm = first_call(name, Path(folder), threads)
        os.environ["MIXDEPTH_CACHE_DIR"] = folder
        default = Predictor(model)
        del os.environ["MIXDEPTH_CACHE_DIR"]
    fast = Predictor(model, runtime="torch")
    config = default.config
    times = interleaved({
        "official": lambda: official_pipeline(model, rgb, config),
        "default": lambda: default.predict(rgb),
        "torch": lambda: fast.predict(rgb),
    }, repeats)
    ours, reference = default.predict(rgb), official_pipeline(model, rgb, config)
    shape = default.network_shape(*rgb.shape[:2])
    flops = network_flops(model, shape)
    throughput = matmul_throughput(threads)
    floor = flops / max(throughput.values())
    median = {key: statistics.median(values) for key, values in times.items()}
    return {
        "model": name, "runtime": default.runtime, "shape": shape, "median": median,
        "min": {key: min(values) for key, values in times.items()},
        "difference": float(np.abs(ours - reference).mean() / np.abs(reference).mean()),
        "cold": cold, "warm": warm, "gflops": flops / 1e9, "floor_ms": 1000 * floor,
        "floor_multiple": median["default"] / floor, "throughput": throughput,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="midas_v21_small,default")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--first-call", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.first_call:
        first_call_child(args.first_call)
        return
    rgb = photo()
    print(f"torch {torch.__version__}, {args.threads} threads, photo {rgb.shape[1]}x"
          f"{rgb.shape[0]}, wall time, median (min) of {args.repeats} interleaved runs")
    print(f"{'model':<16} {'net':>7} {'official ms':>13} {'default ms':>13} {'speed-up':>8} "
          f"{'torch ms':>13} {'mean diff':>9} {'1st call cold s':>15} {'warm s':>6} "
          f"{'GFLOP':>6} {'floor ms':>8} {'x floor':>7}  runtime")
    for name in args.models.split(","):
        if name == "default" and default_weights_path() is None:
            print("default: this installation ships no default weights; skipped")
            continue
        row = bench(name, args.repeats, args.threads)
        med, low = row["median"], row["min"]

        def cell(key, med=med, low=low):
            return f"{1000 * med[key]:6.1f} ({1000 * low[key]:4.1f})"

        cold = row["cold"]["construct_s"] + row["cold"]["first_predict_s"]
        warm = row["warm"]["construct_s"] + row["warm"]["first_predict_s"]
        print(f"{name:<16} {row['shape'][0]:>3}x{row['shape'][1]:<3} {cell('official'):>13} "
              f"{cell('default'):>13} {med['official'] / med['default']:7.2f}x "
              f"{cell('torch'):>13} {row['difference']:9.1e} {cold:15.2f} {warm:6.2f} "
              f"{row['gflops']:6.2f} {row['floor_ms']:8.1f} {row['floor_multiple']:6.1f}x  "
              f"{row['runtime']}", flush=True)
        rates = ", ".join(f"{key} {value / 1e9:.0f}" for key, value in row["throughput"].items())
        print(f"{'':<16} matmul GFLOP/s at {args.threads} threads: {rates} (floor: the best)")


if __name__ == "__main__":
    main()
