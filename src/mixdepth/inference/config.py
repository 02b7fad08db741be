"""What inference needs to know about a model (`InferenceConfig`) and how a predictor gets its
network (`build_model`, the bundled default weights)."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from mixdepth.errors import ConfigError, MixdepthError


def default_weights_path() -> Path | None:
    """The bundled default weights (mixdepth/weights/default.safetensors) or None if absent."""
    ref = importlib.resources.files("mixdepth") / "weights" / "default.safetensors"
    return Path(str(ref)) if ref.is_file() else None


@dataclass(frozen=True)
class InferenceConfig:
    """What inference needs to know about a model: its working size, resize rule, mean/std."""

    name: str
    input_size: int
    resize_mode: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, config: Any) -> InferenceConfig:
        """The inference part of a model's `config`."""
        return cls(
            name=str(config.name),
            input_size=int(config.input_size),
            resize_mode=str(config.resize_mode),
            mean=tuple(float(v) for v in config.mean),
            std=tuple(float(v) for v in config.std),
        )

    def with_input_size(self, input_size: int | None) -> InferenceConfig:
        """This config with another working size (None: unchanged)."""
        return self if input_size is None else replace(self, input_size=input_size)


def build_model(model: str | nn.Module | None, weights: str | Path | None) -> nn.Module:
    """The network a Predictor runs, in eval mode.

    - an nn.Module: used as is (weights, if given, are loaded strictly into it);
    - a registry name without weights: constructed with random weights;
    - weights (with or without a name): loaded with `mixdepth.models.load_model`;
    - neither: the bundled default weights, or a MixdepthError saying what to pass.
    """
    from mixdepth import models

    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise MixdepthError(f"{weights}: weights file not found")
    if isinstance(model, nn.Module):
        if not hasattr(model, "config"):
            raise ConfigError(
                f"{type(model).__name__} has no .config (name, input_size, resize_mode, mean, "
                "std): build it with mixdepth.models.create or attach one"
            )
        if weights is not None:
            models.load_weights(model, weights)
        return model.eval()
    if model is None and weights is None:
        weights = default_weights_path()
        if weights is None:
            raise MixdepthError(
                "no model given and this installation ships no default weights: pass "
                "--weights PATH (a .safetensors or official .pt checkpoint) and/or --model NAME "
                f"(one of {', '.join(models.list_models())})"
            )
    if weights is None:
        return models.create(model).eval()
    return models.load_model(weights, name=model).eval()
