"""The two autograd paths of every forward custom op: eager (torch_ops._Eager, what the public
functions use outside torch.compile) and the custom op's own register_autograd (what torch.compile
and opcheck use) give bit-identical outputs and gradients; double backward raises where the
backward ops have no autograd, and works for channel_shuffle. And the public functions, which call
the kernels directly when there is no graph to record, still compile (fullgraph) on such inputs."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nimbleops import torch_ops  # noqa: E402

from .conftest import compile_backend  # noqa: E402


def _cases():
    g = torch.Generator().manual_seed(3)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    x = rnd(2, 6, 5, 5)
    yield "depthwise", torch_ops.depthwise_conv2d_op, (x, rnd(6, 1, 3, 3), rnd(6), [1, 2], [1, 1], [1, 1]), (0, 1, 2)
    yield "depthwise channels_last", torch_ops.depthwise_conv2d_op, (
        x.contiguous(memory_format=torch.channels_last), rnd(12, 1, 5, 3), None, [2, 1], [2, 1], [1, 2]), (0, 1)
    yield "pointwise", torch_ops.pointwise_conv2d_op, (x, rnd(4, 3), rnd(4), 2, True, 2), (0, 1, 2)
    yield "channel_shuffle", torch_ops.channel_shuffle_op, (x, 3), (0,)
    yield "concat_shuffle_split", torch_ops.concat_shuffle_split_op, (x, rnd(2, 4, 5, 5)), (0, 1)
    rois = torch.tensor([[0, 0.5, 0.5, 4.0, 3.0], [1, 1.0, 0.0, 3.0, 4.5]], dtype=torch.float64)
    yield "ps_roi", torch_ops.ps_roi_forward, (rnd(2, 8, 5, 5), rois, "align_avg", [2, 2], 1.0, 2, True, False), (0,)
    T, B = 6, 3
    term, trunc = torch.rand(T, B, generator=g) < 0.2, torch.rand(T, B, generator=g) < 0.2
    yield "gae", torch_ops.returns_forward, ("gae", rnd(T, B), rnd(T, B), rnd(T, B), term, trunc, None, 0.9, 0.8, 1,
                                            None, 1.0, 1.0), (1, 2, 3)


CASES = list(_cases())


def _outputs(out):
    return [t for t in (out if isinstance(out, tuple) else (out,)) if t.numel()]


def _grads(call, args, wrt):
    args = list(args)
    for i in wrt:
        args[i] = args[i].detach().clone().requires_grad_()
    outs = _outputs(call(*args))
    g = torch.Generator().manual_seed(5)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    return [o.detach() for o in outs], torch.autograd.grad(loss, [args[i] for i in wrt])


@pytest.mark.parametrize("name, op, args, wrt", CASES, ids=[c[0] for c in CASES])
def test_eager_and_custom_op_autograd_agree(name, op, args, wrt):
    eager_out, eager_grads = _grads(lambda *a: torch_ops._apply(op, *a), args, wrt)
    op_out, op_grads = _grads(op, args, wrt)
    for a, b in zip(eager_out + list(eager_grads), op_out + list(op_grads)):
        assert a.shape == b.shape and a.stride() == b.stride()
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_eager_path_is_taken_and_skipped_without_graph():
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    y = torch_ops.depthwise_conv2d(x, w, None, (1, 1), (1, 1), (1, 1))
    assert type(y.grad_fn).__name__ == "_EagerBackward"
    with torch.no_grad():
        assert torch_ops.depthwise_conv2d(x, w, None, (1, 1), (1, 1), (1, 1)).grad_fn is None


def test_double_backward():
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    (gx,) = torch.autograd.grad(torch_ops.depthwise_conv2d(x, w, None, (1, 1), (1, 1), (1, 1)).square().sum(), x,
                                create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gx.sum().backward()
    x = torch.randn(2, 6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: torch_ops.channel_shuffle(t, 3), (x,))


def _no_graph_calls():
    from nimbleops import rl, vision

    g = torch.Generator().manual_seed(7)
    rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    x, w, pw = rnd(2, 8, 6, 6), rnd(8, 1, 3, 3), rnd(8, 8, 1, 1)
    rois = torch.tensor([[0, 0.5, 0.5, 4.0, 3.0], [1, 1.0, 0.0, 5.0, 4.5]])
    T, B = 5, 3
    term = torch.rand(T, B, generator=g) < 0.2
    yield "depthwise", lambda x: vision.depthwise_conv2d(x, w, None, 1, 1), x
    yield "depthwise channels_last", lambda x: vision.depthwise_conv2d(x, w, x[0, :, 0, 0], 2, 1), \
        x.contiguous(memory_format=torch.channels_last)
    yield "pointwise", lambda x: vision.pointwise_conv2d(x, pw, None, activation="relu", shuffle_groups=2), x
    yield "channel_shuffle", lambda x: vision.channel_shuffle(x, 4), x
    yield "concat_shuffle_split", lambda x: torch.cat(vision.concat_shuffle_split(x[:, :3], x[:, 3:]), 1), x
    yield "ps_roi_align", lambda x: vision.ps_roi_align(x, rois, 2, sampling_ratio=2), x
    yield "gae", lambda r: rl.gae(r, r * 0.5, r + 1, term, term, gamma=0.9, lam=0.8)[0], rnd(T, B)


NO_GRAPH = list(_no_graph_calls())


@pytest.mark.parametrize("grad_mode", [False, True], ids=["no_grad", "grad mode"])
@pytest.mark.parametrize("name, fn, x", NO_GRAPH, ids=[c[0] for c in NO_GRAPH])
def test_compiles_without_a_graph_to_record(name, fn, x, grad_mode):
    """Inputs that need no autograd graph (no_grad, or none requiring grad): outside compilation the
    public functions call the kernels directly, and while torch.compile traces they must take the
    custom ops instead (a kernel call on a fake tensor cannot be traced)."""
    torch._dynamo.reset()
    with torch.set_grad_enabled(grad_mode):
        want = fn(x)
        got = torch.compile(fn, fullgraph=True, backend=compile_backend())(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_compiles_when_the_first_plain_call_is_traced(monkeypatch):
    """plain_call keeps torch.compiler.is_compiling once it has seen torch; a first call made
    while torch.compile traces (nothing kept yet) still takes the custom op, and the call after
    it, outside compilation, the kernel."""
    from nimbleops import _arrays as ar
    from nimbleops import vision

    monkeypatch.setattr(ar, "_is_compiling", None)
    torch._dynamo.reset()
    x = torch.randn(2, 8, 3, 3)
    got = torch.compile(lambda t: vision.channel_shuffle(t, 2) * 2, fullgraph=True, backend=compile_backend())(x)
    want = torch.nn.functional.channel_shuffle(x, 2)
    torch.testing.assert_close(got, want * 2)
    torch.testing.assert_close(vision.channel_shuffle(x, 2), want)
    assert ar._is_compiling is torch.compiler.is_compiling
