"""The end-to-end demonstration behind `mixdepth demo` (the README's `make demo`).

Offline and on a CPU: render a small synthetic mix in the real datasets' formats, train the
bundled model's architecture (`lite2`, its encoder from ImageNet) on it with uniform and with
Pareto (MGDA) mixing, evaluate both (and the bundled default model, when the package ships
one) zero-shot on the held-out scene families, and write depth maps of real photographs.
Every stage calls the same library functions as the corresponding command, and the
equivalent command is printed with it.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from mixdepth.errors import ConfigError

STRATEGIES = ("uniform", "pareto")
# The demo's model: the shipped configs train `tiny` from random weights; the demo trains the
# bundled model's architecture from ImageNet weights instead, in bfloat16.
DEMO_MODEL = "lite2"
MODEL_OVERRIDES = (
    f"model.name={DEMO_MODEL}", "model.pretrained=imagenet",
    "model.options={features: 32, expand: true}",
    "model.freeze_encoder_batchnorm=true", "optimizer.lr_encoder=1.0e-4", "precision=bfloat16",
    "channels_last=true",
)
# Real photographs that ship with scikit-image; used for prediction only, never for training.
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demonstration; `quick` shrinks everything for tests."""

    n_per_set: int = 64
    size: int = 128
    steps: int = 400
    batch_size: int = 14
    workers: int = 2
    eval_limit: int | None = None

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(n_per_set=4, size=64, steps=2, batch_size=7, workers=1, eval_limit=2)


def repo_config(strategy: str) -> Path:
    """The training config of the tiny model on the synthetic mix, shipped in configs/."""
    path = Path(__file__).resolve().parents[2] / "configs" / f"tiny-synthetic-{strategy}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: training config not found; run the demo from a source checkout")
    return path


def photo_paths() -> list[Path]:
    """Paths of the real photographs used for the prediction stage (those installed)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return [folder / name for name in PHOTOS if (folder / name).is_file()]


def root_overrides(mix_file: Path, config_path: Path) -> list[str]:
    """`datasets[i].root=...` overrides pointing a config's datasets at a generated mix.

    Datasets are matched by their label (the personality name) against mix.yaml's train sets.
    """
    mix = yaml.safe_load(mix_file.read_text())
    roots = {entry["name"]: mix_file.parent / entry["root"] for entry in mix["train"]}
    config = yaml.safe_load(config_path.read_text())
    overrides = []
    for i, dataset in enumerate(config["datasets"]):
        label = dataset.get("label", dataset["name"])
        if label not in roots:
            raise ConfigError(f"{mix_file}: no training set named {label!r} for {config_path}")
        overrides.append(f"datasets[{i}].root={roots[label]}")
    return overrides


def run_demo(out: str | Path = "demo", settings: DemoSettings | None = None) -> dict:
    """Run every stage into `out`; returns {"table": markdown, "outputs": {what: path}}."""
    from mixdepth.eval import evaluate
    from mixdepth.eval.report import markdown_table
    from mixdepth.inference import Predictor, default_weights_path
    from mixdepth.synthetic.writer import generate_preset
    from mixdepth.train import train

    settings = settings or DemoSettings()
    console = Console()
    out = Path(out)
    outputs: dict[str, Path] = {}
    started = time.perf_counter()

    def stage(title: str, command: str) -> None:
        elapsed = time.perf_counter() - started
        console.rule(f"[bold]{title}[/]  ({elapsed:.0f} s)")
        console.print(f"[dim]$ {command}[/]", highlight=False)

    data = out / "data"
    stage(
        "1/4 synthetic mix",
        f"mixdepth synth --preset default-mix --out {data} --n-per-set {settings.n_per_set} "
        f"--size {settings.size} -j {settings.workers}",
    )
    mix_file = data / "mix.yaml"
    if mix_file.is_file():
        console.print(f"reusing {mix_file}")
    else:
        mix_file = generate_preset(
            "default-mix", data, settings.n_per_set, 0, settings.size, settings.workers
        )
    outputs["synthetic mix"] = mix_file

    models: dict[str, Path] = {}
    for strategy in STRATEGIES:
        config = repo_config(strategy)
        run_dir = out / "runs" / strategy
        overrides = [
            *root_overrides(mix_file, config),
            *MODEL_OVERRIDES,
            f"steps={settings.steps}",
            f"batch_size={settings.batch_size}",
            f"crop_size={min(settings.size, 128)}",
            "checkpoint_every=100",
            f"schedule.warmup_steps={min(20, settings.steps // 4)}",
            f"out_dir={run_dir}",
            "num_workers=0",
        ]
        command = f"mixdepth train {config} {' '.join(overrides)}"
        stage(f"2/4 train {DEMO_MODEL}, {strategy} mixing", command)
        result = train(config, overrides, resume=(run_dir / "checkpoints").is_dir())
        models[f"{DEMO_MODEL}-{strategy}"] = result.weights
        outputs[f"{strategy} model"] = result.weights
    bundled = default_weights_path()
    if bundled is not None:
        models["bundled default"] = bundled

    heldout = data / "heldout"
    evals = out / "eval"
    summaries = []
    for label, weights in models.items():
        stage(
            f"3/4 zero-shot evaluation: {label}",
            f"mixdepth eval --weights {weights} --benchmark synthetic-heldout --root {heldout} "
            f"--out {evals} --label {shlex.quote(label)}",
        )
        result = evaluate(
            "synthetic-heldout", heldout, model=Predictor(weights=weights), out=evals,
            label=label, limit=settings.eval_limit,
        )
        summaries.append(result.summary)
    table = markdown_table(summaries)
    outputs["evaluation table"] = evals / "table.md"

    weights = bundled or models[f"{DEMO_MODEL}-pareto"]
    photos_out = out / "photos"
    stage(
        "4/4 depth of real photographs",
        f"mixdepth predict {shlex.join(str(p) for p in photo_paths())} --weights {weights} "
        f"-o {photos_out} --format color,pfm",
    )
    write_photo_predictions(Predictor(weights=weights), photo_paths(), photos_out)
    outputs["photo depth maps"] = photos_out

    console.rule(f"[bold]done in {time.perf_counter() - started:.0f} s[/]")
    console.print("Zero-shot on held-out synthetic families (lower is better):\n")
    console.print(table, highlight=False)
    where = Table(show_header=False, box=None)
    for what, path in outputs.items():
        where.add_row(what, str(path))
    console.print(where)
    return {"table": table, "outputs": outputs}


def write_photo_predictions(predictor, photos: list[Path], out: Path) -> list[Path]:
    """Colour PNG + PFM of each photo's relative inverse depth into `out`."""
    from mixdepth.inference import read_image_file
    from mixdepth.outputs import write_outputs

    written = []
    for path in photos:
        image = read_image_file(path)
        disparity = predictor.predict(image)
        written += write_outputs(out / path.stem, disparity, image, ("color", "pfm"),
                                 with_side_by_side=True)
    return written
