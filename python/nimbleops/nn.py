"""Drop-in ``torch.nn`` modules over the nimbleops ops (torch must be installed).

Constructor arguments match torchvision's modules; the modules have no parameters.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from . import vision

__all__ = ["PSRoIAlign", "PSRoIPool"]


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

