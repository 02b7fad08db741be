"""Metric depth from K hints: error against the number of hints and the share of bad hints.

Run: python benchmarks/bench_align.py [--n-per-set 14] [--size 128] [--draws 3]
         [--plot docs/images/align/align_vs_hints.png]

Renders synthetic scenes in-process (`mixdepth.synthetic.make_sample`) for three sets:

- indoor-rgbd: the Kinect-like personality on its default families; hints are drawn from the
  sensor's depth (holes, axial noise), the result is scored against the exact depth <= 10 m;
- street-lidar: hints drawn from the projected LiDAR lines (lower part of the image only),
  scored against the exact depth <= 80 m;
- heldout: the exact personality on the held-out families (landscape, forest, still-life),
  scored against the exact depth <= 80 m.

The default model (`Predictor()`, the bundled weights) predicts each image once. For every
K in 2, 3, 5, 10, 20, 50, 200 and every share of gross outliers (0, 10, 30 %), --draws sets
of K hints are drawn from the valid pixels of the annotation (without replacement when there
are enough); an outlier's depth is multiplied or divided by a factor log-uniform in [2, 5]
(a return through glass, a mistyped distance). Methods, all clipped at the set's cap:

- robust: `align_to_hints` (RANSAC over pairs, least squares on the inliers);
- lstsq: `align_to_hints(robust=False)` (least squares on all hints);
- median: naive median scaling, 1/depth = s * disparity with s = median(hint disparity /
  predicted disparity), no shift;
- oracle: least squares in disparity space on every scored ground-truth pixel (the zero-shot
  protocol's alignment; an upper bound for any K).

Metrics per image: AbsRel and delta < 1.25 of the metric depth on the scored pixels, averaged
over images and draws. A fit that fails (AlignmentError, e.g. a non-positive scale) gives no
metric depth and counts as AbsRel 1 and delta 0; the failures are counted in the table.
Prints markdown tables (pooled over the sets, then per set for the robust fit) and writes a
plot of error against K.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from mixdepth.align import align_to_hints, metric_depth
from mixdepth.errors import AlignmentError
from mixdepth.losses import align_lstsq
from mixdepth.metrics import depth_errors
from mixdepth.synthetic import HELDOUT_FAMILIES
from mixdepth.synthetic.personalities import PERSONALITIES
from mixdepth.synthetic.writer import make_sample

HINT_COUNTS = (2, 3, 5, 10, 20, 50, 200)
OUTLIER_SHARES = (0.0, 0.1, 0.3)
METHODS = ("robust", "lstsq", "median")
# name -> (personality, families, depth cap in metres)
SETS = {
    "indoor-rgbd": ("indoor-rgbd", PERSONALITIES["indoor-rgbd"].families, 10.0),
    "street-lidar": ("street-lidar", PERSONALITIES["street-lidar"].families, 80.0),
    "heldout": ("exact", HELDOUT_FAMILIES, 80.0),
}
FAILED = {"absrel": 1.0, "delta1": 0.0}


def score(depth: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> dict[str, float]:
    """AbsRel and delta1 of metric depth (H, W) against truth (H, W) on the scored pixels."""
    values = torch.from_numpy(depth[scored].astype(np.float64))
    if not (values > 0).all():
        return dict(FAILED)
    errors = depth_errors(values, torch.from_numpy(truth[scored].astype(np.float64)))
    return {"absrel": errors["absrel"], "delta1": errors["delta1"]}


def draw_hints(annotation, count: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """count hints (K, 3) x, y, depth from the annotation's valid pixels, a share of them
    gross outliers."""
    rows, cols = np.nonzero(annotation.mask & (annotation.target > 0))
    pick = rng.choice(len(rows), count, replace=count > len(rows))
    hints = np.stack([cols[pick], rows[pick], annotation.target[rows[pick], cols[pick]]], axis=1)
    hints = hints.astype(np.float64)
    bad = rng.choice(count, int(round(share * count)), replace=False)
    factor = np.exp(rng.uniform(np.log(2.0), np.log(5.0), len(bad)))
    hints[bad, 2] *= factor ** rng.choice([-1.0, 1.0], len(bad))
    return hints


def fit(method: str, prediction: np.ndarray, hints: np.ndarray, cap: float) -> np.ndarray:
    """Metric depth (H, W) of one method; raises AlignmentError when the fit fails."""
    if method == "median":
        p = prediction[hints[:, 1].astype(int), hints[:, 0].astype(int)].astype(np.float64)
        usable = p > 0
        if not usable.any():
            raise AlignmentError("median scaling: no hint on a positive prediction")
        scale = float(np.median(1.0 / hints[usable, 2] / p[usable]))
        return metric_depth(prediction, scale, 0.0, max_depth=cap)
    return align_to_hints(prediction, hints, robust=method == "robust", max_depth=cap).depth


def oracle(prediction: np.ndarray, truth: np.ndarray, scored: np.ndarray, cap: float):
    """Least-squares alignment in disparity space on every scored pixel -> metric depth."""
    scale, shift = align_lstsq(torch.from_numpy(prediction)[None].double(),
                               torch.from_numpy(1.0 / np.where(scored, truth, 1.0))[None],
                               torch.from_numpy(scored)[None])
    if not float(scale[0]) > 0:
        raise AlignmentError("oracle: non-positive scale")
    return metric_depth(prediction, float(scale[0]), float(shift[0]), max_depth=cap)


def run(n_per_set: int, size: int, draws: int, seed: int) -> dict:
    """Per set: oracle scores (list over images) and scores[(method, K, share)] (list)."""
    from mixdepth.inference import Predictor

    predictor = Predictor()
    results = {}
    for name, (personality, families, cap) in SETS.items():
        start = time.perf_counter()
        oracle_scores, scores = [], {}
        failures = {}
        for index in range(n_per_set):
            render, annotation, _ = make_sample(personality, tuple(families), seed, size, index)
            truth = render.depth
            scored = render.mask & (truth > 0) & (truth <= cap)
            if scored.sum() < 10 or (annotation.mask & (annotation.target > 0)).sum() < 2:
                continue
            prediction = predictor.predict(render.image)
            try:
                oracle_scores.append(score(oracle(prediction, truth, scored, cap), truth, scored))
            except AlignmentError:
                oracle_scores.append(dict(FAILED))
            rng = np.random.default_rng([seed, index, len(name)])
            for count in HINT_COUNTS:
                for share in OUTLIER_SHARES:
                    for _ in range(draws):
                        hints = draw_hints(annotation, count, share, rng)
                        for method in METHODS:
                            key = (method, count, share)
                            try:
                                result = score(fit(method, prediction, hints, cap), truth, scored)
                            except AlignmentError:
                                result = dict(FAILED)
                                failures[key] = failures.get(key, 0) + 1
                            scores.setdefault(key, []).append(result)
        results[name] = {"oracle": oracle_scores, "scores": scores, "failures": failures}
        print(f"{name}: {len(oracle_scores)} images in {time.perf_counter() - start:.1f} s",
              flush=True)
    return results


def mean(rows: list[dict], key: str) -> float:
    return float(np.mean([row[key] for row in rows])) if rows else float("nan")


def pooled(results: dict) -> tuple[list[dict], dict, dict]:
    """Oracle rows, scores and failure counts of all sets together."""
    oracle_rows, scores, failures = [], {}, {}
    for part in results.values():
        oracle_rows += part["oracle"]
        for key, rows in part["scores"].items():
            scores.setdefault(key, []).extend(rows)
        for key, count in part["failures"].items():
            failures[key] = failures.get(key, 0) + count
    return oracle_rows, scores, failures


def table(results: dict) -> str:
    """Markdown: AbsRel / delta1 per method against K and the outlier share, pooled."""
    oracle_rows, scores, failures = pooled(results)
    images = len(oracle_rows)
    lines = [
        f"Oracle (least squares on all ground-truth pixels): AbsRel "
        f"{mean(oracle_rows, 'absrel'):.3f}, δ<1.25 {mean(oracle_rows, 'delta1'):.3f} "
        f"({images} images: " + ", ".join(f"{name} {len(part['oracle'])}"
                                          for name, part in results.items()) + ")",
        "",
        "| outliers | K | robust AbsRel | robust δ<1.25 | lstsq AbsRel | lstsq δ<1.25 | "
        "median AbsRel | median δ<1.25 | failed fits (robust / lstsq) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for share in OUTLIER_SHARES:
        for count in HINT_COUNTS:
            cells = []
            for method in METHODS:
                rows = scores.get((method, count, share), [])
                cells += [f"{mean(rows, 'absrel'):.3f}", f"{mean(rows, 'delta1'):.3f}"]
            total = len(scores.get(("robust", count, share), []))
            failed = (f"{failures.get(('robust', count, share), 0)} / "
                      f"{failures.get(('lstsq', count, share), 0)} of {total}")
            lines.append(f"| {100 * share:.0f} % | {count} | " + " | ".join(cells)
                         + f" | {failed} |")
    return "\n".join(lines)


def per_set_table(results: dict) -> str:
    """Markdown: robust AbsRel per set against K at each outlier share, with the oracle."""
    names = list(results)
    lines = ["| set | oracle | " + " | ".join(
        f"K={count}, {100 * share:.0f} %" for share in (0.0, 0.3) for count in HINT_COUNTS
    ) + " |", "|---|---|" + "---|" * (2 * len(HINT_COUNTS))]
    for name in names:
        part = results[name]
        cells = [f"{mean(part['scores'].get(('robust', count, share), []), 'absrel'):.3f}"
                 for share in (0.0, 0.3) for count in HINT_COUNTS]
        lines.append(f"| {name} | {mean(part['oracle'], 'absrel'):.3f} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """AbsRel (top) and delta1 (bottom) against K, one column per outlier share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    oracle_rows, scores, _ = pooled(results)
    figure, axes = plt.subplots(2, len(OUTLIER_SHARES), figsize=(4 * len(OUTLIER_SHARES), 6.5),
                                sharex=True, sharey="row")
    styles = {"robust": "o-", "lstsq": "s--", "median": "^:"}
    for column, share in enumerate(OUTLIER_SHARES):
        for row, (key, label) in enumerate((("absrel", "AbsRel"), ("delta1", "δ < 1.25"))):
            ax = axes[row, column]
            for method in METHODS:
                values = [mean(scores.get((method, count, share), []), key)
                          for count in HINT_COUNTS]
                ax.plot(HINT_COUNTS, values, styles[method], label=method)
            ax.axhline(mean(oracle_rows, key), color="black", linewidth=1, label="oracle")
            ax.set_xscale("log")
            ax.set_xticks(HINT_COUNTS, [str(k) for k in HINT_COUNTS])
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(f"{100 * share:.0f} % gross outliers")
            else:
                ax.set_xlabel("hints K")
            if column == 0:
                ax.set_ylabel(label)
    axes[0, 0].set_yscale("log")  # a few failed or far-off fits would flatten the rest
    axes[0, -1].legend()
    figure.suptitle(f"Metric depth from K hints, default model, {len(oracle_rows)} images")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-set", type=int, default=14, help="images per set")
    parser.add_argument("--size", type=int, default=128, help="render size in pixels")
    parser.add_argument("--draws", type=int, default=3, help="hint draws per image and setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--plot", type=Path, default=Path("docs/images/align/align_vs_hints.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = run(args.n_per_set, args.size, args.draws, args.seed)
    print()
    print(table(results))
    print()
    print("Robust fit, AbsRel per set (0 % and 30 % outliers):")
    print()
    print(per_set_table(results))
    plot(results, args.plot)
    print(f"\nplot: {args.plot}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
