"""The position-sensitive RoI kernels, called by :mod:`nimbleops.vision.ps_roi` and by the custom
ops of :mod:`nimbleops.torch_ops`. ``rois``: ``[K, 5]`` float64 of the input's kind and device."""
from __future__ import annotations

import numpy as np

from .. import _C
from .. import _arrays as ar


def handle(input, rois, op: str, output_size, scale: float, sampling_ratio: int, aligned: bool,
           deterministic: bool):
    """The checked C++ description of one call. CUDA boxes are checked on a host copy here; the
    CPU kernels check their boxes themselves."""
    h = _C.vision.PsRoiInputs(op, ar.view(input), ar.view(rois), output_size, scale, sampling_ratio, aligned,
                              deterministic, ar.stream_of(input))
    if ar.is_torch(input) and input.is_cuda:
        h.check_boxes(ar.view(rois.detach().cpu()))
    return h


def run_forward(input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic):
    """``[K, C_out, pooled_h, pooled_w]`` (contiguous). ``deterministic`` concerns only the backward."""
    kind = ar.kind(input)
    h = handle(input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic)
    out = ar.empty(tuple(h.output_shape), ar.dtype_name(input), kind)
    getattr(_C.vision, f"ps_roi_forward_{kind.suffix}")(h, ar.view(out))
    return out


def run_backward(grad_out, input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic):
    """d input ``[N, C, H, W]`` (contiguous) of sum(grad_out * forward)."""
    kind = ar.kind(input)
    h = handle(input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic)
    grad_in = ar.empty(tuple(input.shape), ar.dtype_name(input), kind)
    grad_out = grad_out.contiguous() if ar.is_torch(grad_out) else np.ascontiguousarray(grad_out)
    getattr(_C.vision, f"ps_roi_backward_{kind.suffix}")(h, ar.view(grad_out), ar.view(grad_in))
    return grad_in
