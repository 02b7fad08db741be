import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_MODEL, ToyDepthDataset, toy_config
from mixdepth.errors import ConfigError
from mixdepth.inference import Predictor
from mixdepth.models.checkpoints import load_model, read_metadata
from mixdepth.train import Trainer, train
from mixdepth.train.config import load_config
from mixdepth.train.samplers import Slot
from mixdepth.train.trainer import SlotDataset, collate_slots, lr_factor, parameter_groups


def _three_datasets():
    return [
        ToyDepthDataset(6, seed=0, kind="disparity"),
        ToyDepthDataset(5, seed=1, kind="depth"),
        ToyDepthDataset(4, seed=2, kind="ordinal"),
    ]


def _three_config(tmp_path, mixing, **changes):
    config = toy_config(tmp_path, mixing=mixing, n_datasets=3, **changes)
    config["datasets"][2]["loss"] = "ordinal"
    return config


def _fixed_batches(datasets):
    reader = SlotDataset(datasets)
    return [
        collate_slots([reader[Slot(d, i, 100 + i)] for i in range(len(ds))])
        for d, ds in enumerate(datasets)
    ]


def _losses(trainer, batches):
    with torch.no_grad():
        return [
            float(trainer.losses[d](trainer.forward_disparity(trainer.model, b["image"]), b)[0])
            for d, b in enumerate(batches)
        ]


def test_short_pareto_training_lowers_every_dataset_loss(tmp_path):
    datasets = _three_datasets()
    config = load_config(
        _three_config(
            tmp_path, "pareto", steps=16, log_every=4, checkpoint_every=100,
            optimizer={"lr_encoder": 3e-3, "lr_decoder": 3e-3},
        ),
        check_paths=False,
    )
    trainer = Trainer(config, datasets=datasets)
    batches = _fixed_batches(datasets)
    before = _losses(trainer, batches)
    result = trainer.run()
    after = _losses(trainer, batches)
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)
    assert not result.interrupted and result.step == 16
    # MGDA weights are logged (window means) and lie on the simplex
    for entry in result.history:
        weights = [entry[f"mgda/toy{d}"] for d in range(3)]
        assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert set(result.losses) == {"toy0", "toy1", "toy2"}
    # the weights record the size they were trained at, which inference then uses
    weights = tmp_path / "run" / "model.safetensors"
    assert read_metadata(weights)["input_size"] == str(config.crop_size)
    assert Predictor(weights=weights).config.input_size == config.crop_size


def test_training_checkpoints_load_as_weights_with_architecture_options_and_size(tmp_path):
    # a guess from the keys alone would lose the non-default options and the working size
    config = load_config(toy_config(tmp_path, steps=2, checkpoint_every=2), check_paths=False)
    Trainer(config, datasets=[ToyDepthDataset(4, seed=0), ToyDepthDataset(4, seed=1)]).run()
    final = load_model(tmp_path / "run" / "model.safetensors")
    (step,) = sorted((tmp_path / "run" / "checkpoints").glob("step_*"))
    from_checkpoint = load_model(step / "model.safetensors")
    assert from_checkpoint.config == final.config
    assert from_checkpoint.config.options == TINY_MODEL["options"]
    assert from_checkpoint.config.input_size == config.crop_size == 32
    for key, value in final.state_dict().items():
        assert torch.equal(from_checkpoint.state_dict()[key], value), key


@pytest.mark.parametrize("normalize", ["none", "l2", "loss"])
def test_pareto_update_is_the_min_norm_combination_of_dataset_gradients(tmp_path, normalize):
    datasets = _three_datasets()
    config = load_config(_three_config(tmp_path, "pareto", pareto_normalize=normalize),
                         check_paths=False)
    trainer = Trainer(config, datasets=datasets)
    batch = collate_slots(
        [SlotDataset(datasets)[slot] for slot in trainer.sampler.rank_batch(0)]
    )
    trainer.set_train_mode()
    # reference: one forward/backward per dataset share, each on its own
    grads, losses = [], []
    for d in range(3):
        rows = torch.nonzero(batch["source"] == d).flatten()
        part = {k: (v[rows] if torch.is_tensor(v) else [v[i] for i in rows.tolist()])
                for k, v in batch.items()}
        trainer.model.zero_grad()
        loss, _ = trainer.losses[d](trainer.forward_disparity(trainer.model, part["image"]), part)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([torch.zeros(p.numel()) if p.grad is None else p.grad.flatten()
                                for p in trainer.params]))
    grads = torch.stack(grads)
    if normalize == "l2":
        grads = grads / grads.norm(dim=1, keepdim=True)
    elif normalize == "loss":
        grads = grads / torch.tensor(losses).unsqueeze(1)
    trainer.model.zero_grad()
    logs, weights = trainer._step_pareto_full(batch)
    w = torch.tensor([weights[f"toy{d}"] for d in range(3)])
    from mixdepth.train import min_norm_weights

    assert torch.allclose(w, min_norm_weights(grads), atol=1e-4)
    applied = torch.cat([p.grad.flatten() for p in trainer.params])
    assert torch.allclose(applied, w @ grads, rtol=1e-4, atol=1e-7)
    assert torch.all(grads @ applied >= -1e-6)  # no dataset's loss increases to first order
    assert set(logs) >= {"loss/toy0", "loss/toy0/data", "loss/toy0/grad", "loss/toy2/ordinal"}


def _final_weights(out_dir):
    return load_file(os.path.join(out_dir, "model.safetensors"))


@pytest.mark.parametrize("mixing", ["naive", "uniform"])
def test_resume_after_stop_is_exact(tmp_path, mixing):
    changes = {"steps": 5, "checkpoint_every": 100}
    straight = train(toy_config(tmp_path / "a", mixing, **changes), datasets=_three_datasets()[:2])
    first = train(toy_config(tmp_path / "b", mixing, **changes), datasets=_three_datasets()[:2],
                  stop_after=2)
    assert first.interrupted and first.step == 2 and first.weights is None
    # the augmentation is seeded per image, so the number of loader workers does not matter
    workers = 1 if mixing == "uniform" else 0
    resumed = train(toy_config(tmp_path / "b", mixing, num_workers=workers, **changes),
                    datasets=_three_datasets()[:2], resume=True)
    assert resumed.step == 5 and not resumed.interrupted
    a, b = _final_weights(straight.out_dir), _final_weights(resumed.out_dir)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the logged history continues where it stopped
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5]


class _SignalOnRead(torch.utils.data.Dataset):
    """Sends SIGTERM to this process when image `index` is read `after` times."""

    def __init__(self, dataset, index, after):
        self.dataset, self.index, self.left = dataset, index, after
        self.space = dataset.space

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        if i == self.index:
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), signal.SIGTERM)
        return self.dataset[i]


def test_signal_checkpoints_at_end_of_step_and_pareto_resume_is_exact(tmp_path):
    changes = {"steps": 4, "checkpoint_every": 100, "pareto_mode": "full"}
    straight = train(_three_config(tmp_path / "a", "pareto", **changes),
                     datasets=_three_datasets())
    datasets = _three_datasets()
    datasets[0] = _SignalOnRead(datasets[0], index=0, after=1)
    first = train(_three_config(tmp_path / "b", "pareto", **changes), datasets=datasets)
    assert first.interrupted and 1 <= first.step < 4
    assert first.checkpoint.name == f"step_{first.step:08d}"
    resumed = train(_three_config(tmp_path / "b", "pareto", **changes),
                    datasets=_three_datasets(), resume=True)
    assert resumed.step == 4
    a, b = _final_weights(straight.out_dir), _final_weights(resumed.out_dir)
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) <= 1e-6


def test_refuses_to_overwrite_a_run_and_checks_losses(tmp_path):
    datasets = _three_datasets()[:2]
    train(toy_config(tmp_path, "uniform", steps=2), datasets=datasets)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(toy_config(tmp_path, "uniform", steps=2), datasets=datasets)
    config = _three_config(tmp_path, "uniform", out_dir=str(tmp_path / "other"))
    config["datasets"][2]["loss"] = "trim"
    with pytest.raises(ConfigError, match=r"datasets\[2\]\.loss: .* ordinal pairs only"):
        train(config, datasets=_three_datasets())
    config["datasets"][2]["loss"] = None  # the default for ordinal data is the ranking loss
    config["datasets"][0]["loss"] = "ordinal"
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.loss: ordinal needs point pairs"):
        train(config, datasets=_three_datasets())


def test_bfloat16_ub_clipping_schedule_and_outputs(tmp_path):
    config = _three_config(
        tmp_path, "pareto", steps=3, precision="bfloat16", grad_clip=0.5, pareto_mode="ub",
        report=True, val_images=1,
        schedule={"kind": "cosine", "warmup_steps": 1, "min_lr_ratio": 0.1},
        optimizer={"lr_encoder": 1e-5, "lr_decoder": 1e-4},
    )
    result = train(config, datasets=_three_datasets())
    out = result.out_dir
    for name in ("model.safetensors", "loss_curves.png", "predictions.png", "history.json",
                 "summary.json", "log.jsonl"):
        assert (out / name).is_file(), name
    assert any((out / "tensorboard").iterdir())
    last = result.history[-1]
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values())
    assert last["grad_norm"] >= 0
    assert last["lr/encoder"] == pytest.approx(1e-5 * 0.1)
    assert last["lr/decoder"] == pytest.approx(1e-4 * 0.1)
    from mixdepth.models import load_model

    model = load_model(out / "model.safetensors")
    assert model.config.name == "tiny"


def test_lr_schedule_and_parameter_groups(tmp_path):
    base = toy_config(tmp_path, "uniform", steps=11)
    cosine = load_config({**base, "schedule": {"kind": "cosine", "warmup_steps": 2}},
                         check_paths=False)
    assert [lr_factor(cosine, s) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(cosine, 10) == pytest.approx(0.0)
    assert lr_factor(cosine, 6) == pytest.approx(0.5)
    step = load_config({**base, "schedule": {"kind": "step", "step_every": 3, "gamma": 0.5}},
                       check_paths=False)
    assert [lr_factor(step, s) for s in (0, 2, 3, 7)] == [1.0, 1.0, 0.5, 0.25]
    from mixdepth.models import create

    model = create("tiny", width=0.25, features=8, head_hidden=8)
    groups = parameter_groups(model, cosine)
    assert [g["name"] for g in groups] == ["encoder", "decoder"]
    encoder = {id(p) for p in model.pretrained.parameters()}
    assert {id(p) for p in groups[0]["params"]} == encoder
    assert groups[0]["lr"] == cosine.optimizer.lr_encoder
    assert groups[1]["lr"] == cosine.optimizer.lr_decoder


def test_resume_with_another_strategy_and_uneven_batches_are_config_errors(tmp_path):
    datasets = _three_datasets()[:2]
    train(toy_config(tmp_path, "uniform", steps=1), datasets=datasets)
    with pytest.raises(ConfigError, match=r"--resume: .*is for uniform"):
        train(toy_config(tmp_path, "naive", steps=2), datasets=datasets, resume=True)
    with pytest.raises(ConfigError, match=r"^batch_size: uniform mixing splits every batch"):
        train(toy_config(tmp_path / "b", "uniform", batch_size=6, n_datasets=4),
              datasets=datasets * 2)


def test_zero_gradient_datasets_are_left_out_of_the_min_norm_solve(tmp_path):
    """A zero gradient would make the min-norm point zero and stop training for every dataset;
    it is excluded (no direction changes its loss to first order)."""
    trainer = Trainer(load_config(_three_config(tmp_path, "pareto"), check_paths=False),
                      datasets=_three_datasets())
    g = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    weights = trainer._solve_weights(g @ g.T, torch.ones(3))
    assert weights[1] == 0
    assert torch.allclose(weights, torch.tensor([0.8, 0.0, 0.2]), atol=1e-6)
    absent = trainer._solve_weights(g @ g.T, torch.tensor([0.0, 1.0, 1.0]))
    assert torch.allclose(absent, torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(FloatingPointError, match="toy2"):
        bad = g.clone()
        bad[2, 0] = float("nan")
        trainer._solve_weights(bad @ bad.T, torch.ones(3))


@pytest.mark.parametrize("kind", ["plain", "silog", "shift"])
def test_baseline_losses_train_and_match_their_functions(tmp_path, kind):
    from mixdepth import losses

    datasets = _three_datasets()
    config = load_config(
        _three_config(tmp_path, "uniform", steps=2, loss={"kind": kind}), check_paths=False
    )
    config.datasets[1].loss = None  # the second dataset takes loss.kind
    trainer = Trainer(config, datasets=datasets)
    assert [loss.kind for loss in trainer.losses] == ["trim", kind, "ordinal"]
    batch = _fixed_batches(datasets)[1]
    with torch.no_grad():
        pred = trainer.forward_disparity(trainer.model, batch["image"])
        value, terms = trainer.losses[1](pred, batch)
    function = {"plain": losses.mse_loss, "silog": losses.silog_loss,
                "shift": losses.shift_invariant_loss}[kind]
    expected = function(pred, batch["disparity"], batch["mask"], reduction="image")
    assert torch.isfinite(value) and float(value) == pytest.approx(float(expected))
    assert set(terms) == {"data"}
    result = trainer.run()
    assert result.step == 2 and all(map(math.isfinite, result.losses.values()))


def test_dataset_limit_keeps_the_first_samples(tmp_path):
    from mixdepth.synthetic.writer import generate_set

    generate_set(tmp_path / "exact", "exact", 4, seed=0, size=32, contact_sheet=False)
    config = toy_config(tmp_path, "uniform", n_datasets=1, batch_size=2)
    config["datasets"] = [{"name": "sintel", "root": str(tmp_path / "exact"), "limit": 3}]
    trainer = Trainer(load_config(config))
    assert len(trainer.datasets[0]) == 3
    config["datasets"][0]["limit"] = 0
    with pytest.raises(ConfigError, match=r"^datasets\[0\]\.limit: must be positive"):
        load_config(config)
