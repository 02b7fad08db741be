"""Built-in datasets, one module per real dataset; importing registers them."""

from mixdepth.data.datasets import (  # noqa: F401
    blendedmvs,
    diode,
    diw,
    eth3d,
    folder,
    kitti,
    megadepth,
    nyu,
    sintel,
    stereo,
    tartanair,
    tum,
)
