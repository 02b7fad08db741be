from collections import Counter

import pytest

from mixdepth.train.samplers import (
    NaiveSampler,
    ParetoSampler,
    UniformSampler,
    counts_per_dataset,
    create_sampler,
)

SIZES = [100, 7, 23]


@pytest.mark.parametrize("cls", [UniformSampler, ParetoSampler])
def test_uniform_and_pareto_hold_equal_shares_whatever_the_sizes(cls):
    sampler = cls(SIZES, batch_size=12, seed=1, total_steps=50)
    for batch in sampler:
        assert counts_per_dataset(batch, 3) == [4, 4, 4]
        assert [s.dataset for s in batch] == sorted(s.dataset for s in batch)  # grouped
        assert all(0 <= s.index < SIZES[s.dataset] for s in batch)


def test_uniform_repeats_small_sets_and_subsamples_large_ones_per_epoch():
    sampler = UniformSampler(SIZES, batch_size=3, seed=0, total_steps=100)
    seen = [Counter() for _ in SIZES]
    for batch in sampler:
        for slot in batch:
            seen[slot.dataset][slot.index] += 1
    # 100 images per dataset: the 7-image set repeats (each image 14 or 15 times) ...
    assert sorted(seen[1]) == list(range(7)) and set(seen[1].values()) <= {14, 15}
    # ... the 100-image set is one exact epoch: every image exactly once
    assert sorted(seen[0]) == list(range(100)) and set(seen[0].values()) == {1}
    # and a fresh permutation each epoch of the small set, not the same order again
    first = [s.index for b in [sampler.global_batch(k) for k in range(7)] for s in b
             if s.dataset == 1]
    second = [s.index for b in [sampler.global_batch(k) for k in range(7, 14)] for s in b
              if s.dataset == 1]
    assert sorted(first) == sorted(second) == list(range(7)) and first != second


def test_naive_samples_images_uniformly_so_large_sets_dominate():
    total = sum(SIZES)
    sampler = NaiveSampler(SIZES, batch_size=10, seed=0, total_steps=total)  # 10 epochs
    per_dataset = [0, 0, 0]
    images = Counter()
    for batch in sampler:
        assert len(batch) == 10
        for d, c in enumerate(counts_per_dataset(batch, 3)):
            per_dataset[d] += c
        images.update((s.dataset, s.index) for s in batch)
    assert per_dataset == [10 * s for s in SIZES]  # proportional to the sizes
    assert set(images.values()) == {10}  # every image once per epoch


@pytest.mark.parametrize("strategy", ["naive", "uniform", "pareto"])
def test_ranks_split_every_share_and_union_is_the_global_batch(strategy):
    world = 2
    samplers = [
        create_sampler(strategy, SIZES, 12, seed=5, rank=r, world_size=world) for r in range(world)
    ]
    for step in range(20):
        batches = [s.rank_batch(step) for s in samplers]
        global_batch = samplers[0].global_batch(step)
        assert sorted(batches[0] + batches[1]) == sorted(global_batch)
        assert all(len(b) == 6 for b in batches)
        if strategy != "naive":  # each rank gets its share of every dataset
            assert all(counts_per_dataset(b, 3) == [2, 2, 2] for b in batches)


@pytest.mark.parametrize("strategy", ["naive", "uniform", "pareto"])
def test_deterministic_and_resumable_from_any_step(strategy):
    full = list(create_sampler(strategy, SIZES, 6, seed=9, total_steps=30))
    resumed = create_sampler(strategy, SIZES, 6, seed=9, total_steps=30)
    resumed.load_state_dict({"strategy": strategy, "seed": 9, "step": 17})
    assert list(resumed) == full[17:]
    assert len(resumed) == 13
    other_seed = list(create_sampler(strategy, SIZES, 6, seed=10, total_steps=30))
    assert other_seed != full
    # augmentation seeds differ between images and steps
    seeds = [slot.seed for batch in full for slot in batch]
    assert len(set(seeds)) > 0.95 * len(seeds)


def test_iteration_does_not_move_the_position():
    sampler = UniformSampler(SIZES, 3, total_steps=10)
    list(sampler)
    assert sampler.step == 0
    sampler.step = 4
    assert sampler.state_dict() == {"strategy": "uniform", "step": 4, "seed": 0}


def test_invalid_setups():
    with pytest.raises(ValueError, match="multiple of the number of datasets"):
        UniformSampler(SIZES, batch_size=10)
    with pytest.raises(ValueError, match="datasets x processes"):
        ParetoSampler(SIZES, batch_size=9, world_size=2)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        NaiveSampler(SIZES, batch_size=5, world_size=2)
    with pytest.raises(ValueError, match="at least one image"):
        NaiveSampler([3, 0], batch_size=2)
    with pytest.raises(ValueError, match="unknown mixing"):
        create_sampler("proportional", SIZES, 3)
    with pytest.raises(ValueError, match="is for naive"):
        UniformSampler(SIZES, 3).load_state_dict({"strategy": "naive", "seed": 0, "step": 1})
