"""Lightweight-vision ops: depthwise and pointwise convolutions, channel shuffle, fused concat + shuffle +
split, ShuffleNetV2 stages and a stem's convolution + ReLU + max pool in one call (inference),
training-mode batch norm with a fused ReLU (and max pool), position-sensitive RoI align and pool,
non-maximum suppression."""
from .batch_norm import batch_norm_relu, batch_norm_relu_max_pool
from .conv_pool import conv2d_relu_max_pool
from .depthwise import depthwise_conv2d
from .nms import batched_nms, nms
from .pointwise import pointwise_conv2d
from .ps_roi import ps_roi_align, ps_roi_pool
from .shuffle import channel_shuffle, concat_shuffle_split
from .shufflenet import ShuffleStage, ShuffleUnitWeights, shufflenet_stage

__all__ = ["batch_norm_relu", "batch_norm_relu_max_pool", "depthwise_conv2d", "pointwise_conv2d", "channel_shuffle",
           "concat_shuffle_split", "shufflenet_stage", "ShuffleStage", "ShuffleUnitWeights", "conv2d_relu_max_pool",
           "ps_roi_align", "ps_roi_pool", "nms", "batched_nms"]
