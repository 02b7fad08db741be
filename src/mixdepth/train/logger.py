"""Training logs: tensorboard scalars, a JSON-lines history and a progress bar with ETA.

Scalars: `loss/<dataset>` and `loss/<dataset>/<term>` (data, grad, ordinal), `mgda/<dataset>`
(Pareto weights, every step), `lr/encoder`, `lr/decoder`, `images_per_s`, `grad_norm`.
Only rank 0 logs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class TrainLogger:
    """Writes OUT/tensorboard/ events, OUT/log.jsonl (one line per log window) and shows a
    tqdm progress bar. `step` is called every step, `record` every `log_every` steps."""

    def __init__(self, trainer: Any, enabled: bool = True) -> None:
        self.enabled = enabled
        self.writer = None
        self.bar = None
        self.jsonl = None
        if not enabled:
            return
        out_dir = Path(trainer.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:  # tensorboard is a dependency, but logging must not stop training
            self.writer = None
        self.jsonl = open(out_dir / "log.jsonl", "a")
        if trainer.config.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=trainer.config.steps,
                initial=trainer.step,
                desc=f"train {trainer.config.mixing}",
                unit="step",
                dynamic_ncols=True,
            )

    def step(self, step: int, logs: dict[str, float], weights: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.writer is not None:
            for label, value in weights.items():
                self.writer.add_scalar(f"mgda/{label}", value, step)
        if self.bar is not None:
            self.bar.update(1)

    def record(self, entry: dict[str, float]) -> None:
        if not self.enabled:
            return
        step = int(entry["step"])
        if self.writer is not None:
            for key, value in entry.items():
                if key != "step" and not key.startswith("mgda/"):
                    self.writer.add_scalar(key, value, step)
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(entry) + "\n")
            self.jsonl.flush()
        if self.bar is not None:
            losses = {
                k.split("/", 1)[1]: f"{v:.3g}"
                for k, v in entry.items()
                if k.startswith("loss/") and k.count("/") == 1
            }
            self.bar.set_postfix(losses, refresh=False)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.jsonl is not None:
            self.jsonl.close()
            self.jsonl = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None
