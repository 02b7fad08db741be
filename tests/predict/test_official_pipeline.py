"""Predictor output vs the official MiDaS/DPT `run.py` pipeline on a real photograph.

The official code reads the image with OpenCV (RGB, float64 in [0, 1]), resizes it with
cv2.INTER_CUBIC to the network shape (aspect ratio kept, sides multiples of 32), normalises it,
runs the network and resizes the prediction back with torch bicubic, align_corners=False.
Only the input resize differs in implementation from ours (torch bicubic), so the same
network on both inputs shows how close the two pipelines are.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from predict_helpers import official_shape, random_midas_small

from mixdepth import models
from mixdepth.data.transforms import network_input_shape
from mixdepth.inference import Predictor

cv2 = pytest.importorskip("cv2")
skimage = pytest.importorskip("skimage")

PHOTO = Path(skimage.__file__).parent / "data" / "motorcycle_left.png"


@pytest.mark.parametrize("name", ["midas_v21_small", "midas_v21", "dpt_hybrid", "dpt_large"])
def test_network_shape_follows_the_official_resize(name):
    config = models.default_config(name)
    size, mode = config.input_size, config.resize_mode
    for height, width in [(500, 741), (480, 640), (1080, 1920), (375, 1242), (100, 50), (7, 9)]:
        assert network_input_shape(height, width, size, mode=mode) == official_shape(
            height, width, size, mode), (height, width)


def official_run_py(predictor: Predictor, path: Path) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) / 255.0
    height, width = image.shape[:2]
    config = predictor.config
    net_h, net_w = official_shape(height, width, config.input_size, config.resize_mode)
    resized = cv2.resize(image, (net_w, net_h), interpolation=cv2.INTER_CUBIC)
    x = torch.from_numpy(resized.astype(np.float32)).permute(2, 0, 1)[None]
    x = models.normalize(x, predictor.config)
    with torch.no_grad():
        out = predictor.model(x)
    return F.interpolate(out[:, None], size=(height, width), mode="bicubic",
                         align_corners=False)[0, 0].numpy()


@pytest.mark.parametrize("make_model", [None, random_midas_small], ids=["bundled", "v21-small"])
def test_same_output_as_the_official_pipeline_on_a_real_photo(make_model):
    if not PHOTO.is_file():
        pytest.skip("scikit-image ships without its sample photographs")
    predictor = Predictor(make_model() if make_model else None, optimize=False)
    ours = predictor.predict(PHOTO)
    official = official_run_py(predictor, PHOTO)
    assert ours.shape == official.shape == (500, 741)
    mean_relative = np.abs(ours - official).mean() / np.abs(official).mean()
    print(f"\n{make_model.__name__ if make_model else 'bundled model'}: mean relative "
          f"difference to the official pipeline {mean_relative:.1e}")
    assert mean_relative <= 5e-3, mean_relative
