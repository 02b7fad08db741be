"""The shipped default model, used as a user would: `mixdepth predict photo` with no weights.

The photos are real photographs that ship with scikit-image (test cases only, never trained
on). Each has a ground or table plane in front, so a working depth model puts the bottom of
the image nearer (larger disparity) than the top.
"""

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mixdepth.cli import app
from mixdepth.inference import default_weights_path
from mixdepth.io.pfm import read_pfm

skimage = pytest.importorskip("skimage")
PHOTOS = Path(skimage.__file__).parent / "data"
GROUND_PLANE = ("motorcycle_left.png", "rocket.jpg", "coffee.png")

pytestmark = pytest.mark.skipif(default_weights_path() is None, reason="no bundled weights")


def test_predict_out_of_the_box_puts_the_ground_plane_nearer(tmp_path):
    inputs = tmp_path / "photos"
    inputs.mkdir()
    for name in GROUND_PLANE:
        (inputs / name).write_bytes((PHOTOS / name).read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["predict", str(inputs), "-o", str(out), "--format", "pfm,color"]
    )
    assert result.exit_code == 0, result.output
    maps = sorted(out.rglob("*.pfm"))
    assert len(maps) == len(GROUND_PLANE) and len(sorted(out.rglob("*.png"))) == len(GROUND_PLANE)
    for path in maps:
        disparity = read_pfm(path)
        assert np.isfinite(disparity).all() and disparity.std() > 0, path.name
        rows = disparity.shape[0]
        bottom = disparity[-max(1, rows * 15 // 100) :].mean()
        top = disparity[: max(1, rows * 30 // 100)].mean()
        assert bottom > top + 0.5 * disparity.std(), (path.name, bottom, top, disparity.std())
