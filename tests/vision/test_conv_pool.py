"""conv2d_relu_max_pool: the reference, torch's composition, kinds and memory formats, nan, thread
counts, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import assert_close, needs_torch, torch


@st.composite
def cases(draw):
    """(x shape, weight shape, stride, padding, pool kernel, pool stride, pool padding), valid."""
    Cin, Cout = draw(st.integers(1, 4)), draw(st.integers(1, 9))
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, KH - 2 * padding), 14))
    W = draw(st.integers(max(1, KW - 2 * padding), 40))
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    pk = draw(st.integers(1, 4))
    pp = draw(st.integers(0, pk // 2))
    if OH + 2 * pp < pk or OW + 2 * pp < pk:
        pk, pp = 1, 0
    return ((draw(st.integers(0, 2)), Cin, H, W), (Cout, Cin, KH, KW), stride, padding, pk, draw(st.integers(1, 3)),
            pp)


@given(st.integers(0, 2**31 - 1), cases(), st.booleans(), st.sampled_from(["float32", "float64"]))
def test_matches_reference(seed, case, bias, dtype):
    rng = np.random.default_rng(seed)
    xs, ws, stride, padding, pk, ps, pp = case
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    kw = dict(pool_kernel_size=pk, pool_stride=ps, pool_padding=pp)
    y = vision.conv2d_relu_max_pool(x, w, b, stride, padding, **kw)
    expected = ref.conv2d_relu_max_pool(x, w, b, stride, padding, **kw)
    assert y.shape == expected.shape and y.dtype == x.dtype
    assert_close(y, expected, dtype, scale=10)


@needs_torch
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_equals_torch_on_a_stem(dtype, channels_last):
    """ShuffleNet's stem: conv 3x3 s2 p1 to 24 channels, ReLU, max pool 3x3 s2 p1."""
    F = torch.nn.functional
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 3, 64, 70, dtype=dtype), torch.randn(24, 3, 3, 3, dtype=dtype), torch.randn(24, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = vision.conv2d_relu_max_pool(x, w, b, 2, 1)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 24, 16, 18)
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y, F.max_pool2d(F.relu(F.conv2d(x, w, b, 2, 1)), 3, 2, 1), **tol)


def test_nan_propagates_like_torch():
    x = np.zeros((1, 1, 6, 6))
    x[0, 0, 2, 3] = np.nan
    y = vision.conv2d_relu_max_pool(x, np.ones((2, 1, 1, 1)), None, 1, 0, pool_kernel_size=2, pool_stride=2,
                                    pool_padding=0)
    expected = ref.conv2d_relu_max_pool(x, np.ones((2, 1, 1, 1)), None, 1, 0, pool_kernel_size=2, pool_stride=2,
                                        pool_padding=0)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(y).sum() == 2 and np.isnan(y[:, :, 1, 1]).all()


def test_same_bits_at_any_thread_count():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 50, 47)).astype(np.float32), rng.standard_normal((24, 3, 3, 3)).astype(
        np.float32), rng.standard_normal(24).astype(np.float32)
    threads = nimbleops.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            nimbleops.set_num_threads(n)
            results.append(vision.conv2d_relu_max_pool(x, w, b, 2, 1))
    finally:
        nimbleops.set_num_threads(threads)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@needs_torch
@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:FutureWarning")
def test_refuses_gradients_and_capture():
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="weight: this op is not differentiable"):
        vision.conv2d_relu_max_pool(x, w)
    with torch.no_grad():
        assert vision.conv2d_relu_max_pool(x, w).shape == (1, 4, 3, 3)
    with pytest.raises(TypeError, match="cannot capture"):
        wd = w.detach()
        torch.jit.trace(lambda t: vision.conv2d_relu_max_pool(t, wd), (x,))


def test_bad_input():
    x, w = np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 3, 3))

    def fails(exc, match, *args, **kwargs):
        with pytest.raises(exc, match=match):
            vision.conv2d_relu_max_pool(*args, **kwargs)

    fails(ValueError, r"x: expected \[N, C, H, W\]", x[0], w)
    fails(TypeError, "x: expected float32 or float64", x.astype(np.int32), w)
    fails(ValueError, r"weight: expected \[Cout, 3, KH, KW\]", x, w[:, :2])
    fails(TypeError, "weight: expected dtype float64 like x, got float32", x, w.astype(np.float32))
    fails(ValueError, r"bias: expected 4 elements", x, w, np.zeros(5))
    fails(ValueError, r"stride: expected an integer in \[1, 16\], got 0", x, w, None, 0)
    fails(ValueError, r"padding: expected an integer in \[0, 2\*\*20\), got -1", x, w, None, 1, -1)
    fails(ValueError, r"pool_padding: expected an integer in \[0, pool_kernel_size / 2\] = \[0, 1\], got 2", x, w,
          pool_padding=2)
    fails(ValueError, r"weight: the 9x9 kernel is larger than the padded 8x8 input", x, np.zeros((4, 3, 9, 9)))
    fails(ValueError, r"pool_kernel_size: the 9x9 window is larger than the padded 6x6", x, w, pool_kernel_size=9,
          pool_padding=1)
    fails(TypeError, "stride: expected an integer", x, w, None, 1.5)


def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(monkeypatch):
    """``_C.vision.conv_pool_plain`` (one binding call reading the arrays in C++) gives the
    general path's output for NCHW inputs and answers None for every other call."""
    from nimbleops import _C

    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 12, 11)).astype("float32")
    w, b = rng.standard_normal((5, 3, 3, 3)).astype("float32"), rng.standard_normal(5).astype("float32")
    plain = _C.vision.conv_pool_plain
    kinds = [np.asarray] + ([torch.from_numpy] if torch is not None else [])
    for make in kinds:
        for bias, ints in ((b, (2, 1, 3, 2, 1)), (None, (1, 0, 2, 2, 0))):
            args = (make(x), make(w), None if bias is None else make(bias))
            with monkeypatch.context() as m:
                m.setattr(_C.vision, "conv_pool_plain", lambda *_: None)  # the general path alone
                want = vision.conv2d_relu_max_pool(*args, ints[0], ints[1], pool_kernel_size=ints[2],
                                                   pool_stride=ints[3], pool_padding=ints[4])
            got = plain(*args, *ints)
            assert type(got) is type(want)
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        declined = [(make(np.moveaxis(np.moveaxis(x, 1, 3).copy(), 3, 1)), make(w), None),  # channels_last
                    (make(x), make(w.astype("float64")), None), (make(x), make(w), make(b[:4])),
                    (make(x), make(w[:, :2]), None)]
        for args in declined:
            assert plain(*args, 1, 0, 3, 2, 1) is None
        for ints in ((0, 0, 3, 2, 1), (1, 0, 3, 2, 2), (True, 0, 3, 2, 1), (1.0, 0, 3, 2, 1)):
            assert plain(make(x), make(w), None, *ints) is None, ints
    if torch is not None:
        wg = torch.from_numpy(w).requires_grad_()
        assert plain(torch.from_numpy(x), wg, None, 1, 0, 3, 2, 1) is None  # autograd would record it
