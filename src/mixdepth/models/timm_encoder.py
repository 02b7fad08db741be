"""Optional: any timm `features_only` encoder under the fusion decoder (`backbone="timm:NAME"`).

timm is not a dependency (it needs torchvision); this works where it imports. Weights are
random: nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch import nn

from mixdepth.errors import ConfigError

STRIDES = (4, 8, 16, 32)


class TimmEncoder(nn.Module):
    """timm.create_model(name, features_only=True, pretrained=False), keeping the feature maps at
    strides 4/8/16/32. forward(x (B,3,H,W)) -> list of 4 maps; `out_channels` their widths."""

    def __init__(self, name: str):
        super().__init__()
        try:
            import timm
        except Exception as err:  # timm may fail to import for many reasons (torchvision, CUDA)
            raise ConfigError(
                f"backbone 'timm:{name}' needs a working timm installation ({err})"
            ) from err
        try:
            self.model = timm.create_model(name, pretrained=False, features_only=True)
        except (RuntimeError, ValueError, KeyError) as err:
            raise ConfigError(f"timm cannot build {name!r} as a feature extractor ({err})") from err
        reductions = list(self.model.feature_info.reduction())
        channels = list(self.model.feature_info.channels())
        missing = [s for s in STRIDES if s not in reductions]
        if missing:
            raise ConfigError(
                f"timm model {name!r} has feature strides {reductions}; the decoder needs "
                f"4, 8, 16 and 32 (missing {missing})"
            )
        self.indices = [reductions.index(s) for s in STRIDES]
        self.out_channels = tuple(channels[i] for i in self.indices)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.model(x)
        return [features[i] for i in self.indices]
