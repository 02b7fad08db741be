import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mixdepth.errors import FileFormatError
from mixdepth.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _model_and_optimizer(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(2, 3, 8, 8)).square().mean().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_model_optimizer_and_extra(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    path = save_checkpoint(tmp_path, 7, model, optimizer, {"sampler": {"step": 7}}, {"steps": 9})
    assert path.name == "step_00000007" and latest_checkpoint(tmp_path) == path
    assert sorted(p.name for p in path.iterdir()) == [
        "config.yaml", "model.safetensors", "optimizer.safetensors", "state.pt"
    ]
    # plain formats: safetensors and a weights_only torch file
    assert set(load_file(path / "model.safetensors")) == set(model.state_dict())
    state = torch.load(path / "state.pt", weights_only=True)
    assert state["step"] == 7 and state["config"] == {"steps": 9}

    other, other_opt = _model_and_optimizer(1)
    loaded = load_checkpoint(path, other, other_opt)
    assert loaded["sampler"] == {"step": 7}
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the optimiser continues identically
    x = torch.randn(2, 3, 8, 8)
    for m, o in ((model, optimizer), (other, other_opt)):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rng_states_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(1)  # noqa: NPY002
    torch.manual_seed(1)
    model, optimizer = _model_and_optimizer(0)
    state = rng_state()
    save_checkpoint(tmp_path, 1, model, optimizer, {}, {})
    expected = (random.random(), np.random.random(), torch.rand(1))  # noqa: NPY002
    loaded = torch.load(latest_checkpoint(tmp_path) / "state.pt", weights_only=True)
    random.seed(5)
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.random()) == expected[:2]  # noqa: NPY002
    assert torch.equal(torch.rand(1), expected[2])
    set_rng_state(state)


def test_keeps_newest_and_leaves_no_temporaries(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    for step in (2, 4, 6, 8):
        save_checkpoint(tmp_path, step, model, optimizer, {}, {}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step_00000006", "step_00000008"]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000008"


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer = _model_and_optimizer(0)
    good = save_checkpoint(tmp_path, 1, model, optimizer, {}, {})

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("mixdepth.train.checkpoint.torch.save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, model, optimizer, {}, {})
    assert latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest", "step_00000001"
    ]


def test_errors(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    model, optimizer = _model_and_optimizer(0)
    path = save_checkpoint(tmp_path, 1, model, optimizer, {}, {})
    with pytest.raises(FileFormatError, match="does not match the model"):
        load_checkpoint(path, torch.nn.Linear(2, 2))
    (path / "state.pt").write_bytes(b"garbage")
    with pytest.raises(FileFormatError, match="unreadable checkpoint"):
        load_checkpoint(path, model)
    (tmp_path / "checkpoints" / "latest").write_text("step_00000099\n")
    with pytest.raises(FileFormatError, match="not a checkpoint"):
        latest_checkpoint(tmp_path)
