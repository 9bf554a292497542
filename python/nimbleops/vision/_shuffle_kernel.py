"""The channel-gather kernel (shuffle, concat + shuffle + split and its inverse), called by
:mod:`nimbleops.vision.shuffle` and by the custom ops of :mod:`nimbleops.torch_ops`."""
from __future__ import annotations

from .. import _C
from .. import _arrays as ar
from ._layout import empty_like_format


def run(op: str, groups: int, inputs, out_shapes):
    """The gather kernel: outputs (in the first input's format) of the given shapes."""
    outs = [empty_like_format(inputs[0], s) for s in out_shapes]
    kind = ar.kind(inputs[0])
    getattr(_C.vision, f"channel_gather_{kind.suffix}")(op, int(groups), [ar.view(x) for x in inputs],
                                                         [ar.view(o) for o in outs], ar.stream_of(inputs[0]))
    return outs
