"""Mixing samplers: which images of which dataset go into each training step.

A sampler is a pure function of (seed, step): the batch of step k is computed from random
permutations seeded by (seed, dataset, epoch), so its whole state is the step counter and a
resumed run draws exactly the batches an uninterrupted run would have drawn. Under data
parallelism every rank computes the same global batch and keeps its own slice of every
dataset's share, so the union over ranks is the single-process batch.

Each batch is a list of `Slot(dataset, index, seed)`, grouped by dataset in config order;
`seed` is a per-image seed for the augmentation of that image at that step.

- naive:   one permutation of the concatenation of all datasets; large sets dominate.
- uniform: the same number of images from every dataset per step, each dataset drawn from
           its own stream of per-epoch permutations (small sets repeat, large ones are
           subsampled per epoch). Pareto mixing uses the same batches, split per dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant decorrelating seed components


class Slot(NamedTuple):
    """One image of a batch: config index of its dataset, index in it, augmentation seed."""

    dataset: int
    index: int
    seed: int


def _permutation(size: int, *key: int) -> np.ndarray:
    """A random permutation of range(size) determined by the integer key."""
    return np.random.default_rng([k & 0xFFFFFFFFFFFFFFFF for k in key]).permutation(size)


def _stream(size: int, start: int, count: int, *key: int) -> np.ndarray:
    """Items [start, start + count) of the endless stream of per-epoch permutations."""
    out = np.empty(count, dtype=np.int64)
    filled = 0
    while filled < count:
        epoch, offset = divmod(start + filled, size)
        take = min(count - filled, size - offset)
        out[filled : filled + take] = _permutation(size, *key, epoch)[offset : offset + take]
        filled += take
    return out


def _rank_slice(count: int, rank: int, world_size: int) -> slice:
    per_rank = count // world_size
    return slice(rank * per_rank, (rank + 1) * per_rank)


class MixingSampler:
    """Base: a deterministic, resumable stream of per-step batches for one rank.

    sizes: number of images in each dataset; batch_size: images per step summed over all
    datasets and all ranks. Iterating yields the batches of steps `start_step`,
    `start_step + 1`, ... up to `total_steps` (endless if None).
    """

    strategy = ""

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        total_steps: int | None = None,
    ) -> None:
        self.sizes = [int(s) for s in sizes]
        if not self.sizes or any(s <= 0 for s in self.sizes):
            raise ValueError(f"every dataset needs at least one image, sizes: {self.sizes}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.step = int(start_step)
        self.total_steps = total_steps
        self._check_divisible()

    def _check_divisible(self) -> None:
        if self.batch_size <= 0 or self.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be a positive multiple of the number of "
                f"processes ({self.world_size})"
            )

    def global_batch(self, step: int) -> list[Slot]:
        """All images of `step` over all ranks, grouped by dataset."""
        raise NotImplementedError

    def rank_batch(self, step: int) -> list[Slot]:
        """This rank's images of `step`: its slice of every dataset's share."""
        raise NotImplementedError

    def _slot_seed(self, step: int, position: int) -> int:
        return int(np.random.default_rng([self.seed, 7, step, position]).integers(2**31))

    def state_dict(self) -> dict:
        return {"strategy": self.strategy, "step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state.get("strategy") != self.strategy or int(state["seed"]) != self.seed:
            raise ValueError(
                f"sampler state is for {state.get('strategy')} with seed {state.get('seed')}, "
                f"not {self.strategy} with seed {self.seed}"
            )
        self.step = int(state["step"])

    def __iter__(self) -> Iterator[list[Slot]]:
        """Batches from `self.step` on. Iteration does not move `self.step` (a DataLoader
        prefetches ahead of training); the trainer sets it to the number of finished steps."""
        step = self.step
        while self.total_steps is None or step < self.total_steps:
            yield self.rank_batch(step)
            step += 1

    def __len__(self) -> int:
        if self.total_steps is None:
            raise TypeError("an endless sampler has no length")
        return max(self.total_steps - self.step, 0)


class NaiveSampler(MixingSampler):
    """Concatenate all datasets and sample uniformly over images (epoch-wise permutations)."""

    strategy = "naive"

    def _global_positions(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        flat = _stream(sum(self.sizes), step * self.batch_size, self.batch_size, self.seed, _MIX)
        offsets = np.cumsum([0, *self.sizes])
        dataset = np.searchsorted(offsets, flat, side="right") - 1
        return dataset, flat - offsets[dataset]

    def _slots(self, step: int, dataset: np.ndarray, index: np.ndarray, positions) -> list[Slot]:
        order = np.argsort(dataset[positions], kind="stable")
        chosen = np.asarray(positions)[order]
        return [
            Slot(int(dataset[p]), int(index[p]), self._slot_seed(step, int(p))) for p in chosen
        ]

    def global_batch(self, step: int) -> list[Slot]:
        dataset, index = self._global_positions(step)
        return self._slots(step, dataset, index, np.arange(self.batch_size))

    def rank_batch(self, step: int) -> list[Slot]:
        dataset, index = self._global_positions(step)
        positions = np.arange(self.batch_size)[_rank_slice(self.batch_size, self.rank,
                                                           self.world_size)]
        return self._slots(step, dataset, index, positions)


class UniformSampler(MixingSampler):
    """The same number of images from every dataset in every step (batch_size / T each)."""

    strategy = "uniform"

    def _check_divisible(self) -> None:
        parts = len(self.sizes) * self.world_size
        if self.batch_size <= 0 or self.batch_size % parts:
            raise ValueError(
                f"batch_size {self.batch_size} must be a positive multiple of the number of "
                f"datasets x processes ({len(self.sizes)} x {self.world_size} = {parts})"
            )

    @property
    def share(self) -> int:
        """Images per dataset per step, over all ranks."""
        return self.batch_size // len(self.sizes)

    def _batch(self, step: int, part: slice) -> list[Slot]:
        slots = []
        for d, size in enumerate(self.sizes):
            index = _stream(size, step * self.share, self.share, self.seed, _MIX, d + 1)
            for position in range(self.share)[part]:
                seed = self._slot_seed(step, d * self.share + position)
                slots.append(Slot(d, int(index[position]), seed))
        return slots

    def global_batch(self, step: int) -> list[Slot]:
        return self._batch(step, slice(None))

    def rank_batch(self, step: int) -> list[Slot]:
        return self._batch(step, _rank_slice(self.share, self.rank, self.world_size))


class ParetoSampler(UniformSampler):
    """Uniform batches; the trainer computes one loss and gradient per dataset share."""

    strategy = "pareto"


SAMPLERS: dict[str, type[MixingSampler]] = {
    "naive": NaiveSampler,
    "uniform": UniformSampler,
    "pareto": ParetoSampler,
}


def create_sampler(strategy: str, sizes: Sequence[int], batch_size: int, **kwargs) -> MixingSampler:
    """The sampler of a mixing strategy: naive, uniform or pareto."""
    if strategy not in SAMPLERS:
        raise ValueError(f"unknown mixing strategy {strategy!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[strategy](sizes, batch_size, **kwargs)


def counts_per_dataset(batch: Sequence[Slot], num_datasets: int) -> list[int]:
    """How many images of each dataset a batch holds."""
    counts = [0] * num_datasets
    for slot in batch:
        counts[slot.dataset] += 1
    return counts


__all__ = [
    "MixingSampler",
    "NaiveSampler",
    "ParetoSampler",
    "Slot",
    "UniformSampler",
    "counts_per_dataset",
    "create_sampler",
]
