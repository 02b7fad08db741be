"""Outputs of an evaluation: the per-image CSV, the JSON summary and the markdown tables.

Layout of an output directory (one sub-directory per evaluated model and benchmark):

    OUT/<label>/<benchmark>/per_image.csv   one row per image (evaluated or skipped, with why)
    OUT/<label>/<benchmark>/summary.json    means over images, counts, skip reasons, settings
    OUT/<label>/<benchmark>/run.json        the settings, checked when a run is resumed
    OUT/table.md                            the comparison table of every summary under OUT
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mixdepth.errors import FileFormatError
from mixdepth.eval.benchmarks import DENSE_METRICS, PAPER_ORDER

CSV_NAME = "per_image.csv"
SUMMARY_NAME = "summary.json"
RUN_NAME = "run.json"
TABLE_NAME = "table.md"
ALL = "all"  # subset name of the union of all subsets

METRIC_NAMES = (*DENSE_METRICS, "whdr")
CSV_FIELDS = (
    "subset", "id", "status", "reason", "valid_pixels", "pairs", "constant", "inverted",
    *METRIC_NAMES
)

METRIC_LABELS = {
    "absrel": "AbsRel",
    "sqrel": "SqRel",
    "rmse": "RMSE",
    "rmse_log": "RMSE log",
    "delta1": "δ<1.25",
    "delta2": "δ<1.25²",
    "delta3": "δ<1.25³",
    "bad_pixel": "δ>1.25 (%)",
    "whdr": "WHDR",
}
_DIGITS = {"whdr": 4, "bad_pixel": 2}


def format_metric(name: str, value: float | None) -> str:
    """A metric as the published table prints it; "n/a" when there is no value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{_DIGITS.get(name, 3)}f}"


def safe_name(label: str) -> str:
    """A model label usable as a directory name."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("._") or "model"


def skip_kind(reason: str) -> str:
    """The category of a skip reason ("missing prediction: x.npy" -> "missing prediction")."""
    return reason.split(":", 1)[0].strip()


class PerImageLog:
    """The per-image CSV, appended (and flushed) one row at a time so a run can be resumed.

    With resume=True the rows of an existing file are read back: evaluated images are kept
    and reported by `done`; skipped ones are dropped so that they are tried again.
    """

    def __init__(self, path: Path, resume: bool = True):
        self.path = Path(path)
        self.rows: list[dict] = []
        if resume and self.path.exists():
            self.rows = [row for row in read_rows(self.path) if row["status"] == "ok"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=CSV_FIELDS)
        self._writer.writeheader()
        for row in self.rows:
            self._writer.writerow(_csv_row(row))
        self._file.flush()

    @property
    def done(self) -> set[tuple[str, str]]:
        """(subset, id) of images already evaluated."""
        return {(row["subset"], row["id"]) for row in self.rows}

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._writer.writerow(_csv_row(row))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PerImageLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _csv_row(row: dict) -> dict:
    out = {key: row.get(key, "") for key in CSV_FIELDS}
    for key in METRIC_NAMES:
        value = row.get(key)
        out[key] = "" if value is None else repr(float(value))
    return out


def read_rows(path: Path) -> list[dict]:
    """Rows of a per-image CSV with metric values as floats (None where empty)."""
    path = Path(path)
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            if reader.fieldnames is None or not {"subset", "id", "status"} <= set(
                reader.fieldnames
            ):
                raise FileFormatError(path, "not a per-image evaluation CSV (header missing)")
            rows = []
            for row in reader:
                parsed = {key: row.get(key) or "" for key in CSV_FIELDS}
                for key in METRIC_NAMES:
                    parsed[key] = float(row[key]) if row.get(key) else None
                for key in ("valid_pixels", "pairs", "constant", "inverted"):
                    parsed[key] = int(row[key]) if row.get(key) else None
                rows.append(parsed)
    except (ValueError, KeyError) as err:
        raise FileFormatError(path, f"unreadable per-image evaluation CSV: {err}") from None
    return rows


def summarize_rows(rows: list[dict], primary_metric: str) -> dict:
    """Counts and means over images of one set of rows.

    Means come from `mixdepth.metrics.aggregate` over the evaluated images only; skipped
    images are counted (by reason) but never enter a mean, so no NaN reaches a table.
    """
    from mixdepth.metrics import aggregate

    evaluated = [row for row in rows if row["status"] == "ok"]
    skipped = [row for row in rows if row["status"] != "ok"]
    names = ("whdr",) if primary_metric == "whdr" else DENSE_METRICS
    metrics = {}
    if evaluated:
        per_image = [{name: float(row[name]) for name in names} for row in evaluated]
        metrics = {name: float(value) for name, value in aggregate(per_image).items()}
    return {
        "images": len(rows),
        "evaluated": len(evaluated),
        "skipped": len(skipped),
        "skip_reasons": dict(Counter(skip_kind(row["reason"]) for row in skipped)),
        "constant_predictions": sum(1 for row in evaluated if row.get("constant")),
        "inverted_predictions": sum(1 for row in evaluated if row.get("inverted")),
        "metrics": metrics,
        "primary": metrics.get(primary_metric),
    }


def summarize(rows: list[dict], benchmark, settings: dict) -> dict:
    """The JSON summary of one model on one benchmark (with per-subset parts if any)."""
    summary = {
        "label": settings.get("label"),
        "benchmark": benchmark.name,
        "title": benchmark.title,
        "primary_metric": benchmark.primary_metric,
        "settings": settings,
        **summarize_rows(rows, benchmark.primary_metric),
    }
    subsets = sorted({row["subset"] for row in rows if row["subset"]})
    if subsets:
        summary["subsets"] = {
            name: summarize_rows([r for r in rows if r["subset"] == name], benchmark.primary_metric)
            for name in subsets
        }
    return summary


def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_summaries(out: Path) -> list[dict]:
    """Every summary.json under an output directory (OUT/<label>/<benchmark>/summary.json)."""
    summaries = []
    for path in sorted(Path(out).glob(f"*/*/{SUMMARY_NAME}")):
        try:
            summaries.append(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise FileFormatError(path, f"not valid JSON: {err}") from None
    return summaries


def _column_order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (PAPER_ORDER.index(n) if n in PAPER_ORDER else 99))


def markdown_table(summaries: list[dict]) -> str:
    """The paper's table: one row per model, one column per benchmark, its primary metric.

    Lower is better everywhere. A benchmark a model was not run on shows "—"; a benchmark on
    which no image could be evaluated shows "n/a".
    """
    if not summaries:
        return ""
    labels = list(dict.fromkeys(s["label"] for s in summaries))
    columns = _column_order(s["benchmark"] for s in summaries)
    by_key = {(s["label"], s["benchmark"]): s for s in summaries}
    heads = {}
    for s in summaries:
        heads.setdefault(s["benchmark"], f"{s['title']} ({METRIC_LABELS[s['primary_metric']]})")
    lines = [
        "| model | " + " | ".join(heads[c] for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for label in labels:
        cells = []
        for column in columns:
            s = by_key.get((label, column))
            cells.append("—" if s is None else format_metric(s["primary_metric"], s["primary"]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def metrics_table(summaries: list[dict]) -> str:
    """Every metric of every run: one row per (model, benchmark[/subset]), with counts."""
    if not summaries:
        return ""
    names = [*DENSE_METRICS, "whdr"]
    lines = [
        "| model | benchmark | images | skipped | "
        + " | ".join(METRIC_LABELS[n] for n in names)
        + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    order = _column_order(s["benchmark"] for s in summaries)
    ordered = sorted(summaries, key=lambda s: order.index(s["benchmark"]))
    for s in ordered:
        parts = [(s["benchmark"], s)]
        parts += [(f"{s['benchmark']}/{k}", v) for k, v in s.get("subsets", {}).items()]
        for name, part in parts:
            cells = [
                "" if n not in part["metrics"] else format_metric(n, part["metrics"][n])
                for n in names
            ]
            lines.append(
                f"| {s['label']} | {name} | {part['evaluated']} | {part['skipped']} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def write_table(out: Path, summaries: list[dict] | None = None) -> Path:
    """Write OUT/table.md from the given summaries (default: every summary under OUT)."""
    out = Path(out)
    summaries = read_summaries(out) if summaries is None else summaries
    text = (
        "# Zero-shot evaluation\n\n"
        "Primary metric of each benchmark; lower is better.\n\n"
        + markdown_table(summaries)
        + "\n## All metrics\n\n"
        + metrics_table(summaries)
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / TABLE_NAME
    path.write_text(text)
    return path
