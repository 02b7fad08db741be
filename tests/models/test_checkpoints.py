"""Weights files: safetensors round trip, official .pt files, clear errors, `mixdepth convert`."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from mixdepth.cli import app, main
from mixdepth.errors import ConfigError, FileFormatError, MixdepthError
from mixdepth.models import create, load_model, load_weights, read_state_dict, save_weights
from mixdepth.models.checkpoints import guess_architecture, read_metadata, save_state_dict


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = create("tiny").eval()
    with torch.no_grad():  # non-default batch-norm statistics must survive the round trip
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _predict(model, seed=0):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


def test_save_load_round_trip(tmp_path, tiny_model, offline):
    path = save_weights(tiny_model, tmp_path / "w" / "tiny.safetensors")
    meta = read_metadata(path)
    assert meta["model"] == "tiny" and "mixdepth_version" in meta
    loaded = load_model(path)
    assert loaded.config.name == "tiny" and not loaded.training
    assert torch.equal(_predict(loaded), _predict(tiny_model))
    fresh = load_weights(create("tiny"), path)
    assert torch.equal(_predict(fresh), _predict(tiny_model))


def test_options_are_stored_and_rebuilt(tmp_path):
    model = create("tiny", features=24, expand=True)
    path = save_weights(model, tmp_path / "t.safetensors")
    assert json.loads(read_metadata(path)["options"]) == {"expand": True, "features": 24}
    loaded = load_model(path)
    assert loaded.config.options == {"expand": True, "features": 24}
    assert torch.equal(_predict(loaded), _predict(model))


def test_working_size_is_stored_and_applied(tmp_path, tiny_model):
    path = save_weights(tiny_model, tmp_path / "a.safetensors", metadata={"input_size": "160"})
    assert read_metadata(path)["input_size"] == "160"
    loaded = load_model(path)
    assert loaded.config.input_size == 160 and create("tiny").config.input_size == 256
    assert torch.equal(_predict(loaded), _predict(tiny_model))
    # re-saved, the model keeps it; official files and files without it use the registry's
    again = save_weights(loaded, tmp_path / "b.safetensors")
    assert load_model(again).config.input_size == 160
    plain = save_state_dict(tiny_model.state_dict(), tmp_path / "c.safetensors", "tiny")
    assert load_model(plain).config.input_size == 256
    torch.save(tiny_model.state_dict(), tmp_path / "d.pt")
    assert load_model(tmp_path / "d.pt").config.input_size == 256


@pytest.mark.parametrize("value", ["abc", "16", "-5", "1.5"])
def test_bad_stored_working_size_names_the_file(tmp_path, tiny_model, value):
    path = save_weights(tiny_model, tmp_path / "bad.safetensors", metadata={"input_size": value})
    with pytest.raises(FileFormatError, match=r"bad\.safetensors.*input_size"):
        load_model(path)


def test_save_needs_safetensors_extension(tmp_path, tiny_model):
    with pytest.raises(FileFormatError, match=r"\.safetensors"):
        save_weights(tiny_model, tmp_path / "tiny.pt")


@pytest.mark.parametrize("wrap", ["plain", "model", "state_dict", "module_prefix"])
def test_official_style_pt_files_load(tmp_path, tiny_model, wrap):
    state = tiny_model.state_dict()
    if wrap == "module_prefix":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif wrap == "plain":
        obj = state
    else:
        obj = {wrap: state, "epoch": 3} if wrap == "state_dict" else {wrap: state}
    path = tmp_path / f"{wrap}.pt"
    torch.save(obj, path)
    assert set(read_state_dict(path)) == set(state)
    loaded = load_model(path)  # no metadata: architecture guessed from the keys
    assert loaded.config.name == "tiny"
    assert torch.equal(_predict(loaded), _predict(tiny_model))


def test_wrong_file_lists_missing_and_unexpected_keys(tmp_path, tiny_model):
    state = dict(tiny_model.state_dict())
    state.pop("scratch.output_conv.4.weight")
    state["pretrained.model.pos_embed"] = torch.zeros(1, 577, 8)
    for i in range(12):
        state[f"extra.buffer{i}"] = torch.zeros(1)
    state["scratch.layer1_rn.weight"] = torch.zeros(5, 5, 3, 3)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(FileFormatError) as info:
        load_weights(create("tiny"), path)
    msg = str(info.value)
    assert str(path) in msg and "'tiny'" in msg
    assert "1 missing key(s): scratch.output_conv.4.weight" in msg
    assert "13 unexpected key(s)" in msg and "pretrained.model.pos_embed" in msg
    assert "(3 more)" in msg  # at most 10 listed
    assert "1 shape mismatch(es): scratch.layer1_rn.weight: file (5, 5, 3, 3)" in msg


def test_no_architecture_matches(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(FileFormatError, match="matches no known architecture.*closest is"):
        load_model(path)
    with pytest.raises(FileFormatError, match="does not fit model 'midas_v21_small'"):
        load_model(path, name="midas_v21_small")


class NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "cfg": NotATensor()}, path)
    with pytest.raises(FileFormatError, match=r"evil\.pt: refused: .*pickled Python objects"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("garbage.pt", b"not a checkpoint at all", "not a readable PyTorch weights file"),
        ("text.pt", b"junk\n", "not a readable PyTorch weights file"),
        ("garbage.safetensors", b"\x00\x01", "not a readable safetensors file"),
        ("list.pt", None, "expected a state dict"),
        ("mixed.pt", {"a": torch.zeros(1), "b": 3}, "entries that are not: b"),
    ],
)
def test_bad_files_give_file_format_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is None:
        torch.save([torch.zeros(1)], path)
    else:
        torch.save(content, path)
    with pytest.raises(FileFormatError, match=match) as info:
        read_state_dict(path)
    assert name in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(MixdepthError):
        load_model(None)


def test_guess_architecture_on_generated_layouts(tiny_model):
    assert guess_architecture(tiny_model.state_dict()) == "tiny"


def test_convert_cli_round_trip(tmp_path, tiny_model):
    src = tmp_path / "official.pt"
    torch.save({"model": tiny_model.state_dict()}, src)
    dst = tmp_path / "out" / "tiny.safetensors"
    result = CliRunner().invoke(app, ["convert", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output
    assert read_metadata(dst)["model"] == "tiny" and read_metadata(dst)["source"] == src.name
    assert torch.equal(_predict(load_model(dst)), _predict(tiny_model))
    again = tmp_path / "again.safetensors"
    result = CliRunner().invoke(app, ["convert", str(dst), str(again), "--model", "tiny"])
    assert result.exit_code == 0, result.output
    assert torch.equal(_predict(load_model(again)), _predict(tiny_model))
    # a recorded working size survives conversion
    sized = save_weights(tiny_model, tmp_path / "sized.safetensors", metadata={"input_size": "96"})
    result = CliRunner().invoke(app, ["convert", str(sized), str(tmp_path / "sized2.safetensors")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "sized2.safetensors").config.input_size == 96


def test_convert_cli_half_keeps_the_spec_and_the_output(tmp_path):
    import dataclasses

    torch.manual_seed(0)
    model = create("lite0", features=8, expand=False).eval()
    model.config = dataclasses.replace(model.config, mean=(0.4, 0.5, 0.6))
    src = save_weights(model, tmp_path / "run.safetensors", metadata={"input_size": "96"})
    dst = tmp_path / "half.safetensors"
    result = CliRunner().invoke(app, ["convert", str(src), str(dst), "--half"])
    assert result.exit_code == 0, result.output
    assert dst.stat().st_size < 0.55 * src.stat().st_size
    state = read_state_dict(dst)
    assert state["scratch.layer1_rn.weight"].dtype == torch.float16
    assert "num_batches_tracked" in "".join(k for k, v in state.items() if v.dtype == torch.int64)
    loaded = load_model(dst)
    assert loaded.config.input_size == 96 and loaded.config.mean == (0.4, 0.5, 0.6)
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ours, full = loaded(x), model(x)
    assert ((ours - full).abs().mean() / full.abs().mean()) < 5e-3
    resized = tmp_path / "resized.safetensors"
    result = CliRunner().invoke(app, ["convert", str(dst), str(resized), "--size", "320"])
    assert result.exit_code == 0, result.output
    assert load_model(resized).config.input_size == 320
    result = CliRunner().invoke(app, ["convert", str(dst), str(resized), "--size", "100"])
    assert isinstance(result.exception, ConfigError) and "--size" in str(result.exception)


def test_convert_cli_wrong_model_exits_2(tmp_path, tiny_model, monkeypatch, capsys):
    src = tmp_path / "tiny.pt"
    torch.save(tiny_model.state_dict(), src)
    dst = tmp_path / "x.safetensors"
    monkeypatch.setattr(sys, "argv", ["mixdepth", "convert", str(src), str(dst), "-m", "midas_v21"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "does not fit model" in err and "missing key(s)" in err
    assert not dst.exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused_with_the_tensor_name(tmp_path, tiny_model, suffix, bad):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[key].view(-1)[3] = bad
    path = tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        save_state_dict(state, path, "tiny")
    with pytest.raises(FileFormatError, match=rf"tensor '{key}' holds 1 NaN or inf") as info:
        load_model(path)
    assert info.value.path == str(path)
    with pytest.raises(FileFormatError, match=key):
        load_weights(create("tiny"), path)


@pytest.mark.parametrize("damage", ["truncated", "header bit flip"])
def test_damaged_safetensors_weights_name_the_file(tmp_path, tiny_model, damage):
    path = tmp_path / "model.safetensors"
    save_weights(tiny_model, path)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data[12] ^= 0x22  # inside the JSON header
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="model.safetensors: ") as info:
        load_model(path)
    assert info.value.path == str(path)
