import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from predict_helpers import random_image
from typer.testing import CliRunner

from mixdepth import models
from mixdepth.cli import app
from mixdepth.errors import FileFormatError, MixdepthError
from mixdepth.inference import InferenceConfig, Predictor, max_relative_difference
from mixdepth.inference.onnx import INPUT_NAME, compare_onnx, export_onnx, read_onnx_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_weights):
    """`tiny` (random weights from the weights file) exported once through the CLI (with the
    fast TorchScript exporter; the dynamo exporter is tested on a smaller net below)."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = CliRunner().invoke(
        app, ["export", "--weights", str(tiny_weights), "--format", "onnx", "-o", str(path),
              "--height", "64", "--width", "96", "--exporter", "torchscript"],
    )
    assert result.exit_code == 0, result.output
    assert "max relative difference" in result.output
    assert "outputs zeros" not in result.output
    return path


def test_onnxruntime_agrees_with_pytorch_at_two_sizes(exported, tiny_weights):
    model = models.load_model(tiny_weights)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for batch, height, width in [(1, 64, 96), (2, 96, 160)]:
        x = torch.rand(batch, 3, height, width, generator=generator)
        x = models.normalize(x, model.config)
        with torch.no_grad():
            expected = model(x)
        got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        assert got.shape == (batch, height, width)
        assert max_relative_difference(got, expected) <= 1e-4
    assert compare_onnx(exported, model, sizes=((32, 32), (128, 64))) <= 1e-4


def test_metadata_holds_the_inference_config(exported, tiny_weights):
    config = read_onnx_config(exported)
    assert config == InferenceConfig.of(models.load_model(tiny_weights).config)
    assert config.name == "tiny" and config.input_size == 64  # what the weights record


def test_predictor_on_onnx_matches_pytorch(exported, tiny_weights):
    images = [random_image(40, 56, seed=1), random_image(70, 30, seed=2)]
    with_onnx = Predictor(onnx=exported)
    with_torch = Predictor(weights=tiny_weights)
    assert with_onnx.config == with_torch.config
    for a, b in zip(with_onnx.predict_batch(images), with_torch.predict_batch(images), strict=True):
        assert a.shape == b.shape
        assert max_relative_difference(a, b) <= 1e-4


def test_cli_predict_with_onnx(exported, tiny_weights, tmp_path):
    rgb = random_image(36, 52)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "img.png"), "-o", str(tmp_path / "out"), "--onnx",
              str(exported), "-f", "npy"],
    )
    assert result.exit_code == 0, result.output
    expected = Predictor(weights=tiny_weights).predict(rgb)
    assert max_relative_difference(np.load(tmp_path / "out" / "img.npy"), expected) <= 1e-4


def test_onnx_without_metadata_or_with_model_is_rejected(exported, tmp_path):
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(FileFormatError, match="bare.onnx.*mixdepth export"):
        Predictor(onnx=bare)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"garbage")
    with pytest.raises(FileFormatError, match="junk.onnx"):
        Predictor(onnx=junk)
    with pytest.raises(MixdepthError, match="not both"):
        Predictor("tiny", onnx=exported)
    with pytest.raises(MixdepthError, match="not found"):
        Predictor(onnx=tmp_path / "missing.onnx")


class SmallDepthNet(torch.nn.Module):
    """Two strided convs and a bilinear resize back: the shape logic of a depth net, small."""

    def __init__(self):
        super().__init__()
        self.config = InferenceConfig("small", 64, "upper_bound", (0.5,) * 3, (0.5,) * 3)
        self.down = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, 2, 1),
        )
        self.head = torch.nn.Conv2d(8, 1, 1)

    def forward(self, x):
        y = self.head(self.down(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def test_dynamo_exporter_gives_dynamic_height_and_width(tmp_path):
    torch.manual_seed(0)
    net = SmallDepthNet().eval()
    path, used = export_onnx(net, tmp_path / "small.onnx", 64, 64, exporter="dynamo")
    assert used == "dynamo"
    assert compare_onnx(path, net, sizes=((32, 96), (128, 64))) <= 1e-4
    assert read_onnx_config(path) == net.config
    with pytest.raises(MixdepthError, match="multiples of 32"):
        export_onnx(net, tmp_path / "bad.onnx", 60, 64)


def test_export_warns_when_the_comparison_is_uninformative(tmp_path):
    """A model whose final ReLU zeroes every output: agreement would prove nothing."""
    model = models.create("tiny")
    with torch.no_grad():
        model.scratch.output_conv[4].weight.zero_()
        model.scratch.output_conv[4].bias.fill_(-1.0)
    models.save_weights(model, tmp_path / "dead.safetensors")
    result = CliRunner().invoke(
        app, ["export", "--weights", str(tmp_path / "dead.safetensors"), "-o",
              str(tmp_path / "t.onnx"), "--exporter", "torchscript"],
    )
    assert result.exit_code == 0, result.output
    assert "outputs zeros" in result.output
