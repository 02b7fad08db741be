"""Datasets, the common sample schema, transforms and mixing samplers."""

from mixdepth.data.base import (
    EIGEN_CROP_KITTI,
    EIGEN_CROP_NYU,
    GARG_CROP_KITTI,
    DepthDataset,
    Entry,
    apply_eval_crop,
    crop_box,
)
from mixdepth.data.collate import collate_samples
from mixdepth.data.registry import create_dataset, dataset_class, list_datasets, register_dataset
from mixdepth.data.sample import Sample, Space, depth_to_disparity, to_disparity_target
from mixdepth.data.sources import DirectorySource, Source, TarSource, open_source
from mixdepth.data.transforms import EvalTransform, TrainTransform

__all__ = [
    "EIGEN_CROP_KITTI",
    "EIGEN_CROP_NYU",
    "GARG_CROP_KITTI",
    "DepthDataset",
    "DirectorySource",
    "Entry",
    "EvalTransform",
    "Sample",
    "Source",
    "Space",
    "TarSource",
    "TrainTransform",
    "apply_eval_crop",
    "collate_samples",
    "create_dataset",
    "crop_box",
    "dataset_class",
    "depth_to_disparity",
    "list_datasets",
    "open_source",
    "register_dataset",
    "to_disparity_target",
]
