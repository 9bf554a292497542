"""``optimize_for_inference(model)``: an eval-only copy of a ThunderNet or SNet (either backend)
running on nimbleops with

- every batch norm folded into the convolution before it (``w' = w * s``, ``b' = (b - mean) * s +
  beta`` with ``s = gamma / sqrt(var + eps)``, computed in float64);
- every ReLU fused into the pointwise convolution before it (the kernel's epilogue);
- conv1, its ReLU and the max pool in one op (:func:`nimbleops.vision.conv2d_relu_max_pool`) and
  each stage of ShuffleNetV2 units run in one call (:func:`nimbleops.vision.shufflenet_stage`: no
  concatenation, shuffle or split pass; the units read and write channel planes where they lie) on
  CPU tensors outside autograd and capture; elsewhere (CUDA, an input that requires grad,
  ``torch.compile`` / ``torch.export``) unit by unit, each unit's concatenation, shuffle and the
  next unit's split in one pass (``concat_shuffle_split``), and the stem on torch's channels_last
  ops. Both compute the same values (the stem's to rounding).

The copy computes the eval model's function (equal to float32 rounding); its ``backbone(x)`` still
returns ``(c4, c5)``. It cannot be put back in training mode. Its parameters may be changed in place
(``load_state_dict``) and the copy moved (``.to``); its modules and parameters are not meant to be
replaced (the stages hold the parameters they were built with: :class:`nimbleops.vision.ShuffleStage`).
"""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .. import _arrays as ar
from .. import nn as nno
from .. import vision
from .snet import SNet, ShuffleUnit
from .thundernet import CEM, RPN, SAM, ThunderNet


def _folded(conv: nn.Module, bn: Optional[nn.BatchNorm2d]) -> Tuple[Tensor, Tensor]:
    """(weight, bias) of ``bn(conv(x))`` as one convolution, in the convolution's dtype."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is not None:
        if not bn.track_running_stats or bn.running_mean is None:
            raise ValueError("model: a batch norm without running statistics cannot be folded")
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps) if bn.affine else \
            1 / torch.sqrt(bn.running_var.double() + bn.eps)
        shift = bn.bias.detach().double() if bn.affine else torch.zeros_like(scale)
        w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
        b = (b - bn.running_mean.double()) * scale + shift
    dtype = conv.weight.dtype
    return w.to(dtype), b.to(dtype)


def _kernel_size(conv: nn.Module) -> int:
    k = conv.kernel_size
    return k[0] if isinstance(k, tuple) else k


def fused_pointwise(conv: nn.Module, bn: Optional[nn.BatchNorm2d], relu: bool) -> nno.PointwiseConv2d:
    w, b = _folded(conv, bn)
    m = nno.PointwiseConv2d(w.shape[1], w.shape[0], activation="relu" if relu else None, dtype=w.dtype)
    with torch.no_grad():
        m.weight.copy_(w.reshape(m.weight.shape))
        m.bias.copy_(b)
    return m


def fused_depthwise(conv: nn.Module, bn: Optional[nn.BatchNorm2d]) -> nno.DepthwiseConv2d:
    w, b = _folded(conv, bn)
    k, stride = _kernel_size(conv), conv.stride[0] if isinstance(conv.stride, tuple) else conv.stride
    C = w.shape[0]
    m = nno.DepthwiseConv2d(C, C, k, stride, k // 2, dtype=w.dtype)
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(b)
    return m


class FusedUnit(ShuffleUnit):
    """A ShuffleNetV2 unit with its batch norms folded and its ReLUs fused: ``branch1`` (stride 2:
    depthwise, pointwise + ReLU) and ``branch2`` (pointwise + ReLU, depthwise, pointwise + ReLU);
    the unit's forward on nimbleops."""

    def __init__(self, unit: ShuffleUnit):
        nn.Module.__init__(self)
        self.stride, self.backend = unit.stride, "nimbleops"
        if unit.branch1 is not None:
            b1 = unit.branch1
            self.branch1 = nn.Sequential(fused_depthwise(b1[0], b1[1]), fused_pointwise(b1[2], b1[3], True))
        else:
            self.branch1 = None
        b2 = unit.branch2
        self.branch2 = nn.Sequential(fused_pointwise(b2[0], b2[1], True), fused_depthwise(b2[3], b2[4]),
                                     fused_pointwise(b2[5], b2[6], True))

    def weights(self) -> vision.ShuffleUnitWeights:
        """The unit's folded weights, as :func:`nimbleops.vision.shufflenet_stage` takes them."""
        pw1, dw, pw2 = self.branch2
        b1 = {}
        if self.branch1 is not None:
            d, p = self.branch1
            b1 = dict(branch1_dw_weight=d.weight, branch1_dw_bias=d.bias, branch1_pw_weight=p.weight,
                      branch1_pw_bias=p.bias)
        return vision.ShuffleUnitWeights(pw1.weight, pw1.bias, dw.weight, dw.bias, pw2.weight, pw2.bias, self.stride,
                                         **b1)


class InferenceSNet(SNet):
    """SNet with folded batch norms and fused ReLUs, SNet's forward on nimbleops: ``forward(x)``
    returns ``(c4, c5)``."""

    def __init__(self, net: SNet):
        nn.Module.__init__(self)
        self.backend = "nimbleops"
        conv, bn = net.conv1[0], net.conv1[1]
        w, b = _folded(conv, bn)
        self.conv1 = nn.Sequential(nn.Conv2d(3, w.shape[0], 3, 2, 1, dtype=w.dtype), nn.ReLU(inplace=True))
        with torch.no_grad():
            self.conv1[0].weight.copy_(w)
            self.conv1[0].bias.copy_(b)
        self.conv1.to(memory_format=torch.channels_last)
        self.maxpool = net.maxpool
        for name in ("stage2", "stage3", "stage4"):
            setattr(self, name, nn.Sequential(*[FusedUnit(u) for u in getattr(net, name)]))
        self.conv5 = fused_pointwise(net.conv5[0], net.conv5[1], True) if net.conv5 is not None else None
        self.variant, self.c4_channels, self.c5_channels = net.variant, net.c4_channels, net.c5_channels
        self.stages = [vision.ShuffleStage([u.weights() for u in getattr(self, name)])
                       for name in ("stage2", "stage3", "stage4")]

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        weight = self.stage2[0].branch2[0].weight
        if not (type(x) is Tensor and x.device.type == "cpu" and weight.device.type == "cpu"
                and x.dtype == weight.dtype and not ar.needs_torch_op(x)):
            return super().forward(x)  # unit by unit: CUDA, autograd through x, capture
        conv, pool = self.conv1[0], self.maxpool
        x = vision.conv2d_relu_max_pool(x, conv.weight, conv.bias, conv.stride[0], conv.padding[0],
                                        pool_kernel_size=pool.kernel_size, pool_stride=pool.stride,
                                        pool_padding=pool.padding)
        stage2, stage3, stage4 = self.stages
        c4 = stage3(stage2(x))
        c5 = stage4(c4)
        if self.conv5 is not None:
            c5 = self.conv5(c5)
        return c4, c5


class _InferenceCEM(CEM):
    """CEM over its 1x1 convolutions as nimbleops modules, the sums done in place: the 2x nearest
    upsample of conv5's output is added to each of the four strided views of conv4's output it
    covers (no upsampled copy), and the global context, a vector per image, as conv4's bias for a
    single image (else added after). Other sizes take CEM's forward."""

    def __init__(self, cem: CEM):
        nn.Module.__init__(self)
        self.conv4 = fused_pointwise(cem.conv4, None, False)
        self.conv5 = fused_pointwise(cem.conv5, None, False)
        self.conv_glb = fused_pointwise(cem.conv_glb, None, False)

    def forward(self, c4: Tensor, c5: Tensor) -> Tensor:
        N, _, H, W = c4.shape
        h, w = c5.shape[-2:]
        if (H, W) != (2 * h, 2 * w):
            return super().forward(c4, c5)
        g = self.conv_glb(c5.mean((2, 3), keepdim=True))
        if N == 1:
            a = vision.pointwise_conv2d(c4, self.conv4.weight, self.conv4.bias + g.reshape(-1))
        else:
            a = self.conv4(c4).add_(g)
        b = self.conv5(c5)
        for i in (0, 1):  # (torch's broadcast add over a 6-d view takes longer than the four)
            for j in (0, 1):
                a[:, :, i::2, j::2].add_(b)
        return a


class _InferenceRPN(nn.Module):
    """The RPN with its objectness and box-delta 1x1s as one (their weights stacked): one pass over
    F_RPN, and a GEMM of 125 rows instead of one of 25, which fills the register blocks poorly."""

    def __init__(self, rpn: RPN):
        super().__init__()
        self.dw = fused_depthwise(rpn.dw, None)
        self.conv = fused_pointwise(rpn.conv, None, True)
        self.num_anchors = rpn.cls.out_channels
        self.heads = nno.PointwiseConv2d(rpn.cls.in_channels, rpn.cls.out_channels + rpn.reg.out_channels,
                                         dtype=rpn.cls.weight.dtype)
        with torch.no_grad():
            self.heads.weight.copy_(torch.cat((rpn.cls.weight, rpn.reg.weight)).reshape(self.heads.weight.shape))
            self.heads.bias.copy_(torch.cat((rpn.cls.bias, rpn.reg.bias)))

    def forward(self, x: Tensor):
        f = self.conv(self.dw(x))
        heads = self.heads(f)
        return f, heads[:, :self.num_anchors], heads[:, self.num_anchors:]


class _InferenceSAM(nn.Module):
    def __init__(self, sam: SAM):
        super().__init__()
        self.conv = fused_pointwise(sam.conv, sam.bn, False)

    def forward(self, f_cem: Tensor, f_rpn: Tensor) -> Tensor:
        return torch.sigmoid_(self.conv(f_rpn)).mul_(f_cem)


def _eval_only(self, mode: bool = True):
    if mode:
        raise RuntimeError("this model was made by optimize_for_inference and runs in eval mode only "
                           "(its batch norms are folded); train the original model instead")
    return nn.Module.train(self, False)


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """An eval-only copy of ``model`` (a :class:`ThunderNet` or :class:`SNet`, either backend) with
    folded batch norms, fused ReLUs and single-pass shuffles; see the module docstring. The
    original model is left unchanged."""
    if isinstance(model, InferenceSNet) or isinstance(getattr(model, "backbone", None), InferenceSNet):
        raise TypeError("model: already made by optimize_for_inference (its batch norms are folded)")
    if isinstance(model, SNet):
        out = InferenceSNet(model)
    elif isinstance(model, ThunderNet):
        out = copy.deepcopy(model)
        out.backbone = InferenceSNet(model.backbone)
        out.cem = _InferenceCEM(model.cem)
        out.rpn = _InferenceRPN(model.rpn)
        out.sam = _InferenceSAM(model.sam)
        head = out.head
        if not isinstance(head.ps_roi_align, nno.PSRoIAlign):
            p = head.ps_roi_align
            head.ps_roi_align = nno.PSRoIAlign(p.output_size, p.spatial_scale, p.sampling_ratio)
        out.backend = "nimbleops"
    else:
        raise TypeError(f"model: expected a nimbleops.models ThunderNet or SNet, got {type(model).__name__}")
    out.eval()
    out.train = _eval_only.__get__(out)
    for p in out.parameters():
        p.requires_grad_(False)
    return out
