"""The model registry: named architectures, each with one default input configuration.

A builder is registered with `@register(name, input_size=..., ...)` and called by
`create(name, **options)`; the returned module carries `model.config` (a ModelConfig) that
records the name, the input rules and the options it was built with, so a saved checkpoint can
rebuild the same architecture.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from mixdepth.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

# Modules that register the built-in architectures when imported.
_BUILTIN_MODULES = (
    "mixdepth.models.tiny", "mixdepth.models.midas", "mixdepth.models.lite", "mixdepth.models.dpt"
)


@dataclass(frozen=True)
class ModelConfig:
    """How a model expects its input.

    input_size: working size for the resize rule (`network_input_shape(target=input_size,
    mode=resize_mode)`, sides a multiple of 32); mean/std: per-channel normalisation of RGB in
    [0, 1]; options: the keyword options given to `create` (recorded in saved checkpoints).
    """

    name: str
    input_size: int
    resize_mode: str = "upper_bound"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    config: ModelConfig
    description: str
    pretrained: Callable[[nn.Module], None] | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str,
    *,
    input_size: int,
    resize_mode: str = "upper_bound",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    pretrained: Callable[[nn.Module], None] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering `builder(**options) -> nn.Module` under `name`.

    The builder's keyword parameters are the options `create` accepts; its docstring's first
    line is the description shown by `list_models(details=True)`. `pretrained(model)`, if
    given, loads the encoder's ImageNet weights from an installed package (never a download).
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ValueError(f"model name {name!r} is already registered")
        config = ModelConfig(name, input_size, resize_mode, tuple(mean), tuple(std))
        doc = (inspect.getdoc(builder) or "").split("\n")[0]
        _REGISTRY[name] = _Entry(builder, config, doc, pretrained)
        return builder

    return decorator


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def list_models(details: bool = False) -> list[str] | dict[str, str]:
    """Registered model names (sorted), or {name: one-line description} with details=True."""
    _load_builtin()
    names = sorted(_REGISTRY)
    if details:
        return {name: _REGISTRY[name].description for name in names}
    return names


def _entry(name: str) -> _Entry:
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_options(name: str) -> dict[str, Any]:
    """{option: default} accepted by `create(name, ...)`."""
    params = inspect.signature(_entry(name).builder).parameters
    return {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}


def default_config(name: str) -> ModelConfig:
    """The ModelConfig `create(name)` attaches (no options)."""
    return _entry(name).config


def pretrained_models() -> list[str]:
    """Names of the models whose encoder has ImageNet weights (`create(name, pretrained=True)`)."""
    _load_builtin()
    return sorted(name for name, entry in _REGISTRY.items() if entry.pretrained is not None)


def create(name: str, pretrained: bool = False, **options: Any) -> nn.Module:
    """Build the registered architecture `name` (no network access).

    Options are the builder's keyword options (e.g. `non_negative=False`, `features=...`);
    an unknown option raises ConfigError listing the valid ones. The model gets `.config`.
    Weights are random, except the encoder's with `pretrained=True`: ImageNet weights from an
    installed package (ConfigError naming the package if it is missing, or listing the models
    that have them). `pretrained` is not an option: weights files do not record it.
    """
    entry = _entry(name)
    if pretrained and entry.pretrained is None:
        raise ConfigError(
            f"model {name!r} has no pretrained encoder weights; models that have them: "
            f"{', '.join(pretrained_models()) or 'none'}"
        )
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(sorted(valid)) or 'none'}"
        )
    model = entry.builder(**options)
    model.config = replace(entry.config, options=dict(options))
    if pretrained:
        entry.pretrained(model)
    return model


def create_on_meta(name: str, **options: Any) -> nn.Module:
    """`create` on the meta device: the parameter names and shapes without allocating memory."""
    with torch.device("meta"):
        return create(name, **options)


def normalize(images: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """(B, 3, H, W) or (3, H, W) RGB in [0, 1] -> (x - mean) / std per channel, as the model
    with this config expects."""
    shape = (3, 1, 1)
    mean = torch.tensor(config.mean, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(config.std, dtype=images.dtype, device=images.device).view(shape)
    return (images - mean) / std
