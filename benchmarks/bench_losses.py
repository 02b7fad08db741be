"""Speed and memory of ScaleShiftInvariantLoss against the public formulation and a loop.

Run: python benchmarks/bench_losses.py [--repeat 9] [--batch 8] [--size 384] [--threads N]

For kind "mse" and "trim" (alpha 0.5, 4 scales, batch reduction) it prints the fastest and
the median milliseconds (of --repeat interleaved runs) of one forward + backward pass of

- mixdepth: `ScaleShiftInvariantLoss`;
- public: the batched formulation of the public MiDaS training code, written below from the
  formulas (METHOD.md section 3) the way that code does it: masked sums for the 2x2 normal
  equations in the input dtype, a mask-multiplied residual, four strided scales of gradient
  matching, plain autograd; for "trim" the median over valid pixels by `nanmedian` and the
  kept residuals by a sort. This is the baseline that counts (target: mixdepth >= 1.5x);
- loop: a per-image Python loop (same formulas, one image at a time with boolean indexing);

their ratios, whether the values agree (to 1e-5 relative with the public formulation, 1e-4
with the loop), and the peak extra memory of the mixdepth pass.

Memory: a fresh child process creates the inputs and the gradient buffer of pred, runs a
tiny warm-up, then one forward + backward pass at full size; the growth of its peak resident
set (VmHWM) is the extra memory the loss needs at its peak. glibc runs with a fixed mmap
threshold so that freed blocks leave the resident set at once. It is reported in MiB and as
a multiple of the inputs' size (pred float32, target float32, mask bool). Timings are noisy
on a shared machine; use --repeat for more rounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from mixdepth.losses import ScaleShiftInvariantLoss


def public_ssi_loss(pred, target, mask, kind, alpha=0.5, scales=4, trim=0.2):
    """The public batched formulation (batch reduction), written from the formulas."""
    m = mask.to(pred.dtype)
    count = m.sum((1, 2))
    if kind == "mse":
        a00 = (m * pred * pred).sum((1, 2))
        a01 = (m * pred).sum((1, 2))
        b0 = (m * pred * target).sum((1, 2))
        b1 = (m * target).sum((1, 2))
        det = a00 * count - a01 * a01
        solvable = det != 0
        det = torch.where(solvable, det, torch.ones_like(det))
        scale = torch.where(solvable, (count * b0 - a01 * b1) / det, 0.0)
        shift = torch.where(solvable, (a00 * b1 - a01 * b0) / det, 0.0)
        residual = m * (scale[:, None, None] * pred + shift[:, None, None] - target)
        data_sum = residual.square().sum()
    else:
        def normalise(x):
            median = torch.where(mask, x, float("nan")).flatten(1).nanmedian(1).values
            centred = x - median[:, None, None]
            mad = (m * centred.abs()).sum((1, 2)) / count.clamp_min(1)
            return centred / mad[:, None, None]

        residual = m * (normalise(pred) - normalise(target))
        errors = torch.where(mask, residual.abs(), float("inf")).flatten(1).sort(1).values
        keep = torch.floor((1 - trim) * count + 1e-9)
        kept = torch.arange(errors.shape[1]) < keep[:, None]
        data_sum = torch.where(kept, errors, 0.0).sum()
    data = data_sum / (2 * count.sum())
    grad = 0.0
    for k in range(scales):
        r = residual[:, :: 2**k, :: 2**k]
        mk = m[:, :: 2**k, :: 2**k]
        dx = (r[:, :, 1:] - r[:, :, :-1]).abs() * (mk[:, :, 1:] * mk[:, :, :-1])
        dy = (r[:, 1:, :] - r[:, :-1, :]).abs() * (mk[:, 1:, :] * mk[:, :-1, :])
        grad = grad + (dx.sum() + dy.sum()) / mk.sum()
    return data + alpha * grad


def loop_ssi_loss(pred, target, mask, kind, alpha=0.5, scales=4, trim=0.2):
    """The same loss, one image at a time with boolean indexing (the straightforward way)."""
    data_sum = pred.new_zeros(())
    data_count = 0
    grad_sums = [pred.new_zeros(()) for _ in range(scales)]
    grad_counts = [0] * scales
    for n in range(pred.shape[0]):
        valid = mask[n]
        m = int(valid.sum())
        if m == 0:
            continue
        p, t = pred[n][valid], target[n][valid]
        if kind == "mse":
            design = torch.stack([p, torch.ones_like(p)], dim=1).double()
            normal = design.T @ design  # the 2x2 normal equations
            solution = torch.linalg.solve(normal, design.T @ t.double()).float()
            aligned = solution[0] * pred[n] + solution[1]
            residual_map = torch.where(valid, aligned - target[n], torch.zeros_like(aligned))
            data_sum = data_sum + (residual_map[valid] ** 2).sum()
        else:
            p_med, t_med = p.median(), t.median()
            p_hat = (pred[n] - p_med) / (p - p_med).abs().mean()
            t_hat = (target[n] - t_med) / (t - t_med).abs().mean()
            residual_map = torch.where(valid, p_hat - t_hat, torch.zeros_like(p_hat))
            errors = residual_map[valid].abs()
            if kind == "trim":
                errors = torch.sort(errors).values[: int((1 - trim) * m + 1e-9)]
            data_sum = data_sum + errors.sum()
        data_count += 2 * m
        for k in range(scales):
            r = residual_map[:: 2**k, :: 2**k]
            v = valid[:: 2**k, :: 2**k]
            vx = v[:, 1:] & v[:, :-1]
            vy = v[1:, :] & v[:-1, :]
            grad_sums[k] = grad_sums[k] + (r[:, 1:] - r[:, :-1]).abs()[vx].sum()
            grad_sums[k] = grad_sums[k] + (r[1:, :] - r[:-1, :]).abs()[vy].sum()
            grad_counts[k] += int(v.sum())
    data = data_sum / max(data_count, 1)
    grad = sum(s / max(c, 1) for s, c in zip(grad_sums, grad_counts, strict=True))
    return data + alpha * grad


def time_interleaved(steps, repeat):
    """(fastest, median) milliseconds of each step over `repeat` rounds, and the warm-up
    loss values.

    The steps alternate within each round so that both see the same load on a shared
    machine; the minimum is the least disturbed run, the median the typical one (a step
    that allocates fresh memory pays for its page faults in some runs and not in others).
    """
    values = [step() for step in steps]  # warm-up
    times = [[] for _ in steps]
    for _ in range(repeat):
        for step, runs in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            runs.append((time.perf_counter() - start) * 1000.0)
    return [(min(runs), statistics.median(runs)) for runs in times], values


def milliseconds(times):
    """'fastest (median)' of a (fastest, median) pair."""
    return f"{times[0]:.1f} ({times[1]:.1f})"


def speed_up(baseline, ours):
    """Ratios of the fastest and of the median times, 'fastest (median)'."""
    return f"{baseline[0] / ours[0]:.2f}x ({baseline[1] / ours[1]:.2f}x)"


def make_inputs(batch, size, valid):
    generator = torch.Generator().manual_seed(0)
    shape = (batch, size, size)
    target = torch.rand(shape, generator=generator) + 0.1
    pred = 2.0 * target + 0.3 * torch.rand(shape, generator=generator)
    mask = torch.rand(shape, generator=generator) < valid
    return pred, target, mask


def measure_peak_child(kind, batch, size, valid):
    """In a fresh process: growth of the peak resident set during one forward + backward.

    The inputs (and the gradient buffer of pred, which any loss must produce) are created
    and touched first, and a tiny warm-up call loads the code paths, so the growth of
    ru_maxrss is the memory the loss itself needs at its peak.
    """
    pred, target, mask = make_inputs(batch, size, valid)
    pred.requires_grad_(True)
    pred.grad = torch.zeros_like(pred)
    loss = ScaleShiftInvariantLoss(kind=kind, alpha=0.5, scales=4)
    small = [x[:1, :32, :32].detach().clone() for x in (pred, target, mask)]
    small[0].requires_grad_(True)
    loss(*small)[0].backward()
    before = peak_rss_bytes()
    total, _ = loss(pred, target, mask)
    total.backward()
    print(peak_rss_bytes() - before)


def peak_rss_bytes():
    """Peak resident set of this process: VmHWM where /proc exists, else ru_maxrss.

    VmHWM belongs to this process's own address space; ru_maxrss on Linux also keeps the
    parent's peak across fork + exec, so it is only the fallback (the parent measures memory
    before it runs anything large).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def peak_extra_bytes(kind, args):
    command = [
        sys.executable, __file__, "--child-memory", kind, "--batch", str(args.batch),
        "--size", str(args.size), "--valid", str(args.valid), "--threads", str(args.threads),
    ]
    # A fixed mmap threshold makes glibc return every freed large block to the system at
    # once, so the resident set follows the live allocations (no allocator caching).
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, env=environment
    ).stdout
    return int(output.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per measurement")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--valid", type=float, default=0.7, help="fraction of valid pixels")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--child-memory", choices=["mse", "mae", "trim"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_memory:
        measure_peak_child(args.child_memory, args.batch, args.size, args.valid)
        return

    kinds = ("mse", "trim")
    extra_bytes = {kind: peak_extra_bytes(kind, args) for kind in kinds}  # before anything big
    pred_base, target, mask = make_inputs(args.batch, args.size, args.valid)
    input_bytes = sum(x.numel() * x.element_size() for x in (pred_base, target, mask))
    print(
        f"batch {args.batch} x {args.size} x {args.size}, {args.valid:.0%} valid, "
        f"{torch.get_num_threads()} threads, {args.repeat} interleaved runs; "
        f"inputs {input_bytes / 2**20:.1f} MiB"
    )
    print("times: fastest (median) ms")
    print(f"{'kind':<6}{'mixdepth ms':>15}{'public ms':>15}{'speed-up':>15}{'loop ms':>15}"
          f"{'speed-up':>15}{'peak extra':>12}{'x inputs':>10}{'same value':>12}")
    for kind in kinds:
        loss = ScaleShiftInvariantLoss(kind=kind, alpha=0.5, scales=4)

        def batched_step(loss=loss):
            pred = pred_base.clone().requires_grad_(True)
            total, _ = loss(pred, target, mask)
            total.backward()
            return total.item()

        def public_step(kind=kind):
            pred = pred_base.clone().requires_grad_(True)
            total = public_ssi_loss(pred, target, mask, kind)
            total.backward()
            return total.item()

        def loop_step(kind=kind):
            pred = pred_base.clone().requires_grad_(True)
            total = loop_ssi_loss(pred, target, mask, kind)
            total.backward()
            return total.item()

        (ours_ms, public_ms, loop_ms), (ours, public, loop) = time_interleaved(
            [batched_step, public_step, loop_step], args.repeat
        )
        agree = abs(ours - public) <= 1e-5 * abs(public) and abs(ours - loop) <= 1e-4 * abs(loop)
        extra = extra_bytes[kind]
        print(
            f"{kind:<6}{milliseconds(ours_ms):>15}{milliseconds(public_ms):>15}"
            f"{speed_up(public_ms, ours_ms):>15}{milliseconds(loop_ms):>15}"
            f"{speed_up(loop_ms, ours_ms):>15}"
            f"{extra / 2**20:>9.1f} MiB{extra / input_bytes:>9.2f}x{str(agree):>12}",
            flush=True,
        )


if __name__ == "__main__":
    main()
