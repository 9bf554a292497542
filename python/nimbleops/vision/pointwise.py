"""Pointwise (1x1) convolution: the channel-mixing GEMM of MobileNet / ShuffleNet blocks, grouped,
with a fused ReLU and an optionally channel-shuffled output.

numpy arrays or torch tensors, float32 or float64, on the CPU (a CUDA kernel is compiled but
unrun; see the README). channels_last inputs are converted to NCHW and the output is returned
channels_last. The core is a register-blocked GEMM micro-kernel of our own: no BLAS dependency.
With torch tensors the op is a custom op with autograd (input, weight, bias), usable under
``torch.compile``; the CPU backward is deterministic and independent of the thread count.
"""
from __future__ import annotations

from typing import Any, Optional

from .. import _C
from .. import _arrays as ar
from .._arrays import Array
from ._pointwise_kernel import run_forward


def pointwise_conv2d(x: Array, weight: Array, bias: Array = None, groups: int = 1, *, activation: Optional[str] = None,
                     shuffle_groups: Optional[int] = None) -> Any:
    """1x1 convolution (+ ReLU) (+ channel shuffle of the output): ``y[n, co] = bias[co] +
    sum_ci weight[co, ci] x[n, g*Cin/groups + ci]`` over the input channels of co's group
    ``g = co // (Cout/groups)``, then ``relu`` (``activation="relu"``), then output channel co
    written at ``(co % (Cout/s)) * s + co // (Cout/s)`` with ``s = shuffle_groups`` (torch's
    ``channel_shuffle(y, s)``, without its memory pass).

    Args:
        x: ``[N, Cin, H, W]``.
        weight: ``[Cout, Cin/groups, 1, 1]`` or ``[Cout, Cin/groups]``, x's dtype.
        bias: ``[Cout]`` or None.
        groups: divides Cin and Cout.
        activation: None or ``"relu"``.
        shuffle_groups: None, or a divisor of Cout.

    Returns:
        ``[N, Cout, H, W]``, in x's memory format.
    """
    out = ar.plain_call(_C.vision.pointwise_plain, x, weight, bias, groups, activation, shuffle_groups)
    if out is not None:
        return out
    return _pointwise_conv2d(x, weight, bias, groups, activation, shuffle_groups)


@ar.resolving
def _pointwise_conv2d(x, weight, bias, groups, activation, shuffle_groups):
    """pointwise_conv2d's general path: conversions, every check and its error."""
    groups = ar.check_int(groups, "groups", minimum=1)
    if activation not in (None, "relu"):
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    if shuffle_groups is not None:
        shuffle_groups = ar.check_int(shuffle_groups, "shuffle_groups", minimum=1)
    kind = ar.image_batch(x, "x", "pointwise_forward_cuda")
    Cin = int(x.shape[1])
    if Cin % groups != 0:
        raise ValueError(f"groups: expected a divisor of the {Cin} input channels, got {groups}")

    weight = ar.like(weight, "weight", x, kind)
    w_shape = tuple(weight.shape)
    if not (len(w_shape) in (2, 4) and w_shape[1] == Cin // groups and w_shape[2:] in ((), (1, 1))
            and w_shape[0] >= 1 and w_shape[0] % groups == 0):
        raise ValueError(f"weight: expected [Cout, Cin/groups, 1, 1] or [Cout, Cin/groups] with Cin/groups = "
                         f"{Cin // groups} and Cout divisible by groups = {groups}, got shape {list(w_shape)}")
    Cout = w_shape[0]
    if bias is not None:
        bias = ar.like(bias, "bias", x, kind)
        if tuple(bias.shape) != (Cout,):
            raise ValueError(f"bias: expected [Cout] = [{Cout}], got shape {list(bias.shape)}")
    if shuffle_groups is not None and Cout % shuffle_groups != 0:
        raise ValueError(f"shuffle_groups: expected a divisor of the {Cout} output channels, got {shuffle_groups}")
    relu, shuffle = activation == "relu", shuffle_groups or 0
    if kind.torch and ar.needs_torch_op(x, weight, bias):
        from .. import torch_ops  # here, not at the top: torch is optional

        return torch_ops.pointwise_conv2d(x, weight, bias, groups, relu, shuffle)
    return run_forward(x, weight, bias, groups, relu, shuffle)
