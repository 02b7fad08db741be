"""Benchmark definitions, the per-image CSV, summaries and the paper-layout tables."""

import pytest

from mixdepth.errors import ConfigError, FileFormatError
from mixdepth.eval.benchmarks import list_benchmarks, load_benchmark
from mixdepth.eval.report import (
    PerImageLog,
    format_metric,
    markdown_table,
    metrics_table,
    read_rows,
    summarize_rows,
)

PUBLISHED = {  # benchmark -> (cap, primary metric), METHOD.md section 6
    "nyu": (10.0, "bad_pixel"),
    "tum": (10.0, "bad_pixel"),
    "kitti": (80.0, "bad_pixel"),
    "eth3d": (72.0, "absrel"),
    "sintel": (72.0, "absrel"),
    "diw": (None, "whdr"),
}


def test_shipped_benchmarks_follow_the_protocol():
    names = list_benchmarks()
    assert names[:6] == ["diw", "eth3d", "sintel", "kitti", "nyu", "tum"]
    assert {"folder", "synthetic-heldout"} <= set(names)
    for name, (cap, primary) in PUBLISHED.items():
        bench = load_benchmark(name)
        assert (bench.cap, bench.primary_metric) == (cap, primary)
        if cap is not None:
            assert bench.valid_range[1] == cap
    assert load_benchmark("nyu").crop and load_benchmark("kitti").crop
    assert not load_benchmark("eth3d").crop
    heldout = load_benchmark("synthetic-heldout")
    assert heldout.dataset == "sintel" and heldout.subsets == "heldout"


def test_user_benchmark_file_and_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndataset: folder\ncap: 20\nprimary_metric: rmse\n")
    bench = load_benchmark(str(path))
    assert (bench.name, bench.cap, bench.primary_metric) == ("mine", 20.0, "rmse")
    path.write_text("name: mine\ndataset: folder\ncolour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        load_benchmark(str(path))
    path.write_text("name: mine\ndataset: folder\nprimary_metric: delta1\n")
    with pytest.raises(ConfigError, match="primary_metric"):
        load_benchmark(str(path))
    with pytest.raises(ConfigError, match="unknown benchmark"):
        load_benchmark("imagenet")


def _row(subset, image_id, status="ok", reason="", **metrics):
    return {"subset": subset, "id": image_id, "status": status, "reason": reason, **metrics}


def test_csv_resume_keeps_evaluated_rows_and_retries_skips(tmp_path):
    path = tmp_path / "per_image.csv"
    with PerImageLog(path, resume=True) as log:
        log.append(_row("", "a", absrel=0.25, bad_pixel=10.0, valid_pixels=7))
        log.append(_row("", "b", status="skipped", reason="missing prediction: b.npy"))
    rows = read_rows(path)
    assert [r["id"] for r in rows] == ["a", "b"]
    assert rows[0]["absrel"] == 0.25 and rows[0]["valid_pixels"] == 7 and rows[0]["rmse"] is None
    assert rows[1]["reason"] == "missing prediction: b.npy"
    with PerImageLog(path, resume=True) as log:
        assert log.done == {("", "a")}
    assert [r["id"] for r in read_rows(path)] == ["a"]
    with PerImageLog(path, resume=False) as log:
        assert log.done == set()
    path.write_text("x,y\n1,2\n")
    with pytest.raises(FileFormatError, match="per-image"):
        read_rows(path)


def test_summary_counts_skips_and_never_averages_them():
    rows = [
        _row("", "a", absrel=0.1, sqrel=0, rmse=0, rmse_log=0, delta1=1, delta2=1, delta3=1,
             bad_pixel=0.0),
        _row("", "b", absrel=0.3, sqrel=0, rmse=0, rmse_log=0, delta1=1, delta2=1, delta3=1,
             bad_pixel=50.0),
        _row("", "c", status="skipped", reason="empty mask: nothing valid"),
    ]
    s = summarize_rows(rows, "absrel")
    assert (s["images"], s["evaluated"], s["skipped"]) == (3, 2, 1)
    assert s["skip_reasons"] == {"empty mask": 1}
    assert s["primary"] == pytest.approx(0.2) and s["metrics"]["bad_pixel"] == 25.0
    none = summarize_rows(rows[2:], "absrel")
    assert none["primary"] is None and none["metrics"] == {}


def _summary(label, bench, title, primary, value, evaluated=5):
    return {
        "label": label, "benchmark": bench, "title": title, "primary_metric": primary,
        "primary": value, "metrics": {} if value is None else {primary: value},
        "evaluated": evaluated, "skipped": 0, "images": evaluated,
    }


def test_markdown_table_in_the_papers_layout():
    table = markdown_table([
        _summary("a", "nyu", "NYU", "bad_pixel", 9.5512),
        _summary("a", "diw", "DIW", "whdr", 0.12461),
        _summary("b", "nyu", "NYU", "bad_pixel", None, evaluated=0),
        _summary("b", "eth3d", "ETH3D", "absrel", 0.1289),
    ])
    lines = table.strip().splitlines()
    assert lines[0] == "| model | DIW (WHDR) | ETH3D (AbsRel) | NYU (δ>1.25 (%)) |"
    assert lines[2] == "| a | 0.1246 | — | 9.55 |"
    assert lines[3] == "| b | — | 0.129 | n/a |"
    assert "nan" not in table.lower()
    assert "| a | nyu | 5 | 0 |" in metrics_table([_summary("a", "nyu", "NYU", "bad_pixel", 1.0)])
    assert format_metric("absrel", float("nan")) == "n/a"


def test_crop_box_is_validated(tmp_path):
    path = tmp_path / "crop.yaml"
    path.write_text("name: c\ndataset: kitti\ncrop_box: [0.5, 0.2, 0, 1]\n")
    with pytest.raises(ConfigError, match="crop_box"):
        load_benchmark(str(path))
    path.write_text("name: c\ndataset: kitti\ncrop_box: [0.2, 0.5, 0, 1]\n")
    assert load_benchmark(str(path)).crop_box == (0.2, 0.5, 0.0, 1.0)
