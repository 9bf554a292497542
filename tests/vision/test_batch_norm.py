"""Training-mode batch norm with a fused ReLU: against torch's batch norm + ReLU and the reference
(outputs, running statistics, gradients), gradcheck, thread-count and SIMD-level independence, the
nn.BatchNorm2d drop-in, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import assert_same_bits_at_any_thread_count_and_simd_level, needs_torch, torch

F = torch.nn.functional if torch is not None else None


TOL = {"float64": dict(rtol=1e-10, atol=1e-10), "float32": dict(rtol=1e-4, atol=1e-4)}


def torch_composition(x, w, b, rm, rv, momentum, eps, relu):
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=momentum, eps=eps)
    return F.relu(y) if relu else y


def assert_agrees(ours, theirs, stats, tol, inputs=(), generator=None):
    """ours equals theirs, each running statistic its twin (stats: pairs), and, for inputs, the
    gradients under one random cotangent (to 10x the tolerance: a longer chain of roundings)."""
    torch.testing.assert_close(ours, theirs, **tol)
    for a, b in stats:
        torch.testing.assert_close(a, b, **tol)
    if inputs:
        cot = torch.randn(ours.shape, generator=generator, dtype=ours.dtype)
        for a, b in zip(torch.autograd.grad(ours, inputs, cot), torch.autograd.grad(theirs, inputs, cot)):
            torch.testing.assert_close(a, b, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


@needs_torch
@given(n=st.integers(1, 3), c=st.integers(1, 5), h=st.integers(1, 6), w=st.integers(1, 19), relu=st.booleans(),
       double=st.booleans())
def test_agrees_with_torch(n, c, h, w, relu, double):
    if n * h * w < 2:
        return
    tol = TOL["float64" if double else "float32"]
    dtype = torch.float64 if double else torch.float32
    g = torch.Generator().manual_seed(n * 1000 + c * 100 + h * 10 + w)
    x = (3 * torch.randn(n, c, h, w, generator=g, dtype=dtype) + 1).requires_grad_()
    wt = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    bs = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    rm, rv = torch.randn(c, dtype=dtype), torch.rand(c, dtype=dtype) + 0.5
    rm2, rv2 = rm.clone(), rv.clone()
    ours = vision.batch_norm_relu(x, wt, bs, rm, rv, momentum=0.3, eps=1e-3, relu=relu)
    theirs = torch_composition(x, wt, bs, rm2, rv2, 0.3, 1e-3, relu)
    assert_agrees(ours, theirs, ((rm, rm2), (rv, rv2)), tol, (x, wt, bs), g)


@pytest.mark.parametrize("relu", [False, True])
def test_numpy_against_the_reference(relu):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + 0.5
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = np.zeros(4), np.ones(4)
    rm2, rv2 = rm.copy(), rv.copy()
    out = vision.batch_norm_relu(x, w, b, rm, rv, relu=relu)
    expected = ref.batch_norm_relu(x, w, b, rm2, rv2, relu=relu)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, rm2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv, rv2, rtol=1e-12, atol=1e-14)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64


@needs_torch
def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    for relu in (False, True):
        assert torch.autograd.gradcheck(lambda x, w, b: vision.batch_norm_relu(x, w, b, relu=relu), (x, w, b))


@needs_torch
@pytest.mark.parametrize("pooled", [False, True])
def test_same_bits_at_any_thread_count_and_simd_level(pooled):
    g = torch.Generator().manual_seed(1)
    shape = (3, 24, 33, 31) if pooled else (3, 40, 7, 9)
    x = torch.randn(shape, generator=g)
    x = (x.contiguous(memory_format=torch.channels_last) if pooled else x).requires_grad_()
    w, b = torch.randn(shape[1], generator=g).requires_grad_(), torch.randn(shape[1], generator=g).requires_grad_()
    op = vision.batch_norm_relu_max_pool if pooled else vision.batch_norm_relu
    cot = torch.randn(op(x, w, b).shape, generator=g)

    def run():
        y = op(x, w, b)
        return (y,) + torch.autograd.grad(y, (x, w, b), cot)
    assert_same_bits_at_any_thread_count_and_simd_level(run)


@needs_torch
def test_module_is_a_drop_in_for_batch_norm_and_relu():
    from nimbleops import nn as nno  # here: it needs torch

    torch.manual_seed(0)
    for momentum in (0.1, None):
        ours = nno.BatchNorm2d(6, momentum=momentum, relu=True)
        theirs = torch.nn.Sequential(torch.nn.BatchNorm2d(6, momentum=momentum), torch.nn.ReLU())
        theirs[0].load_state_dict(ours.state_dict())
        assert list(ours.state_dict()) == list(theirs[0].state_dict())
        for step in range(3):
            x = torch.randn(4, 6, 5, 5) * (step + 1)
            torch.testing.assert_close(ours(x), theirs(x))
        for k, v in ours.state_dict().items():
            torch.testing.assert_close(v, theirs[0].state_dict()[k], msg=k)
        ours.eval(), theirs.eval()
        x = torch.randn(2, 6, 5, 5)
        torch.testing.assert_close(ours(x), theirs(x))
        cl = x.contiguous(memory_format=torch.channels_last)  # torch's own path, the same function
        ours.train(), theirs.train()
        torch.testing.assert_close(ours(cl), theirs(cl))
    no_stats = nno.BatchNorm2d(3, track_running_stats=False)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(no_stats(x), F.batch_norm(x, None, None, no_stats.weight, no_stats.bias, True))
    assert "relu=False" in repr(no_stats)


@needs_torch
@pytest.mark.parametrize("call,exc,match", [
    (lambda x, w: vision.batch_norm_relu(x, w[:2], w), ValueError, r"weight, bias: expected \[C\] = \[3\]"),
    (lambda x, w: vision.batch_norm_relu(x, w, w, momentum=1.5), ValueError, r"momentum: expected a number in \[0.0, 1.0\], got 1.5"),
    (lambda x, w: vision.batch_norm_relu(x, w, w, eps=-1), ValueError, "eps: expected a finite number >= 0.0, got -1.0"),
    (lambda x, w: vision.batch_norm_relu(x, w, w, momentum="0.1"), TypeError, "momentum: expected a real number"),
    (lambda x, w: vision.batch_norm_relu(x, w, w, relu=1), TypeError, "relu: expected a bool"),
    (lambda x, w: vision.batch_norm_relu(x, w, w, torch.zeros(3)), ValueError, "running_mean, running_var"),
    (lambda x, w: vision.batch_norm_relu(x[:1, :, :1, :1], w, w), ValueError, "more than (one|1) value per channel"),
    (lambda x, w: vision.batch_norm_relu(x.numpy(), w, w), TypeError, "weight: expected a numpy array"),
    (lambda x, w: vision.batch_norm_relu(x.numpy(), w.double().numpy(), w.numpy()), TypeError,
     "weight: expected dtype float32 like x"),
    (lambda x, w: vision.batch_norm_relu([1.0], w, w), TypeError, "x: expected a numpy array or torch tensor"),
])
def test_bad_input(call, exc, match):
    x, w = torch.randn(2, 3, 4, 4), torch.ones(3)
    with pytest.raises(exc, match=match):
        call(x, w)


# ---- batch norm + ReLU + max pool ------------------------------------------------------------------

def pool_composition(x, w, b, rm, rv, momentum, eps, pool):
    return F.max_pool2d(F.relu(F.batch_norm(x, rm, rv, w, b, training=True, momentum=momentum, eps=eps)), *pool)


@needs_torch
@given(n=st.integers(1, 3), c=st.integers(1, 9), h=st.integers(2, 9), w=st.integers(2, 12),
       pool=st.sampled_from([(3, 2, 1), (3, 1, 1), (2, 2, 0), (3, 3, 0), (1, 1, 0)]), channels_last=st.booleans(),
       double=st.booleans())
def test_pool_agrees_with_torch(n, c, h, w, pool, channels_last, double):
    if n * h * w < 2 or min(h, w) + 2 * pool[2] < pool[0]:
        return
    tol = TOL["float64" if double else "float32"]
    dtype = torch.float64 if double else torch.float32
    g = torch.Generator().manual_seed(n * 1000 + c * 100 + h * 10 + w)
    x = 3 * torch.randn(n, c, h, w, generator=g, dtype=dtype) + 1
    x = (x.contiguous(memory_format=torch.channels_last) if channels_last else x).requires_grad_()
    wt = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    bs = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    rm, rv = torch.randn(c, dtype=dtype), torch.rand(c, dtype=dtype) + 0.5
    rm2, rv2 = rm.clone(), rv.clone()
    ours = vision.batch_norm_relu_max_pool(x, wt, bs, rm, rv, kernel_size=pool[0], stride=pool[1], padding=pool[2],
                                           momentum=0.3, eps=1e-3)
    theirs = pool_composition(x, wt, bs, rm2, rv2, 0.3, 1e-3, pool)
    assert ours.is_contiguous()
    assert_agrees(ours, theirs, ((rm, rm2), (rv, rv2)), tol, (x, wt, bs), g)


def test_pool_numpy_against_the_reference():
    rng = np.random.default_rng(3)
    for pool in ((3, 2, 1), (2, 1, 1), (3, 3, 0)):
        x = rng.standard_normal((2, 5, 7, 8)) * 2 + 0.5
        x[0, 1, 2, 3] = np.nan  # a nan wins its windows (torch's max pool) and poisons its channel's statistics
        w, b = rng.standard_normal(5), rng.standard_normal(5)
        rm, rv = np.zeros(5), np.ones(5)
        rm2, rv2 = rm.copy(), rv.copy()
        out = vision.batch_norm_relu_max_pool(x, w, b, rm, rv, kernel_size=pool[0], stride=pool[1], padding=pool[2])
        expected = ref.batch_norm_relu_max_pool(x, w, b, rm2, rv2, kernel_size=pool[0], stride=pool[1],
                                                padding=pool[2])
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rm, rm2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rv, rv2, rtol=1e-12, atol=1e-14)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.flags.c_contiguous


@needs_torch
def test_pool_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: vision.batch_norm_relu_max_pool(x, w, b), (x, w, b))


@needs_torch
@pytest.mark.parametrize("call,exc,match", [
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w[:2], w), ValueError, r"weight, bias: expected \[C\] = \[3\]"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w, w, kernel_size=0), ValueError,
     "kernel_size: expected an integer >= 1, got 0"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w, w, stride=1.5), TypeError, "stride: expected an integer"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w, w, padding=2), ValueError,
     r"padding: expected an integer in \[0, kernel_size / 2\] = \[0, 1\], got 2"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w, w, kernel_size=7, padding=1), ValueError,
     "x: expected H and W of at least 5 for kernel_size 7 and padding 1"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w, w, momentum=-0.1), ValueError, "momentum: expected a number"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x, w, w, torch.zeros(3)), ValueError, "running_mean, running_var"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x[:1, :, :1, :1], w, w, kernel_size=1, padding=0), ValueError,
     "more than (one|1) value per channel"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x[0], w, w), ValueError, r"x: expected \[N, C, H, W\]"),
    (lambda x, w: vision.batch_norm_relu_max_pool(x.numpy(), w, w), TypeError, "weight: expected a numpy array"),
    (lambda x, w: vision.batch_norm_relu_max_pool([1.0], w, w), TypeError, "x: expected a numpy array or torch tensor"),
])
def test_pool_bad_input(call, exc, match):
    x, w = torch.randn(2, 3, 4, 4), torch.ones(3)
    with pytest.raises(exc, match=match):
        call(x, w)


@needs_torch
@pytest.mark.parametrize("pooled", [False, True])
def test_tensors_without_a_graph_update_the_running_statistics_in_place(pooled):
    """Plain CPU tensors outside autograd take the numpy path: the running statistics change in
    the tensors' memory, their versions move on as torch's in-place updates move them, and the
    result is a tensor equal to torch's composition."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, 6, 7, generator=g)
    w, b = torch.randn(5, generator=g), torch.randn(5, generator=g)
    rm, rv = torch.zeros(5), torch.ones(5)
    rm2, rv2 = rm.clone(), rv.clone()
    versions = rm._version, rv._version
    if pooled:
        ours = vision.batch_norm_relu_max_pool(x, w, b, rm, rv, momentum=0.2)
        theirs = pool_composition(x, w, b, rm2, rv2, 0.2, 1e-5, (3, 2, 1))
    else:
        ours = vision.batch_norm_relu(x, w, b, rm, rv, momentum=0.2)
        theirs = torch_composition(x, w, b, rm2, rv2, 0.2, 1e-5, True)
    assert isinstance(ours, torch.Tensor) and ours.is_contiguous()
    assert_agrees(ours, theirs, ((rm, rm2), (rv, rv2)), TOL["float32"])
    assert rm._version > versions[0] and rv._version > versions[1]


@needs_torch
def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(monkeypatch):
    """The common batch_norm_relu call is one binding call (``_C.vision.batch_norm_plain``, and
    ``batch_norm_backward_plain`` for the gradients), on numpy arrays, CPU tensors without a graph
    and, inside the autograd.Function, tensors that require grad: the values and gradients of the
    general path, the running statistics updated as it updates them (to their dtype's rounding)
    with their versions moved on. It declines, writing nothing, what the general path must take."""
    from nimbleops.vision import batch_norm as bn

    g = torch.Generator().manual_seed(7)
    cases = []
    for dtype in (torch.float32, torch.float64):
        x = 2 * torch.randn(3, 5, 4, 6, generator=g, dtype=dtype) + 0.5
        w, b = torch.randn(5, generator=g, dtype=dtype), torch.randn(5, generator=g, dtype=dtype)
        for relu in (False, True):
            for stats in (False, True):
                for kind in ("numpy", "torch", "grad"):
                    cases.append((x, w, b, relu, stats, kind))
    cot = torch.randn(3, 5, 4, 6, generator=g, dtype=torch.float64)

    def run(x, w, b, relu, stats, kind):
        rm, rv = (torch.randn(5, generator=torch.Generator().manual_seed(1), dtype=x.dtype),
                  torch.rand(5, generator=torch.Generator().manual_seed(2), dtype=x.dtype) + 0.5) if stats \
            else (None, None)
        versions = (rm._version, rv._version) if stats else None
        if kind == "numpy":
            arrays = [t.numpy() if t is not None else None for t in (x.clone(), w, b, rm, rv)]
            y = vision.batch_norm_relu(*arrays, momentum=0.3, eps=1e-3, relu=relu)
            assert isinstance(y, np.ndarray)
            return [torch.from_numpy(y)] + ([torch.from_numpy(arrays[3]), torch.from_numpy(arrays[4])] if stats else [])
        xs, ws, bs = (t.clone().requires_grad_(kind == "grad") for t in (x, w, b))
        y = vision.batch_norm_relu(xs, ws, bs, rm, rv, momentum=0.3, eps=1e-3, relu=relu)
        if stats:
            assert rm._version > versions[0] and rv._version > versions[1]
        grads = list(torch.autograd.grad(y, (xs, ws, bs), cot.to(x.dtype))) if kind == "grad" else []
        return [y.detach()] + grads + ([rm, rv] if stats else [])

    monkeypatch.setattr(bn._C.vision, "batch_norm_plain", lambda *_: None)  # the general path alone
    monkeypatch.setattr(bn._C.vision, "batch_norm_backward_plain", lambda *_: None)
    general = [run(*case) for case in cases]
    monkeypatch.undo()

    def no_general_path(*_, **__):
        raise AssertionError("the general path was taken")

    for name in ("run_forward", "run_backward", "_update_running"):
        monkeypatch.setattr(bn, name, no_general_path)
    for case, expected in zip(cases, general):
        got = run(*case)
        stats = case[4]
        n_stats = 2 if stats else 0
        for a, e in zip(got[:len(got) - n_stats], expected[:len(expected) - n_stats]):
            assert a.dtype == e.dtype and a.shape == e.shape
            torch.testing.assert_close(a, e, rtol=0, atol=0)  # the same kernels
        for a, e in zip(got[len(got) - n_stats:], expected[len(expected) - n_stats:]):
            torch.testing.assert_close(a, e)  # a fused multiply-add or not: the dtype's rounding

    plain = bn._C.vision.batch_norm_plain
    x, w = torch.randn(2, 3, 4, 4, generator=g), torch.randn(3, generator=g)
    rm, rv = torch.zeros(3), torch.ones(3)
    assert plain(x, w, w, rm, rv, 0.1, 1e-5, True) is not None
    snapshot = rm.clone(), rv.clone(), rm._version, rv._version
    for args in ((x.contiguous(memory_format=torch.channels_last), w, w, rm, rv, 0.1, 1e-5, True),
                 (x[:, :, 1:], w, w, rm, rv, 0.1, 1e-5, True),  # strided x
                 (x.double(), w, w, rm, rv, 0.1, 1e-5, True),  # dtypes differ
                 (x, w.numpy(), w, rm, rv, 0.1, 1e-5, True),  # kinds differ
                 (x, w[:2], w, rm, rv, 0.1, 1e-5, True),
                 (x, w, w, rm.double(), rv, 0.1, 1e-5, True),
                 (x, w, w, rm[:2], rv, 0.1, 1e-5, True),
                 (x, w, w, rm, None, 0.1, 1e-5, True),
                 (x, w, w, None, rv, 0.1, 1e-5, True),
                 (x[:1, :, :1, :1], w, w, rm, rv, 0.1, 1e-5, True),  # one value per channel
                 (x, w, w, rm, rv, 1.5, 1e-5, True), (x, w, w, rm, rv, np.float64(0.1), 1e-5, True),
                 (x, w, w, rm, rv, True, 1e-5, True), (x, w, w, rm, rv, 0.1, -1.0, True),
                 (x, w, w, rm, rv, 0.1, float("nan"), True), (x, w, w, rm, rv, 0.1, 1e-5, 1),
                 (x.requires_grad_(), w, w, rm, rv, 0.1, 1e-5, True)):  # autograd would record it
        assert plain(*args) is None
    x.requires_grad_(False)
    with torch.no_grad():
        assert plain(x.requires_grad_(), w, w, rm, rv, 0.1, 1e-5, True) is not None  # no graph to record
    rm2, rv2 = snapshot[0].clone(), snapshot[1].clone()
    torch_composition(x.detach(), w, w, rm2, rv2, 0.1, 1e-5, True)
    torch.testing.assert_close(rm, rm2), torch.testing.assert_close(rv, rv2)  # declined calls wrote nothing
    readonly = np.zeros(3, np.float32)
    readonly.flags.writeable = False
    assert plain(x.detach().numpy(), w.numpy(), w.numpy(), readonly, np.ones(3, np.float32), 0.1, 1e-5, True) is None
    backward = bn._C.vision.batch_norm_backward_plain
    y, mean, invstd = plain(x.detach(), w, w, None, None, 0.1, 1e-5, True)
    gx, gw, gb = backward(torch.ones_like(y), x.detach(), w, w, y, mean, invstd, 1e-5, True, True, False, True)
    assert gw is None and gx.shape == x.shape and gb.shape == (3,)
    assert backward(torch.ones_like(y).transpose(2, 3).contiguous().transpose(2, 3), x.detach(), w, w, y, mean,
                    invstd, 1e-5, True, True, True, True) is None  # a strided gradient
