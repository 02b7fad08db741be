"""`tiny(backbone="timm:NAME")`: with a real timm where it imports, else with a stand-in module
that has timm's features_only interface (feature_info.reduction()/channels())."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from mixdepth.errors import ConfigError
from mixdepth.models import create


class _FeatureInfo:
    def __init__(self, reductions, channels):
        self._reductions, self._channels = reductions, channels

    def reduction(self):
        return list(self._reductions)

    def channels(self):
        return list(self._channels)


class _FakeFeatureNet(nn.Module):
    """Five conv levels at strides 2..32, returning all of them, like a timm FeatureListNet."""

    def __init__(self, channels=(8, 12, 16, 20, 24)):
        super().__init__()
        ins = (3, *channels[:-1])
        pairs = zip(ins, channels, strict=True)
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, 2, 1) for i, o in pairs)
        self.feature_info = _FeatureInfo((2, 4, 8, 16, 32), channels)

    def forward(self, x):
        out = []
        for conv in self.convs:
            x = conv(x)
            out.append(x)
        return out


@pytest.fixture
def fake_timm(monkeypatch):
    module = types.ModuleType("timm")

    def create_model(name, pretrained=False, features_only=False):
        assert features_only and not pretrained
        if name == "vit_like":
            net = _FakeFeatureNet()
            net.feature_info = _FeatureInfo((16, 16, 16, 16, 16), (8,) * 5)
            return net
        return _FakeFeatureNet()

    module.create_model = create_model
    monkeypatch.setitem(sys.modules, "timm", module)


def test_timm_backbone_with_features_only_interface(fake_timm):
    model = create("tiny", backbone="timm:fake_net").eval()
    assert model.pretrained.out_channels == (12, 16, 20, 24)
    encoder_keys = [k for k in model.state_dict() if not k.startswith("scratch.")]
    assert encoder_keys and all(k.startswith("pretrained.model.") for k in encoder_keys)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 64, 64)


def test_timm_backbone_needs_strides_4_to_32(fake_timm):
    with pytest.raises(ConfigError, match="feature strides.*missing"):
        create("tiny", backbone="timm:vit_like")


def test_bad_backbone_name():
    with pytest.raises(ConfigError, match="backbone must be"):
        create("tiny", backbone="resnet18")


def _timm_imports() -> bool:
    if importlib.util.find_spec("timm") is None:
        return False
    try:
        import timm  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _timm_imports(), reason="timm does not import in this environment")
def test_real_timm_resnet18():
    model = create("tiny", backbone="timm:resnet18").eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 64, 64)


@pytest.mark.skipif(_timm_imports(), reason="timm imports here")
def test_missing_timm_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    with pytest.raises(ConfigError, match="needs a working timm"):
        create("tiny", backbone="timm:resnet18")
