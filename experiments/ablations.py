"""The paper's ablations at small scale: losses, mixing strategies, adding datasets.

    python experiments/ablations.py run [--study losses|mixing|datasets|encoders|all]
                                        [--seeds 0 1 2]
                                        [--steps 400] [--data data/ablate] [--out runs/ablations]
    python experiments/ablations.py rescore [--study ...]   # evaluate the finished runs again
    python experiments/ablations.py report [--out runs/ablations] [--doc docs/ablations.md]

`run` trains the `tiny` model (softplus head) from scratch once per variant and seed under the
same budget (steps, crop, images per dataset per step) on the synthetic mix in --data (made by
`mixdepth synth --preset default-mix --out DIR --n-per-set 200 --size 128 -j 2`) and evaluates
it zero-shot on the first 100 images of each held-out family (landscape, forest) with the
published protocol. Each
finished run leaves result.json next to its checkpoints; runs already finished are skipped,
an interrupted one resumes from its last checkpoint. Several `run` processes (one per core) share
the work: each takes the next run no live process has claimed. `report` writes the tables (mean and
standard deviation over seeds) and bar charts to --doc and docs/images/ablations/: it rewrites
the section of each study that has finished runs in --out and keeps the others, so one study can
be rerun on its own.

Studies:
- losses:   ssimse / ssimae / ssitrim / ssimse-norm (ssimse on the median/MAD-normalised
            target), each without and with the gradient-matching term (alpha 0 and 0.5), and
            the baselines plain MSE in disparity, scale-invariant log (silog)
            and shift-only invariance; uniform mixing over the six dense personalities.
- mixing:   naive / uniform / Pareto over all seven personalities with very unequal sizes
            (200, 100, 50, 25, 12, 6 and 3 images).
- datasets: uniform mixing over the first k personalities for k = 1..7 (in the order of
            DATASET_ORDER), two images of each per step, ssitrim + gradient term.
- encoders: the encoder's architecture and initialisation (ENCODER_VARIANTS): `tiny` from
            random weights, `lite0` from random weights, `lite0` from ImageNet with the
            encoder frozen for the whole run or fine-tuned, `lite2` from ImageNet fine-tuned;
            all seven personalities, uniform mixing, 128 px crops, bfloat16.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import yaml

STUDIES = ("losses", "mixing", "datasets", "encoders")
DENSE = ("exact", "indoor-rgbd", "street-lidar", "sfm", "web-stereo", "movies-3d")
DATASET_ORDER = (*DENSE, "ordinal")
LOSS_VARIANTS = {  # label -> (loss.kind, loss.alpha)
    "ssimse": ("mse", 0.0),
    "ssimse+grad": ("mse", 0.5),
    "ssimae": ("mae", 0.0),
    "ssimae+grad": ("mae", 0.5),
    "ssitrim": ("trim", 0.0),
    "ssitrim+grad": ("trim", 0.5),
    "ssimse-norm": ("mse-norm", 0.0),
    "ssimse-norm+grad": ("mse-norm", 0.5),
    "plain MSE": ("plain", 0.0),
    "silog": ("silog", 0.0),
    "shift-only": ("shift", 0.0),
}
# label -> (model, pretrained, encoder frozen for the whole run)
ENCODER_VARIANTS = {
    "tiny, random init": ("tiny", None, False),
    "lite0, random init": ("lite0", None, False),
    "lite0, ImageNet, frozen": ("lite0", "imagenet", True),
    "lite0, ImageNet, fine-tuned": ("lite0", "imagenet", False),
    "lite2, ImageNet, fine-tuned": ("lite2", "imagenet", False),
}
LITE_OPTIONS = {"features": 32, "expand": True}  # the bundled model's decoder
MIXING_SIZES = dict(zip(DATASET_ORDER, (200, 100, 50, 25, 12, 6, 3), strict=True))
METRICS = ("absrel", "delta1")  # what result.json keeps of the evaluation summary, and
# "inverted": the percentage of images whose prediction has near and far swapped
EVAL_IMAGES = 100  # per held-out family


def mix_datasets(data: Path, names: tuple[str, ...], limits: dict | None = None) -> list[dict]:
    """Config entries for the named training sets of the mix in `data` (its mix.yaml)."""
    mix_file = data / "mix.yaml"
    if not mix_file.is_file():
        sys.exit(f"{mix_file}: not found; make it with `mixdepth synth --preset default-mix "
                 f"--out {data} --n-per-set 200 --size 128 -j 2`")
    sets = {entry["name"]: entry for entry in yaml.safe_load(mix_file.read_text())["train"]}
    entries = []
    for name in names:
        entry = sets[name]
        ds = {"name": entry["dataset"], "root": str(data / entry["root"]), "label": name}
        if entry.get("split"):
            ds["split"] = entry["split"]
        if entry["dataset"] == "folder":
            ds["options"] = {"space": entry["space"]}
        if limits:
            ds["limit"] = limits[name]
        entries.append(ds)
    return entries


def base_config(steps: int, seed: int, out_dir: Path) -> dict:
    """What every ablation run shares: model, optimiser, schedule, crop, budget."""
    return {
        "model": {"name": "tiny", "options": {"head_activation": "softplus"}},
        "mixing": "uniform",
        "loss": {"kind": "trim", "alpha": 0.5, "scales": 3, "reduction": "image"},
        "optimizer": {"lr_encoder": 3.0e-4, "lr_decoder": 3.0e-4},
        "schedule": {"kind": "cosine", "warmup_steps": 20, "min_lr_ratio": 0.05},
        "steps": steps,
        "crop_size": 96,
        "augment": {"flip": True, "jitter": True},
        "grad_clip": 1.0,
        "checkpoint_every": max(steps // 4, 1),
        "keep_checkpoints": 1,
        "log_every": 25,
        "seed": seed,
        "num_workers": 0,
        "threads": 1,
        "device": "cpu",
        "progress": False,
        "report": False,
        "val_images": 0,
        "out_dir": str(out_dir),
    }


def study_runs(study: str, data: Path, steps: int, seed: int, out: Path) -> dict[str, dict]:
    """{variant label: training config} of one study and seed."""
    runs = {}
    if study == "losses":
        for label, (kind, alpha) in LOSS_VARIANTS.items():
            config = base_config(steps, seed, out / study / slug(label) / f"seed{seed}")
            config["datasets"] = mix_datasets(data, DENSE)
            config["batch_size"] = 2 * len(DENSE)
            config["loss"].update(kind=kind, alpha=alpha)
            runs[label] = config
    elif study == "mixing":
        for strategy in ("naive", "uniform", "pareto"):
            config = base_config(steps, seed, out / study / strategy / f"seed{seed}")
            config["datasets"] = mix_datasets(data, DATASET_ORDER, MIXING_SIZES)
            config["batch_size"] = 2 * len(DATASET_ORDER)
            config["mixing"] = strategy
            runs[strategy] = config
    elif study == "datasets":
        for k, label in enumerate(variant_labels(study), start=1):
            config = base_config(steps, seed, out / study / f"k{k}" / f"seed{seed}")
            config["datasets"] = mix_datasets(data, DATASET_ORDER[:k])
            config["batch_size"] = 2 * k
            runs[label] = config
    elif study == "encoders":
        for label, (name, pretrained, frozen) in ENCODER_VARIANTS.items():
            config = base_config(steps, seed, out / study / slug(label) / f"seed{seed}")
            config["datasets"] = mix_datasets(data, DATASET_ORDER)
            config["batch_size"] = 2 * len(DATASET_ORDER)
            config["crop_size"] = 128
            config["precision"] = "bfloat16"
            if name != "tiny":
                config["model"] = {"name": name, "options": dict(LITE_OPTIONS)}
                config["channels_last"] = True
            if pretrained:
                config["model"].update(pretrained=pretrained, freeze_encoder_batchnorm=True,
                                       freeze_encoder_steps=steps if frozen else 0)
                config["optimizer"]["lr_encoder"] = 1.0e-4
            runs[label] = config
    else:
        raise ValueError(f"unknown study {study!r}; choose from {', '.join(STUDIES)}")
    return runs


def variant_labels(study: str) -> list[str]:
    """The variants of a study, in table order."""
    if study == "losses":
        return list(LOSS_VARIANTS)
    if study == "mixing":
        return ["naive", "uniform", "pareto"]
    if study == "encoders":
        return list(ENCODER_VARIANTS)
    return [f"{k}: {'+ ' if k > 1 else ''}{name}" for k, name in enumerate(DATASET_ORDER, 1)]


def slug(label: str) -> str:
    return label.replace(", ", "-").replace(" ", "-").replace("+", "-plus-").lower()


def heldout_metrics(predictor, heldout: Path, out: Path | None = None) -> dict:
    """Zero-shot METRICS of a Predictor on the first EVAL_IMAGES of each held-out family
    (mean over images) and "inverted" (percent of images); out: where the evaluation writes its
    files (None: nowhere)."""
    from mixdepth.eval import evaluate

    result = evaluate("synthetic-heldout", heldout, model=predictor, out=out, label="model",
                      progress=False, limit=EVAL_IMAGES)
    summary = result.summary
    return {**{key: summary["metrics"][key] for key in METRICS},
            "inverted": 100.0 * summary["inverted_predictions"] / summary["evaluated"]}


def claim(run_dir: Path) -> bool:
    """Take a run for this process (several `run` processes can share the work): False when
    another live process holds it. A claim of a process that has died is taken over."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "claimed_by"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            owner = int(lock.read_text())
            if owner != os.getpid():
                os.kill(owner, 0)
                return False  # held by a live process
        except (ValueError, ProcessLookupError):
            pass  # a stale claim: take it over
        lock.write_text(str(os.getpid()))
        return True
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return True


def run_study(study: str, args: argparse.Namespace) -> None:
    from mixdepth.inference import Predictor
    from mixdepth.train import train

    for seed in args.seeds:
        for label, config in study_runs(study, args.data, args.steps, seed, args.out).items():
            run_dir = Path(config["out_dir"])
            result_file = run_dir / "result.json"
            if result_file.is_file() or not claim(run_dir):
                continue
            started = time.perf_counter()
            trained = train(config, resume=(run_dir / "checkpoints").is_dir())
            if trained.interrupted:  # stopped by a signal: no result, the next run resumes it
                sys.exit(f"{run_dir}: interrupted at step {trained.step}; run again to resume")
            metrics = heldout_metrics(Predictor(weights=trained.weights), args.data / "heldout",
                                      run_dir / "eval")
            seconds = time.perf_counter() - started
            record = {"study": study, "variant": label, "seed": seed, "steps": args.steps,
                      "seconds": round(seconds, 1), **metrics}
            result_file.write_text(json.dumps(record, indent=1))
            print(f"{study:9s} {label:28s} seed {seed}: AbsRel {metrics['absrel']:.4f} "
                  f"delta1 {metrics['delta1']:.4f} ({seconds:.0f} s)", flush=True)


def rescore(args: argparse.Namespace) -> None:
    """Evaluate the model of every finished run again and update its result.json (the
    training time is kept)."""
    from mixdepth.inference import Predictor

    study = "*" if args.study == "all" else args.study
    paths = sorted(args.out.glob(f"{study}/*/seed*/result.json"))
    if not paths:
        sys.exit(f"{args.out}: no finished ablation runs (result.json) to rescore")
    for path in paths:
        weights = path.parent / "model.safetensors"
        if not weights.is_file():
            sys.exit(f"{weights}: missing; the run cannot be rescored (run it again)")
        record = json.loads(path.read_text())
        record.update(heldout_metrics(Predictor(weights=weights), args.data / "heldout"))
        path.write_text(json.dumps(record, indent=1))
        print(f"{record['study']:9s} {record['variant']:28s} seed {record['seed']}: AbsRel "
              f"{record['absrel']:.4f}, near and far swapped in {record['inverted']:.0f} %",
              flush=True)


# ---------------------------------------------------------------------------- report


def collect(out: Path) -> dict[str, dict[str, list[dict]]]:
    """{study: {variant: [result records over seeds]}}, variants in table order."""
    found: dict[str, dict[str, list[dict]]] = {}
    for path in sorted(out.glob("*/*/seed*/result.json")):
        record = json.loads(path.read_text())
        found.setdefault(record["study"], {}).setdefault(record["variant"], []).append(record)
    return {
        study: {v: found[study][v] for v in variant_labels(study) if v in found[study]}
        for study in STUDIES if study in found
    }


def reference_rows(heldout: Path) -> dict[str, dict]:
    """The same protocol for two trivial predictors: constant, and "lower is nearer"."""
    from model_card import ImagePrior

    from mixdepth.inference import Predictor

    return {
        label: heldout_metrics(
            Predictor(model=ImagePrior(rows=rows_prior), runtime="torch"), heldout
        )
        for label, rows_prior in (("constant prediction", False), ("lower is nearer", True))
    }


def spread(values: list[float]) -> str:
    """Mean ± sample standard deviation; the mean alone for a single seed."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}"


def study_table(variants: dict[str, list[dict]], references: dict[str, dict]) -> str:
    """Markdown table of a study; the column of inverted images (per seed, in seed order) only
    when the runs recorded it."""
    flips = any("inverted" in r for records in variants.values() for r in records)
    head = ["variant", "held-out AbsRel (mean ± sd)", "held-out δ<1.25 (mean ± sd)", "seeds",
            "minutes per run"] + (["near and far swapped (% of images, per seed)"] if flips else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, records in variants.items():
        absrel = [r["absrel"] for r in records]
        delta = [r["delta1"] for r in records]
        minutes = statistics.median(r["seconds"] for r in records) / 60  # robust to a starved run
        row = [label, spread(absrel), spread(delta), str(len(records)), f"{minutes:.1f}"]
        if flips:
            ordered = sorted(records, key=lambda r: r["seed"])
            row.append(" / ".join(f"{r['inverted']:.0f}" if "inverted" in r else "–"
                                  for r in ordered))
        lines.append("| " + " | ".join(row) + " |")
    for label, metrics in references.items():
        row = [f"*{label}*", f"{metrics['absrel']:.4f}", f"{metrics['delta1']:.4f}", "–", "–"]
        if flips:
            row.append(f"{metrics['inverted']:.0f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def study_plot(study: str, variants: dict[str, list[dict]], references: dict[str, dict],
               path: Path) -> None:
    """Bar chart of AbsRel per variant: mean over seeds, error bar = sd, dots = seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(variants)
    means = [statistics.fmean(r["absrel"] for r in variants[v]) for v in labels]
    sds = [statistics.stdev([r["absrel"] for r in variants[v]]) if len(variants[v]) > 1 else 0
           for v in labels]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(labels), 3.4), dpi=110)
    ax.bar(range(len(labels)), means, yerr=sds, capsize=4, color="#5b8bd0")
    for i, v in enumerate(labels):
        values = [r["absrel"] for r in variants[v]]
        ax.plot([i] * len(values), values, "k.", ms=4)
    styles = iter(("--", ":"))
    for label, metrics in references.items():
        ax.axhline(metrics["absrel"], color="grey", ls=next(styles), lw=1, label=label)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("held-out AbsRel (lower is better)")
    ax.set_title(f"{study}: zero-shot on held-out families", fontsize=9)
    low = min(min(means), *(m["absrel"] for m in references.values()))
    ax.set_ylim(bottom=max(0.0, low - 0.08))
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def markers(study: str) -> tuple[str, str]:
    """The comments around one study's generated tables in the report document."""
    return f"<!-- ablation-results:{study}:start -->", f"<!-- ablation-results:{study}:end -->"


def replace_section(text: str, study: str, section: str, doc: Path) -> str:
    """`text` with the part between the study's markers replaced by `section`."""
    start, end = markers(study)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"{doc}: needs the markers {start} and {end}, once each, in this order")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{section}{end}{rest.split(end, 1)[1]}"


def report(args: argparse.Namespace) -> None:
    """Rewrite the section of every study with finished runs; the other sections are kept."""
    results = collect(args.out)
    if not results:
        sys.exit(f"{args.out}: no finished ablation runs (result.json) found")
    if args.doc.is_file():
        text = args.doc.read_text()
    else:
        text = "# Ablations\n" + "".join("\n{}\n{}\n".format(*markers(s)) for s in STUDIES)
    references = reference_rows(args.data / "heldout")
    images = args.doc.parent / "images" / "ablations"
    for study, variants in results.items():
        plot = images / f"{study}.png"
        study_plot(study, variants, references, plot)
        steps = {r["steps"] for records in variants.values() for r in records}
        section = (f"### {study}\n\n{study_table(variants, references)}\n\n"
                   f"Steps per run: {', '.join(map(str, sorted(steps)))}.\n\n"
                   f"![{study}]({plot.relative_to(args.doc.parent).as_posix()})\n")
        print(section)
        text = replace_section(text, study, section, args.doc)
    args.doc.write_text(text)
    print(f"wrote {', '.join(results)} into {args.doc} and plots to {images}/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train and evaluate the runs of one or all studies")
    run_parser.add_argument("--study", choices=(*STUDIES, "all"), default="all")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument("--steps", type=int, default=400)
    rescore_parser = sub.add_parser(
        "rescore", help="evaluate the finished runs' models again (after the evaluation changed)")
    rescore_parser.add_argument("--study", choices=(*STUDIES, "all"), default="all")
    report_parser = sub.add_parser("report", help="tables and plots of the finished runs")
    report_parser.add_argument("--doc", type=Path, default=Path("docs/ablations.md"))
    for p in (run_parser, rescore_parser, report_parser):
        p.add_argument("--data", type=Path, default=Path("data/ablate"))
        p.add_argument("--out", type=Path, default=Path("runs/ablations"))
    args = parser.parse_args()
    if args.command == "report":
        report(args)
        return
    if args.command == "rescore":
        rescore(args)
        return
    for study in STUDIES if args.study == "all" else (args.study,):
        run_study(study, args)


if __name__ == "__main__":
    main()
