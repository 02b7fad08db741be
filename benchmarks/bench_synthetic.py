"""Throughput of the synthetic generator against straightforward baselines.

Run: python benchmarks/bench_synthetic.py [--n 112] [--size 256] [--workers 2]
     python benchmarks/bench_synthetic.py --per-family [--scenes 10]   # ms per scene family

Prints samples per second of the full pipeline (render, annotate, write to disk in the real
layout) over the training personalities of the default mix, measured in the same run for:

- the generator with --workers processes (the figure the speed target is about),
- the same generator in one process (baseline for the parallel speed-up),
- one process whose renderer tests every object against every pixel and every shadow ray
  (no screen-space / light-space culling: the straightforward vectorised ray caster), on
  fewer samples because it is slow.

Also prints CPU milliseconds per sample of each run (parent plus finished workers), which is
less affected by other work on a shared machine than wall time, and the rate two otherwise
idle cores would reach at that CPU cost. Timings are noisy when the machine is busy.

With --per-family it prints instead the CPU milliseconds per image of `render_family` (the
scene, ray casting, shading and camera effects; no annotation or writing) for every family,
one process, --scenes scenes each.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mixdepth.synthetic import FAMILIES, HELDOUT_FAMILIES, TRAIN_FAMILIES, render_family
from mixdepth.synthetic.personalities import PERSONALITIES
from mixdepth.synthetic.render import luminance_depth_correlation
from mixdepth.synthetic.textures import warm_pool
from mixdepth.synthetic.writer import LAYOUTS, generate_set, make_sample, worker_pool


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(out: Path, n: int, size: int, workers: int) -> tuple[float, float]:
    """Generate n samples spread over all personalities; (wall seconds, CPU seconds)."""
    names = list(PERSONALITIES)
    per_set = [n // len(names) + (i < n % len(names)) for i in range(len(names))]
    wall, cpu = time.perf_counter(), cpu_seconds()
    pool = worker_pool(workers) if workers > 1 else None  # one pool for all sets
    try:
        for name, count in zip(names, per_set, strict=True):
            if count:
                generate_set(out / name, name, count, seed=1, size=size, workers=workers,
                             contact_sheet=False, pool=pool)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def run_unculled(out: Path, n: int, size: int) -> tuple[float, float]:
    """The baseline: the same samples in one process, rendered without culling;
    (wall seconds, CPU seconds)."""
    names = list(PERSONALITIES)
    wall, cpu = time.perf_counter(), cpu_seconds()
    for index in range(n):
        name = names[index % len(names)]
        p = PERSONALITIES[name]
        r, a, rng = make_sample(name, p.families, 1, size, index, culling=False)
        LAYOUTS[p.dataset].write(out / name, index, r, a, rng)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def family_milliseconds(size: int, scenes: int) -> dict[str, float]:
    """{family: CPU ms per image of render_family at size x size}, one process."""
    render_family("indoor", np.random.default_rng(0), 32, 32)  # warm-up: textures, imports
    result = {}
    for family in FAMILIES:
        cpu = cpu_seconds()
        for i in range(scenes):
            render_family(family, np.random.default_rng([7, i]), size, size)
        result[family] = 1000 * (cpu_seconds() - cpu) / scenes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=112, help="samples per measured run")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-family", action="store_true",
                        help="CPU ms per image of each scene family instead")
    parser.add_argument("--scenes", type=int, default=10, help="with --per-family")
    args = parser.parse_args()
    if args.per_family:
        warm_pool()
        print(f"render_family, {args.size}x{args.size}, one process, {args.scenes} scenes each")
        for family, ms in family_milliseconds(args.size, args.scenes).items():
            kind = "held out" if family in HELDOUT_FAMILIES else "training"
            print(f"  {family:12s} ({kind:8s}) {ms:6.0f} ms CPU per image")
        return

    warm_pool()  # the shared texture pool is built once per process
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(tmp / "warmup", len(PERSONALITIES), 64, 1)
        wall_par, cpu_par = run(tmp / "parallel", args.n, args.size, args.workers)
        shutil.rmtree(tmp / "parallel")
        wall_one, cpu_one = run(tmp / "single", args.n, args.size, 1)
        shutil.rmtree(tmp / "single")

        n_naive = max(len(PERSONALITIES), args.n // 4)
        wall_naive, cpu_naive = run_unculled(tmp / "naive", n_naive, args.size)

    rate_par = args.n / wall_par
    rate_one = args.n / wall_one
    rate_naive = n_naive / wall_naive
    print(f"synthetic generator, {args.size}x{args.size}, training personalities, "
          f"written in their real layouts")
    print(f"  {args.workers} workers (culled ray casting): {rate_par:6.1f} samples/s "
          f"({args.n} samples, {wall_par:.1f} s, {1000 * cpu_par / args.n:.0f} ms CPU per "
          "sample incl. workers)")
    print(f"  1 process  (culled ray casting): {rate_one:6.1f} samples/s "
          f"({1000 * cpu_one / args.n:.0f} ms CPU per sample)")
    print(f"  1 process  (no culling, baseline): {rate_naive:6.1f} samples/s "
          f"({n_naive} samples, {1000 * cpu_naive / n_naive:.0f} ms CPU per sample)")
    print(f"  speed-up: {rate_par / rate_one:.2f}x from {args.workers} workers, "
          f"{rate_one / rate_naive:.2f}x from culling, {rate_par / rate_naive:.2f}x overall")
    print(f"  target >= 20 samples/s with {args.workers} workers: "
          f"{'met' if rate_par >= 20 else 'NOT met'} on this machine at this load")
    renders = [render_family(TRAIN_FAMILIES[i % len(TRAIN_FAMILIES)],
                             np.random.default_rng([100, i]), 64, 64) for i in range(60)]
    print(f"  luminance vs log depth, Pearson r pooled over 60 training-family images (64 px): "
          f"{luminance_depth_correlation(renders):+.3f}")
    print(f"  CPU-bound estimate for {args.workers} otherwise idle cores: "
          f"{args.workers * args.n / cpu_par:.1f} samples/s from the workers' CPU time, "
          f"{args.workers * args.n / cpu_one:.1f} samples/s from the 1-process CPU time "
          "(estimates, not measured wall)")


if __name__ == "__main__":
    main()
