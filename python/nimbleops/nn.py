"""Drop-in ``torch.nn`` modules over the nimbleops ops (torch must be installed).

Parameters and ``state_dict`` keys match PyTorch's own layers (``DepthwiseConv2d`` loads the
state of an ``nn.Conv2d(C, C*m, k, groups=C)`` unchanged); constructor arguments match PyTorch's
and torchvision's modules.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from . import vision

__all__ = ["DepthwiseConv2d", "PointwiseConv2d", "ChannelShuffle", "BatchNorm2d", "PSRoIAlign", "PSRoIPool",
           "ShuffleV2Stage", "ShuffleV2Stem", "run_shuffle_units", "stem_forward", "convert", "revert",
           "ConversionReport"]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _same_padding(kernel_size, dilation, stride, padding):
    """nn.Conv2d's padding="same" / "valid" as symmetric ints, or a ValueError where "same" would
    need more padding on one side than the other (an even extent), which these modules do not do."""
    if padding == "valid":
        return (0, 0)
    if padding != "same":
        return _pair(padding)
    if stride != (1, 1):
        raise ValueError(f"padding: 'same' needs stride 1 (as in nn.Conv2d), got stride {stride}")
    out = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        if total % 2:
            raise ValueError(f"padding: 'same' with kernel {k} and dilation {d} pads {total} unevenly "
                             f"(nn.Conv2d pads one more on the far side); give an int padding instead")
        out.append(total // 2)
    return tuple(out)


def _zeros_padding(padding_mode):
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode: expected 'zeros' (the only mode these kernels compute), got {padding_mode!r}")


class DepthwiseConv2d(nn.Module):
    """``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
    groups=in_channels, bias)`` computed by :func:`nimbleops.vision.depthwise_conv2d`;
    ``out_channels`` a multiple of ``in_channels`` (the depth multiplier). Same parameters,
    initialisation and state_dict. nn.Conv2d's ``groups`` (must equal ``in_channels``),
    ``padding="same"`` / ``"valid"`` (symmetric only) and ``padding_mode="zeros"`` are accepted."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: Optional[int] = None, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None):
        super().__init__()
        if in_channels < 1 or out_channels % in_channels != 0:
            raise ValueError(f"out_channels: expected a multiple of in_channels = {in_channels}, got {out_channels}")
        if groups is not None and groups != in_channels:
            raise ValueError(f"groups: a depthwise convolution has groups = in_channels = {in_channels}, got {groups}")
        _zeros_padding(padding_mode)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.dilation = _pair(dilation)
        self.padding = _same_padding(self.kernel_size, self.dilation, self.stride, padding)
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(torch.empty((out_channels, 1) + self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return vision.depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}")


class PointwiseConv2d(nn.Module):
    """``nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=bias)`` computed by
    :func:`nimbleops.vision.pointwise_conv2d`, with the optional fused ``activation="relu"`` and
    ``shuffle_groups``. Same parameters (weight ``[Cout, Cin/groups, 1, 1]``), initialisation and
    state_dict. nn.Conv2d's ``kernel_size``, ``stride``, ``padding``, ``dilation`` and
    ``padding_mode`` are accepted with the values a 1x1 convolution has (1, 1, 0 or "same" or
    "valid", 1, "zeros"); others are a ValueError."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True, *,
                 activation: Optional[str] = None, shuffle_groups: Optional[int] = None, kernel_size=1, stride=1,
                 padding=0, dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        for name, value, allowed in (("kernel_size", kernel_size, (1, (1, 1))), ("stride", stride, (1, (1, 1))),
                                     ("padding", padding, (0, (0, 0), "same", "valid")),
                                     ("dilation", dilation, (1, (1, 1)))):
            if (tuple(value) if isinstance(value, list) else value) not in allowed:
                raise ValueError(f"{name}: a pointwise convolution takes {allowed[0]!r}, got {value!r}")
        _zeros_padding(padding_mode)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: expected a divisor of in_channels = {in_channels} and out_channels = "
                             f"{out_channels}, got {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.activation, self.shuffle_groups = activation, shuffle_groups
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(torch.empty((out_channels, in_channels // groups, 1, 1), **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_channels // self.groups)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return vision.pointwise_conv2d(x, self.weight, self.bias, self.groups, activation=self.activation,
                                       shuffle_groups=self.shuffle_groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, groups={self.groups}, bias={self.bias is not None}, "
                f"activation={self.activation}, shuffle_groups={self.shuffle_groups}")


class ChannelShuffle(nn.Module):
    """``nn.ChannelShuffle(groups)`` computed by :func:`nimbleops.vision.channel_shuffle`."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return vision.channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` followed, with ``relu=True``, by a ReLU: in training mode (batch
    statistics) computed by :func:`nimbleops.vision.batch_norm_relu` (two passes over the data
    forward and two backward); in eval mode torch's batch norm with the running statistics, then
    the ReLU. Same parameters, buffers, momentum rules (``momentum=None``: the cumulative average)
    and state_dict as ``nn.BatchNorm2d``."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, relu: bool = False):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.relu = bool(relu)

    def forward(self, x: Tensor) -> Tensor:
        batch_stats = self.training or not self.track_running_stats
        if not (batch_stats and self.affine):
            y = super().forward(x)
            return torch.nn.functional.relu(y) if self.relu else y
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the cumulative moving average, as nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        track = self.training and self.track_running_stats
        return vision.batch_norm_relu(x, self.weight, self.bias, self.running_mean if track else None,
                                      self.running_var if track else None, momentum=momentum, eps=self.eps,
                                      relu=self.relu)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", relu={self.relu}"


class PSRoIAlign(nn.Module):
    """``torchvision.ops.PSRoIAlign(output_size, spatial_scale, sampling_ratio)``; see
    :func:`nimbleops.vision.ps_roi_align` (``aligned``, ``mode`` and ``deterministic`` are extras)."""

    def __init__(self, output_size, spatial_scale: float, sampling_ratio: int, *, aligned: bool = True,
                 mode: str = "avg", deterministic: Optional[bool] = None):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.mode = mode
        self.deterministic = deterministic

    def forward(self, input: Tensor, rois) -> Tensor:
        return vision.ps_roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio,
                                   aligned=self.aligned, mode=self.mode, deterministic=self.deterministic)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, mode={self.mode!r}")


class PSRoIPool(nn.Module):
    """``torchvision.ops.PSRoIPool(output_size, spatial_scale)``; see :func:`nimbleops.vision.ps_roi_pool`."""

    def __init__(self, output_size, spatial_scale: float, *, deterministic: Optional[bool] = None):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.deterministic = deterministic

    def forward(self, input: Tensor, rois) -> Tensor:
        return vision.ps_roi_pool(input, rois, self.output_size, self.spatial_scale, deterministic=self.deterministic)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"



# --------------------------------------------------------------------------- convert / revert


def run_shuffle_units(units, x: Tensor) -> Tensor:
    """ShuffleNetV2 units one after another, as ``nn.Sequential(*units)(x)`` computes them, each
    unit an ``nn.Module`` with ``stride``, ``branch1`` (stride > 1) and ``branch2`` as torchvision's
    ``InvertedResidual``: a stride-1 unit maps ``x`` to ``shuffle(cat(x1, branch2(x2)))`` (``x1, x2``
    its channel halves), a strided one to ``shuffle(cat(branch1(x), branch2(x)))``, the shuffle of
    2 groups. Between units the two halves pass as two arrays
    (:func:`nimbleops.vision.concat_shuffle_split`: one pass for the concatenation, the shuffle and
    the next unit's split, where torch takes a copy for each and the branch a fourth for its strided
    half); one concatenation at the end."""
    a = b = None
    for unit in units:
        if unit.stride == 1:
            if a is None:
                a, b = x.chunk(2, 1)
            a, b = vision.concat_shuffle_split(a, unit.branch2(b))
        else:
            if a is not None:
                x = torch.cat((a, b), 1)
            a, b = vision.concat_shuffle_split(unit.branch1(x), unit.branch2(x))
    return x if a is None else torch.cat((a, b), 1)


class ShuffleV2Stage(nn.Sequential):
    """An ``nn.Sequential`` of ShuffleNetV2 units (torchvision's ``InvertedResidual``, or any unit
    with its ``stride``, ``branch1`` and ``branch2``) computed by :func:`run_shuffle_units`: the same
    function, children and state_dict as the ``nn.Sequential``. :func:`convert` makes one of every
    ``nn.Sequential`` of ``InvertedResidual`` units."""

    def forward(self, x: Tensor) -> Tensor:
        return run_shuffle_units(self, x)


def _plain_max_pool(pool: nn.Module) -> bool:
    return (type(pool) is nn.MaxPool2d and all(type(v) is int for v in (pool.kernel_size, pool.stride, pool.padding))
            and pool.dilation == 1 and not pool.ceil_mode and not pool.return_indices
            and pool.padding <= pool.kernel_size // 2)


def stem_forward(conv: nn.Module, bn: nn.Module, act: nn.Module, pool: nn.Module, x: Tensor) -> Tensor:
    """``pool(act(bn(conv(x))))``, a ShuffleNet stem, returned NCHW-contiguous. conv runs in
    channels_last. In training, with ``bn`` a batch norm with running statistics and a momentum,
    ``act`` its ReLU (an ``nn.ReLU``, or the ``nn.Identity`` after a :class:`BatchNorm2d` with
    ``relu=True``) and ``pool`` an ``nn.MaxPool2d`` over square windows, the last three are one op
    (:func:`nimbleops.vision.batch_norm_relu_max_pool`: the batch norm's output is never stored);
    otherwise torch's channels_last modules (its max pool is vectorised over the channels there,
    its NCHW one is not)."""
    y = conv(x.contiguous(memory_format=torch.channels_last))
    relu = type(act) is nn.ReLU or (type(bn) is BatchNorm2d and bn.relu and type(act) is nn.Identity)
    if (relu and type(bn) in (nn.BatchNorm2d, BatchNorm2d) and bn.training and bn.affine and bn.track_running_stats
            and bn.momentum is not None and _plain_max_pool(pool)):
        bn.num_batches_tracked.add_(1)
        return vision.batch_norm_relu_max_pool(y, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                               kernel_size=pool.kernel_size, stride=pool.stride, padding=pool.padding,
                                               momentum=bn.momentum, eps=bn.eps)
    return pool(act(bn(y))).contiguous()


class ShuffleV2Stem(nn.Sequential):
    """torchvision ShuffleNetV2's ``conv1`` (convolution, batch norm, ReLU) with its max pool as a
    fourth child, computed by :func:`stem_forward`. The pool holds no state, so the state_dict is
    ``conv1``'s. :func:`convert` makes one of a torchvision ``ShuffleNetV2``'s ``conv1`` and
    ``maxpool`` (the latter becomes an ``nn.Identity``), whose forward applies them in turn."""

    def forward(self, x: Tensor) -> Tensor:
        conv, bn, act, pool = self
        return stem_forward(conv, bn, act, pool, x)


@dataclass
class ConversionReport:
    """What :func:`convert` or :func:`revert` did: ``swapped`` lists ``(name, old type, new type)``,
    ``kept`` lists ``(name, type, reason)`` for the candidates it left as they were."""

    swapped: List[Tuple[str, str, str]] = field(default_factory=list)
    kept: List[Tuple[str, str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"swapped {len(self.swapped)} module(s), kept {len(self.kept)} candidate(s)"]
        lines += [f"  swapped {n or '(root)'}: {a} -> {b}" for n, a, b in self.swapped]
        lines += [f"  kept {n or '(root)'} ({t}): {why}" for n, t, why in self.kept]
        return "\n".join(lines)


def _child_name(parent: str, child: str) -> str:
    """The qualified name of a child module (``named_modules``' names; the root's is "")."""
    return f"{parent}.{child}" if parent else child


def _conv_candidate(m: nn.Conv2d) -> Tuple[Optional[type], str]:
    """(the nimbleops module that computes m exactly, or None; the reason when None)."""
    if m.weight.dtype not in (torch.float32, torch.float64):
        return None, f"dtype {m.weight.dtype} (the kernels compute float32 and float64)"
    if m.padding_mode != "zeros":
        return None, f"padding_mode={m.padding_mode!r} (only zero padding is computed)"
    if m.weight.device.type not in ("cpu", "cuda"):
        return None, f"device {m.weight.device.type}"
    k = tuple(m.kernel_size)
    if m.groups == m.in_channels and m.in_channels > 1 and k != (1, 1):
        try:
            _same_padding(k, tuple(m.dilation), tuple(m.stride), m.padding)
        except ValueError as e:
            return None, str(e)
        return DepthwiseConv2d, ""
    if k == (1, 1):
        if tuple(m.stride) != (1, 1):
            return None, f"a 1x1 convolution with stride {tuple(m.stride)} (only stride 1 is computed)"
        if m.padding not in ("same", "valid") and tuple(m.padding) != (0, 0):
            return None, f"a 1x1 convolution with padding {tuple(m.padding)}"
        return PointwiseConv2d, ""
    if m.groups == 1:
        return None, f"a dense {k[0]}x{k[1]} convolution (torch's own is used)"
    return None, f"a grouped {k[0]}x{k[1]} convolution with groups={m.groups} of {m.in_channels} channels"


def _torchvision_psroi():
    try:
        from torchvision.ops import PSRoIAlign as TvAlign, PSRoIPool as TvPool  # here: torchvision is optional

        return TvAlign, TvPool
    except Exception:  # noqa: BLE001 - torchvision absent or not importable: nothing of it to swap
        return None, None


def _share(new: nn.Module, old: nn.Module) -> nn.Module:
    """The new module takes the old one's Parameter objects (tied weights and optimizer state stay)
    and its training flag."""
    new.weight = old.weight
    new.bias = old.bias
    new.train(old.training)
    return new


def _to_nimbleops(m: nn.Module, name: str, report: ConversionReport) -> Optional[nn.Module]:
    TvAlign, TvPool = _torchvision_psroi()
    if isinstance(m, nn.Conv2d) and type(m) is nn.Conv2d:
        cls, why = _conv_candidate(m)
        if cls is None:
            report.kept.append((name, "Conv2d", why))
            return None
        factory = dict(device=m.weight.device, dtype=m.weight.dtype)
        if cls is DepthwiseConv2d:
            new = DepthwiseConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                                  bias=m.bias is not None, **factory)
        else:
            new = PointwiseConv2d(m.in_channels, m.out_channels, m.groups, m.bias is not None, **factory)
        report.swapped.append((name, "Conv2d", type(new).__qualname__))
        return _share(new, m)
    if type(m) is nn.ChannelShuffle:
        report.swapped.append((name, "ChannelShuffle", "nimbleops.nn.ChannelShuffle"))
        return ChannelShuffle(m.groups)
    if TvAlign is not None and type(m) is TvAlign:
        report.swapped.append((name, "torchvision.ops.PSRoIAlign", "nimbleops.nn.PSRoIAlign"))
        return PSRoIAlign(m.output_size, m.spatial_scale, m.sampling_ratio)
    if TvPool is not None and type(m) is TvPool:
        report.swapped.append((name, "torchvision.ops.PSRoIPool", "nimbleops.nn.PSRoIPool"))
        return PSRoIPool(m.output_size, m.spatial_scale)
    return None


def _to_torch(m: nn.Module, name: str, report: ConversionReport) -> Optional[nn.Module]:
    if isinstance(m, DepthwiseConv2d):
        new = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        groups=m.in_channels, bias=m.bias is not None, device=m.weight.device, dtype=m.weight.dtype)
    elif isinstance(m, PointwiseConv2d):
        if m.activation is not None or m.shuffle_groups is not None:
            report.kept.append((name, "PointwiseConv2d", "a fused ReLU or shuffle has no single torch module"))
            return None
        new = nn.Conv2d(m.in_channels, m.out_channels, 1, groups=m.groups, bias=m.bias is not None,
                        device=m.weight.device, dtype=m.weight.dtype)
    elif isinstance(m, ChannelShuffle):
        report.swapped.append((name, "ChannelShuffle", "torch.nn.ChannelShuffle"))
        return nn.ChannelShuffle(m.groups)
    elif isinstance(m, (PSRoIAlign, PSRoIPool)):
        TvAlign, TvPool = _torchvision_psroi()
        if TvAlign is None:
            report.kept.append((name, type(m).__name__, "torchvision is not importable"))
            return None
        if isinstance(m, PSRoIAlign):
            if not m.aligned or m.mode != "avg":
                report.kept.append((name, "PSRoIAlign", "aligned=False or mode='max' has no torchvision module"))
                return None
            new = TvAlign(m.output_size, m.spatial_scale, m.sampling_ratio)
        else:
            new = TvPool(m.output_size, m.spatial_scale)
        report.swapped.append((name, type(m).__name__, type(new).__module__ + "." + type(new).__name__))
        return new
    else:
        return None
    report.swapped.append((name, type(m).__name__, "torch.nn.Conv2d"))
    return _share(new, m)


def _batch_norm_like(old: nn.BatchNorm2d, cls, **kwargs) -> nn.Module:
    """A batch norm of class cls with old's settings, Parameters and buffers (the same objects)."""
    new = cls(old.num_features, old.eps, old.momentum, old.affine, old.track_running_stats,
              device=old.running_mean.device if old.running_mean is not None else None, **kwargs)
    for name in ("weight", "bias"):
        setattr(new, name, getattr(old, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(new, name, getattr(old, name))
    new.train(old.training)
    return new


def _fuse_batch_norms(root: nn.Module, rep: ConversionReport) -> None:
    """In every nn.Sequential: an nn.BatchNorm2d followed by an nn.ReLU becomes a
    BatchNorm2d(relu=True) followed by an nn.Identity (the same state_dict keys), and a lone
    nn.BatchNorm2d a BatchNorm2d(relu=False)."""
    for name, seq in list(root.named_modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for i, (child_name, child) in enumerate(children):
            if type(child) is not nn.BatchNorm2d:
                continue
            full = _child_name(name, child_name)
            relu = i + 1 < len(children) and type(children[i + 1][1]) is nn.ReLU
            setattr(seq, child_name, _batch_norm_like(child, BatchNorm2d, relu=relu))
            rep.swapped.append((full, "BatchNorm2d", f"nimbleops.nn.BatchNorm2d(relu={relu})"))
            if relu:
                relu_name = children[i + 1][0]
                setattr(seq, relu_name, nn.Identity())
                rep.swapped.append((_child_name(name, relu_name), "ReLU", "Identity (fused)"))


def _unfuse_batch_norms(root: nn.Module, rep: ConversionReport) -> None:
    """The inverse of :func:`_fuse_batch_norms`."""
    for name, seq in list(root.named_modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for i, (child_name, child) in enumerate(children):
            if not isinstance(child, BatchNorm2d):
                continue
            full = _child_name(name, child_name)
            if child.relu and not (i + 1 < len(children) and type(children[i + 1][1]) is nn.Identity):
                rep.kept.append((full, "BatchNorm2d", "a fused ReLU with no Identity after it to become the ReLU"))
                continue
            setattr(seq, child_name, _batch_norm_like(child, nn.BatchNorm2d))
            rep.swapped.append((full, "BatchNorm2d", "torch.nn.BatchNorm2d"))
            if child.relu:
                relu_name = children[i + 1][0]
                setattr(seq, relu_name, nn.ReLU(inplace=True))
                rep.swapped.append((_child_name(name, relu_name), "Identity", "torch.nn.ReLU"))


def _torchvision_shufflenet():
    try:
        from torchvision.models.shufflenetv2 import InvertedResidual, ShuffleNetV2  # here: torchvision is optional

        return ShuffleNetV2, InvertedResidual
    except Exception:  # noqa: BLE001 - torchvision absent or not importable: nothing of it to swap
        return None, None


def _float_parameters(m: nn.Module) -> bool:
    return all(p.dtype in (torch.float32, torch.float64) for p in m.parameters())


def _fuse_shufflenet(root: nn.Module, rep: ConversionReport) -> None:
    """Every nn.Sequential of torchvision InvertedResidual units becomes a ShuffleV2Stage (the
    same children), and a torchvision ShuffleNetV2's conv1 and max pool one ShuffleV2Stem (its
    forward applies conv1, then maxpool; the maxpool's place an nn.Identity)."""
    Net, Unit = _torchvision_shufflenet()
    if Net is None:
        return
    for name, m in list(root.named_modules()):
        for child_name, child in list(m.named_children()):
            full = _child_name(name, child_name)
            if type(child) is nn.Sequential and len(child) and all(type(u) is Unit for u in child):
                if not _float_parameters(child):
                    rep.kept.append((full, "Sequential of InvertedResidual", "parameters other than float32/float64"))
                    continue
                setattr(m, child_name, ShuffleV2Stage(*child))
                rep.swapped.append((full, "Sequential of InvertedResidual", "nimbleops.nn.ShuffleV2Stage"))
        if type(m) is Net and type(m.conv1) is not ShuffleV2Stem:  # (not converted already)
            conv1, pool = m.conv1, m.maxpool
            if not (type(conv1) is nn.Sequential and len(conv1) == 3 and type(pool) is nn.MaxPool2d):
                rep.kept.append((name, "ShuffleNetV2",
                                 "conv1 is not (conv, batch norm, ReLU) or maxpool not a MaxPool2d"))
                continue
            m.conv1, m.maxpool = ShuffleV2Stem(*conv1, pool), nn.Identity()
            rep.swapped.append((_child_name(name, "conv1"), "Sequential", "nimbleops.nn.ShuffleV2Stem"))
            rep.swapped.append((_child_name(name, "maxpool"), "MaxPool2d", "Identity (in conv1)"))


def _unfuse_shufflenet(root: nn.Module, rep: ConversionReport) -> None:
    """The inverse of :func:`_fuse_shufflenet`."""
    for name, m in list(root.named_modules()):
        for child_name, child in list(m.named_children()):
            full = _child_name(name, child_name)
            if type(child) is ShuffleV2Stage:
                setattr(m, child_name, nn.Sequential(*child))
                rep.swapped.append((full, "ShuffleV2Stage", "torch.nn.Sequential"))
            elif type(child) is ShuffleV2Stem:
                if type(getattr(m, "maxpool", None)) is not nn.Identity:
                    rep.kept.append((full, "ShuffleV2Stem",
                                     "no nn.Identity beside it (maxpool) to become its max pool"))
                    continue
                setattr(m, child_name, nn.Sequential(*child[:3]))
                m.maxpool = child[3]
                rep.swapped.append((full, "ShuffleV2Stem", "torch.nn.Sequential"))
                rep.swapped.append((_child_name(name, "maxpool"), "Identity", type(child[3]).__name__))


def _replace(module: nn.Module, swap, inplace: bool, report: bool, passes=()):
    root = module if inplace else copy.deepcopy(module)
    rep = ConversionReport()
    top = swap(root, "", rep)
    if top is not None:
        root = top
    else:
        for name, m in list(root.named_modules()):
            for child_name, child in list(m.named_children()):
                full = _child_name(name, child_name)
                new = swap(child, full, rep)
                if new is not None:
                    setattr(m, child_name, new)
        for rewrite in passes:  # then the rewrites that look at several modules together
            rewrite(root, rep)
    return (root, rep) if report else root


def convert(module: nn.Module, inplace: bool = False, report: bool = False):
    """Replace, in any ``torch.nn.Module``, the modules nimbleops computes exactly by nimbleops
    modules with the same parameters (the same Parameter objects) and state_dict:

    - ``nn.Conv2d`` with ``groups == in_channels > 1`` (depthwise, any depth multiplier) ->
      :class:`DepthwiseConv2d`; a 1x1 ``nn.Conv2d`` at stride 1 (any groups) -> :class:`PointwiseConv2d`;
    - ``nn.ChannelShuffle`` -> :class:`ChannelShuffle`;
    - ``torchvision.ops.PSRoIAlign`` / ``PSRoIPool`` -> :class:`PSRoIAlign` / :class:`PSRoIPool`;
    - in an ``nn.Sequential``, ``nn.BatchNorm2d`` followed by ``nn.ReLU`` -> :class:`BatchNorm2d`
      with ``relu=True`` followed by ``nn.Identity`` (same state_dict keys), and a lone
      ``nn.BatchNorm2d`` -> :class:`BatchNorm2d`;
    - an ``nn.Sequential`` of torchvision's ``InvertedResidual`` (ShuffleNetV2 units) ->
      :class:`ShuffleV2Stage` (the same children), and a torchvision ``ShuffleNetV2``'s ``conv1``
      and ``maxpool`` -> :class:`ShuffleV2Stem` and ``nn.Identity`` (same state_dict keys).

    It leaves the rest as it is, including convolutions it does not reproduce exactly (dtypes other
    than float32 / float64, ``padding_mode`` other than zeros, uneven ``padding="same"``, strided
    1x1, dense or grouped k x k). ``inplace=False`` converts a deep copy. ``report=True`` returns
    ``(module, ConversionReport)`` saying what was swapped and why the other candidates were kept.
    :func:`revert` undoes it."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    return _replace(module, _to_nimbleops, inplace, report, (_fuse_batch_norms, _fuse_shufflenet))


def revert(module: nn.Module, inplace: bool = False, report: bool = False):
    """Undo :func:`convert`: nimbleops modules back to ``nn.Conv2d``, ``nn.ChannelShuffle``,
    ``nn.BatchNorm2d`` (+ ``nn.ReLU`` in the Identity's place), ``nn.Sequential`` (the stages and
    the stem, its max pool back in the ``maxpool`` beside it) and torchvision's PSRoI modules, with
    the same parameters. A :class:`PointwiseConv2d` with a fused
    ReLU or shuffle (which no single torch module computes) is kept and reported."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    return _replace(module, _to_torch, inplace, report, (_unfuse_shufflenet, _unfuse_batch_norms))
