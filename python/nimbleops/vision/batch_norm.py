"""Training-mode batch normalisation with a fused ReLU: the convolution blocks' BN + ReLU (and BN
alone) in two passes over the data forward and two backward, where torch's batch norm and ReLU
take separate passes; and BN + ReLU + max pool (a stem's tail) in one op that never stores the
batch norm's output.

Sums are accumulated in float64 in a fixed order: results do not depend on the thread count or
SIMD level. The CPU kernels take float32 / float64 input (numpy arrays or torch tensors,
differentiable with respect to x, weight and bias): NCHW-contiguous for ``batch_norm_relu``,
channels_last for ``batch_norm_relu_max_pool`` (other layouts are copied to it). Other layouts of
``batch_norm_relu``, CUDA tensors, and calls while ``torch.compile`` traces run torch's own ops
(the same function). The common ``batch_norm_relu`` call, forward and backward, is one binding
call (a plain call, which also updates the running statistics); plain CPU tensors outside autograd
take ``batch_norm_relu_max_pool``'s numpy path on their memory. Either moves the running
statistics' versions on as torch's in-place ops move them.
"""
from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array


@ar.resolving
def batch_norm_relu(x: Array, weight: Array, bias: Array, running_mean: Array = None, running_var: Array = None, *,
                    momentum: float = 0.1, eps: float = 1e-5, relu: bool = True) -> Any:
    """Training-mode batch norm (+ ReLU), per channel over (N, H, W) with ``M = N*H*W`` values:
    ``mean = sum(x) / M``, ``var = sum((x - mean)^2) / M`` (biased),
    ``y = act(weight (x - mean) / sqrt(var + eps) + bias)``; the running statistics, when given,
    updated in place as torch does: ``running_mean = (1 - momentum) running_mean + momentum mean``,
    ``running_var = (1 - momentum) running_var + momentum var M / (M - 1)`` (the unbiased
    variance). Equals ``relu(torch.nn.functional.batch_norm(x, running_mean, running_var, weight,
    bias, training=True, momentum=momentum, eps=eps))``.

    Args:
        x: ``[N, C, H, W]``.
        weight, bias: ``[C]``.
        running_mean, running_var: ``[C]``, both or neither, updated in place.
        momentum: in [0, 1].
        eps: >= 0.
        relu: apply the ReLU (``act``); False gives batch norm alone.

    Returns:
        ``y [N, C, H, W]``.
    """
    out = ar.plain_call(_C.vision.batch_norm_plain, x, weight, bias, running_mean, running_var, momentum, eps, relu)
    if out is not None:
        return out[0]
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu: expected a bool, got {type(relu).__name__}")
    momentum, eps = _real(momentum, "momentum", 0.0, 1.0), _real(eps, "eps", 0.0, None)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: expected both or neither")
    if ar.is_torch(x):
        return _torch(x, weight, bias, running_mean, running_var, momentum, eps, bool(relu))
    if not isinstance(x, np.ndarray):
        ar.refuse_foreign(x, "x")
        raise TypeError(f"x: expected a numpy array or torch tensor [N, C, H, W], got {type(x).__name__}")
    return _numpy_batch_norm_relu(x, weight, bias, running_mean, running_var, momentum, eps, bool(relu))


def _numpy_batch_norm_relu(x, weight, bias, running_mean, running_var, momentum, eps, relu):
    x = np.ascontiguousarray(x)
    weight, bias = (np.ascontiguousarray(_like_numpy(t, x, name)) for t, name in ((weight, "weight"), (bias, "bias")))
    y, mean, invstd = run_forward(x, weight, bias, eps, relu)
    if running_mean is not None:
        _update_running(running_mean, running_var, mean, invstd, eps, momentum, x)
    return y


def _on_host(numpy_op, x, weight, bias, running_mean, running_var, *args):
    """numpy_op(x, weight, bias, running_mean, running_var, *args) on numpy arrays sharing the
    memory of these torch tensors, its result as a tensor, when every one is a plain CPU tensor
    autograd does not record, outside capture (the numpy path's allocations cost less than
    torch's; the running statistics are updated in the tensors' memory and their versions moved
    on); else None, for the torch path."""
    torch = ar._torch()
    arrays = (x, weight, bias, running_mean, running_var)
    if any(a is not None and not isinstance(a, torch.Tensor) for a in arrays):
        return None
    if tuple(weight.shape) != (x.shape[1],) or tuple(bias.shape) != (x.shape[1],):
        return None  # the torch path names the problem
    host = ar.cpu_tensors_as_numpy(*arrays)
    if host is None:
        return None
    out = numpy_op(*host, *args)
    if running_mean is not None:
        ar.bump_versions(running_mean, running_var)
    return torch.from_numpy(out)


def _real(v, name: str, lo: float, hi: Optional[float]) -> float:
    v = ar.check_real_scalar(v, name)
    if not (v >= lo and (hi is None or v <= hi)) or not np.isfinite(v):
        raise ValueError(f"{name}: expected a number in [{lo}, {hi}], got {v}" if hi is not None else
                         f"{name}: expected a finite number >= {lo}, got {v}")
    return v


def _like_numpy(t, x, name: str):
    if not isinstance(t, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array [C] like x, got {type(t).__name__}")
    if t.dtype != x.dtype:
        raise TypeError(f"{name}: expected dtype {x.dtype} like x, got {t.dtype}")
    return t


def handle(x, weight, bias, eps: float, relu: bool):
    return _C.vision.BatchNormInputs(ar.view(x), ar.view(weight), ar.view(bias), eps, relu)


def run_forward(x, weight, bias, eps: float, relu: bool):
    """(y, mean, invstd) of NCHW-contiguous CPU x, arrays of x's kind."""
    h = handle(x, weight, bias, eps, relu)
    C = x.shape[1]
    if ar.is_torch(x):
        y, mean, invstd = x.new_empty(x.shape), x.new_empty(C), x.new_empty(C)
    else:
        y, mean, invstd = np.empty_like(x), np.empty(C, x.dtype), np.empty(C, x.dtype)
    _C.vision.batch_norm_forward_cpu(h, ar.view(y), ar.view(mean), ar.view(invstd))
    return y, mean, invstd


def run_backward(grad, x, weight, bias, y, mean, invstd, eps: float, relu: bool, mask):
    """(grad_x, grad_weight, grad_bias), None where mask is False; y (the forward's output) is read
    only with relu."""
    grad = grad.contiguous()
    gx = x.new_empty(x.shape) if mask[0] else None
    gw = weight.new_empty(weight.shape) if mask[1] else None
    gb = bias.new_empty(bias.shape) if mask[2] else None
    view = ar.view_or_none
    _C.vision.batch_norm_backward_cpu(handle(x, weight, bias, eps, relu), ar.view(grad), ar.view(y), ar.view(mean),
                                      ar.view(invstd), view(gx), view(gw), view(gb))
    return gx, gw, gb


def _update_running(running_mean, running_var, mean, invstd, eps, momentum, x):
    """torch's update: the batch variance unbiased by M / (M - 1)."""
    M = x.shape[0] * x.shape[2] * x.shape[3]
    var = (1.0 / (invstd * invstd) - eps) * (M / (M - 1))
    if ar.is_torch(running_mean):
        with ar._torch().no_grad():  # buffers: the update is not part of any graph
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(var.to(running_var.dtype), alpha=momentum)
    else:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var


def _fusible(x, weight, bias) -> bool:
    """Whether the fused kernels take these torch tensors: x a 4-d float32 / float64 CPU tensor
    outside capture, weight and bias tensors of its dtype and device (the [C] shapes are checked
    after, by :func:`_check_channels`)."""
    torch = ar._torch()
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dim() == 4
            and not ar.capturing()
            and all(isinstance(t, torch.Tensor) and t.dtype == x.dtype and t.device == x.device for t in (weight, bias)))


def _check_channels(x, weight, bias) -> None:
    if tuple(weight.shape) != (x.shape[1],) or tuple(bias.shape) != (x.shape[1],):
        raise ValueError(f"weight, bias: expected [C] = [{x.shape[1]}] each, got {list(weight.shape)} and "
                         f"{list(bias.shape)}")


def _torch(x, weight, bias, running_mean, running_var, momentum, eps, relu):
    F = ar._torch().nn.functional
    if not (_fusible(x, weight, bias) and x.is_contiguous()):
        y = F.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=momentum, eps=eps)
        return F.relu(y) if relu else y
    _check_channels(x, weight, bias)
    running = None if running_mean is None else (running_mean, running_var)
    if ar.records_graph(x, weight, bias):
        return _autograd_function().apply(x, weight.contiguous(), bias.contiguous(), running, momentum, eps, relu)[0]
    return _forward(x, weight.contiguous(), bias.contiguous(), running, momentum, eps, relu)[0]


def _forward(x, weight, bias, running, momentum: float, eps: float, relu: bool):
    """(y, mean, invstd) of NCHW-contiguous CPU x, the running statistics (a pair, or None)
    updated: the plain call where it takes the arrays (inside the autograd.Function, tensors that
    require grad too), else the views' path."""
    rm, rv = running if running is not None else (None, None)
    out = ar.plain_call(_C.vision.batch_norm_plain, x, weight, bias, rm, rv, momentum, eps, relu)
    if out is not None:
        return out
    y, mean, invstd = run_forward(x, weight, bias, eps, relu)
    if running is not None:
        _update_running(rm, rv, mean, invstd, eps, momentum, x)
    return y, mean, invstd


@functools.lru_cache(maxsize=None)
def _autograd_function():
    """The autograd.Function of the fused op, made on first use (torch is optional)."""
    torch = ar._torch()

    class BatchNormReLU(torch.autograd.Function):
        """The fused op's autograd: the forward saves x, y, mean and invstd and updates the
        running statistics (``running``, a pair of buffers autograd does not see: nothing
        differentiates through them, as in torch's batch norm); the backward is the C++ kernel (no
        double backward)."""

        @staticmethod
        def forward(ctx, x, weight, bias, running, momentum, eps, relu):
            y, mean, invstd = _forward(x, weight, bias, running, momentum, eps, relu)
            # y is the ReLU's mask; without a ReLU it is not read, and not saved (an in-place op on
            # the output, such as an in-place activation after it, then stays legal)
            ctx.save_for_backward(x, weight, bias, y if relu else None, mean, invstd)
            ctx.eps, ctx.relu = eps, relu
            ctx.mark_non_differentiable(mean, invstd)
            return y, mean, invstd

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad, _grad_mean, _grad_invstd):
            x, weight, bias, y, mean, invstd = ctx.saved_tensors
            y = x if y is None else y
            out = ar.plain_call(_C.vision.batch_norm_backward_plain, grad, x, weight, bias, y, mean, invstd, ctx.eps,
                                ctx.relu, *ctx.needs_input_grad[:3])
            gx, gw, gb = out if out is not None else run_backward(grad, x, weight, bias, y, mean, invstd, ctx.eps,
                                                                  ctx.relu, ctx.needs_input_grad[:3])
            return gx, gw, gb, None, None, None, None

    return BatchNormReLU


@ar.resolving
def batch_norm_relu_max_pool(x: Array, weight: Array, bias: Array, running_mean: Array = None,
                             running_var: Array = None, *, kernel_size: int = 3, stride: int = 2, padding: int = 1,
                             momentum: float = 0.1, eps: float = 1e-5) -> Any:
    """Training-mode batch norm, ReLU and max pool in one op: equals
    ``max_pool2d(relu(batch_norm(x, running_mean, running_var, weight, bias, training=True,
    momentum=momentum, eps=eps)), kernel_size, stride, padding)`` (the statistics and the running
    update as :func:`batch_norm_relu`; the pool's windows, ``OH = (H + 2 padding - kernel_size) //
    stride + 1``, and its choice of maximum, the first in row order or a nan, as torch's
    ``max_pool2d``). The batch norm's output is never stored: the pool computes it as it reads the
    windows, and the backward routes each window's gradient to the position it kept.

    Args:
        x: ``[N, C, H, W]``; channels_last is the kernel's layout (others are copied to it).
        weight, bias: ``[C]``.
        running_mean, running_var: ``[C]``, both or neither, updated in place.
        kernel_size, stride: >= 1.
        padding: in ``[0, kernel_size // 2]``.
        momentum: in [0, 1].
        eps: >= 0.

    Returns:
        ``[N, C, OH, OW]``, NCHW-contiguous.
    """
    momentum, eps = _real(momentum, "momentum", 0.0, 1.0), _real(eps, "eps", 0.0, None)
    pool = tuple(ar.check_int(v, name, minimum=minimum) for v, name, minimum in
                 ((kernel_size, "kernel_size", 1), (stride, "stride", 1), (padding, "padding", 0)))
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: expected both or neither")
    if not (ar.is_torch(x) or isinstance(x, np.ndarray)):
        ar.refuse_foreign(x, "x")
        raise TypeError(f"x: expected a numpy array or torch tensor [N, C, H, W], got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x: expected [N, C, H, W], got shape {list(x.shape)}")
    if ar.is_torch(x):
        out = _on_host(_numpy_pool, x, weight, bias, running_mean, running_var, momentum, eps, pool)
        return out if out is not None else _torch_pool(x, weight, bias, running_mean, running_var, momentum, eps, pool)
    return _numpy_pool(x, weight, bias, running_mean, running_var, momentum, eps, pool)


def _numpy_pool(x, weight, bias, running_mean, running_var, momentum, eps, pool):
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels_last
    weight, bias = (np.ascontiguousarray(_like_numpy(t, x, name)) for t, name in ((weight, "weight"), (bias, "bias")))
    out, _, mean, invstd = run_pool_forward(x, weight, bias, eps, pool)
    if running_mean is not None:
        _update_running(running_mean, running_var, mean, invstd, eps, momentum, x)
    return out


def pool_handle(x, weight, bias, eps: float, pool):
    return _C.vision.BatchNormPoolInputs(ar.view(x), ar.view(weight), ar.view(bias), eps, *pool)


def run_pool_forward(x, weight, bias, eps: float, pool):
    """(out, index, mean, invstd) of channels_last CPU x, arrays of x's kind."""
    h = pool_handle(x, weight, bias, eps, pool)
    shape, C = tuple(h.output_shape), x.shape[1]
    if ar.is_torch(x):
        torch = ar._torch()
        out, index = x.new_empty(shape), torch.empty(shape, dtype=torch.int32)
        mean, invstd = x.new_empty(C), x.new_empty(C)
    else:
        out, index = np.empty(shape, x.dtype), np.empty(shape, np.int32)
        mean, invstd = np.empty(C, x.dtype), np.empty(C, x.dtype)
    _C.vision.batch_norm_pool_forward_cpu(h, ar.view(out), ar.view(index), ar.view(mean), ar.view(invstd))
    return out, index, mean, invstd


def run_pool_backward(grad, x, weight, bias, out, index, mean, invstd, eps: float, pool, mask):
    """(grad_x channels_last, grad_weight, grad_bias), None where mask is False."""
    torch = ar._torch()
    grad = grad.contiguous()
    gx = torch.empty_like(x, memory_format=torch.channels_last) if mask[0] else None
    gw = weight.new_empty(weight.shape) if mask[1] else None
    gb = bias.new_empty(bias.shape) if mask[2] else None
    view = ar.view_or_none
    _C.vision.batch_norm_pool_backward_cpu(pool_handle(x, weight, bias, eps, pool), ar.view(grad), ar.view(out),
                                           ar.view(index), ar.view(mean), ar.view(invstd), view(gx), view(gw),
                                           view(gb))
    return gx, gw, gb


def _torch_pool(x, weight, bias, running_mean, running_var, momentum, eps, pool):
    torch = ar._torch()
    F = torch.nn.functional
    if not _fusible(x, weight, bias):
        y = F.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=momentum, eps=eps)
        return F.max_pool2d(F.relu(y), pool[0], pool[1], pool[2]).contiguous()
    _check_channels(x, weight, bias)
    x = x.contiguous(memory_format=torch.channels_last)
    if ar.records_graph(x, weight, bias):
        out, mean, invstd = _pool_autograd_function().apply(x, weight.contiguous(), bias.contiguous(), eps, pool)
    else:
        out, _, mean, invstd = run_pool_forward(x, weight.contiguous(), bias.contiguous(), eps, pool)
    if running_mean is not None:
        _update_running(running_mean, running_var, mean, invstd, eps, momentum, x)
    return out


@functools.lru_cache(maxsize=None)
def _pool_autograd_function():
    """The autograd.Function of the fused BN + ReLU + max pool, made on first use."""
    torch = ar._torch()

    class BatchNormReLUMaxPool(torch.autograd.Function):
        """Saves x, the output (the ReLU's mask), the kept positions, mean and invstd; the
        backward is the C++ kernel (no double backward)."""

        @staticmethod
        def forward(ctx, x, weight, bias, eps, pool):
            out, index, mean, invstd = run_pool_forward(x, weight, bias, eps, pool)
            ctx.save_for_backward(x, weight, bias, out, index, mean, invstd)
            ctx.eps, ctx.pool = eps, pool
            ctx.mark_non_differentiable(mean, invstd)
            return out, mean, invstd

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad, _grad_mean, _grad_invstd):
            x, weight, bias, out, index, mean, invstd = ctx.saved_tensors
            gx, gw, gb = run_pool_backward(grad, x, weight, bias, out, index, mean, invstd, ctx.eps, ctx.pool,
                                           ctx.needs_input_grad[:3])
            return gx, gw, gb, None, None

    return BatchNormReLUMaxPool
