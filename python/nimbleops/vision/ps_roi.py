"""Position-sensitive RoI align and pool (R-FCN, Light-Head R-CNN, ThunderNet's R-CNN subnet).

numpy arrays or torch tensors (CPU, or CUDA when built with CUDA), float32 or float64; any
strides (NCHW, channels_last, slices) are read in place. With torch inputs the ops are custom
ops (:mod:`nimbleops.torch_ops`) differentiable with respect to ``input`` (not ``boxes``), and
work under ``torch.compile(fullgraph=True)``. The CPU backward is deterministic (no atomics);
on CUDA it uses atomics unless ``deterministic=True`` or
``torch.use_deterministic_algorithms(True)``.

Robustness beyond torchvision: a box with a NaN or infinite coordinate (or a scaled coordinate
beyond 2^40 pixels) gives zeros for that RoI and no gradient; a batch index that is not an
integer in [0, N) is a ValueError; K = 0 gives an empty output.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _C, _arrays as ar
from .._arrays import Array, Size
from ._ps_roi_kernel import run_forward

_ALIGN_OPS = {"avg": "align_avg", "max": "align_max"}  # mode -> the kernel's op


def ps_roi_align(input: Array, boxes: Array, output_size: Size, spatial_scale: float = 1.0, sampling_ratio: int = -1,
                 *, aligned: bool = True, mode: str = "avg", deterministic: Optional[bool] = None) -> Any:
    """Position-sensitive RoI align.

    For RoI k on image n = ``boxes[k, 0]``, with ``o = 0.5`` if ``aligned`` else 0:

    - ``x1' = x1 * spatial_scale - o`` (likewise y1, x2, y2); ``roi_w = x2' - x1'``,
      ``roi_h = y2' - y1'`` (not clamped); bin size ``bin_h = roi_h / pooled_h``,
      ``bin_w = roi_w / pooled_w``.
    - sampling grid ``grid_h x grid_w`` per bin: ``sampling_ratio`` each if > 0, else adaptive
      ``ceil(roi_h / pooled_h)`` x ``ceil(roi_w / pooled_w)``, at least 1. The adaptive grid is
      capped at 2^20 samples per bin (a larger box is a ValueError: pass ``sampling_ratio``).
    - sample (iy, ix) of bin (i, j) at ``y = y1' + i*bin_h + (iy + 0.5)*bin_h/grid_h``,
      ``x = x1' + j*bin_w + (ix + 0.5)*bin_w/grid_w``, read bilinearly with torchvision's border
      rules: a sample with ``y < -1`` or ``y > H`` (or ``x < -1`` or ``x > W``) is 0; a coordinate
      in ``(-1, 0]`` snaps to 0; at or past the last row/column it snaps to it.
    - ``out[k, c, i, j]`` reads input channel ``(c*pooled_h + i)*pooled_w + j``: the mean over the
      grid (``mode="avg"``) or its maximum (``mode="max"``: the first maximum in row-major grid
      order, NaN propagating, its gradient routed to the winning sample's four taps).

    Coordinates, sample positions and bilinear weights are computed in float64 for both dtypes;
    values are accumulated in the input's dtype.

    Args:
        input: ``[N, C, H, W]`` with ``C = C_out * pooled_h * pooled_w``, any strides.
        boxes: ``[K, 5]`` rows ``(batch index, x1, y1, x2, y2)`` in input-image coordinates, or a
            list of N arrays ``[K_i, 4]`` (image i's boxes), as torchvision takes them.
        output_size: ``(pooled_h, pooled_w)`` or an int, each in [1, 4096].
        spatial_scale: feature-map pixels per image pixel (1/16 for a stride-16 map).
        sampling_ratio: samples per bin side (at most 1024); <= 0: adaptive.
        aligned: the half-pixel offset ``o`` (torchvision always applies it).
        mode: ``"avg"`` or ``"max"``.
        deterministic: CUDA backward without atomics (default: torch's
            ``are_deterministic_algorithms_enabled()``; the CPU is always deterministic).

    Returns:
        ``[K, C_out, pooled_h, pooled_w]`` (contiguous, the input's dtype).

    Differences from torchvision: ``mode="max"`` and ``aligned=False`` are additions (the
    defaults equal ``torchvision.ops.ps_roi_align``); a zero-size box samples one point per bin
    where torchvision divides 0 by 0 and returns NaN.
    """
    op = _ALIGN_OPS.get(mode) if type(mode) is str else None
    if op is not None:
        out = ar.plain_call(_C.vision.ps_roi_plain, op, input, boxes, output_size, spatial_scale, sampling_ratio,
                            aligned, deterministic)
        if out is not None:
            return out
    return _ps_roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, aligned=aligned, mode=mode,
                         deterministic=deterministic)


@ar.resolving
@ar.numpy_path_for_cpu_tensors(leading=True)
def _ps_roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, *, aligned, mode, deterministic):
    """ps_roi_align's general path: conversions, every check and its error."""
    if mode not in _ALIGN_OPS:
        raise ValueError(f"mode: expected 'avg' or 'max', got {mode!r}")
    if not isinstance(aligned, (bool, np.bool_)):
        raise TypeError(f"aligned: expected a bool, got {type(aligned).__name__}")
    sampling_ratio = ar.check_int(sampling_ratio, "sampling_ratio")
    return _run(_ALIGN_OPS[mode], input, boxes, output_size, spatial_scale, sampling_ratio, bool(aligned),
                deterministic)


def ps_roi_pool(input: Array, boxes: Array, output_size: Size, spatial_scale: float = 1.0, *,
                deterministic: Optional[bool] = None) -> Any:
    """Position-sensitive RoI pool (R-FCN's definition).

    For RoI k: the corners ``x1 * spatial_scale`` etc. are rounded half away from zero (C's
    ``round``); ``roi_w = max(x2 - x1, 1)``, ``roi_h = max(y2 - y1, 1)``; bin (i, j) covers rows
    ``[y1 + floor(i*roi_h/pooled_h), y1 + ceil((i+1)*roi_h/pooled_h))`` and columns likewise (exact
    integer arithmetic), clipped to ``[0, H]`` and ``[0, W]``; ``out[k, c, i, j]`` is the mean of
    input channel ``(c*pooled_h + i)*pooled_w + j`` over the bin, 0 for an empty bin. The
    backward spreads each gradient evenly over the same bin, so forward and backward agree.

    Args:
        input: ``[N, C, H, W]`` with ``C = C_out * pooled_h * pooled_w``, any strides.
        boxes: ``[K, 5]`` rows ``(batch index, x1, y1, x2, y2)``, or a list of N arrays ``[K_i, 4]``.
        output_size: ``(pooled_h, pooled_w)`` or an int, each in [1, 4096].
        spatial_scale: feature-map pixels per image pixel.
        deterministic: CUDA backward without atomics (see :func:`ps_roi_align`).

    Returns:
        ``[K, C_out, pooled_h, pooled_w]`` (contiguous, the input's dtype).

    Differences from torchvision: ``torchvision.ops.ps_roi_pool``'s forward clips the bin edges
    to ``H - 1`` and ``W - 1``, so it never reads the map's last row and column (while its
    backward clips to H and W); this op equals torchvision's wherever no bin reaches the last row
    or column.
    """
    out = ar.plain_call(_C.vision.ps_roi_plain, "pool", input, boxes, output_size, spatial_scale, 0, True,
                        deterministic)
    if out is not None:
        return out
    return _ps_roi_pool(input, boxes, output_size, spatial_scale, deterministic)


@ar.resolving
@ar.numpy_path_for_cpu_tensors(leading=True)
def _ps_roi_pool(input, boxes, output_size, spatial_scale, deterministic):
    """ps_roi_pool's general path: conversions, every check and its error."""
    return _run("pool", input, boxes, output_size, spatial_scale, 0, True, deterministic)


def boxes_as_rois(boxes, kind: ar.Kind):
    """``[K, 5]`` float64 (batch index, x1, y1, x2, y2) of this kind from ``[K, 5]`` or a list of ``[K_i, 4]``."""
    per_image = isinstance(boxes, (list, tuple)) and all(isinstance(b, np.ndarray) or ar.is_torch(b) for b in boxes)
    if per_image:  # a list of arrays / tensors (an empty list: no boxes); nested lists of numbers are [K, 5]
        parts = []
        for i, b in enumerate(boxes):
            b = b.detach() if ar.is_torch(b) else b
            ar.compute_dtype(b, f"boxes[{i}]")
            b = ar.to_array(b, f"boxes[{i}]", kind, "float64")
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}]: expected [K_{i}, 4] (x1, y1, x2, y2), got shape {list(b.shape)}")
            index = ar.zeros((b.shape[0], 1), "float64", kind) + i
            parts.append((index, b))
        if not parts:
            return ar.zeros((0, 5), "float64", kind)
        if kind.torch:
            torch = ar._torch()
            return torch.cat([torch.cat(p, 1) for p in parts], 0).contiguous()
        return np.ascontiguousarray(np.concatenate([np.concatenate(p, 1) for p in parts], 0))
    if not (isinstance(boxes, np.ndarray) or ar.is_torch(boxes)):
        boxes = np.asarray(boxes)
    ar.compute_dtype(boxes, "boxes")
    rois = ar.to_array(boxes.detach() if ar.is_torch(boxes) else boxes, "boxes", kind, "float64")
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(f"boxes: expected [K, 5] (batch index, x1, y1, x2, y2) or a list of [K_i, 4], got shape "
                         f"{list(rois.shape)}")
    return rois


def _run(op: str, input, boxes, output_size, spatial_scale, sampling_ratio: int, aligned: bool,
         deterministic: Optional[bool]):
    """The checks that convert arguments (the boxes' forms, Python types); the C++ handle checks
    the shapes and ranges (:mod:`._ps_roi_kernel`), once per call."""
    kind = ar.image_batch(input, "input", "ps_roi_forward_cuda")
    output_size = ar.int_pair(output_size, "output_size")
    scale = ar.check_real_scalar(spatial_scale, "spatial_scale")
    if deterministic is not None and not isinstance(deterministic, (bool, np.bool_)):
        raise TypeError(f"deterministic: expected a bool or None, got {type(deterministic).__name__}")
    if ar.is_torch(boxes) and kind.torch and boxes.device != input.device:
        raise ValueError(f"boxes: expected a tensor on {input.device} like input, got {boxes.device}")
    if ar.is_torch(boxes) and not kind.torch:
        raise TypeError("boxes: a torch tensor given with a numpy input; pass both as numpy or both as torch")
    rois = boxes_as_rois(boxes, kind)
    if kind.torch and deterministic is None:
        deterministic = bool(ar._torch().are_deterministic_algorithms_enabled())
    params = (op, output_size, scale, int(sampling_ratio), bool(aligned), bool(deterministic))
    if kind.torch and ar.needs_torch_op(input):  # boxes are not differentiated
        from .. import torch_ops  # here, not at the top: torch is optional

        return torch_ops.ps_roi(input, rois, *params)
    return run_forward(input, rois, *params)
