"""Depthwise 2-d convolution (the spatial convolution of MobileNet / ShuffleNet blocks).

``depthwise_conv2d(x, weight, bias, stride, padding, dilation)`` equals
``torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups=C)``:
``x [N, C, H, W]``, ``weight [C*m, 1, KH, KW]`` (PyTorch's layout; depth multiplier m >= 1),
``bias [C*m]`` or None; output ``[N, C*m, OH, OW]`` with ``OH = (H + 2*ph - dh*(KH-1) - 1) // sh + 1``
(likewise OW), channel ``c*m + j`` convolving input channel c with filter ``c*m + j``.

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
from .shuffle import channels_last, conv_grad_buffers, empty_like_format, in_format_of, nchw


def depthwise_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1) -> Any:
    """Depthwise convolution; see the module docstring. ``stride``, ``padding``, ``dilation``: an
    int or an (h, w) pair; stride and dilation >= 1, padding >= 0."""
    x, weight, bias = _inputs(x, weight, bias)
    stride, padding, dilation = (_pair(v, name, lo) for v, name, lo in
                                 ((stride, "stride", 1), (padding, "padding", 0), (dilation, "dilation", 1)))
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    eh, ew = dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1
    H, W = int(x.shape[2]), int(x.shape[3])
    if H + 2 * padding[0] < eh or W + 2 * padding[1] < ew:
        raise ValueError(f"weight: the (dilated) kernel {eh} x {ew} is larger than the padded input "
                         f"{H + 2 * padding[0]} x {W + 2 * padding[1]}")
    if ar.is_torch(x):
        torch = ar._torch()
        needs_graph = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
        if needs_graph or torch.compiler.is_compiling():
            from .. import torch_ops

            return torch_ops.depthwise_conv2d(x, weight, bias, stride, padding, dilation)
    return run_forward(x, weight, bias, stride, padding, dilation)


def _pair(v, name: str, lo: int) -> Tuple[int, int]:
    pair = ar.int_pair(v, name)
    if min(pair) < lo:
        raise ValueError(f"{name}: expected values >= {lo}, got {pair}")
    return pair


def _inputs(x, weight, bias):
    kind = ar.image_batch(x, "x", "depthwise_forward_cuda")
    C = int(x.shape[1])
    weight = ar.like(weight, "weight", x, kind)
    if weight.ndim != 4 or weight.shape[1] != 1 or weight.shape[0] < 1 or weight.shape[0] % max(C, 1) != 0 or C < 1:
        raise ValueError(f"weight: expected [C*m, 1, KH, KW] with C = {C} (PyTorch's depthwise layout), got shape "
                         f"{list(weight.shape)}")
    if weight.shape[2] < 1 or weight.shape[3] < 1:
        raise ValueError(f"weight: expected a non-empty kernel, got shape {list(weight.shape)}")
    if bias is not None:
        bias = ar.like(bias, "bias", x, kind)
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"bias: expected [C*m] = [{weight.shape[0]}], got shape {list(bias.shape)}")
    if kind.torch:
        torch = ar._torch()
        fmt = torch.channels_last if channels_last(x) else torch.contiguous_format
        x = x.contiguous(memory_format=fmt)
    elif not channels_last(x):
        x = np.ascontiguousarray(x)
    return x, weight, bias


def handle(x, weight, bias, stride, padding, dilation, stream: int = 0):
    """The C++ description of one call."""
    w2 = weight.reshape(weight.shape[0], -1)
    return _C.vision.DepthwiseInputs(ar.view(x), ar.view(w2), None if bias is None else ar.view(bias),
                                     [int(weight.shape[2]), int(weight.shape[3])], list(stride), list(padding),
                                     list(dilation), int(stream))


def run_forward(x, weight, bias, stride, padding, dilation, stream: Optional[int] = None):
    kind = ar.Kind(True, x.device) if ar.is_torch(x) else ar.Kind()
    if stream is None:
        stream = ar.cuda_stream(kind) if kind.is_cuda else 0
    h = handle(x, weight, bias, stride, padding, dilation, stream)
    out = empty_like_format(x, tuple(h.output_shape))
    getattr(_C.vision, f"depthwise_forward_{kind.suffix}")(h, ar.view(out))
    return out


def run_backward(grad, x, weight, bias_defined: bool, stride, padding, dilation, mask, stream: Optional[int] = None):
    """(grad_x, grad_weight, grad_bias), each None where mask says it is not needed. NCHW math;
    grad_x comes back in x's memory format."""
    kind = ar.Kind(True, x.device) if ar.is_torch(x) else ar.Kind()
    if stream is None:
        stream = ar.cuda_stream(kind) if kind.is_cuda else 0
    xc, grad = nchw(x), nchw(grad)  # held here: the views below point into them
    h = handle(xc, weight, None, stride, padding, dilation, stream)
    gx, gw, gb = conv_grad_buffers(x, weight, bias_defined, mask)
    view = lambda t: None if t is None else ar.view(t)  # noqa: E731
    getattr(_C.vision, f"depthwise_backward_{kind.suffix}")(h, ar.view(grad), view(gx), view(gw), view(gb))
    gx = None if gx is None else in_format_of(gx, x)
    return gx, gw, gb
