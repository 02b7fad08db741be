"""Figures of docs/model-card.md for a trained model: a gallery and ordinal checks on real photos.

    python experiments/model_card.py [--weights FILE] [--out docs/images/model-card]
        [--heldout DIR [--sizes N ...] [--limit N]] [--reference FILE]

It first prints the time of `predict` on a 640 x 480 photo. The photos are the real
photographs that ship with scikit-image; the model never saw them.
Checks (all invariant to the unknown scale and shift of relative inverse depth):
- "bottom nearer than top": mean predicted disparity of the bottom 15 % of rows is larger than
  that of the top 30 % (ground or table plane in front, sky or far wall behind);
- Middlebury "motorcycle" (a real stereo pair with ground-truth disparity, shipped as
  motorcycle_left.png + motorcycle_disp.npz): the ordinal error (WHDR) on random pixel pairs
  whose ground-truth disparities differ by more than 10 %, next to the same error of a trivial
  prior that only says "lower in the image is nearer".
With --heldout DIR (the synthetic generator's held-out families) the model is also evaluated
zero-shot there, next to two baselines under the same protocol: a constant prediction and the
"lower is nearer" prior; with --sizes N ... also at those working sizes (how the working size
is chosen: on synthetic held-out data only). Without --weights the bundled default model is
used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from mixdepth.inference import Predictor, read_image_file
from mixdepth.metrics import whdr
from mixdepth.outputs import colorize

GALLERY = ("motorcycle_left.png", "rocket.jpg", "coffee.png", "chelsea.png", "astronaut.png")
BOTTOM_NEARER = ("motorcycle_left.png", "rocket.jpg", "coffee.png")


class ImagePrior(nn.Module):
    """Baseline "network": disparity rising linearly from the top row to the bottom row
    (`rows=True`, "lower in the image is nearer"), or a constant (`rows=False`)."""

    def __init__(self, rows: bool):
        from mixdepth.models.registry import default_config

        super().__init__()
        self.rows = rows
        self.config = default_config("tiny")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ramp = torch.linspace(0.0, 1.0, h) if self.rows else torch.ones(h)
        return ramp.view(1, h, 1).expand(b, h, w).contiguous()


def _heldout_row(label: str, runner: Predictor, root: Path, limit: int | None) -> str:
    """One markdown row: overall held-out AbsRel, each family's, bad-pixel % and the share of
    images whose prediction has near and far swapped."""
    from mixdepth.eval import evaluate

    summary = evaluate("synthetic-heldout", root, model=runner, progress=False,
                       limit=limit).summary
    families = " | ".join(f"{s['metrics']['absrel']:.3f}" for s in summary["subsets"].values())
    swapped = summary["inverted_predictions"] / max(summary["evaluated"], 1)
    return (f"| {label} | {summary['metrics']['absrel']:.3f} | {families} | "
            f"{summary['metrics']['bad_pixel']:.1f} | {100 * swapped:.0f} % |")


def _heldout_header(root: Path) -> str:
    families = sorted(p.name for p in root.iterdir() if p.is_dir())
    columns = " | ".join(families)
    return (f"\n| predictor | held-out AbsRel | {columns} | bad pixels (%) | swapped |\n"
            f"|---|---|{'---|' * len(families)}---|---|")


def heldout_table(predictor: Predictor, root: Path, limit: int | None = None) -> None:
    """AbsRel (overall and per family) on the held-out families: the model and two baselines."""
    print(_heldout_header(root))
    runs = {
        f"this model (at {predictor.config.input_size} px)": predictor,
        "prior: lower in the image is nearer": Predictor(model=ImagePrior(rows=True),
                                                          runtime="torch"),
        "constant prediction": Predictor(model=ImagePrior(rows=False), runtime="torch"),
    }
    for label, runner in runs.items():
        print(_heldout_row(label, runner, root, limit))


def size_table(weights: Path | None, root: Path, sizes: list[int], limit: int | None) -> None:
    """The model on the held-out families at each working size (how the size is chosen)."""
    print(_heldout_header(root))
    for size in sizes:
        runner = Predictor(weights=weights, input_size=size)
        print(_heldout_row(f"at {size} px", runner, root, limit))


def photo(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def bottom_minus_top(disparity: np.ndarray) -> float:
    """Mean disparity of the bottom 15 % of rows minus that of the top 30 %, over the std."""
    h = disparity.shape[0]
    bottom = disparity[int(0.85 * h):].mean()
    top = disparity[: int(0.3 * h)].mean()
    return float((bottom - top) / (disparity.std() + 1e-12))


def ordinal_pairs(gt: np.ndarray, n: int, min_ratio: float, seed: int = 0) -> np.ndarray:
    """(N, 5) random pairs [y_a, x_a, y_b, x_b, label] of valid pixels whose ground-truth
    disparities differ by more than `min_ratio`; label +1 when a has the larger disparity."""
    rng = np.random.default_rng(seed)
    ys, xs = np.nonzero(np.isfinite(gt) & (gt > 0))
    a = rng.integers(0, len(ys), 4 * n)
    b = rng.integers(0, len(ys), 4 * n)
    da, db = gt[ys[a], xs[a]], gt[ys[b], xs[b]]
    keep = np.maximum(da, db) / np.minimum(da, db) > min_ratio
    a, b, da, db = a[keep][:n], b[keep][:n], da[keep][:n], db[keep][:n]
    label = np.where(da > db, 1, -1)
    return np.stack([ys[a], xs[a], ys[b], xs[b], label], axis=1).astype(np.int64)


def gallery(predictor: Predictor, out: Path, height: int = 200) -> Path:
    """One row per photo: the photo and its colour-mapped relative inverse depth."""
    rows = []
    for name in GALLERY:
        image = read_image_file(photo(name))
        disparity = predictor.predict(image)
        pair = np.concatenate([(image * 255).astype(np.uint8), colorize(disparity)], axis=1)
        pil = Image.fromarray(pair)
        rows.append(pil.resize((round(pil.width * height / pil.height), height), Image.BICUBIC))
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, height * len(rows)), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * height))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gallery.jpg"
    sheet.save(path, quality=88)
    return path


def photo_timing(weights: Path | None, repeats: int = 7) -> str:
    """Build time of the predictor and median time of `predict` on a 640 x 480 photo (coffee
    resized), with every core torch and onnxruntime use by default."""
    import time

    rgb = Image.open(photo("coffee.png")).convert("RGB").resize((640, 480), Image.BICUBIC)
    image = np.asarray(rgb, dtype=np.float32) / 255
    start = time.perf_counter()
    predictor = Predictor(weights=weights)
    built = time.perf_counter() - start
    predictor.predict(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(image)
        times.append(time.perf_counter() - start)
    return (f"{predictor}: 640x480 photo {1000 * float(np.median(times)):.1f} ms (median of "
            f"{repeats}, {torch.get_num_threads()} threads), predictor built in {built:.2f} s")


def mean_relative_difference(predictor: Predictor, reference: Path) -> list[tuple[str, float]]:
    """Per gallery photo: mean |map - reference map| / mean |reference map| (e.g. a float16
    copy of a weights file against its float32 original)."""
    other = Predictor(weights=reference, runtime="torch")
    rows = []
    for name in GALLERY:
        ours, theirs = predictor.predict(photo(name)), other.predict(photo(name))
        rows.append((name, float(np.abs(ours - theirs).mean() / np.abs(theirs).mean())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/images/model-card"))
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--heldout", type=Path, default=None)
    parser.add_argument("--sizes", type=int, nargs="*", default=[],
                        help="with --heldout: evaluate at these working sizes too")
    parser.add_argument("--limit", type=int, default=None,
                        help="with --heldout: at most this many images per family")
    parser.add_argument("--reference", type=Path, default=None,
                        help="weights to compare the maps with (mean relative difference)")
    args = parser.parse_args()

    print(photo_timing(args.weights))
    predictor = Predictor(weights=args.weights)
    if args.reference is not None:
        for name, difference in mean_relative_difference(predictor, args.reference):
            print(f"{name}: mean relative difference to {args.reference.name} {difference:.1e}")
    print(f"gallery: {gallery(predictor, args.out)}")

    print("\n| photo | bottom-minus-top disparity (in std units) | bottom nearer? |")
    print("|---|---|---|")
    for name in BOTTOM_NEARER:
        score = bottom_minus_top(predictor.predict(photo(name)))
        print(f"| {name} | {score:+.2f} | {'yes' if score > 0 else 'no'} |")

    gt = np.load(photo("motorcycle_disp.npz"))["arr_0"]
    pred = predictor.predict(photo("motorcycle_left.png"))
    pairs = ordinal_pairs(gt, args.pairs, 1.1)
    with torch.no_grad():
        rows_prior = ImagePrior(rows=True)(torch.zeros(1, 3, *gt.shape))[0].numpy()
    print(f"\nMiddlebury motorcycle, {len(pairs)} pixel pairs with a >10 % disparity difference:")
    print("| predictor | ordinal error (WHDR, lower is better) |")
    print("|---|---|")
    print(f"| this model | {whdr(pred, pairs):.3f} |")
    print(f"| prior: lower in the image is nearer | {whdr(rows_prior, pairs):.3f} |")
    if args.heldout is not None:
        heldout_table(predictor, args.heldout, args.limit)
        if args.sizes:
            size_table(args.weights, args.heldout, args.sizes, args.limit)


if __name__ == "__main__":
    main()
