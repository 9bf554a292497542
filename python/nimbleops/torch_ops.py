"""PyTorch integration: nimbleops kernels as ``torch.library`` custom ops, with fake (meta)
implementations and registered autograd, so they work under autograd, ``torch.compile
(fullgraph=True)`` and ``torch.library.opcheck``. The backward ops are custom ops too.

Imported on first use by the public functions when they see torch tensors; the public functions
are the API (these ops take the canonical ``[T, B]`` layout).

Each forward op's autograd formula (setup_context + backward) is registered once, by
:func:`_autograd`, and serves two ways: the custom op's ``register_autograd`` (what
``torch.compile`` traces and ``opcheck`` tests), and, in eager mode, :class:`_Eager`, an
``autograd.Function`` that runs the op's Python function, the same setup_context and the same
backward directly, the backward's ops too (:func:`_run`), sparing eager calls the dispatcher's round
trips and the ``autograd.Function`` that ``register_autograd`` generates.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import _arrays as ar
from .rl import _returns_kernel as _returns
from .vision import _depthwise_kernel as _depthwise
from .vision import _pointwise_kernel as _pointwise
from .vision import _ps_roi_kernel as _ps_roi
from .vision import _shuffle_kernel as _shuffle
from .vision._layout import channels_last, empty_like_format


def _two(estimator: str) -> bool:
    return estimator in _returns.TWO_OUTPUTS


_FUNCTIONS: Dict[Any, Callable] = {}  # custom op -> the Python function it runs
_AUTOGRAD: Dict[Any, Tuple[Callable, Callable, bool]] = {}  # forward op -> (setup_context, backward, differentiable)


def _custom_op(name: str):
    """``torch.library.custom_op(name, mutates_args=())``, remembering the function for :class:`_Eager`."""
    def wrap(fn):
        op = torch.library.custom_op(name, mutates_args=())(fn)
        _FUNCTIONS[op] = fn
        return op
    return wrap


def _autograd(op, backward: Callable, setup_context: Callable, differentiable: bool = False) -> None:
    """Registers the autograd formula of a forward op for both paths. ``differentiable``: the
    backward is made of differentiable ops (a double backward works); else a double backward in
    eager mode raises (``once_differentiable``), as the backward ops have no autograd themselves."""
    op.register_autograd(backward, setup_context=setup_context)
    _AUTOGRAD[op] = (setup_context, backward, differentiable)


def _run(ctx, op, *args):
    """A backward formula's call of op: :func:`_apply` under :class:`_Eager`, else the op itself
    (what torch.compile and opcheck trace)."""
    if getattr(ctx, "eager", False) or ar.transforming():
        return _apply(op, *args)
    return op(*args)


def _apply(op, *args):
    """op(*args): the custom op while torch.compile traces; eagerly, its function, through
    :class:`_Eager` where autograd has to record it."""
    if ar.transforming():
        return (_Transformable if op in _AUTOGRAD else _NotDifferentiable).apply(op, *args)
    if ar.capturing():
        return op(*args)
    if not ar.records_graph(*args):
        return _FUNCTIONS[op](*args)
    differentiable = _AUTOGRAD[op][2]
    return (_EagerTwice if differentiable else _Eager).apply(op, *args)


def _once(backward):
    """``once_differentiable`` without its cost where it guards nothing: a plain backward runs
    with grad mode off (create_graph=False), where once_differentiable's no_grad block and
    checks change nothing; with create_graph=True it applies as written."""
    guarded = once_differentiable(backward)

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        if not torch.is_grad_enabled():
            return backward(ctx, *grads)
        return guarded(ctx, *grads)
    return wrapper


class _Eager(torch.autograd.Function):
    """Eager autograd of a forward op (first argument) from its registered formula, without the
    dispatcher; the backward runs once (no double backward)."""

    @staticmethod
    def forward(ctx, op, *args):
        out = _FUNCTIONS[op](*args)
        ctx.eager, ctx.op = True, op
        _AUTOGRAD[op][0](ctx, args, out)
        return out

    @staticmethod
    @_once
    def backward(ctx, *grads):
        return (None,) + tuple(_AUTOGRAD[ctx.op][1](ctx, *grads))


class _Transformable(torch.autograd.Function):
    """The autograd of a forward op under torch.func transforms (grad, vjp, jacrev, vmap): the
    autograd that ``register_autograd`` generates has no ``setup_context`` of its own, which
    functorch requires. The forward calls the custom op (vmap batches it by calling it per
    sample); the formula is the registered one."""

    generate_vmap_rule = True

    @staticmethod
    def forward(op, *args):
        return op(*args)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.op = inputs[0]
        _AUTOGRAD[ctx.op][0](ctx, inputs[1:], output)

    @staticmethod
    def backward(ctx, *grads):
        return (None,) + tuple(_AUTOGRAD[ctx.op][1](ctx, *grads))


class _NotDifferentiable(_Transformable):
    """A backward op under torch.func transforms: called (and batched) like :class:`_Transformable`,
    with no derivative of its own: differentiating through it raises."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.op = inputs[0]

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(f"{ctx.op}: this backward op has no derivative of its own (no double backward)")


class _EagerTwice(_Eager):
    """:class:`_Eager` for a formula whose backward is itself differentiable."""

    @staticmethod
    def backward(ctx, *grads):
        return (None,) + tuple(_AUTOGRAD[ctx.op][1](ctx, *grads))


@_custom_op("nimbleops::returns_forward")
def returns_forward(estimator: str, rewards: Tensor, values: Optional[Tensor], next_values: Tensor, terminated: Tensor,
                    truncated: Tensor, gamma: Optional[Tensor], gamma_scalar: float, lam: float, n: int,
                    log_rhos: Optional[Tensor], rho_clip: float, c_clip: float) -> Tuple[Tensor, Tensor]:
    """(out0, out1) of a return estimator on [T, B] tensors; out1 is empty for one-output estimators."""
    out0, out1 = _returns.run_forward(estimator, rewards, values, next_values, terminated, truncated, gamma,
                                      gamma_scalar, lam, n, log_rhos, rho_clip, c_clip)
    return out0, (out1 if out1 is not None else rewards.new_empty(0))


@returns_forward.register_fake
def _(estimator, rewards, values, next_values, terminated, truncated, gamma, gamma_scalar, lam, n, log_rhos, rho_clip,
      c_clip):
    return torch.empty_like(rewards), (torch.empty_like(rewards) if _two(estimator) else rewards.new_empty(0))


@_custom_op("nimbleops::returns_backward")
def returns_backward(estimator: str, rewards: Tensor, values: Optional[Tensor], next_values: Tensor, terminated: Tensor,
                     truncated: Tensor, gamma: Optional[Tensor], gamma_scalar: float, lam: float, n: int,
                     log_rhos: Optional[Tensor], rho_clip: float, c_clip: float, grad0: Optional[Tensor],
                     grad1: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """(grad_rewards, grad_values (empty without values), grad_next_values): the adjoint scan."""
    gr, gv, gnv = _returns.run_backward(estimator, rewards, values, next_values, terminated, truncated, gamma,
                                        gamma_scalar, lam, n, log_rhos, rho_clip, c_clip,
                                        None if grad0 is None else grad0.contiguous(),
                                        None if grad1 is None else grad1.contiguous())
    return gr, (gv if gv is not None else rewards.new_empty(0)), gnv


@returns_backward.register_fake
def _(estimator, rewards, values, next_values, terminated, truncated, gamma, gamma_scalar, lam, n, log_rhos, rho_clip,
      c_clip, grad0, grad1):
    gv = torch.empty_like(rewards) if _two(estimator) else rewards.new_empty(0)
    return torch.empty_like(rewards), gv, torch.empty_like(rewards)


def _setup_context(ctx, inputs, output):
    (estimator, rewards, values, next_values, terminated, truncated, gamma, gamma_scalar, lam, n, log_rhos, rho_clip,
     c_clip) = inputs
    ctx.params = (estimator, gamma_scalar, lam, n, rho_clip, c_clip)
    ctx.has_values = values is not None
    ctx.save_for_backward(rewards, values, next_values, terminated, truncated, gamma, log_rhos)


def _backward(ctx, grad0, grad1):
    estimator, gamma_scalar, lam, n, rho_clip, c_clip = ctx.params
    rewards, values, next_values, terminated, truncated, gamma, log_rhos = ctx.saved_tensors
    gr, gv, gnv = _run(ctx, returns_backward, estimator, rewards, values, next_values, terminated, truncated, gamma,
                       gamma_scalar, lam, n, log_rhos, rho_clip, c_clip, grad0, grad1 if _two(estimator) else None)
    return (None, gr, gv if ctx.has_values else None, gnv, None, None, None, None, None, None, None, None, None)


_autograd(returns_forward, _backward, _setup_context)


def returns(estimator, rewards, values, next_values, terminated, truncated, gamma, gamma_scalar, lam, n, log_rhos,
            rho_clip, c_clip):
    """The estimator through the custom op (:func:`_apply`): (out0, out1 or None)."""
    out0, out1 = _apply(returns_forward, estimator, rewards, values, next_values, terminated, truncated, gamma,
                        float(gamma_scalar), float(lam), int(n), log_rhos, float(rho_clip), float(c_clip))
    return out0, (out1 if _two(estimator) else None)


# ---- position-sensitive RoI align / pool ------------------------------------------------------

@_custom_op("nimbleops::ps_roi_forward")
def ps_roi_forward(input: Tensor, rois: Tensor, op: str, output_size: List[int], scale: float, sampling_ratio: int,
                   aligned: bool, deterministic: bool) -> Tensor:
    """[K, C_out, pooled_h, pooled_w] for op 'align_avg', 'align_max' or 'pool'; rois [K, 5] float64.
    ``deterministic`` only concerns the backward (kept here so autograd can pass it on)."""
    return _ps_roi.run_forward(input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic)


@ps_roi_forward.register_fake
def _(input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic):
    pooled_h, pooled_w = output_size
    return input.new_empty((rois.shape[0], input.shape[1] // (pooled_h * pooled_w), pooled_h, pooled_w))


@_custom_op("nimbleops::ps_roi_backward")
def ps_roi_backward(grad: Tensor, input: Tensor, rois: Tensor, op: str, output_size: List[int], scale: float,
                    sampling_ratio: int, aligned: bool, deterministic: bool) -> Tensor:
    """grad_input [N, C, H, W] (contiguous)."""
    return _ps_roi.run_backward(grad, input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic)


@ps_roi_backward.register_fake
def _(grad, input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic):
    return input.new_empty(input.shape)


def _ps_roi_setup_context(ctx, inputs, output):
    input, rois, *params = inputs
    ctx.params = params
    ctx.save_for_backward(input, rois)


def _ps_roi_backward(ctx, grad):
    input, rois = ctx.saved_tensors
    grad_input = _run(ctx, ps_roi_backward, grad.contiguous(), input, rois, *ctx.params)
    return (grad_input,) + (None,) * 7


_autograd(ps_roi_forward, _ps_roi_backward, _ps_roi_setup_context)


def ps_roi(input, rois, op, output_size, scale, sampling_ratio, aligned, deterministic):
    """The op through the custom op (:func:`_apply`), with autograd with respect to ``input``."""
    return _apply(ps_roi_forward, input, rois, op, [int(v) for v in output_size], float(scale), int(sampling_ratio),
                  bool(aligned), bool(deterministic))


# ---- channel shuffle / fused concat + shuffle + split ---------------------------------------

@_custom_op("nimbleops::channel_shuffle")
def channel_shuffle_op(x: Tensor, groups: int) -> Tensor:
    """out[:, k*g + i] = x[:, i*(C/g) + k]; x NCHW- or channels_last-contiguous."""
    return _shuffle.run("shuffle", groups, [x], [tuple(x.shape)])[0]


@channel_shuffle_op.register_fake
def _(x, groups):
    return empty_like_format(x, tuple(x.shape))


def _shuffle_setup_context(ctx, inputs, output):
    x, groups = inputs
    ctx.inverse_groups = x.shape[1] // groups


def _shuffle_backward(ctx, grad):  # the inverse shuffle, itself differentiable
    return _run(ctx, channel_shuffle_op, _layout(grad, grad), ctx.inverse_groups), None


_autograd(channel_shuffle_op, _shuffle_backward, _shuffle_setup_context, differentiable=True)


def _layout(x: Tensor, like: Tensor) -> Tensor:
    fmt = torch.channels_last if channels_last(like) else torch.contiguous_format
    return x.contiguous(memory_format=fmt)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    return _apply(channel_shuffle_op, _layout(x, x), int(groups))


@_custom_op("nimbleops::concat_shuffle_split")
def concat_shuffle_split_op(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    """channel_shuffle(cat([a, b], 1), 2).chunk(2, 1) in one pass (two contiguous outputs)."""
    half = (a.shape[0], (a.shape[1] + b.shape[1]) // 2) + tuple(a.shape[2:])
    out1, out2 = _shuffle.run("concat_shuffle_split", 1, [a, b], [half, half])
    return out1, out2


@concat_shuffle_split_op.register_fake
def _(a, b):
    half = (a.shape[0], (a.shape[1] + b.shape[1]) // 2) + tuple(a.shape[2:])
    return empty_like_format(a, half), empty_like_format(a, half)


@_custom_op("nimbleops::concat_shuffle_split_backward")
def concat_shuffle_split_backward(grad1: Tensor, grad2: Tensor, channels_a: int, channels_b: int) -> Tuple[Tensor, Tensor]:
    """(grad_a, grad_b) from the gradients of the two outputs: the inverse gather."""
    shape = lambda c: (grad1.shape[0], c) + tuple(grad1.shape[2:])  # noqa: E731
    ga, gb = _shuffle.run("concat_shuffle_split_backward", 1, [grad1, grad2], [shape(channels_a), shape(channels_b)])
    return ga, gb


@concat_shuffle_split_backward.register_fake
def _(grad1, grad2, channels_a, channels_b):
    shape = lambda c: (grad1.shape[0], c) + tuple(grad1.shape[2:])  # noqa: E731
    return empty_like_format(grad1, shape(channels_a)), empty_like_format(grad1, shape(channels_b))


def _css_setup_context(ctx, inputs, output):
    a, b = inputs
    ctx.channels = (a.shape[1], b.shape[1])


def _css_backward(ctx, grad1, grad2):
    if grad1 is None:
        grad1 = torch.zeros_like(grad2)
    if grad2 is None:
        grad2 = torch.zeros_like(grad1)
    grad1 = _layout(grad1, grad1)
    return _run(ctx, concat_shuffle_split_backward, grad1, _layout(grad2, grad1), *ctx.channels)


_autograd(concat_shuffle_split_op, _css_backward, _css_setup_context)


def concat_shuffle_split(a: Tensor, b: Tensor):
    a = _layout(a, a)
    return _apply(concat_shuffle_split_op, a, _layout(b, a))


# ---- depthwise and pointwise convolutions ----------------------------------------------------
# Their backward ops return (grad_x, grad_weight, grad_bias) with an empty tensor where the
# gradient is not wanted (a custom op cannot return None).

def _or_empty(grads, x: Tensor):
    return tuple([g if g is not None else x.new_empty(0) for g in grads])


def _wanted(grads, mask):
    return tuple([g if wanted else None for g, wanted in zip(grads, mask)])


def _conv_grads_fake(x: Tensor, weight: Tensor, bias_defined: bool, mask):
    gx = empty_like_format(x, tuple(x.shape)) if mask[0] else x.new_empty(0)
    gw = weight.new_empty(weight.shape) if mask[1] else x.new_empty(0)
    gb = weight.new_empty((weight.shape[0],)) if (mask[2] and bias_defined) else x.new_empty(0)
    return gx, gw, gb



@_custom_op("nimbleops::depthwise_conv2d")
def depthwise_conv2d_op(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: List[int], padding: List[int],
                        dilation: List[int]) -> Tensor:
    """conv2d(x, weight, bias, stride, padding, dilation, groups=C); output in x's memory format."""
    return _depthwise.run_forward(x, weight, bias, stride, padding, dilation)


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@depthwise_conv2d_op.register_fake
def _(x, weight, bias, stride, padding, dilation):
    shape = (x.shape[0], weight.shape[0], _conv_out(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0]),
             _conv_out(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1]))
    return empty_like_format(x, shape)


@_custom_op("nimbleops::depthwise_conv2d_backward")
def depthwise_conv2d_backward(grad: Tensor, x: Tensor, weight: Tensor, bias_defined: bool, stride: List[int],
                              padding: List[int], dilation: List[int], mask: List[bool]) -> Tuple[Tensor, Tensor, Tensor]:
    """(grad_x in x's memory format, grad_weight, grad_bias); an empty tensor where mask is False."""
    return _or_empty(_depthwise.run_backward(grad, x, weight, bias_defined, stride, padding, dilation, mask), x)


@depthwise_conv2d_backward.register_fake
def _(grad, x, weight, bias_defined, stride, padding, dilation, mask):
    return _conv_grads_fake(x, weight, bias_defined, mask)


def _dw_setup_context(ctx, inputs, output):
    x, weight, bias, stride, padding, dilation = inputs
    ctx.params = (bias is not None, list(stride), list(padding), list(dilation))
    ctx.mask = [x.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad]
    ctx.save_for_backward(x, weight)


def _dw_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    bias_defined, stride, padding, dilation = ctx.params
    grads = _run(ctx, depthwise_conv2d_backward, grad, x, weight, bias_defined, stride, padding, dilation, ctx.mask)
    return _wanted(grads, ctx.mask) + (None, None, None)


_autograd(depthwise_conv2d_op, _dw_backward, _dw_setup_context)


def depthwise_conv2d(x, weight, bias, stride, padding, dilation):
    return _apply(depthwise_conv2d_op, x, weight, bias, list(stride), list(padding), list(dilation))


@_custom_op("nimbleops::pointwise_conv2d")
def pointwise_conv2d_op(x: Tensor, weight: Tensor, bias: Optional[Tensor], groups: int, relu: bool,
                        shuffle_groups: int) -> Tensor:
    """1x1 conv (+ relu) (+ output channel shuffle); output in x's memory format."""
    return _pointwise.run_forward(x, weight, bias, groups, relu, shuffle_groups)


@pointwise_conv2d_op.register_fake
def _(x, weight, bias, groups, relu, shuffle_groups):
    return empty_like_format(x, (x.shape[0], weight.shape[0]) + tuple(x.shape[2:]))


@_custom_op("nimbleops::pointwise_conv2d_backward")
def pointwise_conv2d_backward(grad: Tensor, x: Tensor, weight: Tensor, out: Tensor, bias_defined: bool, groups: int,
                              relu: bool, shuffle_groups: int, mask: List[bool]) -> Tuple[Tensor, Tensor, Tensor]:
    """(grad_x, grad_weight, grad_bias); an empty tensor where mask is False. ``out`` (the forward
    output) is read only with relu."""
    return _or_empty(_pointwise.run_backward(grad, x, weight, out if relu else None, bias_defined, groups, relu,
                                             shuffle_groups, mask), x)


@pointwise_conv2d_backward.register_fake
def _(grad, x, weight, out, bias_defined, groups, relu, shuffle_groups, mask):
    return _conv_grads_fake(x, weight, bias_defined, mask)


def _pw_setup_context(ctx, inputs, output):
    x, weight, bias, groups, relu, shuffle_groups = inputs
    ctx.params = (bias is not None, groups, relu, shuffle_groups)
    ctx.mask = [x.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad]
    ctx.save_for_backward(x, weight, output if relu else None)


def _pw_backward(ctx, grad):
    x, weight, out = ctx.saved_tensors
    bias_defined, groups, relu, shuffle_groups = ctx.params
    grads = _run(ctx, pointwise_conv2d_backward, grad, x, weight, out if out is not None else x.new_empty(0),
                 bias_defined, groups, relu, shuffle_groups, ctx.mask)
    return _wanted(grads, ctx.mask) + (None, None, None)


_autograd(pointwise_conv2d_op, _pw_backward, _pw_setup_context)


def pointwise_conv2d(x, weight, bias, groups, relu, shuffle_groups):
    return _apply(pointwise_conv2d_op, x, weight, bias, int(groups), bool(relu), int(shuffle_groups))


def _vmap_by_loop(op):
    """A vmap rule for op: the op per sample, the results stacked along dim 0. The kernels have no
    batch dimension of their own to fold a vmap into; the rule is what torch would fall back to,
    registered so that it does so without a performance warning at every call."""
    def rule(info, in_dims, *args):
        outs = []
        for i in range(info.batch_size):
            outs.append(op(*(a.select(d, i) if isinstance(a, torch.Tensor) and d is not None else a
                             for a, d in zip(args, in_dims))))
        if isinstance(outs[0], tuple):
            return tuple(torch.stack(parts) for parts in zip(*outs)), (0,) * len(outs[0])
        return torch.stack(outs), 0
    op.register_vmap(rule)


for _op in _FUNCTIONS:
    _vmap_by_loop(_op)

