"""SNet, ThunderNet's backbone (Qin et al., ICCV 2019): ShuffleNetV2 with 5x5 depthwise
convolutions.

conv1 (3x3, stride 2) and a 3x3 max pool (stride 2), then stages 2-4 of ShuffleNetV2 units
(4, 8 and 4 units; the first unit of each stage downsamples by 2), and for SNet49 a 1x1 conv5 to
512 channels. ``forward(x)`` returns ``(c4, c5)``: the output of stage 3 (stride 16) and of stage 4
(or conv5; stride 32).

========  =====  ================  =====
variant   conv1  stages 2 / 3 / 4  conv5
========  =====  ================  =====
snet49    24     60 / 120 / 240    512
snet146   24     132 / 264 / 528   -
snet535   48     248 / 496 / 992   -
========  =====  ================  =====

On nimbleops, each batch norm in training mode is fused with the ReLU after it
(:class:`nimbleops.nn.BatchNorm2d`, the ReLU's place an identity; the state_dict is the same).

A unit splits its input's channels in two halves (stride 1: the first passes through, the second
goes through 1x1-BN-ReLU, 5x5 depthwise-BN, 1x1-BN-ReLU; stride 2: the whole input goes through two
branches), concatenates the two and shuffles the channels in two groups. The parameter names are
torchvision's ShuffleNetV2's (``stage2.0.branch2.0.weight`` ...).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .. import nn as nno
from . import _layers as L

VARIANTS = {
    "snet49": dict(conv1=24, stages=(60, 120, 240), conv5=512),
    "snet146": dict(conv1=24, stages=(132, 264, 528), conv5=None),
    "snet535": dict(conv1=48, stages=(248, 496, 992), conv5=None),
}
REPEATS = (4, 8, 4)
KERNEL = 5


class ShuffleUnit(nn.Module):
    """One ShuffleNetV2 unit with 5x5 depthwise convolutions; ``stride`` 1 or 2."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, backend: str = "nimbleops"):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride: expected 1 or 2, got {stride}")
        if out_channels % 2:
            raise ValueError(f"out_channels: expected an even number, got {out_channels}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"in_channels: a stride-1 unit keeps its channels, got {in_channels} -> {out_channels}")
        self.backend, self.stride = L.check_backend(backend), stride
        half = out_channels // 2
        bn, relu = (lambda c, r: L.batch_norm(backend, c, r)), (lambda: L.relu_after(backend))
        if stride == 2:
            self.branch1 = nn.Sequential(
                L.depthwise(backend, in_channels, KERNEL, 2), bn(in_channels, False),
                L.pointwise(backend, in_channels, half), bn(half, True), relu())
        else:
            self.branch1 = None
        branch_in = in_channels if stride == 2 else half
        self.branch2 = nn.Sequential(
            L.pointwise(backend, branch_in, half), bn(half, True), relu(),
            L.depthwise(backend, half, KERNEL, stride), bn(half, False),
            L.pointwise(backend, half, half), bn(half, True), relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            if self.backend == "torch":
                return L.channel_shuffle_2(torch.cat((self.branch1(x), self.branch2(x)), 1))
            return torch.cat(L.concat_shuffle_split(self.backend, self.branch1(x), self.branch2(x)), 1)
        x1, x2 = x.chunk(2, 1)
        if self.backend == "torch":
            return L.channel_shuffle_2(torch.cat((x1, self.branch2(x2)), 1))
        return torch.cat(L.concat_shuffle_split(self.backend, x1, self.branch2(x2)), 1)


def stem(conv1: nn.Module, maxpool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv1 (convolution, batch norm, ReLU) and the max pool, the result in NCHW: the convolution in
    channels_last, then in training the other three as one op (:func:`nimbleops.nn.stem_forward`).
    A conv1 with its batch norm folded in (convolution, ReLU) runs as it is, in channels_last."""
    if len(conv1) == 3:
        return nno.stem_forward(conv1[0], conv1[1], conv1[2], maxpool, x)
    return maxpool(conv1(x.contiguous(memory_format=torch.channels_last))).contiguous()


def run_stage(stage: nn.Sequential, x: torch.Tensor, backend: str) -> torch.Tensor:
    """A stage's units; with nimbleops the halves pass from unit to unit without a concatenation
    (:func:`nimbleops.nn.run_shuffle_units`)."""
    return stage(x) if backend == "torch" else nno.run_shuffle_units(stage, x)


class SNet(nn.Module):
    """ThunderNet's backbone; see the module docstring. ``forward(x [N, 3, H, W])`` returns
    ``(c4 [N, C4, H/16, W/16], c5 [N, C5, H/32, W/32])`` (sizes rounded up)."""

    def __init__(self, variant: str = "snet146", backend: str = "nimbleops"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {tuple(VARIANTS)}, got {variant!r}")
        self.variant, self.backend = variant, L.check_backend(backend)
        spec = VARIANTS[variant]
        c1 = spec["conv1"]
        self.conv1 = nn.Sequential(nn.Conv2d(3, c1, 3, 2, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = c1
        for name, out, repeats in zip(("stage2", "stage3", "stage4"), spec["stages"], REPEATS):
            units = [ShuffleUnit(channels, out, 2, backend)] + [ShuffleUnit(out, out, 1, backend)
                                                               for _ in range(repeats - 1)]
            setattr(self, name, nn.Sequential(*units))
            channels = out
        if spec["conv5"]:
            c5 = spec["conv5"]
            self.conv5 = nn.Sequential(L.pointwise(backend, channels, c5), L.batch_norm(backend, c5, True),
                                       L.relu_after(backend))
            channels = c5
        else:
            self.conv5 = None
        self.c4_channels, self.c5_channels = spec["stages"][1], channels

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.conv1(x)) if self.backend == "torch" else stem(self.conv1, self.maxpool, x)
        x = run_stage(self.stage2, x, self.backend)
        c4 = run_stage(self.stage3, x, self.backend)
        c5 = run_stage(self.stage4, c4, self.backend)
        if self.conv5 is not None:
            c5 = self.conv5(c5)
        return c4, c5
