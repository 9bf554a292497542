"""torch.jit.trace, torch.func (vmap, grad, jacrev) and torch.export over the differentiable ops:
each records or transforms the custom ops and agrees with the eager op and its autograd."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from nimbleops import rl, vision

torch = pytest.importorskip("torch")

F64 = torch.float64


def _cases():
    """name -> (f(input) -> tensor, input) with every other argument fixed (float64)."""
    g = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, dtype=F64, generator=g)  # noqa: E731
    w, pw, bnw = rand(8, 1, 3, 3), rand(4, 8, 1, 1), rand(8).abs() + 0.5
    boxes = torch.tensor([[0, 0.5, 0.5, 5.0, 4.0], [0, 1.0, 0.0, 6.0, 6.0]], dtype=F64)
    v, nv, lr = rand(5, 3), rand(5, 3), rand(5, 3) * 0.3
    term = torch.rand(5, 3, generator=g) < 0.2
    x, r = rand(1, 8, 6, 6), rand(5, 3)
    return {
        "depthwise_conv2d": (lambda a: vision.depthwise_conv2d(a, w, padding=1), x),
        "pointwise_conv2d": (lambda a: vision.pointwise_conv2d(a, pw, activation="relu"), x),
        "channel_shuffle": (lambda a: vision.channel_shuffle(a, 2), x),
        "concat_shuffle_split": (lambda a: vision.concat_shuffle_split(a, a * 2)[1], x),
        "ps_roi_align": (lambda a: vision.ps_roi_align(a, boxes, 2, sampling_ratio=2), x),
        "ps_roi_pool": (lambda a: vision.ps_roi_pool(a, boxes, 2), x),
        "batch_norm_relu": (lambda a: vision.batch_norm_relu(a, bnw, torch.zeros(8, dtype=F64)), x),
        "discounted_returns": (lambda a: rl.discounted_returns(a, nv, term, None, gamma=0.9), r),
        "n_step_returns": (lambda a: rl.n_step_returns(a, nv, term, None, gamma=0.9, n=2), r),
        "lambda_returns": (lambda a: rl.lambda_returns(a, nv, term, None, gamma=0.9, lam=0.7), r),
        "gae": (lambda a: rl.gae(a, v, nv, term, None, gamma=0.9, lam=0.7)[0], r),
        "vtrace": (lambda a: rl.vtrace(a, v, nv, lr, term, None, gamma=0.9)[0], r),
    }


CASES = sorted(_cases())
CUSTOM_OPS = {n for n in CASES if n != "batch_norm_relu"}  # batch norm is torch's own op when captured


def _tol(name):
    """Exact for the custom ops; captured batch norm is torch's (other last bits than the fused kernel)."""
    return dict(rtol=0, atol=0) if name in CUSTOM_OPS else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_jit_trace_records_the_op_and_replays(name):
    f, x = _cases()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks read sizes as Python ints
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace is deprecated, still in use
        traced = torch.jit.trace(f, (x,), check_trace=False)
    if name in CUSTOM_OPS:
        assert "nimbleops::" in str(traced.graph)
    for new in (x * 2 - 1, x.flip(-1)):
        torch.testing.assert_close(traced(new), f(new), **_tol(name))


@pytest.mark.parametrize("name", CASES)
def test_vmap_equals_the_op_per_sample(name):
    f, x = _cases()[name]
    xs = torch.stack([x, x * 2, x - 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback-performance warning: every op has a vmap rule
        got = torch.func.vmap(f)(xs)
    torch.testing.assert_close(got, torch.stack([f(a) for a in xs]), **_tol(name))


@pytest.mark.parametrize("name", CASES)
def test_grad_and_jacrev_equal_autograd(name):
    f, x = _cases()[name]
    weights = torch.linspace(-1, 1, f(x).numel(), dtype=F64).reshape(f(x).shape)
    loss = lambda a: (f(a) * weights).sum()  # noqa: E731
    got = torch.func.grad(loss)(x)
    leaf = x.clone().requires_grad_()
    want, = torch.autograd.grad(loss(leaf), leaf)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    jac = torch.func.jacrev(f)(x)
    torch.testing.assert_close(jac, torch.autograd.functional.jacobian(f, x), rtol=1e-12, atol=1e-12)


def test_vmap_of_grad_per_sample_gradients():
    f, x = _cases()["depthwise_conv2d"]
    xs = torch.stack([x, x * 3])
    per_sample = torch.func.vmap(torch.func.grad(lambda a: f(a).square().sum()))(xs)
    for a, g in zip(xs, per_sample):
        leaf = a.clone().requires_grad_()
        want, = torch.autograd.grad(f(leaf).square().sum(), leaf)
        torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-12)


def test_grad_of_grad_through_a_once_differentiable_op_raises():
    f, x = _cases()["depthwise_conv2d"]
    with pytest.raises(RuntimeError, match="no derivative of its own"):
        torch.func.grad(lambda a: torch.func.grad(lambda b: f(b).square().sum())(a).sum())(x)


def test_torch_export_keeps_the_ops():
    w = torch.randn(8, 1, 3, 3, dtype=F64)
    pw = torch.randn(8, 8, 1, 1, dtype=F64)

    class Block(torch.nn.Module):
        def forward(self, x):
            y = vision.pointwise_conv2d(vision.depthwise_conv2d(x, w, padding=1), pw, activation="relu")
            return vision.channel_shuffle(y, 2)

    x = torch.randn(2, 8, 6, 6, dtype=F64)
    exported = torch.export.export(Block(), (x,))
    graph = str(exported.graph)
    for op in ("depthwise_conv2d", "pointwise_conv2d", "channel_shuffle"):
        assert f"nimbleops.{op}" in graph or f"nimbleops::{op}" in graph
    new = torch.randn(2, 8, 6, 6, dtype=F64)
    torch.testing.assert_close(exported.module()(new), Block()(new), rtol=0, atol=0)


def test_numpy_calls_are_unaffected_by_transform_routing():
    """The routing reads torch's state; numpy calls never import torch-only paths."""
    x = np.random.default_rng(0).normal(size=(1, 4, 5, 5))
    w = np.ones((4, 1, 3, 3))
    assert isinstance(vision.depthwise_conv2d(x, w, padding=1), np.ndarray)
