"""The training loop: mixed datasets, naive / uniform / Pareto (MGDA) mixing, exact resume,
data parallelism under torchrun.

One step of each strategy (all losses in disparity space, per-dataset loss L_d times its
configured weight w_d):
- naive / uniform: one forward over the batch, total = sum_d (n_d / n) w_d L_d, backward.
- pareto (full):   for every dataset, a forward of its share and the gradient g_d of w_d L_d
                   over all parameters; the min-norm weights a = min_norm_weights(g) and the
                   update direction sum_d a_d g_d. Under DDP each g_d is averaged over ranks
                   first, so all ranks solve the same problem. Optionally (pareto_normalize)
                   each g_d is first divided by its norm or by its loss value.
- pareto (ub):     one forward over the batch; the min-norm problem is solved on the gradients
                   of the L_d with respect to the network output (cheap, but the datasets hold
                   different images, so these gradients are orthogonal and the weights reduce
                   to inverse squared gradient norms); then one backward of sum_d a_d w_d L_d.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from mixdepth.errors import ConfigError, FileFormatError, MixdepthError
from mixdepth.train.checkpoint import (
    apply_checkpoint,
    checkpoint_candidates,
    latest_checkpoint,
    read_checkpoint,
    save_checkpoint,
    set_rng_state,
    write_json,
)
from mixdepth.train.config import TrainConfig, dataset_labels, dataset_roots, load_config
from mixdepth.train.mgda import min_norm_weights_from_gram
from mixdepth.train.samplers import MixingSampler, Slot, create_sampler

# ---------------------------------------------------------------------------- data


class SlotDataset(Dataset):
    """Reads `Slot(dataset, index, seed)` items from a list of datasets.

    The augmentation of each image is made a function of the slot's seed: python, numpy and
    torch global RNGs are seeded for the duration of the read and restored afterwards. So a
    batch is the same whatever the number of workers and whether the run was resumed.
    Returns (dataset config index, Sample).
    """

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, slot: Slot):
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002  (the legacy global RNG that transforms may use)
        try:
            random.seed(slot.seed)
            np.random.seed(slot.seed)  # noqa: NPY002  (the legacy global RNG that transforms may use)
            torch.manual_seed(slot.seed)
            return slot.dataset, self.datasets[slot.dataset][slot.index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])  # noqa: NPY002  (the legacy global RNG that transforms may use)
            torch.set_rng_state(states[2])


class RootsDataset(ConcatDataset):
    """One configured dataset read from several roots: the concatenation of one dataset per
    root, carrying their `space`. `limit` keeps the first `limit` samples of the whole (the
    entries of the first roots first)."""

    def __init__(self, datasets: Sequence[Dataset], limit: int | None = None):
        datasets = list(datasets)
        if limit is not None:
            left = limit
            for dataset in datasets:
                dataset.entries = dataset.entries[: max(left, 0)]
                left -= len(dataset)
            datasets = [d for d in datasets if len(d)] or datasets[:1]
        super().__init__(datasets)
        self.space = getattr(datasets[0], "space", None)

    @property
    def entries(self) -> list:
        return [entry for dataset in self.datasets for entry in dataset.entries]


def collate_slots(items: list) -> dict:
    """[(dataset index, Sample)] -> collate_samples(...) plus "source": int64 (B,) indices."""
    from mixdepth.data import collate_samples

    batch = collate_samples([sample for _, sample in items])
    batch["source"] = torch.tensor([index for index, _ in items], dtype=torch.int64)
    return batch


# ---------------------------------------------------------------------------- losses


class DatasetLoss(nn.Module):
    """The loss of one dataset: an SSI loss (mse | mae | trim) + gradient matching, a baseline
    (plain | silog | shift, no gradient term) or the ordinal ranking loss.
    All of them ignore the output's scale, which then drifts freely; scale_anchor > 0 adds
    scale_anchor * mean_i log(mean of image i's prediction)^2, which holds the mean output of
    an image near 1 and changes no invariant term.
    forward(pred (B,H,W) disparity, batch part) -> (total, {term: value})."""

    def __init__(self, kind: str, alpha: float, scales: int, reduction: str,
                 scale_anchor: float = 0.0):
        super().__init__()
        from mixdepth import losses

        self.kind = kind
        self.reduction = reduction
        self.scale_anchor = scale_anchor
        self.ssi = (
            losses.ScaleShiftInvariantLoss(kind=kind, alpha=alpha, scales=scales,
                                           reduction=reduction)
            if kind in losses.KINDS
            else None
        )
        # the loss function of the baselines and the ordinal kind (unused for SSI kinds)
        self.function = {"plain": losses.mse_loss, "silog": losses.silog_loss,
                         "shift": losses.shift_invariant_loss,
                         "ordinal": losses.ordinal_ranking_loss}.get(kind)

    def forward(self, pred: torch.Tensor, part: dict) -> tuple[torch.Tensor, dict]:
        if self.ssi is not None:
            loss, terms = self.ssi(pred, part["disparity"], part["mask"])
        elif self.kind == "ordinal":
            loss = self.function(pred, part["pairs"], reduction=self.reduction)
            terms = {"ordinal": loss}
        else:
            loss = self.function(pred, part["disparity"], part["mask"],
                                 reduction=self.reduction)
            terms = {"data": loss}
        if self.scale_anchor > 0:
            image_means = pred.flatten(1).mean(dim=1).clamp(min=1e-6)
            anchor = image_means.log().square().mean()
            loss = loss + self.scale_anchor * anchor
            terms = {**terms, "anchor": anchor}
        return loss, terms


def _select(batch: dict, rows: torch.Tensor) -> dict:
    """The rows of a collated batch (tensors indexed, lists picked)."""
    picked = rows.tolist()
    part = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            part[key] = value[rows]
        elif isinstance(value, list):
            part[key] = [value[i] for i in picked]
        else:
            part[key] = value
    return part


def _to_device(batch: dict, device: torch.device) -> dict:
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
        elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
            out[key] = [v.to(device) for v in value]
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------- helpers


def lr_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of the base learning rates at `step` (0-based): warm-up, then the schedule."""
    sched = config.schedule
    if step < sched.warmup_steps:
        return (step + 1) / sched.warmup_steps
    if sched.kind == "constant":
        return 1.0
    if sched.kind == "step":
        return sched.gamma ** ((step - sched.warmup_steps) // sched.step_every)
    span = max(config.steps - sched.warmup_steps - 1, 1)
    progress = min((step - sched.warmup_steps) / span, 1.0)
    return sched.min_lr_ratio + (1 - sched.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Adam groups: `pretrained.*` parameters (encoder) at lr_encoder, the rest at lr_decoder."""
    encoder, decoder = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (encoder if name.startswith("pretrained.") else decoder).append(param)
    groups = [
        {"params": encoder, "lr": config.optimizer.lr_encoder, "name": "encoder"},
        {"params": decoder, "lr": config.optimizer.lr_decoder, "name": "decoder"},
    ]
    return [g for g in groups if g["params"]]


def _adam(model: nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """Adam over the encoder/decoder groups; the fused kernel where this torch has it (about
    4x faster than the per-tensor loop on CPU), else the multi-tensor one."""
    options = {
        "betas": tuple(config.optimizer.betas),
        "eps": config.optimizer.eps,
        "weight_decay": config.optimizer.weight_decay,
    }
    try:
        return torch.optim.Adam(parameter_groups(model, config), fused=True, **options)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameter_groups(model, config), foreach=True, **options)


def is_encoder(name: str) -> bool:
    """Whether a parameter or module name belongs to the encoder (`pretrained.*`)."""
    return name == "pretrained" or name.startswith("pretrained.")


def freeze_batchnorm(model: nn.Module, encoder_only: bool = False) -> None:
    """Put every BatchNorm layer (of the encoder only, with encoder_only) in eval mode: running
    statistics used and kept fixed."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
            not encoder_only or is_encoder(name)
        ):
            module.eval()


def _match_strides(optimizer: torch.optim.Optimizer) -> None:
    """Give every optimiser state tensor shaped like its parameter the parameter's memory
    layout (the fused Adam kernel walks parameter, gradient and state in memory order)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


@dataclass
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_kind: str) -> _Distributed:
    """Join the process group torchrun describes in the environment (if any)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed()
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        owns = True
    return _Distributed(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns
    )


def _pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device: cuda requested but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step and stops."""

    def __init__(self) -> None:
        self.raised: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.raised = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class TrainResult:
    """What a run produced. losses: mean loss per dataset label over the last log window."""

    out_dir: Path
    step: int
    interrupted: bool
    weights: Path | None
    checkpoint: Path | None
    losses: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------- trainer

# The time-budget probe: at most this many untimed warm-up steps, then this many timed ones.
_PROBE_WARMUP = 5
_PROBE_STEPS = 20


class Trainer:
    """One training run. Build with a validated config; `run()` trains and returns a result.

    datasets / model may be given directly (tests, notebooks); by default they are built from
    the config with `mixdepth.data.create_dataset` and `mixdepth.models.create`.
    """

    def __init__(
        self,
        config: TrainConfig,
        datasets: Sequence[Dataset] | None = None,
        model: nn.Module | None = None,
        resume: bool = False,
    ) -> None:
        started = time.perf_counter()
        self.config = config
        self.labels = dataset_labels(config)
        self.out_dir = Path(config.out_dir)
        self.dist = _setup_distributed("cuda" if config.device != "cpu" and
                                       torch.cuda.is_available() else "cpu")
        self.device = _pick_device(config, self.dist.local_rank)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self._seed_everything(config.seed)
        self.datasets = list(datasets) if datasets is not None else self._build_datasets()
        if len(self.datasets) != len(config.datasets):
            raise ConfigError(
                f"datasets: {len(config.datasets)} configured but {len(self.datasets)} given"
            )
        self.loss_kinds = self._loss_kinds()
        self.losses = [
            DatasetLoss(kind, config.loss.alpha, config.loss.scales, config.loss.reduction,
                        config.loss.scale_anchor)
            for kind in self.loss_kinds
        ]
        self.model = (model if model is not None else self._build_model()).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model_config = self.model.config
        self.ddp_model: nn.Module = self.model
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # find_unused_parameters: MiDaS-style decoders hold parameters that get no gradient
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, find_unused_parameters=True
            )
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.encoder_params = [
            p for name, p in self.model.named_parameters() if p.requires_grad and is_encoder(name)
        ]
        self._pareto: tuple | None = None
        self.step = 0
        self.history: list[dict] = []
        self.checkpoint_path: Path | None = None
        self._resume_from = self._pick_checkpoint() if resume else None
        if not resume and latest_checkpoint(self.out_dir) is not None:
            raise ConfigError(
                f"out_dir: {self.out_dir} already holds a run with checkpoints; "
                "pass --resume to continue it or choose another out_dir"
            )
        if config.time_budget is not None:
            self._fit_time_budget(
                started, self._resume_from[1][0] if self._resume_from is not None else None
            )
        # built after the step count is final: the schedule and the sampler read it
        self.optimizer = _adam(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, [self._group_factor(g["name"]) for g in self.optimizer.param_groups]
        )
        self.sampler: MixingSampler = self._make_sampler(config.steps)
        if resume:
            self._resume()

    def _group_factor(self, name: str) -> Callable[[int], float]:
        """The learning-rate factor of one parameter group at a step: `lr_factor`, and 0 for
        the encoder during the first `model.freeze_encoder_steps` steps."""
        config = self.config

        def factor(step: int) -> float:
            if name == "encoder" and step < config.model.freeze_encoder_steps:
                return 0.0
            return lr_factor(config, step)

        return factor

    def _make_sampler(self, total_steps: int | None) -> MixingSampler:
        try:
            return create_sampler(
                self.config.mixing,
                [len(d) for d in self.datasets],
                self.config.batch_size,
                seed=self.config.seed,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
                total_steps=total_steps,
            )
        except ValueError as err:
            raise ConfigError(f"batch_size: {err}") from None

    # -- time budget ---------------------------------------------------------------------

    def _fit_time_budget(self, started: float, state: dict | None) -> None:
        """Set `config.steps` so that the run ends within `time_budget` minutes of `started`,
        from the seconds per step of a short probe. A resumed run keeps the steps its first
        session chose (recorded in `state`, the checkpoint's state.pt)."""
        config = self.config
        done = 0
        if state is not None:
            if state["config"].get("time_budget") is not None:
                config.steps = int(state["config"]["steps"])
                if self.dist.is_main:
                    print(f"time_budget: continuing with the {config.steps} steps chosen "
                          "when the run started")
                return
            done = int(state["step"])  # a budget added on resume covers the remaining steps
        seconds, probed = self._probe_seconds_per_step(config.time_budget * 60)
        left = config.time_budget * 60 - (time.perf_counter() - started)
        if self.dist.enabled:  # all ranks take the slowest rate and the least time left
            value = torch.tensor([seconds, -left], dtype=torch.float64, device=self.device)
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
            seconds, left = float(value[0]), -float(value[1])
        config.steps = done + max(int(left / seconds), 1)
        if self.dist.is_main:
            print(f"time_budget: {seconds:.4g} s/step (measured over {probed} steps); "
                  f"steps set to {config.steps} to fit {config.time_budget:g} min")

    def _probe_seconds_per_step(self, budget: float) -> tuple[float, int]:
        """(mean seconds per training step, number of steps timed): up to _PROBE_WARMUP
        untimed steps, then up to _PROBE_STEPS timed ones, each reading its batch, forward,
        backward and update, with a throwaway optimiser. The warm-up stops early after 2.5 %
        of the budget, the timing after 5 % (at least 2 steps). The model's state and the RNG
        states are restored afterwards, so the run starts as it would without the probe."""
        from mixdepth.train.checkpoint import rng_state

        saved_model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        saved_rng = rng_state()
        self.optimizer = _adam(self.model, self.config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        sampler = self._make_sampler(None)
        reader = SlotDataset(self.datasets)
        timed: list[float] = []
        warm_up = True
        try:
            start = time.perf_counter()
            for i in range(_PROBE_WARMUP + _PROBE_STEPS):
                tick = time.perf_counter()
                slots = sampler.rank_batch(i)
                batch = _to_device(collate_slots([reader[slot] for slot in slots]), self.device)
                self.train_step(batch)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                now = time.perf_counter()
                if warm_up:
                    warm_up = i + 1 < _PROBE_WARMUP and not self._agree(
                        now - start > 0.025 * budget
                    )
                    if not warm_up:
                        start = now  # the timed steps start here
                    continue
                timed.append(now - tick)
                if len(timed) >= _PROBE_STEPS or (
                    len(timed) >= 2 and self._agree(now - start > 0.05 * budget)
                ):
                    break
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            self.model.load_state_dict(saved_model)
            set_rng_state(saved_rng)
        return float(np.mean(timed)), len(timed)

    # -- construction --------------------------------------------------------------------

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002  (the legacy global RNG that transforms may use)
        torch.manual_seed(seed)

    def _build_datasets(self) -> list[Dataset]:
        from mixdepth.data import create_dataset, dataset_class
        from mixdepth.data.transforms import TrainTransform

        transform = TrainTransform(
            size=self.config.crop_size,
            flip=self.config.augment.flip,
            jitter=self.config.augment.jitter,
            zoom=self.config.augment.zoom,
        )
        datasets = []
        for i, ds in enumerate(self.config.datasets):
            split = ds.split
            if split is None and "train" in getattr(dataset_class(ds.name), "splits", ()):
                split = "train"
            parts = []
            for key, root in dataset_roots(ds, f"datasets[{i}].root"):
                try:
                    parts.append(
                        create_dataset(ds.name, root, split=split, transform=transform,
                                       **ds.options)
                    )
                except MixdepthError as err:
                    raise ConfigError(f"{key} ({ds.name} at {root}): {err}") from None
            if isinstance(ds.root, str):
                dataset = parts[0]
                if ds.limit is not None:
                    dataset.entries = dataset.entries[: ds.limit]
            else:
                dataset = RootsDataset(parts, ds.limit)
            datasets.append(dataset)
        return datasets

    def _loss_kinds(self) -> list[str]:
        from mixdepth.data.sample import Space

        kinds = []
        for i, (ds, dataset) in enumerate(zip(self.config.datasets, self.datasets, strict=True)):
            if len(dataset) == 0:
                roots = ", ".join(root for _, root in dataset_roots(ds))
                raise ConfigError(f"datasets[{i}].root: no samples found in {roots}")
            space = getattr(dataset, "space", None)
            ordinal = space is not None and Space(space) is Space.ORDINAL
            kind = ds.loss or ("ordinal" if ordinal else self.config.loss.kind)
            if ordinal and kind != "ordinal":
                raise ConfigError(
                    f"datasets[{i}].loss: {ds.name} has ordinal pairs only; use loss: ordinal"
                )
            if space is not None and not ordinal and kind == "ordinal":
                raise ConfigError(
                    f"datasets[{i}].loss: ordinal needs point pairs, {ds.name} has dense "
                    f"{Space(space).value} targets; use a dense loss (e.g. trim)"
                )
            kinds.append(kind)
        return kinds

    def _build_model(self) -> nn.Module:
        from mixdepth.models import create, load_weights

        pretrained = self.config.model.pretrained == "imagenet"
        try:
            model = create(self.config.model.name, pretrained=pretrained,
                           **self.config.model.options)
        except ConfigError as err:
            key = "model.pretrained" if "pretrained" in str(err) else "model.options"
            raise ConfigError(f"{key}: {err}") from None
        if self.config.model.weights:
            load_weights(model, self.config.model.weights)
        return model

    # -- checkpoints ---------------------------------------------------------------------

    def _pick_checkpoint(self) -> tuple[Path, tuple[dict, dict, dict]] | None:
        """(directory, `read_checkpoint` data) of the newest readable checkpoint, or None when
        the run has none. An unreadable newer one is passed over with a notice."""
        candidates = checkpoint_candidates(self.out_dir)
        for number, path in enumerate(candidates):
            try:
                return path, read_checkpoint(path)
            except FileFormatError as err:
                if self.dist.is_main:
                    later = candidates[number + 1 :]
                    print(f"--resume: skipping {path.name}, it is unreadable: {err}; "
                          + (f"taking the previous complete checkpoint {later[0].name}"
                             if later else "no other checkpoint left"))
        if candidates:
            raise MixdepthError(
                f"--resume: no readable checkpoint in {self.out_dir / 'checkpoints'} "
                f"({len(candidates)} tried); start a new run in another out_dir"
            )
        return None

    def _resume(self) -> None:
        if self._resume_from is None:
            if self.dist.is_main:
                print(f"no checkpoint in {self.out_dir}; starting from step 0")
            return
        path, data = self._resume_from
        self._resume_from = None
        state = apply_checkpoint(path, data, self.model, self.optimizer)
        _match_strides(self.optimizer)
        self.scheduler.load_state_dict(state["scheduler"])
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as err:
            raise ConfigError(f"--resume: {path}: {err}; resume with the run's config") from None
        self.step = int(state["step"])
        self.history = list(state.get("history", []))
        rng = state["rng_per_rank"][self.dist.rank] if "rng_per_rank" in state else state["rng"]
        set_rng_state(rng)
        self.checkpoint_path = path

    def save_checkpoint(self) -> Path | None:
        """Checkpoint the current step (rank 0 writes; every rank waits for it)."""
        self.sampler.step = self.step
        extra: dict[str, Any] = {
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "history": self.history,
            "labels": self.labels,
        }
        if self.dist.enabled:
            from mixdepth.train.checkpoint import rng_state

            gathered: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(gathered, rng_state())
            extra["rng_per_rank"] = gathered
        path = None
        if self.dist.is_main:
            path = save_checkpoint(
                self.out_dir,
                self.step,
                self.model,
                self.optimizer,
                extra,
                self.config.to_dict(),
                keep=self.config.keep_checkpoints,
                model_metadata=self.weights_metadata(),
            )
        if self.dist.enabled:
            dist.barrier()
        self.checkpoint_path = self.out_dir / "checkpoints" / f"step_{self.step:08d}"
        return path

    # -- one step ------------------------------------------------------------------------

    def _autocast(self):
        if self.config.precision == "bfloat16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def forward_disparity(self, module: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) RGB in [0, 1] -> float32 (B, H, W) predicted disparity."""
        from mixdepth.models import normalize

        inputs = normalize(images, self.model_config)
        if self.config.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            pred = module(inputs)
        return pred.float()  # the losses are computed in float32

    def set_train_mode(self) -> None:
        """Training mode; BatchNorm stays in eval mode with model.freeze_batchnorm (all of
        them) or model.freeze_encoder_batchnorm (the encoder's)."""
        self.model.train()
        if self.config.model.freeze_batchnorm:
            freeze_batchnorm(self.model)
        elif self.config.model.freeze_encoder_batchnorm:
            freeze_batchnorm(self.model, encoder_only=True)

    def encoder_frozen(self) -> bool:
        """Whether the current step leaves the encoder's parameters unchanged."""
        return self.step < self.config.model.freeze_encoder_steps

    def _step_weighted_sum(self, batch: dict) -> tuple[dict, dict]:
        """naive / uniform: total = sum_d (n_d / n) w_d L_d over one forward of the batch."""
        pred = self.forward_disparity(self.ddp_model, batch["image"])
        logs: dict[str, float] = {}
        n = batch["image"].shape[0]
        weighted = []
        for d, rows in self._rows(batch):
            loss, terms = self.losses[d](pred[rows], _select(batch, rows))
            weighted.append((rows.numel() / n) * self.config.datasets[d].weight * loss)
            self._log_terms(logs, d, loss, terms)
        torch.stack(weighted).sum().backward()
        return logs, {}

    def _rows(self, batch: dict) -> list[tuple[int, torch.Tensor]]:
        source = batch["source"]
        out = []
        for d in range(len(self.datasets)):
            rows = torch.nonzero(source == d).flatten()
            if rows.numel():
                out.append((d, rows))
        return out

    def _log_terms(self, logs: dict, d: int, loss: torch.Tensor, terms: dict) -> None:
        label = self.labels[d]
        logs[f"loss/{label}"] = float(loss.detach())
        for name, value in terms.items():
            logs[f"loss/{label}/{name}"] = float(value.detach())

    def _sync_context(self):
        return self.ddp_model.no_sync() if self.dist.enabled else nullcontext()

    def _pareto_buffers(self) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(per-dataset gradients (T, P), update direction (P,), its views shaped like the
        parameters), allocated once and reused every step."""
        if self._pareto is None:
            total = sum(p.numel() for p in self.params)
            grads = torch.zeros(len(self.datasets), total, device=self.device)
            direction = torch.zeros(total, device=self.device)
            views, offset = [], 0
            for p in self.params:
                views.append(direction[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
            self._pareto = (grads, direction, views)
        return self._pareto

    def _solve_weights(self, gram: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Min-norm weights (T,) from the Gram matrix of the per-dataset gradients.

        Datasets absent from the batch or with a zero gradient are left out of the solve:
        any direction leaves a zero-gradient loss unchanged to first order, while the zero
        vector in the hull would make the min-norm point zero and stop training for all."""
        gram = gram.double().cpu().numpy()
        if not np.isfinite(gram).all():
            bad = [self.labels[d] for d in range(len(self.labels)) if not np.isfinite(gram[d, d])]
            raise FloatingPointError(f"step {self.step}: non-finite gradients for {bad}")
        squared = np.diag(gram).copy()
        usable = (present.cpu().numpy() > 0) & (squared > 1e-12 * max(squared.max(), 1e-300))
        weights = np.zeros(len(self.datasets))
        if usable.any():
            weights[usable] = min_norm_weights_from_gram(gram[np.ix_(usable, usable)])
        return torch.as_tensor(weights, dtype=torch.float32, device=self.device)

    def _step_pareto_full(self, batch: dict) -> tuple[dict, dict]:
        """One gradient per dataset, averaged over ranks, min-norm weights, weighted sum."""
        logs: dict[str, float] = {}
        grads, direction, views = self._pareto_buffers()
        present_list = [0.0] * len(self.datasets)
        loss_list = [0.0] * len(self.datasets)
        # a frozen encoder takes no part in the update, so none in the min-norm solve either
        frozen = {id(p) for p in self.encoder_params} if self.encoder_frozen() else set()
        with self._sync_context():
            for d, rows in self._rows(batch):
                part = _select(batch, rows)
                pred = self.forward_disparity(self.ddp_model, part["image"])
                loss, terms = self.losses[d](pred, part)
                weighted = self.config.datasets[d].weight * loss
                task_grads = torch.autograd.grad(weighted, self.params, allow_unused=True)
                flat = [
                    p.new_zeros(p.numel()) if g is None or id(p) in frozen else g.reshape(-1)
                    for p, g in zip(self.params, task_grads, strict=True)
                ]
                torch.cat(flat, out=grads[d])  # one copy (slice assignments cost ~50 us each)
                present_list[d] = 1.0
                loss_list[d] = float(weighted.detach())
                self._log_terms(logs, d, loss, terms)
        for d, here in enumerate(present_list):
            if not here:
                grads[d].zero_()  # not in this rank's batch (naive batches only)
        present = torch.tensor(present_list, device=self.device)
        loss_values = torch.tensor(loss_list, device=self.device)
        if self.dist.enabled:
            dist.all_reduce(grads)
            dist.all_reduce(present)
            dist.all_reduce(loss_values)
            grads /= present.clamp(min=1.0).unsqueeze(1)
            loss_values /= present.clamp(min=1.0)
        if self.config.pareto_normalize != "none":
            # positive rescaling keeps each g_d's descent directions, so the min-norm
            # combination of the rescaled gradients is still a common descent direction
            size = grads.norm(dim=1) if self.config.pareto_normalize == "l2" else loss_values
            grads *= torch.where(size > 1e-12, 1.0 / size.clamp(min=1e-12), 0.0).unsqueeze(1)
        weights = self._solve_weights(grads @ grads.T, present)
        torch.mv(grads.t(), weights, out=direction)
        for p, view in zip(self.params, views, strict=True):
            # the fused Adam kernel needs each gradient in its parameter's memory layout
            p.grad = view if view.stride() == p.stride() else torch.empty_like(p).copy_(view)
        return logs, {self.labels[d]: float(weights[d]) for d in range(len(self.datasets))}

    def _step_pareto_ub(self, batch: dict) -> tuple[dict, dict]:
        """Min-norm weights from the gradients with respect to the network output."""
        logs: dict[str, float] = {}
        pred = self.forward_disparity(self.ddp_model, batch["image"])
        pred_leaf = pred.detach().requires_grad_(True)
        out_grads = torch.zeros(len(self.datasets), pred.numel(), device=self.device)
        for d, rows in self._rows(batch):
            loss, terms = self.losses[d](pred_leaf[rows], _select(batch, rows))
            weighted = self.config.datasets[d].weight * loss
            (g,) = torch.autograd.grad(weighted, pred_leaf)
            out_grads[d] = g.reshape(-1)
            self._log_terms(logs, d, loss, terms)
        gram = out_grads @ out_grads.T
        present = (out_grads != 0).any(dim=1).float()
        if self.dist.enabled:
            dist.all_reduce(gram)
            dist.all_reduce(present)
        weights = self._solve_weights(gram, present)
        # Gradient of sum_d a_d w_d L_d with respect to the output, pushed through the network.
        pred.backward((weights.view(-1, 1) * out_grads).sum(0).view_as(pred))
        return logs, {self.labels[d]: float(weights[d]) for d in range(len(self.datasets))}

    def train_step(self, batch: dict) -> tuple[dict, dict]:
        """One optimisation step on this rank's batch; returns (loss logs, MGDA weights)."""
        self.set_train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        if self.config.mixing != "pareto":
            logs, weights = self._step_weighted_sum(batch)
        elif self.config.pareto_mode == "full":
            logs, weights = self._step_pareto_full(batch)
        else:
            logs, weights = self._step_pareto_ub(batch)
        if self.encoder_frozen():
            for p in self.encoder_params:
                p.grad = None  # Adam skips them: no update, no change of their moments
        if self.config.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
            logs["grad_norm"] = float(norm)
        self.optimizer.step()
        self.scheduler.step()
        return logs, weights

    # -- the loop ------------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        self.sampler.step = self.step
        return DataLoader(
            SlotDataset(self.datasets),
            batch_sampler=self.sampler,
            num_workers=self.config.num_workers,
            collate_fn=collate_slots,
            pin_memory=self.device.type == "cuda",
        )

    def run(
        self,
        stop_after: int | None = None,
        on_step: Callable[[Trainer, dict], None] | None = None,
    ) -> TrainResult:
        """Train from `self.step` to `config.steps` (or to step `stop_after`, then checkpoint
        and return, as an interruption would). SIGINT/SIGTERM checkpoint and stop too; one
        that arrives during the last step leaves a finished run (final weights written)."""
        from mixdepth.train.logger import TrainLogger

        config = self.config
        end = config.steps if stop_after is None else min(stop_after, config.steps)
        logger = TrainLogger(self, enabled=self.dist.is_main)
        interrupted = False
        window: dict[str, list[float]] = defaultdict(list)
        started = time.perf_counter()
        images_per_step = config.batch_size
        try:
            with _StopFlag() as stop:
                loader = iter(self._loader()) if self.step < end else iter(())
                tick = time.perf_counter()
                while self.step < end:
                    try:
                        batch = _to_device(next(loader), self.device)
                    except Exception:
                        if stop.raised is None:
                            raise
                        # Ctrl-C reached the DataLoader workers too: keep the finished step
                        self.save_checkpoint()
                        interrupted = True
                        break
                    logs, weights = self.train_step(batch)
                    self.step += 1
                    now = time.perf_counter()
                    logs["images_per_s"] = images_per_step / max(now - tick, 1e-9)
                    tick = now
                    for key, value in logs.items():
                        window[key].append(value)
                    for label, value in weights.items():
                        window[f"mgda/{label}"].append(value)
                    logger.step(self.step, logs, weights)
                    if self.step % config.log_every == 0 or self.step == end:
                        self._record(window)
                        logger.record(self.history[-1])
                        window.clear()
                    if on_step is not None:
                        on_step(self, logs)
                    stop_now = self._agree(stop.raised is not None)
                    if self.step % config.checkpoint_every == 0 or self.step == end or stop_now:
                        self.save_checkpoint()
                    if stop_now:
                        # a signal during the last step leaves a finished run
                        interrupted = self.step < config.steps
                        break
        finally:
            logger.close()
        interrupted = interrupted or self.step < config.steps
        weights_path = None
        if self.dist.is_main:
            if not interrupted:
                weights_path = self._finish(logger)
            elapsed = time.perf_counter() - started
            write_json(self.out_dir / "summary.json", self._summary(interrupted, elapsed))
        return TrainResult(
            self.out_dir,
            self.step,
            interrupted,
            weights_path,
            self.checkpoint_path,
            self.last_losses(),
            self.history,
        )

    def _agree(self, flag: bool) -> bool:
        """Stop together: any rank that caught a signal stops all of them."""
        if not self.dist.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def _record(self, window: dict[str, list[float]]) -> None:
        keys = sorted(window)
        means = torch.tensor([float(np.mean(window[k])) for k in keys], dtype=torch.float64)
        if self.dist.enabled:
            # every rank logs the same keys in a uniform batch; naive batches may differ, so
            # only average what all ranks have, keep the rest local
            key_lists: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(key_lists, keys)
            if all(k == keys for k in key_lists):
                means = means.to(self.device)
                dist.all_reduce(means)
                means = means.cpu() / self.dist.world_size
        entry = {"step": self.step}
        entry.update({k: float(v) for k, v in zip(keys, means, strict=True)})
        for group in self.optimizer.param_groups:
            entry[f"lr/{group.get('name', 'group')}"] = float(group["lr"])
        self.history.append(entry)

    def last_losses(self) -> dict[str, float]:
        """Mean loss per dataset label in the most recent log window."""
        if not self.history:
            return {}
        last = self.history[-1]
        return {label: last[f"loss/{label}"] for label in self.labels if f"loss/{label}" in last}

    def _summary(self, interrupted: bool, elapsed: float) -> dict:
        return {
            "step": self.step,
            "steps": self.config.steps,
            "interrupted": interrupted,
            "seconds_this_session": round(elapsed, 3),
            "mixing": self.config.mixing,
            "datasets": self.labels,
            "loss_kinds": self.loss_kinds,
            "last_losses": self.last_losses(),
            "world_size": self.dist.world_size,
        }

    def weights_metadata(self) -> dict[str, str]:
        """Metadata of the model files this run writes; the working size for inference is
        the size the network was trained at."""
        from mixdepth.models.checkpoints import model_metadata

        return model_metadata(self.model, {"input_size": str(self.config.crop_size)})

    def _finish(self, logger) -> Path:
        from mixdepth.models.checkpoints import save_state_dict

        path = self.out_dir / "model.safetensors"
        meta = self.weights_metadata()
        save_state_dict(self.model.state_dict(), path, meta["model"], metadata=meta)
        (self.out_dir / "history.json").write_text(json.dumps(self.history, indent=1))
        if self.config.report:
            from mixdepth.train.report import plot_loss_curves, plot_predictions

            plot_loss_curves(self.history, self.labels, self.out_dir / "loss_curves.png")
            if self.config.val_images > 0:
                plot_predictions(self, self.out_dir / "predictions.png")
        return path

    def validation_batch(self) -> dict:
        """A fixed batch: the first `val_images` images of every dataset, fixed augmentation."""
        slots = [
            Slot(d, i, 1000 + i)
            for d, dataset in enumerate(self.datasets)
            for i in range(min(self.config.val_images, len(dataset)))
        ]
        reader = SlotDataset(self.datasets)
        return collate_slots([reader[slot] for slot in slots])

    def close(self) -> None:
        if self.dist.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def train(
    config: TrainConfig | str | Path | dict,
    overrides: list[str] | None = None,
    resume: bool = False,
    datasets: Sequence[Dataset] | None = None,
    model: nn.Module | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train from a config (path, mapping or TrainConfig) with optional `key=value` overrides.

    resume: continue from the latest checkpoint in `out_dir` exactly where it stopped.
    datasets / model: use these instead of building them from the config.
    stop_after: stop (and checkpoint) after this step, as an interruption would.
    Under torchrun (WORLD_SIZE > 1) every process calls this; rank 0 writes the outputs.
    """
    if not isinstance(config, TrainConfig):
        config = load_config(config, overrides, check_paths=datasets is None)
    elif overrides:
        config = load_config(config.to_dict(), overrides, check_paths=datasets is None)
    trainer = Trainer(config, datasets=datasets, model=model, resume=resume)
    try:
        return trainer.run(stop_after=stop_after)
    finally:
        trainer.close()


__all__ = [
    "DatasetLoss",
    "RootsDataset",
    "SlotDataset",
    "TrainResult",
    "Trainer",
    "lr_factor",
    "train",
]
