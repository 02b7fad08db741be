"""The whole evaluation on fixtures in every benchmark's real layout.

The expected values come from a plain numpy implementation of the protocol written here
(bilinear resize, least squares with np.linalg.lstsq, clamp, metrics), independent of
mixdepth's own functions.
"""

import json

import eval_layouts  # tests/eval/eval_layouts.py: fixtures in each real layout
import numpy as np
import pytest

from mixdepth.eval import evaluate
from mixdepth.eval.report import read_rows

DENSE = ["nyu", "kitti", "tum", "eth3d", "sintel", "folder", "synthetic-heldout"]
KEYS = ["absrel", "sqrel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "bad_pixel"]


# ------------------------------------------------------------------ plain numpy reference


def np_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with half-pixel centres (align_corners=False), edge-clamped."""

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, wy = axis(a.shape[0], size[0])
    x0, x1, wx = axis(a.shape[1], size[1])
    a = a.astype(np.float64)
    top = a[y0][:, x0] * (1 - wx) + a[y0][:, x1] * wx
    bottom = a[y1][:, x0] * (1 - wx) + a[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bottom * wy[:, None]


def np_mask(depth, cap, crop):
    mask = np.isfinite(depth) & (depth >= 1e-3) & (depth <= cap)
    if crop is not None:
        h, w = depth.shape
        top, bottom, left, right = (
            int(np.floor(f * n + 1e-6)) for f, n in zip(crop, (h, h, w, w), strict=True)
        )
        inside = np.zeros_like(mask)
        inside[top:bottom, left:right] = True
        mask &= inside
    return mask


def np_protocol(pred_disparity, depth, mask, cap):
    gt = depth[mask]
    p = pred_disparity[mask]
    design = np.stack([p, np.ones_like(p)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, 1.0 / gt, rcond=None)
    d = 1.0 / np.maximum(scale * p + shift, 1.0 / cap)
    ratio = np.maximum(d / gt, gt / d)
    return {
        "absrel": np.mean(np.abs(d - gt) / gt),
        "sqrel": np.mean((d - gt) ** 2 / gt),
        "rmse": np.sqrt(np.mean((d - gt) ** 2)),
        "rmse_log": np.sqrt(np.mean((np.log(d) - np.log(gt)) ** 2)),
        "delta1": np.mean(ratio < 1.25),
        "delta2": np.mean(ratio < 1.25**2),
        "delta3": np.mean(ratio < 1.25**3),
        "bad_pixel": 100 * np.mean(ratio > 1.25),
    }


# ------------------------------------------------------------------ helpers


def np_disparity(depth):
    """1/depth where the ground truth is valid (> 0), 0 elsewhere."""
    return np.where(depth > 0, 1.0 / np.where(depth > 0, depth, 1.0), 0.0)


def build(name, tmp_path):
    return eval_layouts.BUILDERS[name](tmp_path / "data" / name)


def split_key(fx, key):
    """(subset, id) of a fixture key ("family:scene/frame" for held-out families)."""
    return (key.split(":", 1)[0], key.split(":", 1)[1]) if key in fx.subsets else ("", key)


def write_predictions(fx, folder, make):
    """Save make(key, depth) as <folder>/[<family>/]<id with / -> _>.npy for every sample."""
    for key, depth in fx.depth.items():
        subset, sample_id = split_key(fx, key)
        target = folder / subset if subset else folder
        target.mkdir(parents=True, exist_ok=True)
        np.save(target / f"{sample_id.replace('/', '_')}.npy", make(key, depth).astype(np.float32))


def rows_by_key(result):
    return {(r["subset"], r["id"]): r for r in result.rows}


def run(fx, preds, tmp_path, **kw):
    cap = {"cap": fx.cap} if fx.benchmark == "folder" else {}
    return evaluate(fx.benchmark, fx.root, predictions=preds, progress=False, **cap, **kw)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", DENSE)
def test_pipeline_agrees_with_numpy_reference(name, tmp_path):
    fx = build(name, tmp_path)
    rng = np.random.default_rng(11)
    low_res = {}

    def make(key, depth):  # a noisy disparity at half resolution
        h, w = depth.shape
        coarse = 1.0 / np_bilinear(np.where(depth > 0, depth, 5.0), (h // 2, w // 2))
        low_res[key] = 3.0 * coarse + 0.5 + rng.normal(0, 0.05, coarse.shape)
        return low_res[key]

    write_predictions(fx, tmp_path / "preds", make)
    result = run(fx, tmp_path / "preds", tmp_path)
    rows = rows_by_key(result)
    assert len(rows) == len(fx.depth) and result.summary["skipped"] == 0
    expected_all = []
    for key, depth in fx.depth.items():
        mask = np_mask(depth, fx.cap, fx.crop)
        pred = np_bilinear(low_res[key].astype(np.float32), depth.shape)
        expected = np_protocol(pred, depth, mask, fx.cap)
        expected_all.append(expected)
        row = rows[split_key(fx, key)]
        assert row["status"] == "ok" and row["valid_pixels"] == mask.sum()
        for k in KEYS:
            assert row[k] == pytest.approx(expected[k], rel=1e-5, abs=1e-7), (key, k)
    for k in KEYS:
        mean = np.mean([e[k] for e in expected_all])
        assert result.summary["metrics"][k] == pytest.approx(mean, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", [*DENSE, "diw"])
def test_affine_function_of_gt_disparity_is_perfect(name, tmp_path):
    fx = build(name, tmp_path)
    rng = np.random.default_rng(3)

    def make(key, depth):  # affine in GT disparity where the GT is valid, noise elsewhere
        return np.where(depth > 0, 4.0 * np_disparity(depth) + 0.25, rng.random(depth.shape))

    write_predictions(fx, tmp_path / "preds", make)
    result = run(fx, tmp_path / "preds", tmp_path)
    assert result.summary["evaluated"] == len(fx.depth)
    if name == "diw":
        assert result.primary == 0.0
        return
    metrics = result.summary["metrics"]
    assert result.summary["constant_predictions"] == 0
    assert result.summary["inverted_predictions"] == 0
    assert metrics["absrel"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["rmse"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["bad_pixel"] == 0.0 and metrics["delta1"] == 1.0


@pytest.mark.parametrize("name", ["nyu", "kitti", "eth3d"])
def test_negated_disparity_is_flagged_inverted_though_alignment_hides_it(name, tmp_path):
    fx = build(name, tmp_path)

    def negated(key, depth):  # near and far swapped: minus the true disparity, shifted
        return 5.0 - 2.0 * np_disparity(depth)

    write_predictions(fx, tmp_path / "preds", negated)
    result = run(fx, tmp_path / "preds", tmp_path)
    assert result.summary["inverted_predictions"] == len(fx.depth)
    assert all(row["inverted"] == 1 for row in rows_by_key(result).values())
    # the least-squares scale comes out negative and the metrics cannot tell
    assert result.summary["metrics"]["absrel"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("name", ["nyu", "kitti", "eth3d", "diw"])
def test_constant_prediction_scores_the_documented_value(name, tmp_path):
    fx = build(name, tmp_path)
    write_predictions(fx, tmp_path / "preds", lambda key, depth: np.full(depth.shape, 0.3))
    result = run(fx, tmp_path / "preds", tmp_path)
    if name == "diw":  # every pair is a tie: counted as wrong
        assert result.primary == 1.0
        return
    rows = rows_by_key(result)
    assert result.summary["constant_predictions"] == len(fx.depth)  # flagged, still scored
    for key, depth in fx.depth.items():
        gt = depth[np_mask(depth, fx.cap, fx.crop)]
        constant = min(1.0 / np.mean(1.0 / gt), fx.cap)  # depth of the mean GT disparity
        row = rows[split_key(fx, key)]
        assert row["absrel"] == pytest.approx(np.mean(np.abs(constant - gt) / gt), rel=1e-6)


def test_crop_switch_and_alternative_alignments(tmp_path):
    fx = build("nyu", tmp_path)
    write_predictions(fx, tmp_path / "preds", lambda key, depth: np.sqrt(depth + 1.0))
    cropped = run(fx, tmp_path / "preds", tmp_path)
    full = run(fx, tmp_path / "preds", tmp_path, crop=False)
    for key, depth in fx.depth.items():
        assert rows_by_key(cropped)[("", key)]["valid_pixels"] == np_mask(
            depth, 10.0, fx.crop
        ).sum()
        assert rows_by_key(full)[("", key)]["valid_pixels"] == np_mask(depth, 10.0, None).sum()
    assert cropped.summary["metrics"] != full.summary["metrics"]
    metric = {}
    for align in ("disparity", "depth", "median", "none"):
        metric[align] = run(fx, tmp_path / "preds", tmp_path, align=align).summary["metrics"]
        assert all(np.isfinite(v) for v in metric[align].values())
    assert len({m["absrel"] for m in metric.values()}) == 4


def test_outputs_resume_and_skips(tmp_path):
    fx = build("sintel", tmp_path)
    preds = tmp_path / "preds"
    write_predictions(fx, preds, lambda key, depth: 1.0 / np.maximum(depth, 0.5))
    missing = preds / "cave_2_frame_0002.npy"
    missing.unlink()
    out = tmp_path / "out"
    first = run(fx, preds, tmp_path, out=out, label="mine")
    assert (first.summary["evaluated"], first.summary["skipped"]) == (3, 1)
    assert first.summary["skip_reasons"] == {"missing prediction": 1}
    directory = out / "mine" / "sintel"
    rows = read_rows(directory / "per_image.csv")
    assert [r["status"] for r in rows].count("skipped") == 1
    assert "cave_2/frame_0002" in {r["id"] for r in rows if r["status"] == "skipped"}
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["primary"] == pytest.approx(first.primary)
    table = (out / "table.md").read_text()
    assert "| mine |" in table and "nan" not in table.lower()
    # Second run: evaluated images are not read again (their files are now broken), the
    # skipped one is retried and succeeds.
    np.save(missing, np.ones((24, 56), np.float32) * 0.5 + np.eye(24, 56, dtype=np.float32))
    for path in preds.glob("alley_1_*.npy"):
        path.write_bytes(b"broken")
    second = run(fx, preds, tmp_path, out=out, label="mine")
    assert (second.summary["evaluated"], second.summary["skipped"]) == (4, 0)
    old = {(r["subset"], r["id"]): r for r in first.rows if r["status"] == "ok"}
    for key, row in old.items():
        assert rows_by_key(second)[key]["absrel"] == row["absrel"]
    assert len(read_rows(directory / "per_image.csv")) == 4
    # Other settings into the same directory are refused; --no-resume starts over.
    from mixdepth.errors import ConfigError

    with pytest.raises(ConfigError, match="align"):
        run(fx, preds, tmp_path, out=out, label="mine", align="median")
    third = run(fx, preds, tmp_path, out=out, label="mine", resume=False)
    assert third.summary["skipped"] == 2  # the broken files now count


def test_heldout_families_are_scored_alone_and_together(tmp_path):
    fx = build("synthetic-heldout", tmp_path)
    write_predictions(fx, tmp_path / "preds", lambda key, depth: np.sqrt(depth + 2.0))
    result = run(fx, tmp_path / "preds", tmp_path, limit=1)
    subsets = result.summary["subsets"]
    assert set(subsets) == {"clutter", "landscapes"}
    assert all(part["evaluated"] == 1 for part in subsets.values())
    together = np.mean([p["metrics"]["absrel"] for p in subsets.values()])
    assert result.summary["metrics"]["absrel"] == pytest.approx(together)
    assert {"absrel", "bad_pixel"} <= set(result.summary["metrics"])


def test_nyu_root_may_be_the_mat_file_itself(tmp_path):
    fx = build("nyu", tmp_path)
    write_predictions(fx, tmp_path / "preds", lambda key, depth: 1.0 / np.maximum(depth, 0.1))
    mat = fx.root / "nyu_depth_v2_labeled.mat"
    result = evaluate("nyu", mat, predictions=tmp_path / "preds", progress=False)
    assert result.summary["evaluated"] == 2 and result.primary == 0.0


def test_folder_with_disparity_ground_truth(tmp_path):
    from mixdepth.errors import ConfigError

    fx = build("folder", tmp_path)
    for name, depth in fx.depth.items():  # store the targets as disparity up to scale
        disparity = np.where(depth > 0, 7.0 / np.where(depth > 0, depth, 1.0), 0.0)
        np.save(fx.root / "targets" / f"{name}.npy", disparity.astype(np.float32))
    (fx.root / "dataset.yaml").write_text("space: disparity_up_to_scale\n")
    write_predictions(fx, tmp_path / "preds", lambda key, depth: 1.0 / np.maximum(depth, 0.1))
    # depth up to the scale 1/7: a cap of 20 m becomes 20/7 in the ground truth's units
    result = evaluate("folder", fx.root, predictions=tmp_path / "preds", cap=20 / 7,
                      progress=False)
    assert result.summary["evaluated"] == 2
    assert result.summary["metrics"]["absrel"] == pytest.approx(0.0, abs=1e-5)
    (fx.root / "dataset.yaml").write_text("space: disparity_up_to_scale_and_shift\n")
    with pytest.raises(ConfigError, match="no depth to score"):
        evaluate("folder", fx.root, predictions=tmp_path / "preds", cap=3.0, progress=False)


def test_heldout_families_written_by_the_generator(tmp_path):
    from mixdepth.data import create_dataset
    from mixdepth.synthetic import HELDOUT_FAMILIES
    from mixdepth.synthetic.writer import HELDOUT, generate_set

    synth = tmp_path / "synth"
    preds = tmp_path / "preds"
    for family in HELDOUT_FAMILIES:
        generate_set(synth / "heldout" / family, HELDOUT, 2, seed=3, size=32,
                     families=(family,), contact_sheet=False)
        (preds / family).mkdir(parents=True)
        for sample in create_dataset("sintel", synth / "heldout" / family):
            depth = np.where(sample.mask, sample.target, 0.0)
            disparity = np.where(depth > 0, 2.0 / np.where(depth > 0, depth, 1.0) + 1.0, 0.0)
            np.save(preds / family / f"{sample.id.replace('/', '_')}.npy", disparity)
    result = evaluate("synthetic-heldout", synth, predictions=preds, progress=False)
    assert set(result.summary["subsets"]) == set(HELDOUT_FAMILIES)
    assert result.summary["evaluated"] == 2 * len(HELDOUT_FAMILIES)
    assert result.summary["metrics"]["absrel"] == pytest.approx(0.0, abs=1e-5)
    assert result.summary["metrics"]["bad_pixel"] == 0.0


def test_kitti_eigen_crop_from_a_benchmark_file(tmp_path):
    fx = build("kitti", tmp_path)
    eigen = (0.3324324, 0.91351351, 0.03594771, 0.96405229)
    spec = tmp_path / "kitti-eigen.yaml"
    spec.write_text(
        "name: kitti-eigen\ndataset: kitti\nsplit: eigen_test\ncap: 80\n"
        "valid_range: [0.001, 80]\nprimary_metric: bad_pixel\ncrop: true\n"
        f"crop_box: {list(eigen)}\n"
    )
    write_predictions(fx, tmp_path / "preds", lambda key, depth: np.sqrt(depth + 1.0))
    result = evaluate(str(spec), fx.root, predictions=tmp_path / "preds", progress=False)
    for key, depth in fx.depth.items():
        row = rows_by_key(result)[("", key)]
        assert row["valid_pixels"] == np_mask(depth, 80.0, eigen).sum()
        assert np_mask(depth, 80.0, eigen).sum() != np_mask(depth, 80.0, fx.crop).sum()


def test_missing_dataset_files_are_recorded_per_image(tmp_path):
    fx = build("folder", tmp_path)
    write_predictions(fx, tmp_path / "preds", lambda key, depth: np.sqrt(depth + 1.0))
    np.save(fx.root / "targets" / "attic.npy", np.ones((20, 20), np.float32))  # no image
    result = run(fx, tmp_path / "preds", tmp_path)
    skipped = [r for r in result.rows if r["status"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["id"].endswith("attic.npy")
    assert "missing partner file" in skipped[0]["reason"]
    assert result.summary["skip_reasons"] == {"unreadable sample": 1}
    kitti = build("kitti", tmp_path)
    write_predictions(kitti, tmp_path / "kp", lambda key, depth: np.sqrt(depth + 1.0))
    image = "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000054.png"
    (kitti.root / image).unlink()
    result = evaluate("kitti", kitti.root, predictions=tmp_path / "kp", progress=False)
    assert (result.summary["evaluated"], result.summary["skipped"]) == (1, 1)
    row = rows_by_key(result)[("", "2011_09_26_drive_0002_sync/image_02/0000000054")]
    assert row["status"] == "skipped" and "raw image" in row["reason"]


@pytest.mark.parametrize(
    ("name", "folder"), [("sintel", "training/final"), ("eth3d", "."), ("tum", ".")]
)
def test_files_named_as_mixdepth_predict_names_them(name, folder, tmp_path):
    """Outputs of `mixdepth predict <folder> -o DIR` are found by --predictions DIR."""
    from mixdepth.cli.predict import collect_inputs, output_names

    fx = build(name, tmp_path)
    files = collect_inputs([str(fx.root / folder)]).files
    images = [f for f in files if "depth" not in f.parts and f.suffix.lower() != ".txt"]
    preds = tmp_path / "preds"
    for stem in output_names(images):
        (preds / stem).parent.mkdir(parents=True, exist_ok=True)
        np.save(preds / f"{stem}.npy", np.ones((2, 2), np.float32))
    result = run(fx, preds, tmp_path)
    reasons = result.summary["skip_reasons"]
    assert "missing prediction" not in reasons
    assert result.summary["evaluated"] + result.summary["skipped"] == len(fx.depth)
