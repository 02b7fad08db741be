"""Two CPU processes (gloo, localhost) train the same parameters as one process with the
same global batch, for every mixing strategy. BatchNorm is frozen (eval mode) for the
comparison: with batch statistics, each rank would normalise its own half of the batch and
the runs would legitimately differ.

The two ranks are forked from the test process after the single-process runs, so they
inherit its imports (re-importing torch in fresh processes would dominate the test time);
each sets one thread, as DataLoader workers do after a fork."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from conftest import ToyDepthDataset, toy_config
from mixdepth.models import create
from mixdepth.train import train

MIXINGS = ("naive", "uniform", "pareto", "pareto-ub")


def _datasets():
    return [
        ToyDepthDataset(6, seed=0, kind="disparity"),
        ToyDepthDataset(5, seed=1, kind="depth"),
        ToyDepthDataset(4, seed=2, kind="ordinal"),
    ]


def _config(root, variant):
    mixing, _, mode = variant.partition("-")
    config = toy_config(
        root / variant, mixing=mixing, pareto_mode=mode or "full", n_datasets=3, steps=2,
        batch_size=12,
        checkpoint_every=100, model={"name": "tiny", "freeze_batchnorm": True,
                                     "options": {"width": 0.25, "features": 8, "head_hidden": 8}},
        # Adam divides by sqrt(v) + eps: with the default eps a gradient component of 1e-9
        # moves its parameter by a full lr, so rounding differences between a sum over two
        # ranks and a sum over one batch would flip such steps; a larger eps keeps the update
        # proportional to the gradient there and the comparison meaningful
        optimizer={"lr_encoder": 1e-3, "lr_decoder": 1e-3, "eps": 1e-3},
    )
    config["datasets"][2]["loss"] = "ordinal"
    return config


def _worker(rank, world_size, port, root):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        for mixing in MIXINGS:
            train(_config(root / "ddp", mixing), datasets=_datasets())
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    singles = {m: train(_config(tmp_path / "single", m), datasets=_datasets()) for m in MIXINGS}
    mp.start_processes(_worker, args=(2, _free_port(), tmp_path), nprocs=2, join=True,
                       start_method="fork")
    torch.manual_seed(_config(tmp_path, "uniform")["seed"])
    initial = create("tiny", width=0.25, features=8, head_hidden=8).state_dict()
    for mixing in MIXINGS:
        a = load_file(singles[mixing].out_dir / "model.safetensors")
        b = load_file(tmp_path / "ddp" / mixing / "run" / "model.safetensors")
        assert a.keys() == b.keys()
        worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
        moved = max(float((a[k].double() - initial[k].double()).abs().max()) for k in a)
        assert moved > 1e-3  # the parameters did change, by far more than the runs differ
        assert worst < 1e-5, (mixing, worst)
        assert (tmp_path / "ddp" / mixing / "run" / "checkpoints" / "latest").is_file()
