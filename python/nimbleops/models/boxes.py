"""Box utilities of the detector: anchors, IoU, box coding, NMS. Boxes are ``[K, 4]``
``(x1, y1, x2, y2)`` in image pixels. NMS comes from ``torchvision.ops`` when it imports, else
from :func:`nimbleops.vision.nms` (the same kept boxes)."""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch

from .. import vision

#: exp() of a predicted log-scale is clamped here, as in torchvision's BoxCoder
SCALE_CLAMP = math.log(1000.0 / 16)


def anchors(feature_size: Tuple[int, int], stride: int, areas: Sequence[float], aspect_ratios: Sequence[float],
            dtype=torch.float32, device=None) -> torch.Tensor:
    """``[H * W * A, 4]`` anchors, position-major (all anchors of cell (0, 0) first), ``A =
    len(areas) * len(aspect_ratios)`` per cell in the order (area, ratio). The anchor of area ``s``
    and ratio ``r = h / w`` has ``w = sqrt(s / r)``, ``h = w r`` and is centred on the cell's centre
    ``((x + 0.5) stride, (y + 0.5) stride)``."""
    H, W = feature_size
    base = []
    for s in areas:
        for r in aspect_ratios:
            w = math.sqrt(s / r)
            h = w * r
            base.append((-w / 2, -h / 2, w / 2, h / 2))
    base = torch.tensor(base, dtype=dtype, device=device)
    ys = (torch.arange(H, dtype=dtype, device=device) + 0.5) * stride
    xs = (torch.arange(W, dtype=dtype, device=device) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack((cx, cy, cx, cy), -1).reshape(-1, 1, 4)
    return (centres + base).reshape(-1, 4)


def box_area(b: torch.Tensor) -> torch.Tensor:
    return (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[len(a), len(b)]`` intersection over union (0 where the union is empty)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def encode(boxes: torch.Tensor, reference: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """The regression targets ``(wx dx / w, wy dy / h, ww log(w' / w), wh log(h' / h))`` that take
    ``reference`` boxes to ``boxes`` (R-CNN's parametrisation, torchvision's weights convention)."""
    wx, wy, ww, wh = weights
    w, h = reference[:, 2] - reference[:, 0], reference[:, 3] - reference[:, 1]
    cx, cy = reference[:, 0] + 0.5 * w, reference[:, 1] + 0.5 * h
    gw, gh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    gx, gy = boxes[:, 0] + 0.5 * gw, boxes[:, 1] + 0.5 * gh
    return torch.stack((wx * (gx - cx) / w, wy * (gy - cy) / h, ww * torch.log(gw / w), wh * torch.log(gh / h)), 1)


def decode(deltas: torch.Tensor, reference: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """The inverse of :func:`encode`: ``deltas [K, 4]`` applied to ``reference [K, 4]`` (the (x, y)
    pairs go through each operation together: half the torch calls, the same arithmetic)."""
    size = reference[:, 2:] - reference[:, :2]  # (w, h)
    center = reference[:, :2] + 0.5 * size
    scale = deltas.new_tensor(weights)
    shift = deltas[:, :2] / scale[:2]
    log_size = (deltas[:, 2:] / scale[2:]).clamp(max=SCALE_CLAMP)
    c = shift * size + center
    half = 0.5 * (torch.exp(log_size) * size)
    return torch.cat((c - half, c + half), 1)


def clip(boxes: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
    H, W = image_size
    return boxes.clamp(min=boxes.new_zeros(()), max=boxes.new_tensor((W, H, W, H)))


def at_least(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """The mask of the boxes at least ``min_size`` wide and high."""
    return ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)


def _torchvision_ops():
    try:
        import torchvision.ops as ops  # here: torchvision is optional

        return ops
    except Exception:  # noqa: BLE001 - absent or not importable beside this torch: use our own
        return None


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, by decreasing score."""
    ops = _torchvision_ops()
    if ops is not None:
        return ops.nms(boxes, scores, iou_threshold)
    return vision.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each group (class): boxes of different groups never suppress each other."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = groups.to(boxes.dtype) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
