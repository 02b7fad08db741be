"""`mixdepth train CONFIG.yaml [key=value ...] [--resume]`: train on mixed datasets."""

from pathlib import Path

import typer

from mixdepth.cli.app import app


@app.command(
    epilog="Example: mixdepth train configs/tiny-synthetic-pareto.yaml steps=500 seed=1",
)
def train(
    config: Path = typer.Argument(..., help="YAML training config (see docs/training.md)."),
    overrides: list[str] = typer.Argument(
        None, help="Config changes as key=value, e.g. steps=100 optimizer.lr_decoder=3e-4 "
        "datasets[0].root=/data/tum."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue exactly from the latest checkpoint in out_dir."
    ),
    check: bool = typer.Option(
        False, "--check", help="Only validate the config (and overrides), print it and exit."
    ),
) -> None:
    """Train a depth network with naive, uniform or Pareto (MGDA) dataset mixing.

    Under torchrun every process runs this command; rank 0 logs and writes checkpoints.
    SIGINT/SIGTERM write a checkpoint at the end of the current step; --resume continues.
    """
    import os

    import yaml
    from rich.console import Console

    from mixdepth.train.config import load_config

    console = Console(stderr=True)
    cfg = load_config(config, list(overrides or []))
    if check:
        typer.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False), nl=False)
        return

    from mixdepth.train import train as run_training

    result = run_training(cfg, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    if result.interrupted:
        console.print(
            f"stopped at step {result.step}; checkpoint {result.checkpoint}. "
            f"Continue with: mixdepth train {' '.join([str(config), *(overrides or [])])} "
            "--resume",
            highlight=False,
        )
        raise typer.Exit(code=130)
    console.print(f"trained to step {result.step}; last losses: {losses}", highlight=False)
    console.print(f"weights: {result.weights}", highlight=False)
    figures = (
        f", {result.out_dir / 'loss_curves.png'}, {result.out_dir / 'predictions.png'}"
        if cfg.report
        else ""
    )
    console.print(
        f"logs: {result.out_dir / 'tensorboard'} (tensorboard --logdir {result.out_dir})"
        f"{figures}",
        highlight=False,
    )
