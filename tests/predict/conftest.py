"""Fixtures for inference tests: a tiny model with random weights and its weights file."""

import pytest
import torch
from predict_helpers import random_tiny

from mixdepth import models


@pytest.fixture(scope="session")
def tiny_model() -> torch.nn.Module:
    return random_tiny()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    models.save_weights(tiny_model, path)
    return path
