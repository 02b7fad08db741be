"""Datasets, the common sample schema, transforms and mixing samplers."""

from mixdepth.data.sample import Sample, Space, depth_to_disparity, to_disparity_target

__all__ = ["Sample", "Space", "depth_to_disparity", "to_disparity_target"]
