"""The pointwise convolution's kernels, called by :mod:`nimbleops.vision.pointwise` and by the
custom ops of :mod:`nimbleops.torch_ops`: inputs already checked, outputs allocated here."""
from __future__ import annotations

from .. import _C
from .. import _arrays as ar
from ._layout import conv_grad_buffers, in_format_of, nchw


def handle(x, weight, bias, groups, relu, shuffle, stream: int):
    """The C++ description of one call (weight read as [Cout, Cin/groups])."""
    w2 = weight.reshape(weight.shape[0], -1)
    return _C.vision.PointwiseInputs(ar.view(x), ar.view(w2), ar.view_or_none(bias), int(groups),
                                     int(shuffle), bool(relu), int(stream))


def run_forward(x, weight, bias, groups, relu, shuffle):
    """The output, in x's memory format."""
    kind = ar.kind(x)
    stream = ar.stream_of(x)
    xc = nchw(x)
    out = ar.empty((x.shape[0], weight.shape[0]) + tuple(x.shape[2:]), ar.dtype_name(x), kind)
    getattr(_C.vision, f"pointwise_forward_{kind.suffix}")(handle(xc, weight, bias, groups, relu, shuffle, stream),
                                                         ar.view(out))
    return in_format_of(out, x)


def run_backward(grad, x, weight, out, bias_defined, groups, relu, shuffle, mask):
    """(grad_x in x's memory format, grad_weight in weight's shape, grad_bias), None where mask is False."""
    kind = ar.kind(x)
    stream = ar.stream_of(x)
    xc, grad = nchw(x), nchw(grad)
    out = None if out is None else nchw(out)
    gx, gw, gb = conv_grad_buffers(x, weight, bias_defined, mask)
    view = ar.view_or_none
    getattr(_C.vision, f"pointwise_backward_{kind.suffix}")(
        handle(xc, weight, None, groups, relu, shuffle, stream), ar.view(grad), view(out), view(gx),
        None if gw is None else ar.view(gw.reshape(gw.shape[0], -1)), view(gb))
    return (None if gx is None else in_format_of(gx, x)), gw, gb
