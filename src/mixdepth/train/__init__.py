"""Training on mixed datasets: config, mixing samplers, the MGDA min-norm solver, checkpoints
and the trainer. See docs/training.md."""

from mixdepth.train.config import TrainConfig, load_config
from mixdepth.train.mgda import min_norm_weights
from mixdepth.train.trainer import Trainer, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "load_config", "min_norm_weights", "train"]
