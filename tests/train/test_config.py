from pathlib import Path

import pytest
import yaml

from mixdepth.errors import ConfigError
from mixdepth.train.config import apply_overrides, config_from_dict, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _config(tmp_path, **changes) -> dict:
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    data = {
        "datasets": [
            {"name": "tum", "root": str(tmp_path / "a")},
            {"name": "diw", "root": str(tmp_path / "b"), "loss": "ordinal", "weight": 0.5},
        ],
        "mixing": "pareto",
        "out_dir": str(tmp_path / "run"),
        "batch_size": 4,
    }
    data.update(changes)
    return data


def test_defaults_and_paper_optimiser(tmp_path):
    config = config_from_dict(_config(tmp_path))
    assert config.optimizer.lr_encoder == 1e-5 and config.optimizer.lr_decoder == 1e-4
    assert config.optimizer.betas == (0.9, 0.999)
    assert config.pareto_mode == "full" and config.precision == "float32"
    assert config.datasets[0].loss is None and config.datasets[1].loss == "ordinal"
    assert config.datasets[1].weight == 0.5
    # the plain-data form round-trips through YAML
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stepz": 3}, r"^stepz: unknown key"),
        ({"optimizer": {"lr": 1e-3}}, r"^optimizer\.lr: unknown key"),
        ({"steps": "many"}, r"^steps: expected an integer"),
        ({"steps": 2.5}, r"^steps: expected an integer"),
        ({"steps": 0}, r"^steps: must be positive"),
        ({"mixing": "proportional"}, r"^mixing: must be one of"),
        ({"pareto_mode": "fast"}, r"^pareto_mode: must be one of"),
        ({"precision": "float16"}, r"^precision: must be one of"),
        ({"progress": "yes"}, r"^progress: expected true or false"),
        ({"crop_size": 100}, r"^crop_size: must be a multiple of 32"),
        ({"augment": {"zoom": 0.8}}, r"^augment\.zoom: must be at least 1"),
        ({"augment": {"zoom": "big"}}, r"^augment\.zoom: expected a number"),
        ({"augment": {"zoom": float("inf")}}, r"^augment\.zoom: must be at least 1"),
        ({"batch_size": 5}, r"^batch_size: pareto mixing splits every batch evenly"),
        ({"grad_clip": -1.0}, r"^grad_clip: must be positive"),
        ({"optimizer": {"betas": [0.9]}}, r"^optimizer\.betas: expected a list of 2"),
        ({"optimizer": {"betas": [0.9, 1.5]}}, r"^optimizer\.betas\[1\]: must be in"),
        ({"model": {"weights": "/nonexistent/w.safetensors"}}, r"^model\.weights: file not found"),
        ({"datasets": []}, r"^datasets: at least one dataset"),
        ({"model": {"name": "resnet"}}, r"^model\.name: unknown model 'resnet'"),
        ({"model": {"pretrained": "imagenet"}}, r"^model\.pretrained: 'tiny' has no ImageNet"),
        ({"model": {"pretrained": "coco"}}, r"^model\.pretrained: must be one of 'imagenet'"),
        ({"loss": {"kind": "ordinal"}}, r"^loss\.kind: ordinal applies to pair datasets"),
        ({"loss": {"kind": "l1"}}, r"^loss\.kind: must be one of"),
    ],
)
def test_errors_name_the_key(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(_config(tmp_path, **change))


def test_dataset_entry_errors(tmp_path):
    data = _config(tmp_path)
    data["datasets"][1]["root"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"^datasets\[1\]\.root: directory not found: .*missing"):
        config_from_dict(data)
    data = _config(tmp_path)
    data["datasets"][0]["loss"] = "l2"
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.loss: must be one of"):
        config_from_dict(data)
    data = _config(tmp_path)
    data["datasets"][0]["colour"] = "red"
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.colour: unknown key"):
        config_from_dict(data)
    data = _config(tmp_path)
    del data["datasets"][0]["root"]
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.root: required key is missing"):
        config_from_dict(data)
    data = _config(tmp_path)
    data["datasets"][0]["name"] = "imagenet"
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.name: unknown dataset 'imagenet'"):
        config_from_dict(data)
    data = _config(tmp_path)
    data["datasets"][1]["name"] = "tum"
    with pytest.raises(ConfigError, match=r"^datasets\[1\]\.label: 'tum' is used twice"):
        config_from_dict(data)
    data["datasets"][1]["label"] = "tum-second"
    assert config_from_dict(data).datasets[1].label == "tum-second"


def test_a_dataset_root_may_be_a_list(tmp_path):
    data = _config(tmp_path)
    data["datasets"][0]["root"] = [str(tmp_path / "a"), str(tmp_path / "b")]
    config = config_from_dict(data)
    assert config.datasets[0].root == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert config_from_dict(config.to_dict()) == config
    data["datasets"][0]["root"] = [str(tmp_path / "a"), str(tmp_path / "missing")]
    with pytest.raises(
        ConfigError, match=r"^datasets\[0\]\.root\[1\]: directory not found: .*missing"
    ):
        config_from_dict(data)
    assert config_from_dict(data, check_paths=False).datasets[0].root[1].endswith("missing")
    data["datasets"][0]["root"] = [str(tmp_path / "a"), 3]
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.root\[1\]: expected a string"):
        config_from_dict(data)
    data["datasets"][0]["root"] = []
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.root: an empty list"):
        config_from_dict(data)
    data["datasets"][0]["root"] = 3
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.root: expected str or list"):
        config_from_dict(data)


def test_overrides(tmp_path):
    data = _config(tmp_path)
    changed = apply_overrides(
        data,
        [
            "steps=20",
            "optimizer.lr_decoder=1e-3",  # YAML 1.1 reads this as a string; still a number
            "datasets[1].weight=2",
            "datasets.0.loss=mae",
            "mixing=uniform",
            "schedule.kind=cosine",
        ],
    )
    config = config_from_dict(changed)
    assert config.steps == 20 and config.optimizer.lr_decoder == pytest.approx(1e-3)
    assert config.datasets[1].weight == 2.0 and config.datasets[0].loss == "mae"
    assert config.mixing == "uniform" and config.schedule.kind == "cosine"
    assert "steps" not in data  # the input mapping is left alone
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(data, ["steps"])
    with pytest.raises(ConfigError, match=r"datasets\[5\]\.root: no list item 5"):
        apply_overrides(data, ["datasets[5].root=/x"])
    with pytest.raises(ConfigError, match=r"^optimizer\.momentum: unknown key"):
        config_from_dict(apply_overrides(data, ["optimizer.momentum=0.9"]))


def test_load_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path)))
    assert load_config(path, ["steps=7"]).steps == 7
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)
    path.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = load_config(path, check_paths=False)
    assert config.datasets


def test_datasets_from_a_synthetic_mix_file(tmp_path):
    for name in ("indoor-rgbd", "ordinal"):
        (tmp_path / "synth" / "train" / name).mkdir(parents=True)
    mix = {
        "preset": "default-mix",
        "train": [
            {"name": "indoor-rgbd", "dataset": "tum", "root": "train/indoor-rgbd", "split": None},
            {"name": "ordinal", "dataset": "diw", "root": "train/ordinal", "split": "train"},
        ],
    }
    (tmp_path / "synth" / "mix.yaml").write_text(yaml.safe_dump(mix))
    (tmp_path / "extra").mkdir()
    config = config_from_dict(
        {
            "mix": str(tmp_path / "synth" / "mix.yaml"),
            "datasets": [{"name": "sintel", "root": str(tmp_path / "extra")}],
            "out_dir": str(tmp_path / "run"),
            "batch_size": 6,
        }
    )
    assert [(d.name, d.label, d.split) for d in config.datasets] == [
        ("tum", "indoor-rgbd", None), ("diw", "ordinal", "train"), ("sintel", None, None)
    ]
    assert config.datasets[1].root == str(tmp_path / "synth" / "train" / "ordinal")
    assert config_from_dict(config.to_dict()) == config  # the saved config lists every set
    with pytest.raises(ConfigError, match=r"^mix: file not found"):
        config_from_dict({"mix": str(tmp_path / "none.yaml"), "out_dir": "x"})
    mix["train"][1].pop("root")
    (tmp_path / "synth" / "mix.yaml").write_text(yaml.safe_dump(mix))
    with pytest.raises(ConfigError, match=r"train\[1\] lacks root"):
        config_from_dict({"mix": str(tmp_path / "synth" / "mix.yaml"), "out_dir": "x"})
