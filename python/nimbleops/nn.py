"""Drop-in ``torch.nn`` modules over the nimbleops ops (torch must be installed).

Parameters and ``state_dict`` keys match PyTorch's own layers (``DepthwiseConv2d`` loads the
state of an ``nn.Conv2d(C, C*m, k, groups=C)`` unchanged); constructor arguments match PyTorch's
and torchvision's modules.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from . import vision

__all__ = ["DepthwiseConv2d", "PointwiseConv2d", "ChannelShuffle", "PSRoIAlign", "PSRoIPool"]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class DepthwiseConv2d(nn.Module):
    """``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
    groups=in_channels, bias)`` computed by :func:`nimbleops.vision.depthwise_conv2d`;
    ``out_channels`` a multiple of ``in_channels``. Same parameters, initialisation and state_dict."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if in_channels < 1 or out_channels % in_channels != 0:
            raise ValueError(f"out_channels: expected a multiple of in_channels = {in_channels}, got {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(torch.empty((out_channels, 1) + self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return vision.depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}")


class PointwiseConv2d(nn.Module):
    """``nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=bias)`` computed by
    :func:`nimbleops.vision.pointwise_conv2d`, with the optional fused ``activation="relu"`` and
    ``shuffle_groups``. Same parameters (weight ``[Cout, Cin/groups, 1, 1]``), initialisation and
    state_dict."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True, *,
                 activation: Optional[str] = None, shuffle_groups: Optional[int] = None, device=None, dtype=None):
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: expected a divisor of in_channels = {in_channels} and out_channels = "
                             f"{out_channels}, got {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.activation, self.shuffle_groups = activation, shuffle_groups
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(torch.empty((out_channels, in_channels // groups, 1, 1), **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_channels // self.groups)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return vision.pointwise_conv2d(x, self.weight, self.bias, self.groups, activation=self.activation,
                                       shuffle_groups=self.shuffle_groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, groups={self.groups}, bias={self.bias is not None}, "
                f"activation={self.activation}, shuffle_groups={self.shuffle_groups}")


class ChannelShuffle(nn.Module):
    """``nn.ChannelShuffle(groups)`` computed by :func:`nimbleops.vision.channel_shuffle`."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return vision.channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class PSRoIAlign(nn.Module):
    """``torchvision.ops.PSRoIAlign(output_size, spatial_scale, sampling_ratio)``; see
    :func:`nimbleops.vision.ps_roi_align` (``aligned``, ``mode`` and ``deterministic`` are extras)."""

    def __init__(self, output_size, spatial_scale: float, sampling_ratio: int, *, aligned: bool = True,
                 mode: str = "avg", deterministic: Optional[bool] = None):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.mode = mode
        self.deterministic = deterministic

    def forward(self, input: Tensor, rois) -> Tensor:
        return vision.ps_roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio,
                                   aligned=self.aligned, mode=self.mode, deterministic=self.deterministic)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, mode={self.mode!r}")


class PSRoIPool(nn.Module):
    """``torchvision.ops.PSRoIPool(output_size, spatial_scale)``; see :func:`nimbleops.vision.ps_roi_pool`."""

    def __init__(self, output_size, spatial_scale: float, *, deterministic: Optional[bool] = None):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.deterministic = deterministic

    def forward(self, input: Tensor, rois) -> Tensor:
        return vision.ps_roi_pool(input, rois, self.output_size, self.spatial_scale, deterministic=self.deterministic)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"

