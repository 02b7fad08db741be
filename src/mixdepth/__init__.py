"""mixdepth: robust monocular relative depth trained on mixed datasets."""

from mixdepth.errors import MixdepthError

__version__ = "0.1.0"

__all__ = ["MixdepthError", "__version__"]
