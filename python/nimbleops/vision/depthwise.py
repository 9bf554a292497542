"""Depthwise 2-d convolution (the spatial convolution of MobileNet / ShuffleNet blocks).

numpy arrays or torch tensors (CPU, or CUDA when built with CUDA), float32 or float64.
NCHW-contiguous and channels_last inputs are computed natively and the output keeps the input's
memory format (other strides are copied to NCHW first). Fast paths: 3x3 and 5x5 kernels at
stride 1 and 2 (dilation 1 along the width); every other size takes the generic loops. With torch
tensors the op is a custom op with autograd (grad_input, grad_weight, grad_bias), usable under
``torch.compile``. The CPU backward is deterministic and independent of the thread count.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array, Size
from ._depthwise_kernel import run_forward
from ._layout import channels_last


def depthwise_conv2d(x: Array, weight: Array, bias: Optional[Array] = None, stride: Size = 1, padding: Size = 0,
                     dilation: Size = 1) -> Any:
    """Depthwise convolution:
    ``out[n, c*m + j, oh, ow] = bias[c*m + j] + sum_{kh, kw} weight[c*m + j, 0, kh, kw] *
    x[n, c, oh*sh - pad_h + kh*dh, ow*sw - pad_w + kw*dw]`` (zero outside the input), i.e.
    ``torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups=C)``.

    Args:
        x: ``[N, C, H, W]``.
        weight: ``[C*m, 1, KH, KW]`` (PyTorch's layout; depth multiplier m >= 1), x's dtype.
        bias: ``[C*m]`` or None.
        stride: ``(sh, sw)`` or an int, >= 1.
        padding: ``(pad_h, pad_w)`` or an int, >= 0.
        dilation: ``(dh, dw)`` or an int, >= 1.

    Returns:
        ``[N, C*m, OH, OW]`` in x's memory format, ``OH = (H + 2*pad_h - dh*(KH-1) - 1) // sh + 1``
        (likewise OW).

    Differences from torch: torch skips the taps in the zero padding; float32 kernels here may
    multiply them, so with an inf or nan weight an output whose window reaches the padding can be
    nan where torch gives +-inf or a number (float64 matches torch; finite weights give the same
    result either way).
    """
    out = ar.plain_call(_C.vision.depthwise_plain, x, weight, bias, stride, padding, dilation)
    if out is not None:
        return out
    return _depthwise_conv2d(x, weight, bias, stride, padding, dilation)


@ar.resolving
def _depthwise_conv2d(x, weight, bias, stride, padding, dilation):
    """depthwise_conv2d's general path: conversions, every check and its error."""
    kind, x, weight, bias = _inputs(x, weight, bias)
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    eh, ew = dilation[0] * (weight.shape[2] - 1) + 1, dilation[1] * (weight.shape[3] - 1) + 1
    H, W = x.shape[2], x.shape[3]
    if H + 2 * padding[0] < eh or W + 2 * padding[1] < ew:
        raise ValueError(f"weight: the (dilated) kernel {eh} x {ew} is larger than the padded input "
                         f"{H + 2 * padding[0]} x {W + 2 * padding[1]}")
    if kind.torch and ar.needs_torch_op(x, weight, bias):
        from .. import torch_ops  # here, not at the top: torch is optional

        return torch_ops.depthwise_conv2d(x, weight, bias, stride, padding, dilation)
    return run_forward(x, weight, bias, stride, padding, dilation)


def _pair(v, name: str, lo: int) -> Tuple[int, int]:
    pair = ar.int_pair(v, name)
    if pair[0] < lo or pair[1] < lo:
        raise ValueError(f"{name}: expected values >= {lo}, got {pair}")
    return pair


def _inputs(x, weight, bias):
    """(kind, x in its memory format, weight, bias) after the checks."""
    kind = ar.image_batch(x, "x", "depthwise_forward_cuda")
    C = x.shape[1]
    weight = ar.like(weight, "weight", x, kind)
    if weight.ndim != 4 or weight.shape[1] != 1 or weight.shape[0] < 1 or weight.shape[0] % max(C, 1) != 0 or C < 1:
        raise ValueError(f"weight: expected [C*m, 1, KH, KW] with C = {C} (PyTorch's depthwise layout), got shape "
                         f"{list(weight.shape)}")
    if weight.shape[2] < 1 or weight.shape[3] < 1:
        raise ValueError(f"weight: expected a non-empty kernel, got shape {list(weight.shape)}")
    if bias is not None:
        bias = ar.like(bias, "bias", x, kind)
        if bias.ndim != 1 or bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias: expected [C*m] = [{weight.shape[0]}], got shape {list(bias.shape)}")
    ar.check_copy(x, "x")
    if kind.torch:
        if not x.is_contiguous():
            x = x.contiguous(memory_format=ar._torch().channels_last if channels_last(x) else
                             ar._torch().contiguous_format)
    elif not channels_last(x):
        x = np.ascontiguousarray(x)
    return kind, x, weight, bias
