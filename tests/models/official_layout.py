"""Representative keys and shapes of the official MiDaS v2.1 checkpoints, written out by hand
from the official module definitions (not from mixdepth's modules).

midas_v21_small (`MidasNet_small`): gen-efficientnet `tf_efficientnet_lite3` (stem 32, stage
channels 24/32/48/96/136/232/384, blocks 1/3/3/5/5/6/1, expansion 6, kernels 3/3/5/3/5/5/3)
split as layer1 = [conv_stem, bn1, act1, blocks[0], blocks[1]], layer2 = blocks[2],
layer3 = blocks[3:5], layer4 = blocks[5:7]; `_make_scratch([32, 48, 136, 384], 64,
expand=True)`; `FeatureFusionBlock_custom` with out_conv (expand halves); head 64->32->32->1.

midas_v21 (`MidasNet`): torchvision ResNeXt-101 32x8d (blocks 3/4/23/3, width 256..2048,
32 groups) split as layer1 = [conv1, bn1, relu, maxpool, layer1]; `_make_scratch([256, 512,
1024, 2048], 256)`; `FeatureFusionBlock` (no out_conv); head 256->128->32->1.
"""

SMALL = {
    "pretrained.layer1.0.weight": (32, 3, 3, 3),
    "pretrained.layer1.1.weight": (32,),
    "pretrained.layer1.1.running_var": (32,),
    "pretrained.layer1.3.0.conv_dw.weight": (32, 1, 3, 3),
    "pretrained.layer1.3.0.bn1.bias": (32,),
    "pretrained.layer1.3.0.conv_pw.weight": (24, 32, 1, 1),
    "pretrained.layer1.3.0.bn2.running_mean": (24,),
    "pretrained.layer1.4.0.conv_pw.weight": (144, 24, 1, 1),
    "pretrained.layer1.4.0.conv_dw.weight": (144, 1, 3, 3),
    "pretrained.layer1.4.0.conv_pwl.weight": (32, 144, 1, 1),
    "pretrained.layer1.4.2.conv_pw.weight": (192, 32, 1, 1),
    "pretrained.layer1.4.2.conv_pwl.weight": (32, 192, 1, 1),
    "pretrained.layer1.4.2.bn3.weight": (32,),
    "pretrained.layer2.0.0.conv_pw.weight": (192, 32, 1, 1),
    "pretrained.layer2.0.0.conv_dw.weight": (192, 1, 5, 5),
    "pretrained.layer2.0.2.conv_dw.weight": (288, 1, 5, 5),
    "pretrained.layer2.0.2.bn3.running_var": (48,),
    "pretrained.layer3.0.0.conv_dw.weight": (288, 1, 3, 3),
    "pretrained.layer3.0.0.conv_pwl.weight": (96, 288, 1, 1),
    "pretrained.layer3.0.4.conv_pwl.weight": (96, 576, 1, 1),
    "pretrained.layer3.1.0.conv_dw.weight": (576, 1, 5, 5),
    "pretrained.layer3.1.0.conv_pwl.weight": (136, 576, 1, 1),
    "pretrained.layer3.1.4.conv_pwl.weight": (136, 816, 1, 1),
    "pretrained.layer4.0.0.conv_pw.weight": (816, 136, 1, 1),
    "pretrained.layer4.0.0.conv_dw.weight": (816, 1, 5, 5),
    "pretrained.layer4.0.5.conv_dw.weight": (1392, 1, 5, 5),
    "pretrained.layer4.0.5.bn3.bias": (232,),
    "pretrained.layer4.1.0.conv_pw.weight": (1392, 232, 1, 1),
    "pretrained.layer4.1.0.conv_dw.weight": (1392, 1, 3, 3),
    "pretrained.layer4.1.0.conv_pwl.weight": (384, 1392, 1, 1),
    "pretrained.layer4.1.0.bn3.running_var": (384,),
    "scratch.layer1_rn.weight": (64, 32, 3, 3),
    "scratch.layer2_rn.weight": (128, 48, 3, 3),
    "scratch.layer3_rn.weight": (256, 136, 3, 3),
    "scratch.layer4_rn.weight": (512, 384, 3, 3),
    "scratch.refinenet4.resConfUnit1.conv1.weight": (512, 512, 3, 3),
    "scratch.refinenet4.resConfUnit2.conv2.bias": (512,),
    "scratch.refinenet4.out_conv.weight": (256, 512, 1, 1),
    "scratch.refinenet3.resConfUnit1.conv2.weight": (256, 256, 3, 3),
    "scratch.refinenet3.out_conv.weight": (128, 256, 1, 1),
    "scratch.refinenet2.resConfUnit1.conv1.weight": (128, 128, 3, 3),
    "scratch.refinenet2.out_conv.weight": (64, 128, 1, 1),
    "scratch.refinenet1.resConfUnit2.conv1.bias": (64,),
    "scratch.refinenet1.out_conv.weight": (64, 64, 1, 1),
    "scratch.refinenet1.out_conv.bias": (64,),
    "scratch.output_conv.0.weight": (32, 64, 3, 3),
    "scratch.output_conv.2.weight": (32, 32, 3, 3),
    "scratch.output_conv.4.weight": (1, 32, 1, 1),
    "scratch.output_conv.4.bias": (1,),
}

LARGE = {
    "pretrained.layer1.0.weight": (64, 3, 7, 7),
    "pretrained.layer1.1.running_mean": (64,),
    "pretrained.layer1.4.0.conv1.weight": (256, 64, 1, 1),
    "pretrained.layer1.4.0.conv2.weight": (256, 8, 3, 3),
    "pretrained.layer1.4.0.conv3.weight": (256, 256, 1, 1),
    "pretrained.layer1.4.0.downsample.0.weight": (256, 64, 1, 1),
    "pretrained.layer1.4.0.downsample.1.weight": (256,),
    "pretrained.layer1.4.2.bn3.running_var": (256,),
    "pretrained.layer2.0.conv1.weight": (512, 256, 1, 1),
    "pretrained.layer2.0.conv2.weight": (512, 16, 3, 3),
    "pretrained.layer2.0.downsample.0.weight": (512, 256, 1, 1),
    "pretrained.layer2.3.conv3.weight": (512, 512, 1, 1),
    "pretrained.layer3.0.conv1.weight": (1024, 512, 1, 1),
    "pretrained.layer3.22.conv2.weight": (1024, 32, 3, 3),
    "pretrained.layer3.22.bn3.weight": (1024,),
    "pretrained.layer4.0.conv1.weight": (2048, 1024, 1, 1),
    "pretrained.layer4.0.conv2.weight": (2048, 64, 3, 3),
    "pretrained.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "pretrained.layer4.2.conv3.weight": (2048, 2048, 1, 1),
    "scratch.layer1_rn.weight": (256, 256, 3, 3),
    "scratch.layer2_rn.weight": (256, 512, 3, 3),
    "scratch.layer3_rn.weight": (256, 1024, 3, 3),
    "scratch.layer4_rn.weight": (256, 2048, 3, 3),
    "scratch.refinenet4.resConfUnit1.conv1.weight": (256, 256, 3, 3),
    "scratch.refinenet2.resConfUnit1.conv2.bias": (256,),
    "scratch.refinenet1.resConfUnit2.conv2.weight": (256, 256, 3, 3),
    "scratch.output_conv.0.weight": (128, 256, 3, 3),
    "scratch.output_conv.2.weight": (32, 128, 3, 3),
    "scratch.output_conv.4.weight": (1, 32, 1, 1),
    "scratch.output_conv.4.bias": (1,),
}

# Keys the official files do not have (a model that has them would fail to strict-load).
LARGE_ABSENT = ("scratch.refinenet1.out_conv.weight", "pretrained.fc.weight")
SMALL_ABSENT = ("pretrained.conv_head.weight", "pretrained.classifier.weight")

# Total number of entries (parameters and buffers incl. num_batches_tracked) per official file.
SMALL_N_KEYS = 482
