"""Built-in datasets, one module per real dataset; importing registers them."""

from mixdepth.data.datasets import (  # noqa: F401
    diw,
    folder,
    kitti,
    megadepth,
    nyu,
    sintel,
    stereo,
    tum,
)
