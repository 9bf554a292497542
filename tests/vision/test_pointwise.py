"""Pointwise convolution: reference / torch (hypothesis over groups, ReLU, shuffle, layouts,
dtypes), gradients, thread-count invariance, nn module, a ShuffleNetV2 unit under torch.compile,
bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import (assert_close, assert_same_bits_at_any_thread_count, compile_backend, needs_torch, to_numpy,
                       torch)
from .test_depthwise import LAYOUTS, as_layout

F = torch.nn.functional if torch is not None else None


def reference(x, w, b, groups, relu, shuffle):
    """conv2d 1x1 as loops over the groups' channels (float64), then relu and the shuffle."""
    N, Cin, H, W = x.shape
    Cout = w.shape[0]
    cin_g, cout_g = Cin // groups, Cout // groups
    out = np.zeros((N, Cout, H, W))
    for co in range(Cout):
        g = co // cout_g
        out[:, co] = 0.0 if b is None else b[co]
        for k in range(cin_g):
            out[:, co] += w[co, k] * x[:, g * cin_g + k]
    if relu:
        out = np.maximum(out, 0)
    return ref.channel_shuffle(out, shuffle) if shuffle else out


@st.composite
def problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    groups = draw(st.integers(1, 3))
    Cin, Cout = groups * draw(st.integers(1, 5)), groups * draw(st.integers(1, 9))
    shuffle = draw(st.sampled_from([None] + [s for s in (2, 3) if Cout % s == 0]))
    N, H, W = draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return dict(x=rng.standard_normal((N, Cin, H, W)), w=rng.standard_normal((Cout, Cin // groups, 1, 1)),
                b=rng.standard_normal(Cout) if draw(st.booleans()) else None, groups=groups,
                relu=draw(st.booleans()), shuffle=shuffle, dtype=draw(st.sampled_from(["float32", "float64"])),
                layout=draw(st.sampled_from(["numpy", "numpy-channels_last", "torch", "torch-channels_last"])),
                rng=rng)


@needs_torch
@given(problems())
def test_forward_matches_reference(p):
    x, w = p["x"].astype(p["dtype"]), p["w"].astype(p["dtype"])
    b = None if p["b"] is None else p["b"].astype(p["dtype"])
    xk = as_layout(x, p["layout"])
    if p["layout"].startswith("torch"):
        w, b = torch.from_numpy(w), None if b is None else torch.from_numpy(b)
    out = vision.pointwise_conv2d(xk, w, b, p["groups"], activation="relu" if p["relu"] else None,
                                  shuffle_groups=p["shuffle"])
    want = reference(x.astype(float), to_numpy(w)[:, :, 0, 0].astype(float),
                     None if b is None else to_numpy(b).astype(float), p["groups"], p["relu"], p["shuffle"])
    assert_close(out, want, p["dtype"], scale=10)


@needs_torch
@given(problems())
def test_backward_matches_torch(p):
    layout = "torch-channels_last" if p["layout"].endswith("channels_last") else "torch"
    xs = [as_layout(p["x"], layout).requires_grad_() for _ in range(2)]
    ws = [torch.from_numpy(p["w"]).requires_grad_() for _ in range(2)]
    bs = [None if p["b"] is None else torch.from_numpy(p["b"]).requires_grad_() for _ in range(2)]
    ours = vision.pointwise_conv2d(xs[0], ws[0], bs[0], p["groups"], activation="relu" if p["relu"] else None,
                                   shuffle_groups=p["shuffle"])
    theirs = F.conv2d(xs[1], ws[1], bs[1], groups=p["groups"])
    theirs = theirs.relu() if p["relu"] else theirs
    theirs = F.channel_shuffle(theirs, p["shuffle"]) if p["shuffle"] else theirs
    g = torch.from_numpy(p["rng"].standard_normal(tuple(theirs.shape)))
    ours.backward(g)
    theirs.backward(g)
    torch.testing.assert_close(ours, theirs)
    for a, t in zip(xs[:1] + ws[:1] + bs[:1], xs[1:] + ws[1:] + bs[1:]):
        if a is not None:
            torch.testing.assert_close(a.grad, t.grad)


@needs_torch
@pytest.mark.parametrize("relu,shuffle,groups", [(False, None, 1), (True, 2, 1), (True, None, 3), (False, 3, 3)])
def test_gradcheck(relu, shuffle, groups):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(12, 6 // groups, 1, 1, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(12, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: vision.pointwise_conv2d(x, w, b, groups, activation="relu" if relu else None,
                                                shuffle_groups=shuffle), (x, w, b))


@needs_torch
def test_snet_shapes_match_torch():
    g = torch.Generator().manual_seed(1)
    for shape, shuffle in (((8, 132, 40, 40), None), ((8, 264, 20, 20), 2)):
        x = torch.randn(shape, generator=g)
        w = torch.randn(shape[1], shape[1], 1, 1, generator=g) / shape[1] ** 0.5
        b = torch.randn(shape[1], generator=g)
        want = F.conv2d(x, w, b)
        want = F.channel_shuffle(want, shuffle) if shuffle else want
        torch.testing.assert_close(vision.pointwise_conv2d(x, w, b, shuffle_groups=shuffle), want, rtol=1e-4, atol=1e-4)


@needs_torch
@pytest.mark.parametrize("HW", [1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 100])
def test_every_tail_strip_width(HW):
    """Planes of HW pixels: the 32-pixel strips and the last, partial one (its column passes only
    where the width reaches them), forward and grad_input (the same strips), against the loops."""
    rng = np.random.default_rng(HW)
    x = rng.standard_normal((2, 13, 1, HW)).astype(np.float32)
    w = rng.standard_normal((11, 13, 1, 1)).astype(np.float32)
    b = rng.standard_normal(11).astype(np.float32)
    assert_close(vision.pointwise_conv2d(x, w, b), reference(x, w, b, 1, False, None), "float32")
    xt = torch.from_numpy(x).requires_grad_()
    g = rng.standard_normal((2, 11, 1, HW)).astype(np.float32)
    vision.pointwise_conv2d(xt, torch.from_numpy(w), torch.from_numpy(b)).backward(torch.from_numpy(g))
    assert_close(xt.grad.numpy(), np.einsum("nohw,oi->nihw", g.astype(np.float64), w[:, :, 0, 0]), "float32")


@needs_torch
@pytest.mark.parametrize("N,HW", [(5, 1), (4, 3), (3, 17), (3, 49), (2, 100), (2, 400)])
def test_strips_across_images(N, HW):
    """The images' pixels laid end to end in strips of 32 (a strip crossing images is gathered and
    scattered): each image's output is the bits of the same call on that image alone, and the
    gradients (grad_weight by the GEMM on small images, by tiles of dot products on larger ones)
    match torch in float64."""
    rng = np.random.default_rng(N * HW)
    x = rng.standard_normal((N, 12, 1, HW))
    w, b = rng.standard_normal((10, 6, 1, 1)), rng.standard_normal(10)
    kw = dict(activation="relu", shuffle_groups=5)
    out = vision.pointwise_conv2d(x, w, b, 2, **kw)
    for n in range(N):
        np.testing.assert_array_equal(out[n:n + 1], vision.pointwise_conv2d(x[n:n + 1], w, b, 2, **kw))
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    xr, wr, br = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    g = torch.from_numpy(rng.standard_normal(out.shape))
    vision.pointwise_conv2d(xt, wt, bt, 2, **kw).backward(g)
    F.channel_shuffle(F.relu(F.conv2d(xr, wr, br, groups=2)), 5).backward(g)
    for a, r in ((xt, xr), (wt, wr), (bt, br)):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_a_few_columns_go_one_at_a_time_with_the_strips_bits(dtype, level):
    """Calls of at most 4 output columns (1x1 images: a squeeze-excitation's or a global
    context's 1x1) sum each output column by column; every image keeps the bits it has inside a
    batch that goes through the strips, at each SIMD level, with bias, ReLU, groups and shuffle."""
    import nimbleops

    nimbleops.set_simd_level("auto")
    levels = ("baseline", "avx2", "avx512")
    if levels.index(level) > levels.index(nimbleops.build_info()["simd_active"]):
        pytest.skip(f"{level} is not available here")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 530, 1, 1)).astype(dtype)
    w = rng.standard_normal((246, 265, 1, 1)).astype(dtype)
    b = rng.standard_normal(246).astype(dtype)
    try:
        nimbleops.set_simd_level(level)
        for kw in ({}, dict(activation="relu", shuffle_groups=3)):
            batch = vision.pointwise_conv2d(x, w, b, 2, **kw)
            for n in (0, 1, 4, 39):
                np.testing.assert_array_equal(vision.pointwise_conv2d(x[n:n + 1], w, b, 2, **kw), batch[n:n + 1])
            np.testing.assert_array_equal(vision.pointwise_conv2d(x[4:8], w, None, 2, **kw),
                                          vision.pointwise_conv2d(x[4:12], w, None, 2, **kw)[:4])
            assert_close(batch[:2], reference(x[:2].astype(float), w.astype(float), b.astype(float), 2,
                                              bool(kw), kw.get("shuffle_groups")), dtype)
    finally:
        nimbleops.set_simd_level("auto")


@needs_torch
@pytest.mark.parametrize("HW", [49, 400])
def test_weight_gradient_of_many_input_channels(HW):
    """grad_weight by the GEMM over the batch from 256 input channels per group, any image size."""
    rng = np.random.default_rng(HW)
    x, w = (torch.from_numpy(rng.standard_normal(s)).requires_grad_() for s in ((2, 520, 1, HW), (12, 260, 1, 1)))
    g = torch.from_numpy(rng.standard_normal((2, 12, 1, HW)))
    gw = torch.autograd.grad(vision.pointwise_conv2d(x, w, None, 2), w, g)[0]
    torch.testing.assert_close(gw, torch.autograd.grad(F.conv2d(x, w, None, groups=2), w, g)[0], rtol=1e-10, atol=1e-10)


@needs_torch
def test_same_bits_at_any_thread_count():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.standard_normal((3, 20, 9, 11)).astype(np.float32)).requires_grad_()
    w = torch.from_numpy(rng.standard_normal((30, 10, 1, 1)).astype(np.float32)).requires_grad_()
    b = torch.from_numpy(rng.standard_normal(30).astype(np.float32)).requires_grad_()

    def once():
        for t in (x, w, b):
            t.grad = None
        out = vision.pointwise_conv2d(x, w, b, 2, activation="relu", shuffle_groups=3)
        out.backward(torch.ones_like(out))
        return out.detach(), x.grad.clone(), w.grad.clone(), b.grad.clone()

    assert_same_bits_at_any_thread_count(once)


@needs_torch
def test_nn_module_loads_conv2d_state_dict():
    from nimbleops import nn

    conv = torch.nn.Conv2d(8, 12, 1, groups=2)
    ours = nn.PointwiseConv2d(8, 12, groups=2)
    ours.load_state_dict(conv.state_dict())
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(ours(x), conv(x))


class ShuffleV2Unit(torch.nn.Module if torch is not None else object):
    """A ShuffleNetV2 unit (stride 1) from nimbleops ops: split, branch (1x1 + ReLU, 5x5
    depthwise, 1x1 + ReLU), then the fused concat + shuffle + split of the next unit's input."""

    def __init__(self, channels):
        super().__init__()
        from nimbleops import nn

        half = channels // 2
        self.pw1 = nn.PointwiseConv2d(half, half, activation="relu")
        self.dw = nn.DepthwiseConv2d(half, half, 5, padding=2)
        self.pw2 = nn.PointwiseConv2d(half, half, activation="relu")

    def forward(self, a, b):
        return vision.concat_shuffle_split(a, self.pw2(self.dw(self.pw1(b))))


@needs_torch
def test_shufflenet_v2_unit_compiles():
    torch.manual_seed(3)
    unit = ShuffleV2Unit(16).double()
    a = torch.randn(2, 8, 10, 10, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 8, 10, 10, dtype=torch.float64, requires_grad=True)

    def loss(unit, a, b):
        o1, o2 = unit(a, b)
        return (o1 * o2).sum()

    eager = loss(unit, a, b)
    eager_grads = torch.autograd.grad(eager, [a, b] + list(unit.parameters()))
    compiled = torch.compile(lambda a, b: loss(unit, a, b), fullgraph=True, backend=compile_backend())
    got = compiled(a, b)
    got_grads = torch.autograd.grad(got, [a, b] + list(unit.parameters()))
    torch.testing.assert_close(got, eager)
    for g1, g2 in zip(got_grads, eager_grads):
        torch.testing.assert_close(g1, g2)
    from nimbleops import torch_ops

    x = torch.randn(2, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, 1, 1, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch_ops.pointwise_conv2d_op, (x, w, None, 2, True, 3))


# (case, call(x [1, 6, 3, 3] float64, w [4, 6, 1, 1] numpy), exception, message)
BAD_INPUT = [
    ("weight Cin", lambda x, w: vision.pointwise_conv2d(x, np.zeros((4, 5, 1, 1))),
     ValueError, r"weight: expected \[Cout, Cin/groups, 1, 1\]"),
    ("weight 3x3", lambda x, w: vision.pointwise_conv2d(x, np.zeros((4, 6, 3, 3))),
     ValueError, r"weight: expected \[Cout, Cin/groups, 1, 1\]"),
    ("groups not dividing Cin", lambda x, w: vision.pointwise_conv2d(x, w, groups=4),
     ValueError, "groups: expected a divisor of the 6 input channels, got 4"),
    ("groups not dividing Cout", lambda x, w: vision.pointwise_conv2d(x, np.zeros((4, 2, 1, 1)), groups=3),
     ValueError, "weight: expected .* Cout divisible by groups = 3"),
    ("shuffle_groups", lambda x, w: vision.pointwise_conv2d(x, w, shuffle_groups=3),
     ValueError, "shuffle_groups: expected a divisor of the 4 output channels, got 3"),
    ("activation", lambda x, w: vision.pointwise_conv2d(x, w, activation="gelu"),
     ValueError, "activation: expected None or 'relu'"),
    ("bias length", lambda x, w: vision.pointwise_conv2d(x, w, np.zeros(5)),
     ValueError, r"bias: expected \[Cout\] = \[4\]"),
    ("int x", lambda x, w: vision.pointwise_conv2d(x.astype(np.int64) if isinstance(x, np.ndarray) else
                                                   x.to(torch.int64), w),
     TypeError, "x: expected float32 or float64, got dtype int64"),
    ("float32 weight", lambda x, w: vision.pointwise_conv2d(x, w.astype(np.float32)),
     TypeError, "weight: expected dtype float64 like x, got float32"),
]


@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout in ("numpy", "torch")])
@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input(layout, call, exc, match):
    with pytest.raises(exc, match=match):
        call(as_layout(np.zeros((1, 6, 3, 3)), layout), np.zeros((4, 6, 1, 1)))


@needs_torch
def test_torch_cpu_common_case(monkeypatch):
    """NCHW numpy arrays and CPU tensors without autograd take the plain call (one binding call,
    ``_C.vision.pointwise_plain``): the same values as the general path; what it does not take
    goes on to the general path."""
    from nimbleops.vision import pointwise

    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((2, 12, 5, 7)))
    w = torch.from_numpy(rng.standard_normal((8, 6, 1, 1)))
    b = torch.from_numpy(rng.standard_normal(8))
    cases = []
    monkeypatch.setattr(pointwise._C.vision, "pointwise_plain", lambda *_: None)  # the general path alone
    for dtype in (torch.float32, torch.float64):
        xs, ws, bs = x.to(dtype), w.to(dtype), b.to(dtype)
        for args, kw in (((bs, 2), {}), ((None, 2), dict(activation="relu", shuffle_groups=4)),
                         ((bs, 2), dict(shuffle_groups=2)), ((bs.reshape(8), 1), {})):
            wk = ws if args[1] == 2 else torch.from_numpy(rng.standard_normal((8, 12))).to(dtype)
            cases.append((xs, wk, args, kw, vision.pointwise_conv2d(xs, wk, *args, **kw)))
            as_numpy = tuple(a.numpy() if isinstance(a, torch.Tensor) else a for a in args)
            cases.append((xs.numpy(), wk.numpy(), as_numpy, kw, vision.pointwise_conv2d(xs.numpy(), wk.numpy(),
                                                                                        *as_numpy, **kw)))
    monkeypatch.undo()

    def no_general_path(*_, **__):
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(pointwise.ar, "image_batch", no_general_path)
    for xs, ws, args, kw, general in cases:
        got = vision.pointwise_conv2d(xs, ws, *args, **kw)
        assert type(got) is type(general)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(general))
    xf, wf = x.float(), w.float()
    param = torch.nn.Parameter(wf)
    with torch.no_grad():
        vision.pointwise_conv2d(xf, param, None, 2)  # a Parameter, no graph to record
    for declined in (lambda: vision.pointwise_conv2d(xf, param, None, 2),  # records a graph
                     lambda: vision.pointwise_conv2d(xf.contiguous(memory_format=torch.channels_last), wf, None, 2),
                     lambda: vision.pointwise_conv2d(xf[:, :, 1:], wf, None, 2),  # strided x
                     lambda: vision.pointwise_conv2d(xf, wf.numpy(), None, 2),
                     lambda: vision.pointwise_conv2d(xf, wf, None, np.int64(2)),
                     lambda: vision.pointwise_conv2d(xf, wf, wf[:, 0, 0, :1].T, 2),  # bias [1, Cout]
                     lambda: vision.pointwise_conv2d(xf.numpy(), wf, None, 2),
                     lambda: vision.pointwise_conv2d(xf.numpy().astype(">f4"), wf.numpy(), None, 2),
                     lambda: vision.pointwise_conv2d(xf, wf, None, 3)):  # C++ refuses: the general path names it
        with pytest.raises(AssertionError, match="general path"):
            declined()
    for kw, match in ((dict(shuffle_groups=0), "shuffle_groups: expected an integer >= 1"),
                      (dict(activation="gelu"), "activation: expected None or 'relu'")):
        with pytest.raises(ValueError, match=match):  # declined, and the general path names it
            vision.pointwise_conv2d(xf, wf, None, 2, **kw)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="groups: expected a divisor of the 12 input channels, got 5"):
        vision.pointwise_conv2d(xf, wf, None, 5)
    with pytest.raises(ValueError, match="activation: expected None or 'relu', got 'gelu'"):
        vision.pointwise_conv2d(xf, wf, None, 2, activation="gelu")
