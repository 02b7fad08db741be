import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from predict_helpers import random_image, random_tiny, with_input_size

import mixdepth
import mixdepth.inference.config as config_module
from mixdepth.data.transforms import network_input_shape
from mixdepth.errors import ConfigError, MixdepthError
from mixdepth.inference import (
    Predictor,
    fold_batch_norm,
    max_relative_difference,
    to_rgb_array,
)


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor(tiny_model)


def test_lazy_export_from_package():
    assert mixdepth.Predictor is Predictor


def test_predict_accepts_path_pil_uint8_and_float(tmp_path, predictor):
    rgb = random_image(40, 56)
    path = tmp_path / "img.png"
    Image.fromarray(rgb).save(path)
    results = [
        predictor.predict(path),
        predictor.predict(str(path)),
        predictor.predict(Image.fromarray(rgb)),
        predictor.predict(rgb),
        predictor.predict(rgb.astype(np.float32) / 255.0),
        predictor.predict(np.concatenate([rgb, np.full((40, 56, 1), 255, np.uint8)], axis=2)),
    ]
    for result in results:
        assert result.shape == (40, 56)
        assert result.dtype == np.float32
        assert np.isfinite(result).all()
        np.testing.assert_allclose(result, results[0], rtol=0, atol=1e-6)
    assert results[0].std() > 0


def test_grey_input_and_output_size(predictor):
    grey = random_image(33, 47)[..., 0]
    assert predictor.predict(grey).shape == (33, 47)
    assert predictor.predict(grey, output_size=(10, 20)).shape == (10, 20)
    assert predictor.predict(grey, output_size=(10, 20), interpolation="bilinear").shape == (10, 20)
    with pytest.raises(ConfigError, match="interpolation"):
        predictor.predict(grey, interpolation="lanczos")


def test_matches_reference_pipeline(tiny_model):
    """Bicubic resize to the reference shape, mean/std, network, bicubic resize back."""
    rgb = random_image(50, 70, seed=3)
    config = tiny_model.config
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    size = network_input_shape(50, 70, config.input_size, mode=config.resize_mode)
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
    x = (x - torch.tensor(config.mean).view(3, 1, 1)) / torch.tensor(config.std).view(3, 1, 1)
    with torch.no_grad():
        out = tiny_model(x)[:, None]
    expected = F.interpolate(out, size=(50, 70), mode="bicubic", align_corners=False)[0, 0]
    got = Predictor(tiny_model, optimize=False).predict(rgb)
    assert max_relative_difference(got, expected) < 1e-6


def test_exif_orientation_is_applied(tmp_path, predictor):
    image = Image.fromarray(random_image(32, 48))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert predictor.predict(path).shape == (48, 32)


def test_batch_of_mixed_sizes_equals_one_by_one(predictor):
    images = [random_image(h, w, seed=i) for i, (h, w) in
              enumerate([(48, 64), (64, 48), (45, 61), (32, 32), (48, 64), (90, 40)])]
    buckets = {predictor.network_shape(*im.shape[:2]) for im in images}
    assert len(buckets) < len(images)  # some images share a forward pass
    batched = predictor.predict_batch(images, batch_size=2)
    for image, result in zip(images, batched, strict=True):
        single = predictor.predict(image)
        assert result.shape == image.shape[:2]
        assert max_relative_difference(result, single) < 1e-5


def test_fast_path_matches_eager(tiny_model):
    fast = Predictor(tiny_model, optimize=True, runtime="torch")
    assert fast.runtime == "torch-fast"
    eager = Predictor(tiny_model, optimize=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast._fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tiny_model.modules())  # untouched
    for seed, (h, w) in enumerate([(64, 64), (40, 90)]):
        image = random_image(h, w, seed=seed)
        assert max_relative_difference(fast.predict(image), eager.predict(image)) < 1e-3


def test_bfloat16_autocast_close_to_float32(tiny_model):
    image = random_image(64, 64)
    reference = Predictor(tiny_model).predict(image)
    result = Predictor(tiny_model, dtype=torch.bfloat16).predict(image)
    assert result.dtype == np.float32
    assert np.corrcoef(result.ravel(), reference.ravel())[0, 1] > 0.95


class SharedConvOutput(torch.nn.Module):
    """conv -> bn, but the conv output is used again: folding would change the result."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.bn.running_mean.uniform_(1.0, 2.0)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_fold_batch_norm_keeps_results_or_backs_off(tiny_model):
    x = torch.randn(1, 3, 64, 64)
    folded = fold_batch_norm(tiny_model)
    with torch.no_grad():
        assert max_relative_difference(folded(x), tiny_model(x)) < 1e-5
    model = SharedConvOutput().eval()
    safe = fold_batch_norm(model)
    assert isinstance(safe.bn, torch.nn.BatchNorm2d)
    with torch.no_grad():
        assert max_relative_difference(safe(x), model(x)) < 1e-6


def test_module_without_config_is_rejected():
    with pytest.raises(ConfigError, match="Conv2d has no .config"):
        Predictor(torch.nn.Conv2d(3, 1, 1))


def test_to_rgb_array_rejects_bad_arrays():
    with pytest.raises(MixdepthError, match=r"\[0, 1\]"):
        to_rgb_array(np.full((8, 8, 3), 200.0))
    with pytest.raises(MixdepthError, match="channels first"):
        to_rgb_array(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(MixdepthError, match="NaN"):
        to_rgb_array(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(MixdepthError):
        to_rgb_array([1, 2, 3])
    assert to_rgb_array(np.full((4, 5), 65535, np.uint16)).max() == 1.0


def test_unreadable_and_missing_image_files(tmp_path, predictor):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MixdepthError, match="bad.png.*cannot decode image"):
        predictor.predict(bad)
    with pytest.raises(MixdepthError, match="no such image file"):
        predictor.predict(tmp_path / "missing.png")


def test_weights_file_loaded_and_missing_file_reported(tmp_path, tiny_model, tiny_weights):
    image = random_image(32, 48)
    from_file = Predictor(weights=tiny_weights)
    assert from_file.config.name == "tiny"
    assert from_file.config.input_size == 64  # the working size the file records
    reference = Predictor(with_input_size(random_tiny(), 64)).predict(image)
    assert max_relative_difference(from_file.predict(image), reference) < 1e-6
    with pytest.raises(MixdepthError, match="missing.safetensors: weights file not found"):
        Predictor("tiny", weights=tmp_path / "missing.safetensors")


def test_default_weights_when_shipped(monkeypatch, tiny_weights):
    monkeypatch.setattr(config_module, "default_weights_path", lambda: tiny_weights)
    image = random_image(32, 32)
    default = Predictor()
    assert default.config.name == "tiny"
    reference = Predictor(with_input_size(random_tiny(), 64)).predict(image)
    assert max_relative_difference(default.predict(image), reference) < 1e-6


def test_no_default_weights_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(config_module, "default_weights_path", lambda: None)
    with pytest.raises(MixdepthError, match="--weights PATH.*--model NAME"):
        Predictor()


def test_default_weights_path_points_into_the_package():
    path = config_module.default_weights_path()
    assert path is None or (path.is_file() and path.name == "default.safetensors")


def test_random_init_by_name():
    predictor = Predictor("tiny")
    assert predictor.config.name == "tiny"
    assert predictor.network_shape(480, 640) == (192, 256)
    assert predictor.predict(random_image(30, 40)).shape == (30, 40)
    with pytest.raises(ConfigError, match="unknown model"):
        Predictor("no_such_model")


def test_incompatible_weights_fail_with_the_file_name(tmp_path, tiny_model):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny_model.state_dict().items()}
    state.pop("scratch.output_conv.4.weight")
    path = tmp_path / "incomplete.safetensors"
    save_file(state, str(path), metadata={"model": "tiny"})
    with pytest.raises(MixdepthError, match="incomplete.safetensors.*output_conv"):
        Predictor(weights=path)


@pytest.mark.parametrize("shape", [(1, 1), (1, 120), (3, 2)])
def test_tiny_and_sliver_images(predictor, shape):
    result = predictor.predict(np.zeros((*shape, 3), np.uint8))
    assert result.shape == shape and np.isfinite(result).all()


def test_models_without_batch_norm_are_not_copied():
    from torch import nn

    from mixdepth.inference import optimize_for_inference

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    assert optimize_for_inference(net) is net
    assert not net.training


@pytest.mark.parametrize("size", [16, 0, 64.0, True, "128"])
def test_bad_input_size_is_refused(size, tiny_weights):
    with pytest.raises(ConfigError, match="input_size"):
        Predictor(weights=tiny_weights, input_size=size)


@pytest.mark.parametrize("shape, size", [((96, 160), (500, 741)), ((160, 256), (500, 741)),
                                         ((64, 64), (50, 70)), ((1, 1), (5, 9)),
                                         ((200, 300), (64, 32)), ((7, 5), (1, 1))])
def test_bicubic_resize_by_matrices_equals_interpolate(shape, size):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(x[None, None], size=size, mode="bicubic", align_corners=False)[0, 0]
    got = Predictor.resize_output(x, size)
    assert got.shape == size
    assert max_relative_difference(got, expected) < 1e-6
