"""channels_last, encoder freezing, several roots per dataset, the time budget, a stop signal
in the last step and the metadata of weights trained from a given model."""

import dataclasses
import json
import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_MODEL, ToyDepthDataset, toy_config
from mixdepth.errors import ConfigError
from mixdepth.models import create, load_model
from mixdepth.models.checkpoints import read_metadata
from mixdepth.train import Trainer, train
from mixdepth.train.config import load_config


def _datasets():
    return [ToyDepthDataset(6, seed=0), ToyDepthDataset(5, seed=1, kind="depth")]


def _trainer(tmp_path, **changes):
    return Trainer(load_config(toy_config(tmp_path, **changes), check_paths=False),
                   datasets=_datasets())


def _losses(result):
    return [[entry[f"loss/toy{d}"] for d in range(2)] for entry in result.history]


# ---------------------------------------------------------------------------- channels_last


@pytest.mark.parametrize(
    ("mixing", "precision", "tolerance"),
    [("uniform", "float32", 1e-3), ("pareto", "float32", 1e-3), ("uniform", "bfloat16", 5e-2)],
)
def test_channels_last_gives_the_same_losses(tmp_path, mixing, precision, tolerance):
    # Adam's first updates are lr x sign(gradient), so gradients that differ by rounding
    # (another convolution algorithm) move the weights apart by up to 2 lr: a small lr
    # keeps that drift below the tolerance
    results = {}
    for channels_last in (False, True):
        trainer = _trainer(tmp_path / str(channels_last), mixing=mixing, precision=precision,
                           channels_last=channels_last, steps=3,
                           optimizer={"lr_encoder": 1e-4, "lr_decoder": 1e-4})
        conv = trainer.model.pretrained.layer1[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
        batch = trainer.validation_batch()
        with torch.no_grad():
            pred = trainer.forward_disparity(trainer.model, batch["image"])
        assert pred.dtype == torch.float32  # the losses see float32 under bfloat16 too
        results[channels_last] = _losses(trainer.run())
    assert len(results[True]) == 3
    for plain, last in zip(results[False], results[True], strict=True):
        assert last == pytest.approx(plain, rel=tolerance), (results[False], results[True])


def _straight_and_resumed(tmp_path, changes: dict, stop_after: int) -> tuple[dict, dict]:
    """Final weights of a run straight through and of the same run stopped and resumed."""
    straight = train(toy_config(tmp_path / "a", **changes), datasets=_datasets())
    train(toy_config(tmp_path / "b", **changes), datasets=_datasets(), stop_after=stop_after)
    resumed = train(toy_config(tmp_path / "b", **changes), datasets=_datasets(), resume=True)
    return (load_file(straight.out_dir / "model.safetensors"),
            load_file(resumed.out_dir / "model.safetensors"))


def test_channels_last_resume_is_exact(tmp_path):
    changes = {"steps": 4, "checkpoint_every": 100, "channels_last": True}
    a, b = _straight_and_resumed(tmp_path, changes, stop_after=2)
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------------------- freezing


def _encoder(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()
            if n.startswith("pretrained.")}


@pytest.mark.parametrize("mixing", ["uniform", "pareto"])
def test_encoder_is_frozen_for_the_first_steps(tmp_path, mixing):
    trainer = _trainer(tmp_path, mixing=mixing, steps=4, model={
        **toy_config(tmp_path)["model"], "freeze_encoder_steps": 2})
    initial = _encoder(trainer)
    head = trainer.model.scratch.output_conv[0].weight.detach().clone()
    seen = {}

    def on_step(trainer, logs):
        seen[trainer.step] = _encoder(trainer)
        if trainer.step == 2:  # Adam's moments of the encoder were never touched
            assert all(not trainer.optimizer.state.get(p) for p in trainer.encoder_params)

    result = trainer.run(on_step=on_step)
    for step in (1, 2):
        assert all(torch.equal(seen[step][n], initial[n]) for n in initial), step
    assert any(not torch.equal(seen[3][n], initial[n]) for n in initial)
    assert not torch.equal(trainer.model.scratch.output_conv[0].weight, head)
    factor = trainer._group_factor("encoder")
    assert [factor(step) for step in range(4)] == [0.0, 0.0, 1.0, 1.0]
    # the rate logged after step k is the one of the step that follows
    lrs = [entry["lr/encoder"] for entry in result.history]
    assert lrs == [0.0, pytest.approx(1e-3), pytest.approx(1e-3), pytest.approx(1e-3)]


def test_frozen_encoder_resumes_exactly(tmp_path):
    model = {**toy_config(tmp_path)["model"], "freeze_encoder_steps": 2}
    changes = {"steps": 4, "checkpoint_every": 100, "model": model}
    a, b = _straight_and_resumed(tmp_path, changes, stop_after=1)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_freeze_encoder_batchnorm_keeps_the_encoder_statistics(tmp_path):
    trainer = _trainer(tmp_path, steps=2, model={
        **toy_config(tmp_path)["model"], "freeze_encoder_batchnorm": True})
    stats = {k: v.clone() for k, v in trainer.model.state_dict().items()
             if k.startswith("pretrained.") and "running_" in k}
    assert stats
    encoder = _encoder(trainer)
    trainer.run()
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in stats.items())
    # the parameters still train, BatchNorm affine weights included
    assert any(not torch.equal(state[n], v) for n, v in encoder.items())
    trainer.set_train_mode()
    bn = [m for n, m in trainer.model.named_modules()
          if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not any(m.training for m in bn) and trainer.model.scratch.training
    # without the option the statistics move
    other = _trainer(tmp_path / "other", steps=1)
    other.run()
    moved = other.model.state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in stats.items())


# ---------------------------------------------------------------------------- several roots


def test_a_dataset_reads_several_roots(tmp_path):
    from mixdepth.synthetic.writer import generate_set

    generate_set(tmp_path / "one", "exact", 3, seed=0, size=32, contact_sheet=False)
    generate_set(tmp_path / "two", "exact", 2, seed=1, size=32, contact_sheet=False)
    config = toy_config(tmp_path, "uniform", n_datasets=1, batch_size=2, steps=1)
    roots = [str(tmp_path / "one"), str(tmp_path / "two")]
    config["datasets"] = [{"name": "sintel", "root": roots}]
    trainer = Trainer(load_config(config))
    dataset = trainer.datasets[0]
    assert len(dataset) == 5 and len(dataset.entries) == 5
    assert dataset.space == dataset.datasets[0].space
    assert dataset[4].id == dataset.datasets[1][1].id  # the second root's items follow
    assert trainer.run().step == 1
    config["out_dir"] = str(tmp_path / "limited")
    config["datasets"][0]["limit"] = 4
    limited = Trainer(load_config(config)).datasets[0]
    assert len(limited) == 4 and [len(d) for d in limited.datasets] == [3, 1]
    config["datasets"][0]["limit"] = 2
    assert [len(d) for d in Trainer(load_config(config)).datasets[0].datasets] == [2]
    # the config round-trips with the list
    assert load_config(load_config(config).to_dict()).datasets[0].root == roots


# ---------------------------------------------------------------------------- time budget


def test_time_budget_sets_steps_schedule_and_sampler(tmp_path, capsys):
    budget = 0.03  # minutes
    config = toy_config(tmp_path, steps=1000, time_budget=budget, checkpoint_every=10_000,
                        schedule={"kind": "cosine", "min_lr_ratio": 0.1})
    trainer = Trainer(load_config(config, check_paths=False), datasets=_datasets())
    rng = torch.get_rng_state()
    steps = trainer.config.steps
    assert 1 <= steps < 1000
    assert trainer.sampler.total_steps == steps
    line = capsys.readouterr().out
    assert "s/step" in line and f"steps set to {steps}" in line
    # the probe leaves the model and the random state as a run without it starts
    plain = Trainer(load_config(toy_config(tmp_path / "plain"), check_paths=False),
                    datasets=_datasets())
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in plain.model.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[key], value), key
    assert all(not trainer.optimizer.state.get(p) for p in trainer.params)
    result = trainer.run(stop_after=2)
    assert result.interrupted and result.step == 2
    state = torch.load(result.checkpoint / "state.pt", weights_only=True)
    assert state["config"]["steps"] == steps
    # --resume keeps the chosen number of steps (the config still says 1000)
    resumed = Trainer(load_config(config, check_paths=False), datasets=_datasets(), resume=True)
    assert resumed.config.steps == steps and resumed.sampler.total_steps == steps
    assert "continuing with the" in capsys.readouterr().out
    result = resumed.run()
    assert result.step == steps and not result.interrupted
    assert result.history[-1]["lr/decoder"] == pytest.approx(1e-3 * 0.1)


# ---------------------------------------------------------------------------- last-step stop


def test_a_signal_in_the_last_step_finishes_the_run(tmp_path):
    def signal_at_last_step(trainer, logs):
        if trainer.step == trainer.config.steps:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = _trainer(tmp_path, steps=3, checkpoint_every=100)
    result = trainer.run(on_step=signal_at_last_step)
    assert not result.interrupted and result.step == 3
    assert result.weights == tmp_path / "run" / "model.safetensors" and result.weights.is_file()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] is False
    # one step earlier it is an interruption
    def signal_before_last_step(trainer, logs):
        if trainer.step == trainer.config.steps - 1:
            os.kill(os.getpid(), signal.SIGTERM)

    other = _trainer(tmp_path / "b", steps=3).run(on_step=signal_before_last_step)
    assert other.interrupted and other.step == 2 and other.weights is None


# ---------------------------------------------------------------------------- given model


def test_weights_of_a_given_model_carry_its_own_config(tmp_path):
    model = create("tiny", width=0.5, features=16, head_hidden=8)
    model.config = dataclasses.replace(model.config, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    # the config names the tiny model with other options; the model passed in wins
    config = load_config(toy_config(tmp_path, steps=1, checkpoint_every=1), check_paths=False)
    result = Trainer(config, datasets=_datasets(), model=model).run()
    for path in (result.weights, result.checkpoint / "model.safetensors"):
        meta = read_metadata(path)
        assert json.loads(meta["options"]) == {"width": 0.5, "features": 16, "head_hidden": 8}
        loaded = load_model(path)
        assert loaded.config == dataclasses.replace(model.config, input_size=config.crop_size)
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value.cpu()), key


def test_new_keys_are_checked(tmp_path):
    base = toy_config(tmp_path)
    for change, message in [
        ({"channels_last": "yes"}, r"^channels_last: expected true or false"),
        ({"time_budget": 0}, r"^time_budget: must be a positive number"),
        ({"time_budget": "soon"}, r"^time_budget: expected a number"),
        ({"model": {"freeze_encoder_steps": -1}}, r"^model\.freeze_encoder_steps: must not"),
        ({"model": {"freeze_encoder_batchnorm": 1}}, r"^model\.freeze_encoder_batchnorm: expe"),
        ({"loss": {"scale_anchor": -0.1}}, r"^loss\.scale_anchor: must not be negative"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config({**base, **change}, check_paths=False)
    config = load_config(base, check_paths=False)
    assert not config.channels_last and config.time_budget is None
    assert config.model.freeze_encoder_steps == 0 and not config.model.freeze_encoder_batchnorm


def test_pretrained_imagenet_starts_the_encoder_from_the_wheel(tmp_path):
    from mixdepth.models.pretrained import convert_lite_state, read_lite_state

    config = toy_config(tmp_path, model={"name": "lite0", "pretrained": "imagenet",
                                         "options": {"features": 8, "expand": False}})
    trainer = Trainer(load_config(config, check_paths=False), datasets=_datasets())
    expected = convert_lite_state(read_lite_state(0), trainer.model.pretrained)
    for key, value in trainer.model.pretrained.state_dict().items():
        assert torch.equal(value, expected[key]), key


# ---------------------------------------------------------------------------- scale anchor


@pytest.mark.parametrize("kind", ["trim", "mse", "ordinal"])
def test_scale_anchor_adds_only_a_term_of_the_output_scale(kind):
    from mixdepth.train.trainer import DatasetLoss

    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 16, 16, generator=gen, dtype=torch.float64) + 0.1
    part = {"disparity": torch.rand(3, 16, 16, generator=gen, dtype=torch.float64) + 0.1,
            "mask": torch.rand(3, 16, 16, generator=gen) > 0.3,
            "pairs": torch.tensor([[[1, 2, 3, 4, 1]] * 2] * 3, dtype=torch.float64)}
    plain = DatasetLoss(kind, 0.5, 2, "image")
    anchored = DatasetLoss(kind, 0.5, 2, "image", scale_anchor=0.25)
    for scale in (1.0, 7.0, 1e6):
        base, terms = plain(scale * pred, part)
        total, anchored_terms = anchored(scale * pred, part)
        assert "anchor" not in terms
        expected = (scale * pred).flatten(1).mean(1).log().square().mean()
        torch.testing.assert_close(anchored_terms["anchor"], expected)
        torch.testing.assert_close(total, base + 0.25 * expected)
    # an image whose mean prediction is 1 pays nothing
    unit = pred / pred.flatten(1).mean(1).view(-1, 1, 1)
    assert float(anchored(unit, part)[1]["anchor"]) < 1e-20


def test_scale_anchor_pulls_the_output_mean_towards_one(tmp_path):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def distance_from_one(anchor):
        options = {**TINY_MODEL["options"], "head_activation": "softplus"}
        model = {"name": "tiny", "options": options}
        config = toy_config(tmp_path, steps=40, loss={"kind": "trim", "scale_anchor": anchor},
                            model=model, out_dir=str(tmp_path / f"run{anchor}"),
                            optimizer={"lr_encoder": 1e-3, "lr_decoder": 0.01})
        trainer = Trainer(load_config(config, check_paths=False), datasets=_datasets())
        last = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.bias += 6.0  # start with outputs far above 1
        trainer.run()
        trainer.model.eval()
        with torch.no_grad():
            out = trainer.forward_disparity(trainer.model, images)
        return abs(math.log(float(out.mean())))

    free, anchored = distance_from_one(0.0), distance_from_one(1.0)
    assert anchored < 0.5 * free
