"""The model zoo: `create(name)` builds a registered depth network offline (random weights);
`load_model(path)` builds one from a weights file and loads it strictly.

Every model takes (B, 3, H, W) normalised RGB (H, W multiples of 32; see `normalize` and
`model.config`) and returns (B, H, W) non-negative relative inverse depth. Encoder parameters
live under `model.pretrained.*`, decoder parameters under `model.scratch.*`, as in the
official MiDaS checkpoints.
"""

from mixdepth.models.checkpoints import (
    guess_architecture,
    load_model,
    load_weights,
    read_state_dict,
    save_weights,
)
from mixdepth.models.registry import (
    ModelConfig,
    create,
    default_config,
    list_models,
    model_options,
    normalize,
    register,
)

__all__ = [
    "ModelConfig",
    "create",
    "default_config",
    "guess_architecture",
    "list_models",
    "load_model",
    "load_weights",
    "model_options",
    "normalize",
    "read_state_dict",
    "register",
    "save_weights",
]
