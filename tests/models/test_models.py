"""CNN models: offline construction, forward contract, parameter counts, official key layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from official_layout import LARGE, LARGE_ABSENT, SMALL, SMALL_ABSENT, SMALL_N_KEYS

from mixdepth.errors import ConfigError
from mixdepth.models import ModelConfig, create, list_models, load_weights, normalize
from mixdepth.models.checkpoints import check_state_dict, guess_architecture
from mixdepth.models.registry import IMAGENET_MEAN, IMAGENET_STD, create_on_meta

DATA = Path(__file__).parent / "data"
LARGE_N_KEYS = 624 + 42  # ResNeXt-101: 33 blocks x 18 + 4 downsamples x 6 + stem 6; decoder 42


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_registry_lists_the_zoo():
    names = list_models()
    for name in ("tiny", "midas_v21_small", "midas_v21", "dpt_hybrid", "dpt_large"):
        assert name in names
    assert all(isinstance(d, str) and d for d in list_models(details=True).values())


def test_unknown_model_and_option_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'midas_v99'.*tiny"):
        create("midas_v99")
    with pytest.raises(ConfigError, match="no option.*featurez.*valid options:.*features"):
        create("tiny", featurez=3)


@pytest.mark.parametrize(
    ("name", "size", "low", "high"),
    [("tiny", 256, 0.2e6, 3e6), ("midas_v21_small", 256, 20.5e6, 22e6)],
)
def test_small_models_forward_contract(offline, name, size, low, high):
    torch.manual_seed(0)
    model = create(name)
    cfg = model.config
    assert isinstance(cfg, ModelConfig) and cfg.name == name and cfg.input_size == size
    assert cfg.resize_mode == "upper_bound"
    assert cfg.mean == IMAGENET_MEAN and cfg.std == IMAGENET_STD
    assert low < n_params(model) < high
    assert all(k.startswith(("pretrained.", "scratch.")) for k in model.state_dict())
    model.eval()
    with torch.no_grad():
        for h, w in [(64, 96), (32, 32)]:
            out = model(torch.randn(2, 3, h, w))
            assert out.shape == (2, h, w)
            assert torch.isfinite(out).all() and (out >= 0).all()


def test_midas_v21_forward_once(offline):
    model = create("midas_v21").eval()
    assert 104e6 < n_params(model) < 107e6
    assert model.config.input_size == 384
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 64, 64) and (out >= 0).all()


def test_non_negative_false_lets_the_output_go_negative():
    torch.manual_seed(0)
    model = create("tiny", non_negative=False).eval()
    with torch.no_grad():
        # a negative bias on the last conv makes the raw output negative somewhere
        model.scratch.output_conv[4].bias.fill_(-10.0)
        out = model(torch.rand(1, 3, 64, 64))
    assert (out < 0).any()
    assert isinstance(model.scratch.output_conv[5], torch.nn.Identity)


def test_tiny_width_options_change_the_architecture():
    base = create("tiny")
    wide = create("tiny", width=1.5, features=48, expand=True)
    assert n_params(wide) > n_params(base)
    assert wide.scratch.layer4_rn.weight.shape[0] == 48 * 8
    assert wide.config.options == {"width": 1.5, "features": 48, "expand": True}
    with torch.no_grad():
        assert wide.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 64, 64)


def test_tiny_trains_a_few_steps():
    """A tiny model fits a horizontal ramp: the loss must drop clearly within a few steps."""
    torch.manual_seed(0)
    model = create("tiny")
    images = torch.rand(2, 3, 64, 64)
    target = torch.linspace(0, 1, 64).expand(2, 64, 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = (model(normalize(images, model.config)) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-2:]) < 0.7 * losses[0]
    encoder_grads = [p.grad for n, p in model.named_parameters() if n.startswith("pretrained.")]
    assert all(g is not None for g in encoder_grads)


def test_normalize_uses_config_mean_std():
    cfg = ModelConfig("x", 256, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    images = torch.ones(2, 3, 4, 5)
    out = normalize(images, cfg)
    assert out.shape == images.shape
    assert torch.allclose(out[:, 0], torch.ones(1))
    assert torch.allclose(out[:, 1], torch.full((1,), 3.0))
    assert torch.allclose(out[:, 2], torch.ones(1))
    assert normalize(images[0], cfg).shape == (3, 4, 5)
    assert normalize(images.double(), cfg).dtype == torch.float64


def _assert_contains(model_shapes: dict, official: dict) -> None:
    missing = [k for k in official if k not in model_shapes]
    assert not missing, missing
    wrong = {k: (model_shapes[k], s) for k, s in official.items() if model_shapes[k] != s}
    assert not wrong, wrong


def test_midas_v21_small_has_the_official_layout():
    model_shapes = shapes(create_on_meta("midas_v21_small"))
    _assert_contains(model_shapes, SMALL)
    assert not any(k in model_shapes for k in SMALL_ABSENT)
    assert len(model_shapes) == SMALL_N_KEYS
    # the complete key -> shape list of an official-structure model
    full = {k: tuple(v) for k, v in json.loads((DATA / "midas_v21_small_official_keys.json")
                                              .read_text()).items()}
    assert model_shapes == full


def test_midas_v21_has_the_official_layout():
    model_shapes = shapes(create_on_meta("midas_v21"))
    _assert_contains(model_shapes, LARGE)
    assert not any(k in model_shapes for k in LARGE_ABSENT)
    assert len(model_shapes) == LARGE_N_KEYS


def test_official_small_state_dict_strict_loads(tmp_path, offline):
    """A state dict in the official layout (from the fixture key list, with random values)
    loads strictly, changes the output, and is recognised without a model name."""
    full = json.loads((DATA / "midas_v21_small_official_keys.json").read_text())
    gen = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in full.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    path = tmp_path / "midas_v21_small-official.pt"
    torch.save(state, path)
    model = load_weights(create("midas_v21_small"), path)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert guess_architecture(state) == "midas_v21_small"
    # official files may lack the num_batches_tracked buffers
    without = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    check_state_dict(create_on_meta("midas_v21_small"), without, path)


def test_official_large_layout_is_recognised():
    """Key/shape check on the meta device (no 400 MB allocation)."""
    state = create_on_meta("midas_v21").state_dict()
    assert guess_architecture(state) == "midas_v21"
