import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import ToyDepthDataset, toy_config
from mixdepth.errors import FileFormatError, MixdepthError
from mixdepth.train import train
from mixdepth.train.checkpoint import (
    checkpoint_candidates,
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
        "checksums.json", "config.yaml", "model.safetensors", "optimizer.safetensors", "state.pt"
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
    with pytest.raises(FileFormatError, match=r"state\.pt: checksum mismatch"):
        load_checkpoint(path, model)
    (path / "checksums.json").unlink()
    with pytest.raises(FileFormatError, match=r"state\.pt: unreadable checkpoint"):
        load_checkpoint(path, model)
    (tmp_path / "checkpoints" / "latest").write_text("step_00000099\n")
    with pytest.raises(FileFormatError, match="not a checkpoint"):
        latest_checkpoint(tmp_path)


def _flip_bit(path, position):
    data = bytearray(path.read_bytes())
    data[position % len(data)] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.safetensors", "state.pt"])
@pytest.mark.parametrize("damage", ["truncated", "bit flip in the header", "bit flip in the data"])
def test_damaged_checkpoint_file_is_named(tmp_path, name, damage):
    model, optimizer = _model_and_optimizer(0)
    path = save_checkpoint(tmp_path, 1, model, optimizer, {}, {})
    file = path / name
    if damage == "truncated":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    else:
        _flip_bit(file, 20 if damage.endswith("header") else file.stat().st_size - 9)
    with pytest.raises(FileFormatError, match=name.replace(".", r"\.")) as info:
        load_checkpoint(path, *_model_and_optimizer(1))
    assert info.value.path == str(file)


def test_damage_is_found_by_the_file_parsers_without_checksums(tmp_path):
    """Checkpoints of older versions have no checksums.json: truncation is still caught."""
    model, optimizer = _model_and_optimizer(0)
    path = save_checkpoint(tmp_path, 1, model, optimizer, {}, {})
    (path / "checksums.json").unlink()
    for name in ("model.safetensors", "optimizer.safetensors", "state.pt"):
        original = (path / name).read_bytes()
        (path / name).write_bytes(original[:-40])
        with pytest.raises(FileFormatError, match=name.replace(".", r"\.")):
            load_checkpoint(path, *_model_and_optimizer(1))
        (path / name).write_bytes(original)
    load_checkpoint(path, *_model_and_optimizer(1))


def test_nan_weights_in_a_checkpoint_are_refused_with_the_tensor_name(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    path = save_checkpoint(tmp_path, 1, model, optimizer, {}, {})
    expected = r"model\.safetensors: tensor '0\.weight' holds 1 NaN"
    with pytest.raises(FileFormatError, match=expected):
        load_checkpoint(path, *_model_and_optimizer(1))


def test_candidates_newest_first_and_a_broken_pointer(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    for step in (2, 4, 6):
        save_checkpoint(tmp_path, step, model, optimizer, {}, {}, keep=3)
    root = tmp_path / "checkpoints"
    assert [p.name for p in checkpoint_candidates(tmp_path)] == [
        "step_00000006", "step_00000004", "step_00000002"
    ]
    (root / "latest").write_bytes(b"\xff\xfe")
    with pytest.raises(FileFormatError, match="not a text file"):
        latest_checkpoint(tmp_path)
    assert [p.name for p in checkpoint_candidates(tmp_path)][0] == "step_00000006"


def _toy():
    return [ToyDepthDataset(6, seed=0, kind="disparity"), ToyDepthDataset(5, seed=1, kind="depth")]


def test_resume_takes_the_previous_checkpoint_when_the_newest_is_corrupt(tmp_path, capsys):
    torch.set_num_threads(1)
    changes = {"steps": 6, "checkpoint_every": 2, "keep_checkpoints": 2}
    train(toy_config(tmp_path / "a", **changes), datasets=_toy())
    config = toy_config(tmp_path / "b", **changes)
    first = train(config, datasets=_toy(), stop_after=4)
    assert first.step == 4
    root = tmp_path / "b" / "run" / "checkpoints"
    assert sorted(p.name for p in root.glob("step_*")) == ["step_00000002", "step_00000004"]
    newest = root / "step_00000004" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])
    capsys.readouterr()
    resumed = train(toy_config(tmp_path / "b", **changes), datasets=_toy(), resume=True)
    notice = capsys.readouterr().out
    assert "skipping step_00000004" in notice and "model.safetensors" in notice
    assert "taking the previous complete checkpoint step_00000002" in notice
    assert resumed.step == 6
    # resumed from step 2, it still reaches the uninterrupted run's weights
    a = load_file(tmp_path / "a" / "run" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_with_every_checkpoint_corrupt_stops(tmp_path):
    torch.set_num_threads(1)
    changes = {"steps": 4, "checkpoint_every": 2}
    train(toy_config(tmp_path, **changes), datasets=_toy(), stop_after=2)
    for state in (tmp_path / "run" / "checkpoints").glob("step_*/state.pt"):
        state.write_bytes(b"garbage")
    with pytest.raises(MixdepthError, match="no readable checkpoint"):
        train(toy_config(tmp_path, **changes), datasets=_toy(), resume=True)
