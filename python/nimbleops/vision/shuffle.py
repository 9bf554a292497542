"""Channel shuffle (ShuffleNet) and the ShuffleNetV2 unit's fused concat + shuffle + split.

Inputs ``[N, C, H, W]``: numpy arrays or torch tensors (CPU, or CUDA when built with CUDA),
float32 or float64, NCHW-contiguous or channels_last (other strides are copied to NCHW first);
outputs keep the input's memory format. Pure copies: results are exact. With torch inputs both
ops are custom ops (:mod:`nimbleops.torch_ops`) with autograd (the backward is the inverse
gather), usable under ``torch.compile(fullgraph=True)``.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array
from ._layout import channels_last
from ._shuffle_kernel import run


def channel_shuffle(x: Array, groups: int) -> Any:
    """Channel shuffle: ``out[:, k*g + i] = x[:, i*(C/g) + k]`` for ``i < g = groups``,
    ``k < C/g``: PyTorch's ``channel_shuffle`` / ``nn.ChannelShuffle``.

    Args:
        x: ``[N, C, H, W]``.
        groups: a divisor of C.

    Returns:
        ``[N, C, H, W]`` in x's memory format. The backward is the shuffle with ``C/g`` groups.
    """
    out = ar.plain_call(_C.vision.channel_shuffle_plain, x, groups)
    if out is not None:
        return out
    return _channel_shuffle(x, groups)


@ar.resolving
@ar.numpy_path_for_cpu_tensors
def _channel_shuffle(x: Array, groups: int) -> Any:
    """channel_shuffle's general path: conversions, every check and its error."""
    groups = ar.check_int(groups, "groups", minimum=1)
    x = _input(x, "x")
    if x.shape[1] % groups != 0:
        raise ValueError(f"groups: expected a divisor of the channel count {x.shape[1]}, got {groups}")
    if ar.is_torch(x) and ar.needs_torch_op(x):
        from .. import torch_ops  # here, not at the top: torch is optional

        return torch_ops.channel_shuffle(x, groups)
    return run("shuffle", groups, [x], [tuple(x.shape)])[0]


def concat_shuffle_split(a: Array, b: Array) -> Tuple[Any, Any]:
    """The ShuffleNetV2 unit's tail in one pass:
    ``channel_shuffle(cat([a, b], 1), 2).chunk(2, 1)``; output channel ``j`` of the shuffled
    concatenation is ``cat[(j % 2) * C/2 + j // 2]``.

    Args:
        a: ``[N, Ca, H, W]``.
        b: ``[N, Cb, H, W]`` with ``Ca + Cb`` even, of a's kind, dtype and device.

    Returns:
        Two ``[N, (Ca + Cb) / 2, H, W]`` arrays, contiguous in a's memory format (not views of
        one buffer, unlike ``chunk``'s).
    """
    out = ar.plain_call(_C.vision.concat_shuffle_split_plain, a, b)
    if out is not None:
        return out
    return _concat_shuffle_split(a, b)


@ar.resolving
def _concat_shuffle_split(a, b):
    """concat_shuffle_split's general path: conversions, every check and its error."""
    a = _input(a, "a")
    b = _input(b, "b", like=a)
    if tuple(a.shape[:1]) + tuple(a.shape[2:]) != tuple(b.shape[:1]) + tuple(b.shape[2:]):
        raise ValueError(f"b: expected [N, Cb, H, W] with N, H, W of a {list(a.shape)}, got {list(b.shape)}")
    C = a.shape[1] + b.shape[1]
    if C % 2 != 0:
        raise ValueError(f"a, b: expected an even total channel count, got {a.shape[1]} + {b.shape[1]}")
    if ar.is_torch(a) and ar.needs_torch_op(a, b):
        from .. import torch_ops  # here, not at the top: torch is optional

        return torch_ops.concat_shuffle_split(a, b)
    half = (a.shape[0], C // 2) + tuple(a.shape[2:])
    out1, out2 = run("concat_shuffle_split", 1, [a, b], [half, half])
    return out1, out2


def _input(x, name: str, like=None):
    """x as a 4-d float32/float64 array of a supported layout (NCHW or channels_last; else copied
    to NCHW); with `like`, of like's kind, dtype, device and memory format."""
    if not (isinstance(x, np.ndarray) or ar.is_torch(x)):
        if like is None:
            ar.refuse_foreign(x, name)
            raise TypeError(f"{name}: expected a numpy array or torch tensor [N, C, H, W], got {type(x).__name__}")
        x = np.asarray(x)
    dtype = ar.dtype_name(x)
    if dtype not in ar.FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got dtype {dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected [N, C, H, W], got shape {list(x.shape)}")
    if like is not None:
        if ar.dtype_name(like) != dtype:
            raise TypeError(f"{name}: expected dtype {ar.dtype_name(like)} like a, got {dtype}")
        if ar.is_torch(like) != ar.is_torch(x):
            raise TypeError(f"{name}: expected a {'torch tensor' if ar.is_torch(like) else 'numpy array'} like a")
        if ar.is_torch(x) and x.device != like.device:
            raise ValueError(f"{name}: expected a tensor on {like.device} like a, got {x.device}")
        want_cl = channels_last(like)
    else:
        want_cl = channels_last(x)
    if ar.is_torch(x):
        torch = ar._torch()
        if x.device.type not in ("cpu", "cuda"):
            raise ValueError(f"{name}: expected a CPU or CUDA tensor, got device {x.device}")
        if x.is_cuda and not hasattr(_C.vision, "channel_gather_cuda"):
            raise ValueError(f"{name}: a CUDA tensor, but this nimbleops build has no CUDA kernels")
        ar.check_copy(x, name)
        return x.contiguous(memory_format=torch.channels_last if want_cl else torch.contiguous_format)
    ar.check_copy(x, name)
    if want_cl:
        return x if channels_last(x) else np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, 3)), 3, 1)
    return np.ascontiguousarray(x)
