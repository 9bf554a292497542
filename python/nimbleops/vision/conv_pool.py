"""A stem's convolution + ReLU + max pool in one op, for inference (ShuffleNet's and ResNet's conv1
-> ReLU -> max pool with the batch norm folded into the convolution): the convolution's output is
never stored whole, its rows are computed per block of pooled rows and pooled as they come.

numpy arrays or CPU torch tensors, float32 or float64, outside autograd (arguments that require
grad are refused: nothing here is differentiated) and outside capture (``torch.compile``,
``torch.export``, ``torch.jit.trace``, ``torch.func``: not a registered custom op; torch's own ops
serve there, as :func:`nimbleops.models.optimize_for_inference`'s models do). No CUDA kernel.
"""
from __future__ import annotations

from typing import Any, Optional

from .. import _C
from .. import _arrays as ar
from .._arrays import Array
from ._layout import in_format_of, nchw


def conv2d_relu_max_pool(x: Array, weight: Array, bias: Optional[Array] = None, stride: int = 1, padding: int = 0, *,
                         pool_kernel_size: int = 3, pool_stride: int = 2, pool_padding: int = 1) -> Any:
    """``max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool_kernel_size, pool_stride,
    pool_padding)``: torch's dense convolution (groups 1, dilation 1, square stride and padding)
    and max pool (floor mode; nan propagates through the ReLU and the pool, as in torch). Each
    output sums its taps in (ci, kh, kw) order, contracted to FMA where the SIMD level has it (the
    last bits may differ between levels, never between runs or thread counts).

    Args:
        x: ``[N, Cin, H, W]``, NCHW or channels_last.
        weight: ``[Cout, Cin, KH, KW]`` (KW <= 64), x's kind and dtype.
        bias: ``[Cout]`` or None.
        stride, padding: the convolution's.
        pool_kernel_size, pool_stride, pool_padding: the max pool's (``pool_padding <=
            pool_kernel_size // 2``).

    Returns:
        ``[N, Cout, PH, PW]`` in x's memory format, with ``OH = (H + 2 padding - KH) // stride + 1``
        and ``PH = (OH + 2 pool_padding - pool_kernel_size) // pool_stride + 1`` (likewise W).
    """
    out = ar.plain_call(_C.vision.conv_pool_plain, x, weight, bias, stride, padding, pool_kernel_size, pool_stride,
                        pool_padding)
    if out is not None:
        return out
    return _conv2d_relu_max_pool(x, weight, bias, stride, padding, pool_kernel_size, pool_stride, pool_padding)


@ar.resolving
def _conv2d_relu_max_pool(x, weight, bias, stride, padding, pool_kernel_size, pool_stride, pool_padding):
    """conv2d_relu_max_pool's general path: conversions, every check and its error."""
    kind = ar.host_inference_batch(x, "conv2d_relu_max_pool", "torch's ops")
    ar.refuse_grad(weight=weight, bias=bias)
    xc = nchw(x)
    weight = ar.like(weight, "weight", xc, kind)
    bias = None if bias is None else ar.like(bias, "bias", xc, kind)
    ints = [ar.check_int(v, name) for v, name in ((stride, "stride"), (padding, "padding"),
                                                  (pool_kernel_size, "pool_kernel_size"),
                                                  (pool_stride, "pool_stride"), (pool_padding, "pool_padding"))]
    h = _C.vision.ConvPoolInputs(ar.view(xc), ar.view(weight), ar.view_or_none(bias), *ints)
    shape = tuple(h.output_shape)
    out = ar.empty(shape, ar.dtype_name(xc), kind)
    _C.vision.conv_pool_forward_cpu(h, ar.view(out))
    return in_format_of(out, x)
