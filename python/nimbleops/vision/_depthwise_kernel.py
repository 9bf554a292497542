"""The depthwise convolution's kernels, called by :mod:`nimbleops.vision.depthwise` and by the
custom ops of :mod:`nimbleops.torch_ops`: inputs already checked, outputs allocated here."""
from __future__ import annotations

from .. import _C
from .. import _arrays as ar
from ._layout import conv_grad_buffers, empty_like_format, in_format_of, nchw


def handle(x, weight, bias, stride, padding, dilation, stream: int):
    """The C++ description of one call (weight [C*m, 1, KH, KW], contiguous: read as [C*m, KH*KW])."""
    return _C.vision.DepthwiseInputs(ar.view(x), ar.view(weight), ar.view_or_none(bias),
                                     (weight.shape[2], weight.shape[3]), stride, padding, dilation, stream)


def run_forward(x, weight, bias, stride, padding, dilation):
    """The output, in x's memory format."""
    kind = ar.kind(x)
    h = handle(x, weight, bias, stride, padding, dilation, ar.stream_of(x))
    out = empty_like_format(x, h.output_shape)
    (_C.vision.depthwise_forward_cuda if kind.is_cuda else _C.vision.depthwise_forward_cpu)(h, ar.view(out))
    return out


def run_backward(grad, x, weight, bias_defined: bool, stride, padding, dilation, mask):
    """(grad_x, grad_weight, grad_bias), each None where mask says it is not needed. NCHW math;
    grad_x comes back in x's memory format."""
    kind = ar.kind(x)
    xc, grad = nchw(x), nchw(grad)  # held here: the views below point into them
    h = handle(xc, weight, None, stride, padding, dilation, ar.stream_of(x))
    gx, gw, gb = conv_grad_buffers(x, weight, bias_defined, mask)
    (_C.vision.depthwise_backward_cuda if kind.is_cuda else _C.vision.depthwise_backward_cpu)(
        h, ar.view(grad), ar.view_or_none(gx), ar.view_or_none(gw), ar.view_or_none(gb))
    if gx is not None and xc is not x:
        gx = in_format_of(gx, x)
    return gx, gw, gb
