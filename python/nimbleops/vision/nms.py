"""Greedy non-maximum suppression: torchvision's ``nms`` and ``batched_nms``, the kept set the
same bit for bit, with an optional cap on the number of boxes kept.

Boxes ``[K, 4]`` ``(x1, y1, x2, y2)`` and scores ``[K]`` of one float dtype (float32 or float64):
numpy arrays or torch tensors (CPU or CUDA; CUDA boxes are sorted and swept on the host, one copy
each way, as the visit is sequential). The result is int64 indices into the boxes, by decreasing
score, of the input's kind and device. No gradient flows through NMS: tensors that require grad
are read as they are.

Differences from torchvision: ``max_output`` stops the visit once that many boxes are kept (the
first ``max_output`` of torchvision's result, without sweeping the rest); :func:`batched_nms`
sweeps each group on its own, with the boxes' own coordinates, where torchvision's (below 4000
values) shifts every box by a per-group offset first, which can round an IoU within an ulp of
the threshold the other way.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array


def nms(boxes: Array, scores: Array, iou_threshold: float, *, max_output: Optional[int] = None) -> Any:
    """Greedy NMS: visit the boxes by decreasing score (ties in index order, nan scores first, as
    torch's stable descending sort); keep each box no kept box suppressed, and suppress every later
    box whose IoU with it, ``inter / (area_i + area_j - inter)``, is above ``iou_threshold``.

    Args:
        boxes: ``[K, 4]`` ``(x1, y1, x2, y2)``; not checked for ``x1 <= x2`` (as torchvision).
        scores: ``[K]``, of boxes' dtype, kind and device.
        iou_threshold: boxes overlapping a kept one by more than this are dropped.
        max_output: keep at most this many (the visit stops there); None: no cap.

    Returns:
        int64 ``[D]`` indices of the kept boxes, by decreasing score.
    """
    out = _C.vision.nms_plain(boxes, scores, None, iou_threshold, max_output)  # the common call in one binding call
    if out is not None:
        return out
    return _call(boxes, scores, None, iou_threshold, max_output)


def batched_nms(boxes: Array, scores: Array, groups: Array, iou_threshold: float, *,
                max_output: Optional[int] = None) -> Any:
    """:func:`nms` within each group (class, image): boxes of different groups never suppress
    each other. groups: integer ``[K]`` (any integer dtype), of boxes' kind and device. Returns
    the kept indices of all groups together, by decreasing score; at most ``max_output``."""
    out = _C.vision.nms_plain(boxes, scores, groups, iou_threshold, max_output)  # the common call in one binding call
    if out is not None:
        return out
    return _call(boxes, scores, groups, iou_threshold, max_output)


def _call(boxes, scores, groups, iou_threshold, max_output):
    iou_threshold = ar.check_real_scalar(iou_threshold, "iou_threshold")
    cap = -1 if max_output is None else ar.check_int(max_output, "max_output", minimum=0)
    host_boxes, kind = _host(boxes, "boxes", None)
    dtype = host_boxes.dtype.name
    if dtype not in ar.FLOAT_DTYPES:
        raise TypeError(f"boxes: expected float32 or float64, got dtype {dtype}")
    if host_boxes.ndim != 2 or host_boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected [K, 4], got shape {list(host_boxes.shape)}")
    K = host_boxes.shape[0]
    host_scores, _ = _host(scores, "scores", (boxes, kind))
    if host_scores.shape != (K,):
        raise ValueError(f"scores: expected [{K}] like boxes, got shape {list(host_scores.shape)}")
    if host_scores.dtype != host_boxes.dtype:
        raise TypeError(f"scores: expected dtype {dtype} like boxes, got {host_scores.dtype.name}")
    host_groups = None
    if groups is not None:
        host_groups, _ = _host(groups, "groups", (boxes, kind))
        if not np.issubdtype(host_groups.dtype, np.integer):
            raise TypeError(f"groups: expected an integer dtype, got {host_groups.dtype.name}")
        if host_groups.shape != (K,):
            raise ValueError(f"groups: expected [{K}] like boxes, got shape {list(host_groups.shape)}")
        host_groups = np.ascontiguousarray(host_groups, dtype=np.int64)
    # named, so that the arrays outlive their views
    host_boxes, host_scores = np.ascontiguousarray(host_boxes), np.ascontiguousarray(host_scores)
    keep = np.empty(K, np.int64)
    n = _C.vision.nms_cpu(ar.view(host_boxes), ar.view(host_scores), ar.view_or_none(host_groups), iou_threshold, cap,
                          ar.view(keep))
    keep = keep[:n]
    if not kind.torch:
        return keep
    torch = ar._torch()
    out = torch.from_numpy(keep)
    return out.to(kind.device) if kind.is_cuda else out


def _host(x, name: str, like):
    """x as a numpy array on the host (torch tensors detached, resolved and copied off the GPU),
    and its Kind; with like = (first array, its Kind), x must be of that kind and device."""
    if not (isinstance(x, np.ndarray) or ar.is_torch(x)):
        ar.refuse_foreign(x, name)
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    kind = ar.kind(x)
    if like is not None:
        first, first_kind = like
        if kind.torch != first_kind.torch:
            raise TypeError(f"{name}: expected a {'torch tensor' if first_kind.torch else 'numpy array'} like boxes")
        if kind.torch and x.device != first.device:
            raise ValueError(f"{name}: expected a tensor on {first.device} like boxes, got {x.device}")
    if kind.torch:
        try:  # a plain CPU tensor: its memory, in one call
            return x.numpy(), kind
        except (TypeError, RuntimeError):  # grad, a lazy sign bit, a GPU, a dtype numpy lacks
            pass
        x = x.detach().resolve_conj().resolve_neg()
        try:
            x = x.cpu().numpy() if kind.is_cuda else x.numpy()
        except TypeError:  # a dtype numpy lacks (bfloat16, ...)
            expected = "an integer dtype" if name == "groups" else "float32 or float64"
            raise TypeError(f"{name}: expected {expected}, got dtype {ar.dtype_name(x)}") from None
    return x, kind
