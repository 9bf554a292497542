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
from .shuffle import channels_last, empty_like_format


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
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int or a pair of ints, got bool")
    if isinstance(v, (int, np.integer)):
        pair = (int(v), int(v))
    else:
        try:
            items = tuple(v)
        except TypeError:
            raise TypeError(f"{name}: expected an int or a pair of ints, got {type(v).__name__}") from None
        if len(items) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {list(items)}")
        pair = (ar.check_int(items[0], name), ar.check_int(items[1], name))
    if min(pair) < lo:
        raise ValueError(f"{name}: expected values >= {lo}, got {pair}")
    return pair


def _inputs(x, weight, bias):
    if not (isinstance(x, np.ndarray) or ar.is_torch(x)):
        raise TypeError(f"x: expected a numpy array or torch tensor [N, C, H, W], got {type(x).__name__}")
    dtype = ar.dtype_name(x)
    if dtype not in ar.FLOAT_DTYPES:
        raise TypeError(f"x: expected float32 or float64, got dtype {dtype}")
    if x.ndim != 4:
        raise ValueError(f"x: expected [N, C, H, W], got shape {list(x.shape)}")
    kind = ar.Kind(True, x.device) if ar.is_torch(x) else ar.Kind()
    if kind.torch and x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"x: expected a CPU or CUDA tensor, got device {x.device}")
    if kind.is_cuda and not hasattr(_C.vision, "depthwise_forward_cuda"):
        raise ValueError("x: a CUDA tensor, but this nimbleops build has no CUDA kernels (see nimbleops.build_info())")
    C = int(x.shape[1])

    def like_x(t, name):
        if ar.is_torch(t) and kind.torch and t.device != x.device:
            raise ValueError(f"{name}: expected a tensor on {x.device} like x, got {t.device}")
        if ar.is_torch(t) and not kind.torch:
            raise TypeError(f"{name}: a torch tensor given with a numpy x; pass both as numpy or both as torch")
        d = ar.dtype_name(t) if (isinstance(t, np.ndarray) or ar.is_torch(t)) else None
        if d is not None and d != dtype:
            raise TypeError(f"{name}: expected dtype {dtype} like x, got {d}")
        return ar.to_array(t, name, kind, dtype)

    weight = like_x(weight, "weight")
    if weight.ndim != 4 or weight.shape[1] != 1 or weight.shape[0] < 1 or weight.shape[0] % max(C, 1) != 0 or C < 1:
        raise ValueError(f"weight: expected [C*m, 1, KH, KW] with C = {C} (PyTorch's depthwise layout), got shape "
                         f"{list(weight.shape)}")
    if weight.shape[2] < 1 or weight.shape[3] < 1:
        raise ValueError(f"weight: expected a non-empty kernel, got shape {list(weight.shape)}")
    if bias is not None:
        bias = like_x(bias, "bias")
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
    was_channels_last = channels_last(x)
    if ar.is_torch(x):
        x, grad = x.contiguous(), grad.contiguous()
    else:
        x, grad = np.ascontiguousarray(x), np.ascontiguousarray(grad)
    dtype = ar.dtype_name(x)
    h = handle(x, weight, None, stride, padding, dilation, stream)
    gx = ar.empty(tuple(x.shape), dtype, kind) if mask[0] else None
    gw = ar.empty(tuple(weight.shape), dtype, kind) if mask[1] else None
    gb = ar.empty((weight.shape[0],), dtype, kind) if (mask[2] and bias_defined) else None
    view = lambda t: None if t is None else ar.view(t)  # noqa: E731
    getattr(_C.vision, f"depthwise_backward_{kind.suffix}")(h, ar.view(grad), view(gx), view(gw), view(gb))
    if gx is not None and was_channels_last:
        if ar.is_torch(gx):
            gx = gx.contiguous(memory_format=ar._torch().channels_last)
        else:
            gx = np.moveaxis(np.ascontiguousarray(np.moveaxis(gx, 1, 3)), 3, 1)
    return gx, gw, gb
