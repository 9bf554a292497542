"""ThunderNet (Qin et al., ICCV 2019): a two-stage detector for mobile CPUs.

``SNet`` backbone -> CEM (context enhancement: ``C4 -> 1x1``, ``C5 -> 1x1 -> 2x upsample`` and
``global average pool of C5 -> 1x1 -> broadcast``, summed into 245 = 5 x 7 x 7 channels) -> RPN
(5x5 depthwise + 1x1 conv to 256 channels with ReLU, then 1x1 objectness and box heads over 25
anchors a position: areas 32², 64², 128², 256², 512² x aspect ratios (h / w) 1:2, 3:4, 1:1, 4:3,
2:1) -> SAM (spatial attention: ``F_SAM = F_CEM * sigmoid(BN(1x1 conv(F_RPN)))``) -> R-CNN subnet
(PSRoIAlign 7 x 7 over F_SAM's 245 channels, giving 5 channels, one fully connected layer of 1024
with ReLU, classification over ``num_classes + 1`` (0 = background) and class-specific box
regression).

The API follows torchvision's detection models: ``model.eval(); model(images)`` returns one dict
``{"boxes" [D, 4], "scores" [D], "labels" [D]}`` per image; ``model.train(); model(images,
targets)`` returns the four losses (``targets``: one dict per image, ``"boxes"`` ``[M, 4]``
``(x1, y1, x2, y2)`` in pixels, ``"labels"`` ``[M]`` int64 in ``1..num_classes``). ``images`` is a
float tensor ``[N, 3, H, W]`` (or a list of equal-size ``[3, H, W]``), already normalised: the
model does not resize or normalise.

``backend="torch"`` builds the same model from ``torch.nn`` modules and ``torchvision.ops``
(PSRoIAlign), with the same state_dict keys; ``backend="nimbleops"`` from ``nimbleops.nn``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .. import nn as nno
from .. import vision
from . import _layers as L
from . import boxes as box_ops
from .snet import SNet

THIN_CHANNELS = 245  # 5 x 7 x 7: PSRoIAlign 7 x 7 to 5 channels
STRIDE = 16
ANCHOR_AREAS = (32.0 ** 2, 64.0 ** 2, 128.0 ** 2, 256.0 ** 2, 512.0 ** 2)
ANCHOR_RATIOS = (0.5, 0.75, 1.0, 4 / 3, 2.0)
RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
RCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class CEM(nn.Module):
    """Context enhancement: ``conv4(C4) + upsample(conv5(C5)) + conv_glb(mean(C5))``; the upsample is
    nearest-neighbour to C4's size (2x at the backbone's strides)."""

    def __init__(self, c4_channels: int, c5_channels: int, out_channels: int = THIN_CHANNELS,
                 backend: str = "nimbleops"):
        super().__init__()
        self.conv4 = L.pointwise(backend, c4_channels, out_channels, bias=True)
        self.conv5 = L.pointwise(backend, c5_channels, out_channels, bias=True)
        self.conv_glb = L.pointwise(backend, c5_channels, out_channels, bias=True)

    def forward(self, c4: Tensor, c5: Tensor) -> Tensor:
        a = self.conv4(c4)
        b = F.interpolate(self.conv5(c5), size=a.shape[-2:], mode="nearest")
        g = self.conv_glb(c5.mean((2, 3), keepdim=True))
        return a + b + g


class RPN(nn.Module):
    """``F_RPN = relu(conv(dw(F_CEM)))`` (5x5 depthwise, 1x1 to 256 channels); objectness logits
    ``[N, A, H, W]`` and box deltas ``[N, 4A, H, W]`` (anchor a's deltas at channels 4a..4a+3)."""

    def __init__(self, in_channels: int = THIN_CHANNELS, channels: int = 256, num_anchors: int = 25,
                 backend: str = "nimbleops"):
        super().__init__()
        self.dw = L.depthwise(backend, in_channels, 5, 1)
        self.conv = L.pointwise(backend, in_channels, channels, bias=True, relu=True)
        self.relu = L.relu_after(backend)
        self.cls = L.pointwise(backend, channels, num_anchors, bias=True)
        self.reg = L.pointwise(backend, channels, 4 * num_anchors, bias=True)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        f = self.relu(self.conv(self.dw(x)))
        return f, self.cls(f), self.reg(f)


class SAM(nn.Module):
    """Spatial attention: ``F_CEM * sigmoid(BN(conv(F_RPN)))``."""

    def __init__(self, rpn_channels: int = 256, out_channels: int = THIN_CHANNELS, backend: str = "nimbleops"):
        super().__init__()
        self.conv = L.pointwise(backend, rpn_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, f_cem: Tensor, f_rpn: Tensor) -> Tensor:
        return f_cem * torch.sigmoid(self.bn(self.conv(f_rpn)))


class RCNNHead(nn.Module):
    """PSRoIAlign 7 x 7 (sampling ratio 2, scale 1/16) -> fc 1024 + ReLU -> class logits
    ``[K, num_classes + 1]`` and class-specific box deltas ``[K, 4 (num_classes + 1)]``."""

    def __init__(self, num_classes: int, in_channels: int = THIN_CHANNELS, pooled: int = 7, hidden: int = 1024,
                 backend: str = "nimbleops"):
        super().__init__()
        if in_channels % (pooled * pooled):
            raise ValueError(f"in_channels: expected a multiple of {pooled * pooled}, got {in_channels}")
        self.ps_roi_align = L.ps_roi_align(backend, pooled, 1.0 / STRIDE, 2)
        self.fc = nn.Linear(in_channels, hidden)
        self.cls = nn.Linear(hidden, num_classes + 1)
        self.reg = nn.Linear(hidden, 4 * (num_classes + 1))

    def hidden(self, features: Tensor, rois: Tensor) -> Tensor:
        """The fully connected layer's output ``[K, hidden]`` (after its ReLU, which runs in place
        on nimbleops: nothing else reads the layer's output)."""
        h = self.fc(self.ps_roi_align(features, rois.to(features.dtype)).flatten(1))
        return torch.relu_(h) if isinstance(self.ps_roi_align, nno.PSRoIAlign) else F.relu(h)

    def forward(self, features: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
        x = self.hidden(features, rois)
        return self.cls(x), self.reg(x)

    def labelled_outputs(self, x: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``(class_logits [K, C], pos, deltas [P, 4])`` for training: ``cls(x)``, the indices of the
        RoIs with a label > 0 and, for each, the box deltas of its label alone,
        ``reg(x)[pos].view(P, -1, 4)[:, label]``, computed from those four rows of ``reg`` (what the
        box loss reads: the other deltas get no gradient), both heads' gradients of ``x`` summed
        into one buffer."""
        pos = torch.nonzero(labels > 0).flatten()
        logits, deltas = _LabelledHeads.apply(x, self.cls.weight, self.cls.bias, self.reg.weight, self.reg.bias, pos,
                                              labels[pos])
        return logits, pos, deltas


class _LabelledHeads(torch.autograd.Function):
    """``(x W_cls^T + b_cls, the labelled rows' deltas)`` with a backward that writes the gradient of
    x once (the classifier's, the labelled rows' added in place) and gives the regression weights
    the gradient of the rows used alone."""

    @staticmethod
    def forward(ctx, x, w_cls, b_cls, w_reg, b_reg, pos, lab):
        hidden = x.shape[1]
        xs = x.index_select(0, pos)
        ws = w_reg.view(-1, 4, hidden).index_select(0, lab)  # [P, 4, hidden]
        bs = b_reg.view(-1, 4).index_select(0, lab)
        ctx.save_for_backward(x, w_cls, xs, ws, pos, lab)
        ctx.reg_rows = w_reg.shape[0]
        logits = torch.addmm(b_cls, x, w_cls.t())
        return logits, torch.baddbmm(bs.unsqueeze(2), ws, xs.unsqueeze(2)).squeeze(2)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_logits, g_deltas):
        x, w_cls, xs, ws, pos, lab = ctx.saved_tensors
        classes, hidden = ctx.reg_rows // 4, x.shape[1]
        grad_x = g_logits.mm(w_cls)
        grad_x.index_add_(0, pos, torch.bmm(g_deltas.unsqueeze(1), ws).squeeze(1))
        grad_w_reg = x.new_zeros(classes, 4, hidden).index_add_(0, lab, g_deltas.unsqueeze(2) * xs.unsqueeze(1))
        grad_b_reg = x.new_zeros(classes, 4).index_add_(0, lab, g_deltas)
        return (grad_x, g_logits.t().mm(x), g_logits.sum(0), grad_w_reg.view(classes * 4, hidden),
                grad_b_reg.view(-1), None, None)


def _sample(positive: Tensor, negative: Tensor, batch: int, fraction: float) -> Tuple[Tensor, Tensor]:
    """Indices of at most ``batch * fraction`` positives and enough negatives to fill ``batch``,
    drawn at random (torch's global generator)."""
    pos = torch.nonzero(positive).flatten()
    neg = torch.nonzero(negative).flatten()
    num_pos = min(int(batch * fraction), pos.numel())
    num_neg = min(batch - num_pos, neg.numel())
    pos = pos[torch.randperm(pos.numel(), device=pos.device)[:num_pos]]
    neg = neg[torch.randperm(neg.numel(), device=neg.device)[:num_neg]]
    return pos, neg


class ThunderNet(nn.Module):
    """ThunderNet; see the module docstring.

    Args:
        backbone: ``"snet49"``, ``"snet146"`` or ``"snet535"``.
        num_classes: object classes, not counting the background.
        backend: ``"nimbleops"`` or ``"torch"`` (the baseline, same state_dict).
        rpn_pre_nms_top_n, rpn_post_nms_top_n: proposals kept per image before and after the RPN's
            NMS, as ``(training, testing)``; the paper's 200 RoIs at test time is the default.
        rpn_nms_thresh, rpn_batch_size_per_image, rpn_positive_fraction, rpn_fg_iou_thresh, rpn_bg_iou_thresh:
            the RPN's NMS and anchor assignment (IoU >= 0.7 positive, < 0.3 negative, each ground
            truth's best anchors positive; 256 sampled, half positive).
        box_batch_size_per_image, box_positive_fraction, box_fg_iou_thresh: R-CNN proposal
            sampling (512, a quarter positive, IoU >= 0.5 foreground).
        box_score_thresh, box_nms_thresh, detections_per_img: inference post-processing.
    """

    def __init__(self, backbone: str = "snet146", num_classes: int = 80, backend: str = "nimbleops", *,
                 rpn_pre_nms_top_n: Tuple[int, int] = (2000, 1000), rpn_post_nms_top_n: Tuple[int, int] = (1000, 200),
                 rpn_nms_thresh: float = 0.7, rpn_batch_size_per_image: int = 256,
                 rpn_positive_fraction: float = 0.5, rpn_fg_iou_thresh: float = 0.7, rpn_bg_iou_thresh: float = 0.3,
                 box_batch_size_per_image: int = 512, box_positive_fraction: float = 0.25,
                 box_fg_iou_thresh: float = 0.5, box_score_thresh: float = 0.05, box_nms_thresh: float = 0.5,
                 detections_per_img: int = 100):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
        self.backend, self.num_classes = L.check_backend(backend), num_classes
        self.backbone = SNet(backbone, backend)
        self.cem = CEM(self.backbone.c4_channels, self.backbone.c5_channels, backend=backend)
        self.rpn = RPN(num_anchors=len(ANCHOR_AREAS) * len(ANCHOR_RATIOS), backend=backend)
        self.sam = SAM(backend=backend)
        self.head = RCNNHead(num_classes, backend=backend)
        self.rpn_pre_nms_top_n, self.rpn_post_nms_top_n = tuple(rpn_pre_nms_top_n), tuple(rpn_post_nms_top_n)
        self.rpn_nms_thresh = rpn_nms_thresh
        self.rpn_batch_size_per_image, self.rpn_positive_fraction = rpn_batch_size_per_image, rpn_positive_fraction
        self.rpn_fg_iou_thresh, self.rpn_bg_iou_thresh = rpn_fg_iou_thresh, rpn_bg_iou_thresh
        self.box_batch_size_per_image, self.box_positive_fraction = box_batch_size_per_image, box_positive_fraction
        self.box_fg_iou_thresh = box_fg_iou_thresh
        self.box_score_thresh, self.box_nms_thresh = box_score_thresh, box_nms_thresh
        self.detections_per_img = detections_per_img

    # ------------------------------------------------------------------------------- forward

    def features(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``(F_SAM, objectness logits, box deltas)`` of a batch of images ``[N, 3, H, W]``."""
        c4, c5 = self.backbone(x)
        f_cem = self.cem(c4, c5)
        f_rpn, logits, deltas = self.rpn(f_cem)
        return self.sam(f_cem, f_rpn), logits, deltas

    def forward(self, images, targets: Optional[List[Dict[str, Tensor]]] = None):
        x = self._images(images)
        if self.training:
            targets = self._targets(targets, len(x), x)
        elif targets is not None:
            raise ValueError("targets: expected None in eval mode (call model.train() to compute the losses)")
        image_size = tuple(x.shape[-2:])
        f_sam, logits, deltas = self.features(x)
        anchors = self._anchors(tuple(logits.shape[-2:]), x.dtype, x.device)
        # [N, A, H, W] -> [N, H*W*A] and [N, 4A, H, W] -> [N, H*W*A, 4]: the anchors' order
        N = len(x)
        logits = logits.permute(0, 2, 3, 1).reshape(N, -1)
        deltas = deltas.permute(0, 2, 3, 1).reshape(N, -1, 4)
        proposals = self._proposals(logits.detach(), deltas.detach(), anchors, image_size)
        if self.training:
            rpn_losses = self._rpn_losses(logits, deltas, anchors, targets)
            proposals, labels, box_targets = self._sample_proposals(proposals, targets)
            labels, box_targets = torch.cat(labels), torch.cat(box_targets)
            hidden = self.head.hidden(f_sam, self._rois(proposals))
            if self.backend == "torch":  # torchvision's head: every class's deltas, then the labelled ones
                pos = torch.nonzero(labels > 0).flatten()
                deltas = self.head.reg(hidden).reshape(len(labels), -1, 4)[pos, labels[pos]]
                class_logits = self.head.cls(hidden)
            else:  # the labelled deltas alone
                class_logits, pos, deltas = self.head.labelled_outputs(hidden, labels)
            return {**rpn_losses, **self._rcnn_losses(class_logits, deltas, labels, box_targets[pos])}
        if self.backend == "torch":  # torchvision's post-processing: every class's box, then the scores' filter
            class_logits, box_deltas = self.head(f_sam, self._rois(proposals))
            return self._detections(class_logits, box_deltas, proposals, image_size)
        return self._scored_detections(self.head.hidden(f_sam, self._rois(proposals)), proposals, image_size)

    def _anchors(self, size: Tuple[int, int], dtype, device) -> Tensor:
        """The anchors of a feature map size, computed once per (size, dtype, device) and shared by
        the calls (they read them only)."""
        key = (size, dtype, device)
        cache = self.__dict__.setdefault("_anchor_cache", {})
        if key not in cache:
            if len(cache) >= 8:  # a few image sizes at most: forget the oldest
                del cache[next(iter(cache))]
            cache[key] = box_ops.anchors(size, STRIDE, ANCHOR_AREAS, ANCHOR_RATIOS, dtype, device)
        return cache[key]

    # ------------------------------------------------------------------------------- inputs

    def _images(self, images) -> Tensor:
        if isinstance(images, (list, tuple)):
            if not images or not all(isinstance(i, Tensor) and i.dim() == 3 for i in images):
                raise TypeError("images: expected a tensor [N, 3, H, W] or a non-empty list of tensors [3, H, W]")
            if len({tuple(i.shape) for i in images}) != 1:
                raise ValueError(f"images: expected images of one size, got {sorted({tuple(i.shape) for i in images})}")
            images = torch.stack(list(images))
        if not isinstance(images, Tensor):
            raise TypeError(f"images: expected a tensor [N, 3, H, W] or a list of [3, H, W], got {type(images).__name__}")
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] < 1:
            raise ValueError(f"images: expected [N, 3, H, W] with N >= 1, got {list(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"images: expected a float tensor, got {images.dtype}")
        if images.shape[2] < 32 or images.shape[3] < 32:
            raise ValueError(f"images: expected H and W of at least 32 pixels, got {list(images.shape[2:])}")
        return images

    def _targets(self, targets, N: int, x: Tensor) -> List[Dict[str, Tensor]]:
        if targets is None:
            raise ValueError("targets: expected one dict per image in training mode (call model.eval() to detect)")
        if not isinstance(targets, (list, tuple)) or len(targets) != N:
            raise ValueError(f"targets: expected a list of {N} dicts (one per image), got "
                             f"{type(targets).__name__} of length {len(targets) if hasattr(targets, '__len__') else '?'}")
        out = []
        for i, t in enumerate(targets):
            if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
                raise ValueError(f"targets[{i}]: expected a dict with 'boxes' and 'labels'")
            b, lab = torch.as_tensor(t["boxes"]), torch.as_tensor(t["labels"])
            if b.dim() != 2 or b.shape[1] != 4 or not b.is_floating_point():
                raise ValueError(f"targets[{i}]['boxes']: expected a float tensor [M, 4], got {b.dtype} {list(b.shape)}")
            if lab.shape != (b.shape[0],) or lab.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"targets[{i}]['labels']: expected int64 [{b.shape[0]}], got {lab.dtype} "
                                 f"{list(lab.shape)}")
            if lab.numel() and (int(lab.min()) < 1 or int(lab.max()) > self.num_classes):
                raise ValueError(f"targets[{i}]['labels']: expected values in 1..{self.num_classes}, got "
                                 f"{int(lab.min())}..{int(lab.max())}")
            if b.numel() and not (torch.isfinite(b).all() and (b[:, 2:] > b[:, :2]).all()):
                raise ValueError(f"targets[{i}]['boxes']: expected finite boxes with x2 > x1 and y2 > y1")
            out.append({"boxes": b.to(x.dtype).to(x.device), "labels": lab.to(torch.int64).to(x.device)})
        return out

    def _nms(self, boxes: Tensor, scores: Tensor, groups: Optional[Tensor], iou_threshold: float,
             max_output: int) -> Tensor:
        """The first max_output boxes NMS keeps (within each group): torchvision's NMS on the torch
        backend, nimbleops' on the nimbleops one (the same boxes; its visit stops at max_output)."""
        if self.backend == "torch":
            keep = (box_ops.nms(boxes, scores, iou_threshold) if groups is None
                    else box_ops.batched_nms(boxes, scores, groups, iou_threshold))
            return keep[:max_output]
        if groups is None:
            return vision.nms(boxes, scores, iou_threshold, max_output=max_output)
        return vision.batched_nms(boxes, scores, groups, iou_threshold, max_output=max_output)

    @staticmethod
    def _rois(proposals: List[Tensor]) -> Tensor:
        index = torch.cat([torch.full((len(p), 1), i, dtype=p.dtype, device=p.device) for i, p in enumerate(proposals)])
        return torch.cat((index, torch.cat(proposals)), 1)

    # ------------------------------------------------------------------------------- RPN

    def _proposals(self, logits: Tensor, deltas: Tensor, anchors: Tensor, image_size) -> List[Tensor]:
        """Per image: the top ``pre_nms`` anchors by objectness, decoded, clipped, tiny boxes dropped,
        NMS, the first ``post_nms`` kept (no gradient flows through proposals)."""
        mode = 0 if self.training else 1
        pre, post = self.rpn_pre_nms_top_n[mode], self.rpn_post_nms_top_n[mode]
        out = []
        for scores, d in zip(logits, deltas):
            top = scores.topk(min(pre, scores.numel())).indices
            b = box_ops.clip(box_ops.decode(d[top], anchors[top], RPN_BOX_WEIGHTS), image_size)
            s = scores[top]
            big = box_ops.at_least(b, 1e-3)
            b, s = b[big], s[big]
            keep = self._nms(b, s, None, self.rpn_nms_thresh, post)
            out.append(b[keep])
        return out

    def _rpn_losses(self, logits: Tensor, deltas: Tensor, anchors: Tensor, targets) -> Dict[str, Tensor]:
        labels, regression = [], []
        for t in targets:
            gt = t["boxes"]
            lab = torch.zeros(len(anchors), dtype=logits.dtype, device=logits.device)
            reg = torch.zeros_like(anchors)
            if len(gt):
                iou = box_ops.box_iou(anchors, gt)
                best, matched = iou.max(1)
                lab = torch.full_like(lab, -1.0)
                lab[best < self.rpn_bg_iou_thresh] = 0.0
                lab[best >= self.rpn_fg_iou_thresh] = 1.0
                # each ground truth's best anchors (ties included) are positive, however low their IoU
                best_per_gt = iou.max(0).values
                low_quality = ((iou == best_per_gt[None]) & (best_per_gt[None] > 0)).any(1)
                lab[low_quality] = 1.0
                reg = box_ops.encode(gt[matched], anchors, RPN_BOX_WEIGHTS)
            labels.append(lab)
            regression.append(reg)
        objectness, box = [], []
        total = 0
        for i, (lab, reg) in enumerate(zip(labels, regression)):
            pos, neg = _sample(lab == 1, lab == 0, self.rpn_batch_size_per_image, self.rpn_positive_fraction)
            sampled = torch.cat((pos, neg))
            total += len(sampled)
            objectness.append(F.binary_cross_entropy_with_logits(logits[i, sampled], lab[sampled], reduction="sum"))
            box.append(F.smooth_l1_loss(deltas[i, pos], reg[pos], beta=1 / 9, reduction="sum"))
        total = max(total, 1)
        return {"loss_objectness": torch.stack(objectness).sum() / total, "loss_rpn_box_reg": torch.stack(box).sum() / total}

    # ------------------------------------------------------------------------------- R-CNN

    def _sample_proposals(self, proposals: List[Tensor], targets):
        sampled, labels, box_targets = [], [], []
        for p, t in zip(proposals, targets):
            gt, gt_labels = t["boxes"], t["labels"]
            p = torch.cat((p, gt))
            if len(gt):
                best, matched = box_ops.box_iou(p, gt).max(1)
                lab = torch.where(best >= self.box_fg_iou_thresh, gt_labels[matched], torch.zeros_like(matched))
                target = box_ops.encode(gt[matched], p, RCNN_BOX_WEIGHTS)
            else:
                lab = torch.zeros(len(p), dtype=torch.int64, device=p.device)
                target = torch.zeros_like(p)
            pos, neg = _sample(lab > 0, lab == 0, self.box_batch_size_per_image, self.box_positive_fraction)
            keep = torch.cat((pos, neg))
            sampled.append(p[keep])
            labels.append(lab[keep])
            box_targets.append(target[keep])
        return sampled, labels, box_targets

    @staticmethod
    def _rcnn_losses(class_logits: Tensor, deltas: Tensor, labels: Tensor, targets: Tensor) -> Dict[str, Tensor]:
        """Cross-entropy over all sampled RoIs; smooth L1 of the positives' deltas of their label
        (``deltas``, ``targets``: ``[P, 4]``) over the number of sampled RoIs."""
        loss_cls = F.cross_entropy(class_logits, labels)
        loss_box = F.smooth_l1_loss(deltas, targets, beta=1 / 9, reduction="sum") / max(labels.numel(), 1)
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def _scored_detections(self, hidden: Tensor, proposals: List[Tensor], image_size):
        """:meth:`_detections` computing only what survives the score threshold: the (RoI, class)
        pairs scoring above it are found first, and the box deltas are computed (for the RoIs with
        at least one such class) and decoded for those pairs alone. The detections are the same (to
        rounding: the regression's sums over fewer rows), in the same order."""
        C = self.num_classes + 1
        out = []
        for start, p, scores in self._per_image(self.head.cls(hidden), proposals):
            roi, cls = torch.nonzero(scores > self.box_score_thresh, as_tuple=True)  # row-major: K x class order
            rows, row_of = torch.unique(roi, return_inverse=True)
            d = self.head.reg(hidden[start + rows]).view(len(rows), C, 4)[row_of, cls + 1]
            b = box_ops.clip(box_ops.decode(d, p[roi], RCNN_BOX_WEIGHTS), image_size)
            out.append(self._kept(b, scores[roi, cls], cls + 1, None))
        return out

    def _detections(self, class_logits: Tensor, box_deltas: Tensor, proposals: List[Tensor], image_size):
        C = self.num_classes + 1
        out = []
        for start, p, scores in self._per_image(class_logits, proposals):
            K = len(p)
            d = box_deltas[start:start + K].reshape(K, C, 4)[:, 1:]
            b = box_ops.decode(d.reshape(-1, 4), p[:, None].expand(K, C - 1, 4).reshape(-1, 4), RCNN_BOX_WEIGHTS)
            b = box_ops.clip(b, image_size)
            s = scores.reshape(-1)
            out.append(self._kept(b, s, torch.arange(1, C, device=p.device).repeat(K), s > self.box_score_thresh))
        return out

    @staticmethod
    def _per_image(class_logits: Tensor, proposals: List[Tensor]):
        """Per image: (its first row among the RoIs of all images, its proposals, the softmax
        scores of its RoIs for the classes without the background [K, num_classes])."""
        scores_all = F.softmax(class_logits, -1)
        start = 0
        for p in proposals:
            yield start, p, scores_all[start:start + len(p), 1:]
            start += len(p)

    def _kept(self, boxes: Tensor, scores: Tensor, labels: Tensor, keep: Optional[Tensor]) -> Dict[str, Tensor]:
        """One image's detections: the candidates kept by ``keep`` (None: all) that are at least
        0.01 px wide and high, then per-class NMS, the first ``detections_per_img``."""
        big = box_ops.at_least(boxes, 1e-2)
        keep = big if keep is None else keep & big
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = self._nms(boxes, scores, labels, self.box_nms_thresh, self.detections_per_img)
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
