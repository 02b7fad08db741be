"""mixdepth: robust monocular relative depth trained on mixed datasets."""

from typing import TYPE_CHECKING

from mixdepth.errors import MixdepthError

if TYPE_CHECKING:
    from mixdepth.inference import Predictor

__version__ = "0.1.0"

__all__ = ["MixdepthError", "Predictor", "__version__"]


def __getattr__(name: str):
    """Import heavy public names (torch-based) on first use, so `import mixdepth` stays light."""
    if name == "Predictor":
        from mixdepth.inference import Predictor

        return Predictor
    raise AttributeError(f"module 'mixdepth' has no attribute {name!r}")
