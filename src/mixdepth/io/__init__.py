"""File formats of depth datasets: readers (and writers where the format is writable).

Every reader takes a path or a binary file object (members of tar archives are read that
way) and raises `mixdepth.errors.FileFormatError` naming the file and the problem.
"""

from mixdepth.io.annotations import (
    associate_timestamps,
    read_diw_csv,
    read_tum_list,
    write_diw_csv,
    write_tum_list,
)
from mixdepth.io.arrays import (
    read_exr,
    read_h5,
    read_mask_npy,
    read_npy,
    read_raw_float32,
    write_exr,
    write_h5,
)
from mixdepth.io.depth import (
    ETH3D_DEPTH_SHAPE,
    read_blendedmvs_depth,
    read_depth,
    read_diode_depth,
    read_disparity_png,
    read_eth3d_depth,
    read_kitti_depth,
    read_megadepth_depth,
    read_tartanair_depth,
    read_tum_depth,
)
from mixdepth.io.dpt import read_sintel_cam, read_sintel_dpt, write_sintel_cam, write_sintel_dpt
from mixdepth.io.nyu import NyuLabeledMat, read_nyu_labeled
from mixdepth.io.pfm import read_pfm, write_pfm
from mixdepth.io.png import (
    KITTI_DEPTH_SCALE,
    TUM_DEPTH_SCALE,
    pil_to_rgb,
    read_image,
    read_png16,
    read_uint_png,
    write_image,
    write_png16,
    write_uint8_png,
    write_uint16_png,
)

__all__ = [
    "ETH3D_DEPTH_SHAPE",
    "KITTI_DEPTH_SCALE",
    "TUM_DEPTH_SCALE",
    "NyuLabeledMat",
    "associate_timestamps",
    "read_blendedmvs_depth",
    "read_depth",
    "read_diode_depth",
    "read_disparity_png",
    "read_diw_csv",
    "read_eth3d_depth",
    "read_exr",
    "read_h5",
    "pil_to_rgb",
    "read_image",
    "read_kitti_depth",
    "read_mask_npy",
    "read_megadepth_depth",
    "read_npy",
    "read_nyu_labeled",
    "read_pfm",
    "read_png16",
    "read_raw_float32",
    "read_sintel_cam",
    "read_sintel_dpt",
    "read_tartanair_depth",
    "read_tum_depth",
    "read_tum_list",
    "read_uint_png",
    "write_diw_csv",
    "write_exr",
    "write_h5",
    "write_image",
    "write_pfm",
    "write_png16",
    "write_sintel_cam",
    "write_sintel_dpt",
    "write_tum_list",
    "write_uint8_png",
    "write_uint16_png",
]
