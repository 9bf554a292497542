"""Depthwise convolution: reference (hypothesis over shapes, strides, padding, dilation, depth
multiplier, layouts, dtypes), torch on SNet shapes, gradients, thread-count invariance, torch
integration, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nimbleops
from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import assert_close, assert_same_bits_at_any_thread_count, compile_backend, needs_torch, torch

F = torch.nn.functional if torch is not None else None

LAYOUTS = ["numpy", "numpy-channels_last"] + (["torch", "torch-channels_last"] if torch is not None else []) + (
    ["torch-cuda"] if nimbleops.has_cuda() else [])


def as_layout(x, layout):
    """numpy NCHW x -> the given kind and memory layout (same values)."""
    if layout == "numpy":
        return np.ascontiguousarray(x)
    if layout == "numpy-channels_last":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, 3)), 3, 1)
    t = torch.from_numpy(np.ascontiguousarray(x))
    if layout == "torch-channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    return t.cuda() if layout == "torch-cuda" else t


def is_channels_last(y):
    if isinstance(y, np.ndarray):
        return np.moveaxis(y, 1, 3).flags.c_contiguous
    return y.is_contiguous(memory_format=torch.channels_last)


@st.composite
def convs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    N, C, m = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    K = draw(st.sampled_from([(3, 3), (5, 5), (1, 1), (2, 4), (3, 1)]))
    stride = draw(st.sampled_from([1, 2, (1, 3), 3]))
    padding = draw(st.sampled_from([0, 1, 2, (0, 3)]))
    dilation = draw(st.sampled_from([1, 1, 2, (2, 1)]))
    H, W = draw(st.integers(1, 11)), draw(st.integers(1, 19))
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    (ph, pw), (dh, dw) = pair(padding), pair(dilation)
    assume(H + 2 * ph >= dh * (K[0] - 1) + 1 and W + 2 * pw >= dw * (K[1] - 1) + 1)
    return dict(x=rng.standard_normal((N, C, H, W)), w=rng.standard_normal((C * m, 1) + K),
                b=rng.standard_normal(C * m) if draw(st.booleans()) else None, stride=stride, padding=padding,
                dilation=dilation, dtype=draw(st.sampled_from(["float32", "float64"])),
                layout=draw(st.sampled_from(LAYOUTS)), rng=rng)


def args(p):
    return p["stride"], p["padding"], p["dilation"]


@given(convs())
def test_forward_matches_reference(p):
    x, w = p["x"].astype(p["dtype"]), p["w"].astype(p["dtype"])
    b = None if p["b"] is None else p["b"].astype(p["dtype"])
    xk = as_layout(x, p["layout"])
    if not p["layout"].startswith("numpy"):
        w, b = (None if a is None else torch.from_numpy(a).to(xk.device) for a in (w, b))
    out = vision.depthwise_conv2d(xk, w, b, *args(p))
    want = ref.depthwise_conv2d(p["x"].astype(p["dtype"]).astype(float), p["w"].astype(p["dtype"]).astype(float),
                                None if p["b"] is None else p["b"].astype(p["dtype"]).astype(float), *args(p))
    assert_close(out, want, p["dtype"], scale=10)
    from nimbleops.vision.shuffle import channels_last

    if channels_last(xk):  # (an input with C = 1 or H * W = 1 is NCHW as well, and stays so)
        assert is_channels_last(out)


@needs_torch
@given(convs())
def test_backward_matches_reference(p):
    layout = "torch-channels_last" if p["layout"].endswith("channels_last") else "torch"
    x = as_layout(p["x"], layout).requires_grad_()
    w = torch.from_numpy(p["w"]).requires_grad_()
    b = None if p["b"] is None else torch.from_numpy(p["b"]).requires_grad_()
    out = vision.depthwise_conv2d(x, w, b, *args(p))
    g = torch.from_numpy(p["rng"].standard_normal(tuple(out.shape)))
    out.backward(g)
    gx, gw, gb = ref.depthwise_conv2d_backward(g.numpy(), p["x"], p["w"], *args(p))
    assert_close(x.grad, gx, "float64", scale=10)
    assert_close(w.grad, gw, "float64", scale=10)
    if b is not None:
        assert_close(b.grad, gb, "float64", scale=10)


@st.composite
def blocked_convs(draw):
    """The float32 register-blocked shapes (3x3 / 5x5, stride 1 / 2, m = 1), channel counts across
    whole and partial blocks of 16, paddings up to past K - 1 (stride 1 then scatters grad_input)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    k, stride = draw(st.sampled_from([3, 5])), draw(st.sampled_from([1, 2]))
    padding = (draw(st.integers(0, k)), draw(st.integers(0, k)))
    N, C, H, W = draw(st.integers(1, 2)), draw(st.integers(1, 40)), draw(st.integers(1, 13)), draw(st.integers(1, 23))
    assume(H + 2 * padding[0] >= k and W + 2 * padding[1] >= k)
    return dict(x=rng.standard_normal((N, C, H, W)), w=rng.standard_normal((C, 1, k, k)),
                b=rng.standard_normal(C) if draw(st.booleans()) else None, stride=stride, padding=padding,
                fmt=draw(st.sampled_from(["nchw", "channels_last"])), rng=rng)


@needs_torch
@given(blocked_convs())
def test_blocked_float32_forward_and_backward_match_reference(p):
    _check_blocked(p)


@needs_torch
@pytest.mark.parametrize("C", [16, 20, 33])
@pytest.mark.parametrize("hw", [(1, 8), (3, 9), (2, 13), (5, 16), (4, 17), (3, 5), (6, 24)])
@pytest.mark.parametrize("k,stride", [(3, 1), (5, 1), (3, 2), (5, 2)])
def test_blocked_rows_of_every_width_match_reference(C, hw, k, stride):
    """The AVX2 row transposes (image rows of 8 or more elements in pieces of 8, the last one
    overlapping; output rows back to back as one row) and the 10-pixel blocks with their 4-, 2- and
    1-pixel tails, over full and partial blocks of 16 channels, NCHW float32."""
    rng = np.random.default_rng(C * 1000 + hw[0] * 50 + hw[1] + k + stride)
    _check_blocked(dict(x=rng.standard_normal((2, C) + hw), w=rng.standard_normal((C, 1, k, k)),
                        b=rng.standard_normal(C), stride=stride, padding=(k // 2, k // 2), fmt="nchw", rng=rng))


@needs_torch
@pytest.mark.parametrize("C", [16, 20, 33])
@pytest.mark.parametrize("hw,padding", [((9, 8), (2, 2)), ((6, 13), (0, 1)), ((11, 5), (1, 0)), ((8, 24), (2, 1))])
@pytest.mark.parametrize("k", [3, 5])
def test_channels_last_stride2_matches_reference(C, hw, padding, k):
    """channels_last at stride 2, three images, float32: the in-place register blocks over full
    and partial blocks of 16 channels, rows and columns reaching into the padding (or none), and
    the blocks' 4-, 2- and 1-pixel tails, forward and backward against the reference."""
    if hw[0] + 2 * padding[0] < k or hw[1] + 2 * padding[1] < k:
        pytest.skip("kernel larger than the padded input")
    rng = np.random.default_rng(C * 100 + hw[0] * 10 + hw[1] + k)
    _check_blocked(dict(x=rng.standard_normal((3, C) + hw), w=rng.standard_normal((C, 1, k, k)),
                        b=rng.standard_normal(C) if C != 20 else None, stride=2, padding=padding,
                        fmt="channels_last", rng=rng))


@needs_torch
@pytest.mark.parametrize("C", [16, 20])
@pytest.mark.parametrize("W", [6, 8, 10, 12, 16, 20, 24, 40, 41])
@pytest.mark.parametrize("k,stride", [(3, 1), (5, 1), (3, 2), (5, 2)])
def test_channels_last_edge_blocks_match_reference(C, W, k, stride):
    """channels_last under padding K / 2, rows whose main or wide pixel blocks reach the left
    padding, the right padding or both (one block spanning the row), which leave the padding
    columns out, and the rows whose edges fall to the 4-, 2- and 1-pixel blocks of the table,
    forward and backward against the reference."""
    rng = np.random.default_rng(C * 1000 + W * 10 + k + stride)
    _check_blocked(dict(x=rng.standard_normal((1, C, 5, W)), w=rng.standard_normal((C, 1, k, k)),
                        b=rng.standard_normal(C), stride=stride, padding=(k // 2, k // 2), fmt="channels_last",
                        rng=rng))


@needs_torch
@pytest.mark.parametrize("C,H", [(5, 16), (20, 17), (33, 40)])
@pytest.mark.parametrize("k,stride", [(3, 1), (5, 1), (3, 2), (5, 2)])
@pytest.mark.parametrize("padding", [None, (0, 1), (3, 0), (9, 2)])
@pytest.mark.parametrize("wants", ["xwb", "x", "wb"])
def test_blocked_row_bands_match_reference(C, H, k, stride, padding, wants):
    """One image of few blocks of 16 channels: the blocked NCHW tasks split the output rows into
    bands (bands reaching into the padding, or wholly in it), forward and each subset of the
    gradients (grad_input alone gathers or scatters in bands or in one piece)."""
    padding = padding or (k // 2, k // 2)
    rng = np.random.default_rng(C * 100 + H + k * 7 + stride + padding[0])
    x, w, b = rng.standard_normal((1, C, H, 9)), rng.standard_normal((C, 1, k, k)), rng.standard_normal(C)
    xt, wt, bt = (torch.from_numpy(a.astype(np.float32)) for a in (x, w, b))
    xt.requires_grad_("x" in wants)
    wt.requires_grad_("w" in wants)
    bt.requires_grad_("b" in wants)
    out = vision.depthwise_conv2d(xt, wt, bt, stride, padding)
    x64, w64, b64 = (a.astype(np.float32).astype(float) for a in (x, w, b))
    assert_close(out.detach(), ref.depthwise_conv2d(x64, w64, b64, stride, padding, 1), "float32", scale=10)
    g = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(torch.from_numpy(g))
    gx, gw, gb = ref.depthwise_conv2d_backward(g.astype(float), x64, w64, stride, padding, 1)
    for t, want, wanted, scale in ((xt, gx, "x", 10), (wt, gw, "w", 100), (bt, gb, "b", 100)):
        if wanted in wants:
            assert_close(t.grad, want, "float32", scale=scale)
        else:
            assert t.grad is None


def _check_blocked(p):
    x = torch.from_numpy(p["x"].astype(np.float32))
    if p["fmt"] == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.from_numpy(p["w"].astype(np.float32)).requires_grad_()
    b = None if p["b"] is None else torch.from_numpy(p["b"].astype(np.float32)).requires_grad_()
    out = vision.depthwise_conv2d(x, w, b, p["stride"], p["padding"])
    x64, w64 = p["x"].astype(np.float32).astype(float), p["w"].astype(np.float32).astype(float)
    b64 = None if p["b"] is None else p["b"].astype(np.float32).astype(float)
    assert_close(out.detach(), ref.depthwise_conv2d(x64, w64, b64, p["stride"], p["padding"], 1), "float32",
                 scale=10)
    g = p["rng"].standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(torch.from_numpy(g))
    gx, gw, gb = ref.depthwise_conv2d_backward(g.astype(float), x64, w64, p["stride"], p["padding"], 1)
    assert_close(x.grad, gx, "float32", scale=10)
    assert_close(w.grad, gw, "float32", scale=100)  # sums over N * OH * OW products
    if b is not None:
        assert_close(b.grad, gb, "float32", scale=100)


@needs_torch
@pytest.mark.parametrize("C", [49, 100, 132])
@pytest.mark.parametrize("N,hw", [(1, (9, 11)), (3, (6, 5)), (2, (17, 4))])
@pytest.mark.parametrize("k,padding", [(3, 1), (5, 2), (5, (0, 1)), (3, (2, 0))])
def test_channels_last_channel_chunks_match_reference(C, N, hw, k, padding):
    """channels_last at stride 1 on small images runs chunks of about 48 channels (multiples of
    16; the last one shorter, down to 4 channels) over bands of rows: every chunk and band boundary,
    against the loops, and the same bits at one and two threads."""
    rng = np.random.default_rng(C * 100 + N * 10 + k)
    x, w, b = rng.standard_normal((N, C) + hw), rng.standard_normal((C, 1, k, k)), rng.standard_normal(C)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    xt = torch.from_numpy(x32).contiguous(memory_format=torch.channels_last)
    wt, bt = torch.from_numpy(w32), torch.from_numpy(b32)
    out = vision.depthwise_conv2d(xt, wt, bt, 1, padding)
    assert is_channels_last(out)
    want = ref.depthwise_conv2d(x32.astype(float), w32.astype(float), b32.astype(float), 1, padding, 1)
    assert_close(out, want, "float32", scale=10)
    assert_same_bits_at_any_thread_count(lambda: (vision.depthwise_conv2d(xt, wt, bt, 1, padding),))


@needs_torch
@pytest.mark.parametrize("hw", [(1, 1), (1, 40), (40, 1), (2, 3), (3, 7), (5, 16), (4, 17), (7, 7), (6, 33),
                                (20, 20), (19, 21), (13, 32), (40, 40), (3, 300)])
@pytest.mark.parametrize("wants", ["xwb", "x", "wb"])
def test_flat_planes_3x3_match_reference(hw, wants):
    """3x3, stride 1, padding 1, NCHW float32 reads each plane in place as one row of H * W
    elements (at AVX-512; the other levels take the blocked path): planes whose vectors are all
    border vectors, whose inside vectors start and end mid-row, widths below, at and past 16, and
    plane sizes on both sides of the 400 pixels from which the backward takes it too; the forward
    and each subset of the gradients, with and without a bias, against the loops and torch."""
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    x, w, b = rng.standard_normal((2, 5) + hw), rng.standard_normal((5, 1, 3, 3)), rng.standard_normal(5)
    x64, w64, b64 = (a.astype(np.float32).astype(float) for a in (x, w, b))
    g = rng.standard_normal((2, 5) + hw).astype(np.float32)
    gx, gw, gb = ref.depthwise_conv2d_backward(g.astype(float), x64, w64, 1, 1, 1)
    for bias in (True, False):
        xt, wt, bt = (torch.from_numpy(a.astype(np.float32)) for a in (x, w, b))
        xt.requires_grad_("x" in wants)
        wt.requires_grad_("w" in wants)
        bt.requires_grad_("b" in wants and bias)
        out = vision.depthwise_conv2d(xt, wt, bt if bias else None, 1, 1)
        assert_close(out.detach(), ref.depthwise_conv2d(x64, w64, b64 if bias else None, 1, 1, 1), "float32",
                     scale=10)
        assert_close(out.detach(), F.conv2d(xt.detach(), wt.detach(), bt.detach() if bias else None, 1, 1,
                                            groups=5), "float32", scale=10)
        out.backward(torch.from_numpy(g))
        for t, want, wanted, scale in ((xt, gx, "x" in wants, 10), (wt, gw, "w" in wants, 100),
                                       (bt, gb, "b" in wants and bias, 100)):
            if wanted:
                assert_close(t.grad, want, "float32", scale=scale)
            else:
                assert t.grad is None


@needs_torch
def test_flat_planes_3x3_skip_the_padding():
    """The flat 3x3 kernels skip the taps in the padding, as torch does: an infinite weight gives
    torch's +-inf or numbers at the border pixels, not the nan of inf * 0 (forward and grad_input).
    Only at AVX-512, the level that has them: the blocked path multiplies the padding columns."""
    if nimbleops.build_info()["simd_active"] != "avx512":
        pytest.skip("the flat 3x3 kernels run at AVX-512 only")
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((1, 2, 24, 24)).astype(np.float32) + 0.5).requires_grad_()
    w = torch.from_numpy(rng.random((2, 1, 3, 3)).astype(np.float32))
    w[0, 0, 0, 1] = float("inf")
    w[1, 0, 1, 2] = float("inf")
    out = vision.depthwise_conv2d(x, w, None, 1, 1)
    want = F.conv2d(x.detach(), w, None, 1, 1, groups=2)
    torch.testing.assert_close(out.detach(), want, equal_nan=True)
    g = torch.ones(1, 2, 24, 24)
    out.backward(g)
    xr = x.detach().clone().requires_grad_()
    F.conv2d(xr, w, None, 1, 1, groups=2).backward(g)
    torch.testing.assert_close(x.grad, xr.grad, equal_nan=True)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("dilation", [1, (2, 1)])
@pytest.mark.parametrize("hw", [(24, 37), (9, 16), (40, 40)])
def test_stride1_planes_match_reference(k, dilation, hw):
    """Stride 1 runs a whole plane as one virtual row, four output rows per block where the plane
    is tall enough (and the row step is 1), the rest vector by vector: every output matches."""
    rng = np.random.default_rng(k * 100 + hw[0])
    x, w, b = rng.standard_normal((2, 3) + hw), rng.standard_normal((3, 1, k, k)), rng.standard_normal(3)
    for dtype in ("float32", "float64"):
        out = vision.depthwise_conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), 1, k // 2, dilation)
        want = ref.depthwise_conv2d(x.astype(dtype).astype(float), w.astype(dtype).astype(float),
                                    b.astype(dtype).astype(float), 1, k // 2, dilation)
        assert_close(out, want, dtype, scale=10)


SNET = [((8, 132, 40, 40), 5, 1), ((8, 264, 20, 20), 5, 1), ((8, 528, 10, 10), 5, 1), ((8, 132, 80, 80), 5, 2),
        ((1, 132, 40, 40), 3, 1)]


@needs_torch
@pytest.mark.parametrize("shape,k,stride", SNET)
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_snet_shapes_match_torch(shape, k, stride, fmt):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(shape[1], 1, k, k, generator=g) * 0.2
    b = torch.randn(shape[1], generator=g)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    ws = [w.clone().requires_grad_() for _ in range(2)]
    bs = [b.clone().requires_grad_() for _ in range(2)]
    ours = vision.depthwise_conv2d(xs[0], ws[0], bs[0], stride, k // 2)
    theirs = F.conv2d(xs[1], ws[1], bs[1], stride, k // 2, groups=shape[1])
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert ours.is_contiguous(memory_format=torch.channels_last if fmt == "channels_last" else torch.contiguous_format)
    grad = torch.randn(theirs.shape, generator=g)
    ours.backward(grad)
    theirs.backward(grad)
    for a, t in ((xs[0], xs[1]), (ws[0], ws[1]), (bs[0], bs[1])):
        torch.testing.assert_close(a.grad, t.grad, rtol=1e-4, atol=1e-3)


@needs_torch
@pytest.mark.parametrize("k,stride,padding,dilation,m", [(3, 1, 1, 1, 1), (5, 2, 2, 1, 1), (5, 1, 2, 1, 2),
                                                         ((2, 3), (2, 1), (1, 0), (1, 2), 1), (3, 3, 0, 2, 1)])
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_gradcheck(k, stride, padding, dilation, m, fmt):
    g = torch.Generator().manual_seed(1)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64, generator=g)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(3 * m, 1, kh, kw, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3 * m, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: vision.depthwise_conv2d(x, w, b, stride, padding, dilation),
                                    (x, w, b))


@needs_torch
def test_same_bits_at_any_thread_count():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.standard_normal((3, 6, 21, 20)).astype(np.float32))
    w5 = torch.from_numpy(rng.standard_normal((6, 1, 5, 5)).astype(np.float32))
    w3 = torch.from_numpy(rng.standard_normal((6, 1, 3, 3)).astype(np.float32))
    b = torch.from_numpy(rng.standard_normal(6).astype(np.float32))
    # the last: 3x3 at padding 1 on planes of 420 pixels (forward and backward on the flat kernels at AVX-512)
    for w, stride, padding, fmt in ((w5, 1, 2, torch.contiguous_format), (w5, 2, 2, torch.contiguous_format),
                                    (w5, 1, 2, torch.channels_last), (w3, 1, 1, torch.contiguous_format)):
        xs = x.detach().clone().contiguous(memory_format=fmt).requires_grad_()
        ws, bs = w.clone().requires_grad_(), b.clone().requires_grad_()

        def once():
            for t in (xs, ws, bs):
                t.grad = None
            out = vision.depthwise_conv2d(xs, ws, bs, stride, padding)
            out.backward(torch.ones_like(out))
            return out.detach(), xs.grad.clone(), ws.grad.clone(), bs.grad.clone()

        assert_same_bits_at_any_thread_count(once)


@needs_torch
def test_torch_cpu_common_case(monkeypatch):
    """numpy arrays and CPU tensors without autograd, NCHW or channels_last, take the plain call
    (one binding call, ``_C.vision.depthwise_plain``): the same values and strides as the general
    path; what it does not take goes on to the general path."""
    from nimbleops.vision import depthwise

    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.standard_normal((2, 6, 9, 11)))
    w = torch.from_numpy(rng.standard_normal((12, 1, 5, 3)))
    b = torch.from_numpy(rng.standard_normal(12))
    cases = []
    monkeypatch.setattr(depthwise._C.vision, "depthwise_plain", lambda *_: None)  # the general path alone
    for dtype in (torch.float32, torch.float64):
        for fmt in (torch.contiguous_format, torch.channels_last):
            xs, ws, bs = x.to(dtype).contiguous(memory_format=fmt), w.to(dtype), b.to(dtype)
            for args in ((bs, 1, 2, 1), (None, (2, 1), (1, 0), (1, 2)), (bs, 2, [0, 3], 1)):
                cases.append((xs, ws, args, vision.depthwise_conv2d(xs, ws, *args)))
                as_numpy = tuple(a.numpy() if isinstance(a, torch.Tensor) else a for a in args)
                xn = xs.numpy() if fmt is torch.contiguous_format else np.moveaxis(xs.permute(0, 2, 3, 1).numpy(), 3, 1)
                cases.append((xn, ws.numpy(), as_numpy, vision.depthwise_conv2d(xn, ws.numpy(), *as_numpy)))
    monkeypatch.undo()
    param = torch.nn.Parameter(w.float())

    def no_general_path(*_):
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(depthwise, "_inputs", no_general_path)
    for xs, ws, args, general in cases:
        out = vision.depthwise_conv2d(xs, ws, *args)
        assert type(out) is type(general)
        assert (out.strides == general.strides) if isinstance(out, np.ndarray) else (out.stride() == general.stride())
        np.testing.assert_array_equal(np.asarray(out), np.asarray(general))
    with torch.no_grad():
        vision.depthwise_conv2d(x.float(), param, None, 1, 2)  # a Parameter, no graph to record
    xf, wf = x.float(), w.float()
    for declined in (lambda: vision.depthwise_conv2d(xf, param, None, 1, 2),  # records a graph
                     lambda: vision.depthwise_conv2d(xf[:, :, 1:], wf, None),  # strided x
                     lambda: vision.depthwise_conv2d(xf, wf.transpose(2, 3).contiguous().transpose(2, 3)),
                     lambda: vision.depthwise_conv2d(xf, wf, b.float().to("meta")),
                     lambda: vision.depthwise_conv2d(xf, wf.numpy()),
                     lambda: vision.depthwise_conv2d(xf, wf, None, True),
                     lambda: vision.depthwise_conv2d(xf, wf, None, 1, -1),
                     lambda: vision.depthwise_conv2d(xf, wf, None, (1, 1, 1)),
                     lambda: vision.depthwise_conv2d(xf, wf, None, np.int64(1)),
                     lambda: vision.depthwise_conv2d(xf.numpy()[:, :, ::2], wf.numpy()),
                     lambda: vision.depthwise_conv2d(xf.numpy().astype(">f4"), wf.numpy())):
        with pytest.raises(AssertionError, match="general path"):
            declined()
    monkeypatch.undo()
    # what it declined, in the general path: a non-contiguous weight computed, the rest named
    wt = wf.transpose(2, 3).contiguous().transpose(2, 3)
    assert torch.equal(vision.depthwise_conv2d(xf, wt, None, 1, 2), vision.depthwise_conv2d(xf, wf, None, 1, 2))
    with pytest.raises(ValueError, match="bias: expected a tensor on cpu like x, got meta"):
        vision.depthwise_conv2d(xf, wf, b.float().to("meta"))
    with pytest.raises(TypeError, match="bias: expected dtype float32 like x, got float64"):
        vision.depthwise_conv2d(xf, wf, b)
    with pytest.raises(ValueError, match="larger than the padded input"):
        vision.depthwise_conv2d(xf[:, :, :3], wf)


@needs_torch
def test_numpy_forward_and_dtypes():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 7, 7)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    out = vision.depthwise_conv2d(x, w, None, 1, 1)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (1, 8, 7, 7)
    np.testing.assert_allclose(out, F.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 1, 1, groups=4).numpy(),
                               rtol=1e-5, atol=1e-5)


@needs_torch
def test_opcheck_and_compile():
    from nimbleops import torch_ops

    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)
    torch.library.opcheck(torch_ops.depthwise_conv2d_op, (x, w, b, [1, 1], [1, 1], [1, 1]))
    torch.library.opcheck(torch_ops.depthwise_conv2d_op, (x.contiguous(memory_format=torch.channels_last), w, None,
                                                          [2, 2], [1, 1], [1, 1]))

    def f(x, w, b):
        return vision.channel_shuffle(vision.depthwise_conv2d(x, w, b, 1, 1).relu(), 2).sum()

    compiled = torch.compile(f, fullgraph=True, backend=compile_backend())
    eager = torch.autograd.grad(f(x, w, b), (x, w, b))
    got = torch.autograd.grad(compiled(x, w, b), (x, w, b))
    for a, e in zip(got, eager):
        torch.testing.assert_close(a, e)


@needs_torch
def test_nn_module_loads_conv2d_state_dict():
    from nimbleops import nn

    conv = torch.nn.Conv2d(6, 12, 5, stride=2, padding=2, groups=6)
    ours = nn.DepthwiseConv2d(6, 12, 5, stride=2, padding=2)
    ours.load_state_dict(conv.state_dict())
    x = torch.randn(2, 6, 16, 16)
    torch.testing.assert_close(ours(x), conv(x), rtol=1e-5, atol=1e-5)
    assert "stride=(2, 2)" in repr(ours)


# (case, call(x [1, 4, 6, 6] float64, w [4, 1, 3, 3], layout), exception, message)
BAD_INPUT = [
    ("weight channels", lambda x, w, layout: vision.depthwise_conv2d(x, w[:3], None),
     ValueError, r"weight: expected \[C\*m, 1, KH, KW\] with C = 4"),
    ("weight [C, 2, KH, KW]", lambda x, w, layout: vision.depthwise_conv2d(x, np.zeros((4, 2, 3, 3)), None),
     ValueError, r"weight: expected \[C\*m, 1, KH, KW\]"),
    ("negative padding", lambda x, w, layout: vision.depthwise_conv2d(x, w, None, 1, -1),
     ValueError, "padding: expected values >= 0"),
    ("stride 0", lambda x, w, layout: vision.depthwise_conv2d(x, w, None, 0),
     ValueError, "stride: expected values >= 1"),
    ("kernel larger than the input", lambda x, w, layout: vision.depthwise_conv2d(x, np.zeros((4, 1, 9, 9)), None),
     ValueError, "larger than the padded input"),
    ("int x", lambda x, w, layout: vision.depthwise_conv2d(as_layout(np.zeros((1, 4, 6, 6), np.int64), layout), w,
                                                           None),
     TypeError, "x: expected float32 or float64, got dtype int64"),
    ("float32 weight", lambda x, w, layout: vision.depthwise_conv2d(x, np.zeros((4, 1, 3, 3), np.float32), None),
     TypeError, "weight: expected dtype float64 like x, got float32"),
    ("bias length", lambda x, w, layout: vision.depthwise_conv2d(x, w, np.zeros(3)),
     ValueError, r"bias: expected \[C\*m\] = \[4\]"),
    ("3-d x", lambda x, w, layout: vision.depthwise_conv2d(x[0], w, None),
     ValueError, r"x: expected \[N, C, H, W\]"),
]


@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout in ("numpy", "torch")])
@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input(layout, call, exc, match):
    x = as_layout(np.zeros((1, 4, 6, 6)), layout)
    w = as_layout(np.zeros((4, 1, 3, 3)), layout) if layout == "torch" else np.zeros((4, 1, 3, 3))
    with pytest.raises(exc, match=match):
        call(x, w, layout)


@needs_torch
def test_torch_weight_with_numpy_x():
    with pytest.raises(TypeError, match="weight: a torch tensor given with a numpy x"):
        vision.depthwise_conv2d(np.zeros((1, 4, 6, 6)), torch.zeros(4, 1, 3, 3, dtype=torch.float64), None)


@pytest.mark.parametrize("args", [dict(dilation=2**62, padding=2**62), dict(padding=2**31), dict(padding=2**63),
                                  dict(dilation=(1, 2**61), padding=(0, 2**61)), dict(stride=2**64)])
@pytest.mark.parametrize("use_torch", [False, True])
def test_huge_sizes_are_errors_naming_the_argument(args, use_torch):
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((2, 1, 3, 3), np.float32)
    if use_torch:
        torch = pytest.importorskip("torch")
        x, w = torch.from_numpy(x), torch.from_numpy(w)
    with pytest.raises(ValueError, match="^(padding|dilation|stride): "):
        vision.depthwise_conv2d(x, w, **args)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("C", [1, 3])
def test_empty_batch_forward_and_backward(C, channels_last):
    torch = pytest.importorskip("torch")
    x = torch.randn(0, C, 6, 6, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(2 * C, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2 * C, dtype=torch.float64, requires_grad=True)
    for stride in (1, 2):
        y = vision.depthwise_conv2d(x, w, b, stride, 1)
        assert tuple(y.shape) == (0, 2 * C, 6 // stride, 6 // stride)
        gx, gw, gb = torch.autograd.grad(y.sum(), (x, w, b))
        assert gx.shape == x.shape and not gw.any() and not gb.any()
    assert vision.depthwise_conv2d(np.zeros((0, C, 6, 6)), np.ones((C, 1, 3, 3))).shape == (0, C, 4, 4)
