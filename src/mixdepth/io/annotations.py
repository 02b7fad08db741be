"""Text annotation files: DIW point pairs and TUM RGB-D timestamp lists."""

from __future__ import annotations

import numpy as np

from mixdepth.errors import FileFormatError
from mixdepth.io._files import PathOrFile, display_name, read_bytes

_DIW_LABELS = {"<": 1, ">": -1, "=": 0}


def read_diw_csv(path: PathOrFile) -> list[tuple[str, np.ndarray]]:
    """Read a DIW annotation CSV (DIW_test.csv, DIW_train.csv, ...).

    The file alternates an image line (e.g. ``./DIW_test/<hash>.thumb``) and a pair line
    ``y_A,x_A,y_B,x_B,relation,h,w`` with 1-based pixel coordinates and relation '<' (A is
    closer, smaller depth) or '>' (A is further). Returns (image path as written, pairs)
    with pairs int64 (1, 5) = [[y_a, x_a, y_b, x_b, label]], 0-based, label +1 if A is closer,
    -1 if further (0 for '=').
    """
    name = display_name(path)
    try:
        lines = [ln.strip() for ln in read_bytes(path).decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        raise FileFormatError(name, "not a text file") from None
    lines = [ln for ln in lines if ln]
    if len(lines) % 2:
        raise FileFormatError(name, f"odd number of lines ({len(lines)}): an image without pairs")
    entries = []
    for number in range(0, len(lines), 2):
        image, fields = lines[number], lines[number + 1].split(",")
        try:
            if len(fields) < 5:
                raise ValueError
            y_a, x_a, y_b, x_b = (int(round(float(v))) - 1 for v in fields[:4])
            label = _DIW_LABELS[fields[4].strip()]
            pair = np.array([[y_a, x_a, y_b, x_b, label]], dtype=np.int64)
        # OverflowError: an infinite or more than 64-bit coordinate
        except (ValueError, KeyError, OverflowError):
            raise FileFormatError(
                name,
                f"line {number + 2}: expected 'y_A,x_A,y_B,x_B,<|>,h,w', got {lines[number + 1]!r}",
            ) from None
        entries.append((image, pair))
    return entries


def write_diw_csv(path, entries: list[tuple[str, np.ndarray, tuple[int, int]]]) -> None:
    """Write (image path, pairs (N, 5) 0-based, (height, width)) entries as a DIW CSV.

    DIW holds one pair per image line; an image with N pairs is written as N entries.
    """
    out = []
    for image, pairs, (height, width) in entries:
        for y_a, x_a, y_b, x_b, label in np.asarray(pairs, dtype=np.int64).reshape(-1, 5):
            relation = {1: "<", -1: ">", 0: "="}[int(label)]
            out.append(image)
            out.append(f"{y_a + 1},{x_a + 1},{y_b + 1},{x_b + 1},{relation},{height},{width}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def read_tum_list(path: PathOrFile) -> tuple[np.ndarray, list[str]]:
    """Read a TUM RGB-D list (rgb.txt / depth.txt): '# comment' lines, then
    'timestamp filename' per line -> (timestamps float64 (N,), filenames)."""
    name = display_name(path)
    stamps, files = [], []
    for number, line in enumerate(read_bytes(path).decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        try:
            stamps.append(float(parts[0]))
            files.append(parts[1])
        except (ValueError, IndexError):
            raise FileFormatError(name, f"line {number}: expected 'timestamp filename'") from None
    return np.asarray(stamps, dtype=np.float64), files


def write_tum_list(path, stamps, files, title: str = "") -> None:
    """Write a TUM RGB-D list: '# title', '# timestamp filename', then one line per frame."""
    lines = [f"# {title}" if title else "# TUM RGB-D list", "# timestamp filename"]
    lines += [f"{float(t):.6f} {f}" for t, f in zip(stamps, files, strict=True)]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def associate_timestamps(
    first: np.ndarray, second: np.ndarray, max_difference: float = 0.02
) -> list[tuple[int, int]]:
    """Match two timestamp lists as the TUM `associate.py` tool does.

    Every pair closer than `max_difference` seconds is a candidate; candidates are taken in
    order of increasing time difference, each index used at most once. Returns (i, j) index
    pairs sorted by i.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    order = np.argsort(second)
    sorted_second = second[order]
    lo = np.searchsorted(sorted_second, first - max_difference, side="left")
    hi = np.searchsorted(sorted_second, first + max_difference, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(len(first)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = order[np.repeat(lo, counts) + offsets]
    diffs = np.abs(first[rows] - second[cols])
    keep = diffs < max_difference
    rows, cols, diffs = rows[keep], cols[keep], diffs[keep]
    used_first, used_second, matches = set(), set(), []
    for k in np.argsort(diffs, kind="stable"):
        i, j = int(rows[k]), int(cols[k])
        if i not in used_first and j not in used_second:
            used_first.add(i)
            used_second.add(j)
            matches.append((i, j))
    return sorted(matches)
