"""Memory-format helpers of the image ops (NCHW and channels_last, numpy and torch alike):
the outputs and gradient buffers they allocate in their inputs' format."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _arrays as ar


def channels_last(x) -> bool:
    """Whether x is stored channels_last (and is not also NCHW-contiguous)."""
    if ar.is_torch(x):
        torch = ar._torch()
        return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return not x.flags.c_contiguous and np.moveaxis(x, 1, 3).flags.c_contiguous


def empty_like_format(x, shape) -> Any:
    """An uninitialised [N, C', H, W] array of x's kind, dtype, device and memory format."""
    if ar.is_torch(x):
        torch = ar._torch()
        if x.is_contiguous():
            # x's dtype and device: new_empty with the sizes as separate ints is the cheapest form
            # (a tuple, a torch.Size or torch.empty's keywords all cost more)
            return x.new_empty(*shape)
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        if fmt is torch.channels_last and x.shape == tuple(shape):
            return torch.empty_like(x)  # x's strides, cheaper than torch.empty's keywords
        return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)
    if channels_last(x):
        n, c, h, w = shape
        return np.moveaxis(np.empty((n, h, w, c), x.dtype), 3, 1)
    return np.empty(shape, x.dtype)


def nchw(x) -> Any:
    """x NCHW-contiguous (a copy only when it is not)."""
    return x.contiguous() if ar.is_torch(x) else np.ascontiguousarray(x)


def in_format_of(y, like) -> Any:
    """y (NCHW) in like's memory format: channels_last where like is, else y itself."""
    if not channels_last(like):
        return y
    if ar.is_torch(y):
        return y.contiguous(memory_format=ar._torch().channels_last)
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(y, 1, 3)), 3, 1)


def conv_grad_buffers(x, weight, bias_defined: bool, mask):
    """Uninitialised (grad_x NCHW, grad_weight, grad_bias) of x's kind and dtype, None where mask
    (or a missing bias) says the gradient is not wanted."""
    if ar.is_torch(x):  # empty_like and new_empty of one int: cheaper than new_empty(x.shape)
        torch = ar._torch()
        gx = torch.empty_like(x, memory_format=torch.contiguous_format) if mask[0] else None  # NCHW
        gw = torch.empty_like(weight, memory_format=torch.contiguous_format) if mask[1] else None
        gb = weight.new_empty(weight.shape[0]) if (mask[2] and bias_defined) else None
        return gx, gw, gb
    gx = np.empty(x.shape, x.dtype) if mask[0] else None
    gw = np.empty(weight.shape, x.dtype) if mask[1] else None
    gb = np.empty((weight.shape[0],), x.dtype) if (mask[2] and bias_defined) else None
    return gx, gw, gb
