"""The layers a model is built from, per backend: ``"torch"`` (``torch.nn`` modules and
``torchvision.ops``) or ``"nimbleops"`` (``nimbleops.nn`` modules). Both give the same parameters
under the same names, so a state_dict moves between backends unchanged."""
from __future__ import annotations

import torch
from torch import nn

from .. import nn as nno
from .. import vision

BACKENDS = ("torch", "nimbleops")


def check_backend(backend) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def depthwise(backend: str, channels: int, kernel_size: int, stride: int = 1, bias: bool = False) -> nn.Module:
    """A depthwise ``kernel_size`` convolution with padding ``kernel_size // 2``."""
    if backend == "torch":
        return nn.Conv2d(channels, channels, kernel_size, stride, kernel_size // 2, groups=channels, bias=bias)
    return nno.DepthwiseConv2d(channels, channels, kernel_size, stride, kernel_size // 2, bias=bias)


def pointwise(backend: str, in_channels: int, out_channels: int, bias: bool = False, relu: bool = False) -> nn.Module:
    """A 1x1 convolution; with ``relu``, fused with the ReLU after it on nimbleops (whose own ReLU
    is then :func:`relu_after`)."""
    if backend == "torch":
        return nn.Conv2d(in_channels, out_channels, 1, bias=bias)
    return nno.PointwiseConv2d(in_channels, out_channels, bias=bias, activation="relu" if relu else None)


def batch_norm(backend: str, channels: int, relu: bool) -> nn.Module:
    """A batch norm, fused with the ReLU after it on nimbleops (whose own ReLU is then
    :func:`relu_after`); torch's batch norm on torch."""
    if backend == "torch":
        return nn.BatchNorm2d(channels)
    return nno.BatchNorm2d(channels, relu=relu)


def relu_after(backend: str) -> nn.Module:
    """The ReLU after a batch norm or a 1x1 built with ``relu``: itself on torch, an identity where
    that layer applied it."""
    return nn.ReLU(inplace=True) if backend == "torch" else nn.Identity()


def ps_roi_align(backend: str, output_size: int, spatial_scale: float, sampling_ratio: int) -> nn.Module:
    if backend == "torch":
        from torchvision.ops import PSRoIAlign  # here: torchvision is needed by the torch backend only

        return PSRoIAlign(output_size, spatial_scale, sampling_ratio)
    return nno.PSRoIAlign(output_size, spatial_scale, sampling_ratio)


def channel_shuffle_2(x: torch.Tensor) -> torch.Tensor:
    """ShuffleNetV2's shuffle of two groups, written as torchvision's ShuffleNetV2 writes it."""
    n, c, h, w = x.shape
    return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def concat_shuffle_split(backend: str, a: torch.Tensor, b: torch.Tensor):
    """``channel_shuffle(cat([a, b]), 2).chunk(2)``: one pass with nimbleops, three with torch."""
    if backend == "torch":
        return channel_shuffle_2(torch.cat((a, b), 1)).chunk(2, 1)
    return vision.concat_shuffle_split(a, b)

