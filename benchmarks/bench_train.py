"""Cost of a training step: uniform vs Pareto (MGDA) mixing, tiny model, 3 and 6 datasets.

For each number of datasets T the script builds in-memory datasets of random smooth images
(dense disparity targets), collates one fixed batch of `share` images per dataset, and times
on the same batch:
- baseline: one forward-backward of ONE dataset's share (the SSI loss on `share` images);
- uniform:  one step with the whole batch (one forward-backward of T x share images);
- pareto:   one step with per-dataset forward-backward, the min-norm solve, the update.
Times are CPU time of the process on CPU (run with one thread) and wall time on CUDA.
It prints steps/s, the peak growth of resident memory from just before the first call of a
measurement (gradients, activations, optimiser state; on CUDA the peak allocated memory),
and the ratio of a Pareto step to the baseline; target: ratio <= T + 0.5.

    python benchmarks/bench_train.py [--share 2] [--size 64] [--steps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mixdepth.data.sample import Sample, Space
from mixdepth.train.config import load_config
from mixdepth.train.samplers import Slot
from mixdepth.train.trainer import SlotDataset, Trainer, collate_slots


class RandomDepth(Dataset):
    """`n` random smooth images with a dense disparity target (all valid)."""

    def __init__(self, n: int, size: int, seed: int):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:size, 0:size] / size
        self.items = []
        for _ in range(n):
            phase = rng.uniform(0, 6, 4)
            disparity = (1.5 + np.sin(4 * xx + phase[0]) * np.cos(3 * yy + phase[1])).astype(
                np.float32
            )
            image = np.stack([np.sin(5 * xx + p) * 0.4 + 0.5 for p in phase[1:]], -1)
            self.items.append((image.astype(np.float32), disparity))
        self.space = Space.DISPARITY_UP_TO_SCALE_AND_SHIFT

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        image, disparity = self.items[index]
        return Sample(image, disparity, np.ones_like(disparity, bool), self.space)


class PeakMemory:
    """Peak growth of resident memory (Linux /proc) or CUDA allocation while active, in MB."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * 4096
        except OSError:
            return 0

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __enter__(self) -> PeakMemory:
        try:  # hand freed heap pages back to the OS so the next peak shows the working set
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = self.peak = self._rss()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()

    @property
    def megabytes(self) -> float:
        return (self.peak - self.base) / 2**20


def make_trainer(mixing: str, num_datasets: int, share: int, size: int, out: Path) -> Trainer:
    config = load_config(
        {
            "model": {"name": "tiny"},
            "datasets": [{"name": f"set{d}", "root": str(out), "loss": "trim"}
                         for d in range(num_datasets)],
            "mixing": mixing,
            "batch_size": share * num_datasets,
            "crop_size": size,
            "steps": 1000,
            "num_workers": 0,
            "progress": False,
            "report": False,
            "out_dir": str(out / mixing),
        },
        check_paths=False,
    )
    datasets = [RandomDepth(share, size, seed=d) for d in range(num_datasets)]
    return Trainer(config, datasets=datasets)


def measure(calls: dict, steps: int, device: torch.device) -> dict[str, tuple[float, float]]:
    """{name: (fastest seconds per call, peak memory growth MB)}.

    Each call first runs twice on its own under the memory watch (warm-up); then the calls are
    timed round-robin, `steps` rounds, so that all see the same machine load, and the
    fastest time of each is kept (the figure least disturbed by other work). On CPU the time
    is the process's CPU time, so use --threads 1 there."""
    memory = {}
    for name, fn in calls.items():
        with PeakMemory(device) as watch:
            fn()
            fn()
        memory[name] = watch.megabytes
    # CPU: the process's CPU time (one thread), which other jobs on the machine disturb far
    # less than wall time; CUDA: wall time after synchronising
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(steps):
        for name, fn in calls.items():
            start = clock()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(clock() - start)
    return {name: (min(times[name]), memory[name]) for name in calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=int, default=2, help="images per dataset per step")
    parser.add_argument("--size", type=int, default=64, help="crop size (multiple of 32)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--datasets", type=int, nargs="+", default=[3, 6])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"tiny model, {args.share} images of {args.size}px per dataset, "
          f"{args.threads} thread(s), fastest of {args.steps} steps")
    header = (f"{'T':>2}  {'mixing':<8} {'steps/s':>8} {'ms/step':>9} {'peak MB':>8} "
              f"{'x baseline':>10} {'target':>7}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for num_datasets in args.datasets:
            calls = {}
            for mixing in ("uniform", "pareto"):
                trainer = make_trainer(mixing, num_datasets, args.share, args.size, Path(tmp))
                reader = SlotDataset(trainer.datasets)
                batch = collate_slots(
                    [reader[Slot(d, i, i)] for d in range(num_datasets) for i in range(args.share)]
                )
                if mixing == "uniform":
                    part = collate_slots([reader[Slot(0, i, i)] for i in range(args.share)])

                    def one_share(trainer=trainer, part=part):
                        trainer.set_train_mode()
                        trainer.optimizer.zero_grad(set_to_none=True)
                        pred = trainer.forward_disparity(trainer.model, part["image"])
                        trainer.losses[0](pred, part)[0].backward()

                    calls["baseline"] = one_share
                calls[mixing] = lambda trainer=trainer, batch=batch: trainer.train_step(batch)
            results = measure(calls, args.steps, trainer.device)
            base = results["baseline"][0]
            for name in ("baseline", "uniform", "pareto"):
                seconds, memory = results[name]
                target = f"<= {num_datasets + 0.5:g}" if name == "pareto" else ""
                print(f"{num_datasets:>2}  {name:<8} {1 / seconds:>8.2f} {seconds * 1e3:>9.1f} "
                      f"{memory:>8.1f} {seconds / base:>10.2f} {target:>7}")
            ratio = results["pareto"][0] / base
            verdict = "meets" if ratio <= num_datasets + 0.5 else "misses"
            print(f"    pareto step = {ratio:.2f} x one share's forward-backward "
                  f"({verdict} the target {num_datasets + 0.5:g}); "
                  f"pareto / uniform = {results['pareto'][0] / results['uniform'][0]:.2f}")


if __name__ == "__main__":
    main()
