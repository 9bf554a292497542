"""channel_shuffle and concat_shuffle_split: reference, torch, layouts, gradients, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import (assert_same_bits_at_any_thread_count_and_simd_level, compile_backend, needs_torch, to_numpy,
                       torch)
from .test_depthwise import LAYOUTS, as_layout



@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5),
       st.integers(1, 6), st.sampled_from(LAYOUTS), st.sampled_from(["float32", "float64"]))
def test_channel_shuffle_matches_reference(seed, N, groups, per_group, H, W, layout, dtype):
    x = np.random.default_rng(seed).standard_normal((N, groups * per_group, H, W)).astype(dtype)
    xk = as_layout(x, layout)
    out = vision.channel_shuffle(xk, groups)
    np.testing.assert_array_equal(to_numpy(out), ref.channel_shuffle(x, groups))
    from nimbleops.vision.shuffle import channels_last

    assert channels_last(out) == channels_last(xk)
    if layout.startswith("torch"):
        np.testing.assert_array_equal(to_numpy(out), to_numpy(torch.nn.functional.channel_shuffle(xk.cpu(), groups)))


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(0, 5), st.integers(0, 5), st.integers(1, 4),
       st.integers(1, 5), st.sampled_from(LAYOUTS), st.sampled_from(["float32", "float64"]))
def test_concat_shuffle_split_matches_reference(seed, N, Ca, extra, H, W, layout, dtype):
    Cb = Ca + 2 * extra if (Ca + extra) > 0 else 2  # an even total, a and b of different sizes too
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((N, c, H, W)).astype(dtype) for c in (Ca, Cb))
    out1, out2 = vision.concat_shuffle_split(as_layout(a, layout), as_layout(b, layout))
    want1, want2 = ref.concat_shuffle_split(a, b)
    np.testing.assert_array_equal(to_numpy(out1), want1)
    np.testing.assert_array_equal(to_numpy(out2), want2)
    if layout.startswith("torch"):
        t1, t2 = torch.nn.functional.channel_shuffle(torch.cat([torch.from_numpy(a), torch.from_numpy(b)], 1),
                                                     2).chunk(2, 1)
        np.testing.assert_array_equal(to_numpy(out1), t1.numpy())
        np.testing.assert_array_equal(to_numpy(out2), t2.numpy())


@needs_torch
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_gradients(fmt):
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, generator=g).contiguous(memory_format=mf).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: vision.channel_shuffle(t, 3), (x,))
    a = torch.randn(2, 4, 3, 4, dtype=torch.float64, generator=g).contiguous(memory_format=mf).requires_grad_()
    b = torch.randn(2, 6, 3, 4, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: vision.concat_shuffle_split(p, q), (a, b))
    # one output unused: its gradient is zero
    out1, _ = vision.concat_shuffle_split(a, b)
    out1.sum().backward()
    expected = torch.nn.functional.channel_shuffle(torch.cat([a, b], 1), 2).chunk(2, 1)[0].sum()
    ga, gb = torch.autograd.grad(expected, (a, b))
    torch.testing.assert_close(a.grad, ga)
    torch.testing.assert_close(b.grad, gb)


@needs_torch
def test_same_bits_and_compile():
    from nimbleops import torch_ops

    x = torch.randn(3, 8, 5, 5)
    assert_same_bits_at_any_thread_count_and_simd_level(lambda: (vision.channel_shuffle(x, 2),))
    torch.library.opcheck(torch_ops.channel_shuffle_op, (x.requires_grad_(), 4))
    a, b = torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(2, 4, 3, 3, requires_grad=True)
    torch.library.opcheck(torch_ops.concat_shuffle_split_op, (a, b))
    torch.library.opcheck(torch_ops.concat_shuffle_split_backward, (a.detach(), b.detach(), 2, 6))

    def f(a, b):
        o1, o2 = vision.concat_shuffle_split(a, b)
        return (o1 * o2).sum()

    compiled = torch.compile(f, fullgraph=True, backend=compile_backend())
    torch.testing.assert_close(torch.autograd.grad(compiled(a, b), (a, b)), torch.autograd.grad(f(a, b), (a, b)))


@needs_torch
def test_nn_channel_shuffle():
    from nimbleops import nn

    x = torch.randn(2, 6, 4, 4)
    torch.testing.assert_close(nn.ChannelShuffle(3)(x), torch.nn.ChannelShuffle(3)(x))


# (case, call(x [1, 6, 2, 2] float64, layout), exception, message)
BAD_INPUT = [
    ("groups not dividing C", lambda x, layout: vision.channel_shuffle(x, 4),
     ValueError, "groups: expected a divisor of the channel count 6, got 4"),
    ("groups 0", lambda x, layout: vision.channel_shuffle(x, 0),
     ValueError, "groups: expected an integer >= 1"),
    ("int x", lambda x, layout: vision.channel_shuffle(as_layout(np.zeros((1, 6, 2, 2), np.int64), layout), 2),
     TypeError, "x: expected float32 or float64, got dtype int64"),
    ("3-d x", lambda x, layout: vision.channel_shuffle(x[0], 2),
     ValueError, r"x: expected \[N, C, H, W\]"),
    ("odd total channels", lambda x, layout: vision.concat_shuffle_split(x, as_layout(np.zeros((1, 3, 2, 2)), layout)),
     ValueError, "a, b: expected an even total channel count, got 6 \\+ 3"),
    ("b of another size", lambda x, layout: vision.concat_shuffle_split(x, as_layout(np.zeros((1, 6, 3, 2)), layout)),
     ValueError, r"b: expected \[N, Cb, H, W\] with N, H, W of a"),
    ("b of another dtype", lambda x, layout: vision.concat_shuffle_split(
        x, as_layout(np.zeros((1, 6, 2, 2), np.float32), layout)),
     TypeError, "b: expected dtype float64 like a, got float32"),
]


@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout in ("numpy", "torch")])
@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input(layout, call, exc, match):
    with pytest.raises(exc, match=match):
        call(as_layout(np.zeros((1, 6, 2, 2)), layout), layout)


def test_channel_shuffle_plain_call(monkeypatch):
    """NCHW numpy arrays and CPU tensors outside autograd take the plain call (one binding call,
    ``_C.vision.channel_shuffle_plain``): the same values as the general path, in a new array of
    the input's kind; what it does not take goes on to the general path."""
    from nimbleops.vision import shuffle

    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((2, 12, 3, 5)).astype(dtype) for dtype in ("float32", "float64")]
    inputs.append(np.moveaxis(np.moveaxis(inputs[0], 1, 3).copy(), 3, 1))  # channels_last
    if torch is not None:
        inputs += [torch.from_numpy(x.copy()) for x in inputs[:2]]
        inputs.append(inputs[-1].contiguous(memory_format=torch.channels_last))
    cases = []
    monkeypatch.setattr(shuffle._C.vision, "channel_shuffle_plain", lambda *_: None)
    for x in inputs:
        for groups in (1, 2, 3, 12):
            cases.append((x, groups, vision.channel_shuffle(x, groups)))
    monkeypatch.undo()
    monkeypatch.setattr(shuffle, "_channel_shuffle", lambda *_: pytest.fail("the general path was taken"))
    for x, groups, general in cases:
        got = vision.channel_shuffle(x, groups)
        assert type(got) is type(general) and got.shape == general.shape and got is not x
        assert (got.strides == general.strides) if isinstance(got, np.ndarray) else (got.stride() == general.stride())
        np.testing.assert_array_equal(np.asarray(got), np.asarray(general))
    monkeypatch.undo()
    x = inputs[0]
    declined = [(x, 5), (x, 0), (x, 2.0), (x, True), (x, np.int64(2)), (x[:, :, 1:], 2), (x[0], 2), (x[:0], 2),
                (x.astype(">f4"), 2), (x.astype(np.float16), 2), (x.tolist(), 2)]
    if torch is not None:
        t = inputs[3]
        declined += [(t.clone().requires_grad_(), 2),
                     (torch._neg_view(t.neg()), 2), (t.int(), 2)]
    plain = shuffle._C.vision.channel_shuffle_plain
    for args in declined:
        assert plain(*args) is None, args


@needs_torch
def test_concat_shuffle_split_torch_cpu_common_case(monkeypatch):
    """numpy arrays and CPU tensors without autograd, NCHW or channels_last, take the plain call
    (one binding call, ``_C.vision.concat_shuffle_split_plain``): the same values and strides as
    the general path; what it does not take goes on to the general path."""
    from nimbleops.vision import shuffle

    g = torch.Generator().manual_seed(3)
    cases = []
    monkeypatch.setattr(shuffle._C.vision, "concat_shuffle_split_plain", lambda *_: None)
    for dtype in (torch.float32, torch.float64):
        for fmt in (torch.contiguous_format, torch.channels_last):
            for ca, cb in ((4, 6), (5, 5), (2, 4)):
                a = torch.randn(2, ca, 3, 5, generator=g, dtype=dtype).contiguous(memory_format=fmt)
                b = torch.randn(2, cb, 3, 5, generator=g, dtype=dtype).contiguous(memory_format=fmt)
                cases.append((a, b, vision.concat_shuffle_split(a, b)))
                if fmt is torch.contiguous_format:
                    cases.append((a.numpy(), b.numpy(), vision.concat_shuffle_split(a.numpy(), b.numpy())))
    monkeypatch.undo()

    def no_general_path(*_, **__):
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(shuffle, "_input", no_general_path)
    for a, b, general in cases:
        for got, want in zip(vision.concat_shuffle_split(a, b), general):
            assert type(got) is type(want)
            if isinstance(got, torch.Tensor):
                assert got.stride() == want.stride()
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    a = torch.randn(2, 4, 3, 5, generator=g)
    for declined in (lambda: vision.concat_shuffle_split(a.requires_grad_(), a.detach()),  # records a graph
                     lambda: vision.concat_shuffle_split(a.detach(), a.detach().double()),
                     lambda: vision.concat_shuffle_split(a.detach()[:, :, 1:], a.detach()[:, :, 1:]),
                     lambda: vision.concat_shuffle_split(a.detach(), a.detach()[:, :3]),  # odd total
                     lambda: vision.concat_shuffle_split(a.detach(), a.detach().numpy()),
                     lambda: vision.concat_shuffle_split(a.detach(), a.detach().contiguous(
                         memory_format=torch.channels_last)),
                     lambda: vision.concat_shuffle_split(a.detach(), a.detach()[:, :, :2])):  # shapes differ
        with pytest.raises(AssertionError, match="general path"):
            declined()
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"b: expected \[N, Cb, H, W\] with N, H, W of a"):
        vision.concat_shuffle_split(a.detach(), a.detach()[:, :, :2])


@needs_torch
@pytest.mark.parametrize("channels_last_input", [False, True])
def test_plain_cpu_tensors_numpy_and_the_autograd_path_agree(channels_last_input):
    """A plain CPU tensor runs the numpy path on its memory, one that requires grad the custom op:
    the same values, the input's memory format kept."""
    x = torch.randn(2, 6, 3, 5)
    if channels_last_input:
        x = x.contiguous(memory_format=torch.channels_last)
    plain = vision.channel_shuffle(x, 3)
    graph = vision.channel_shuffle(x.clone().requires_grad_(), 3)
    want = torch.nn.functional.channel_shuffle(x, 3)
    for out in (plain, graph):
        assert isinstance(out, torch.Tensor)
        assert out.is_contiguous(memory_format=torch.channels_last) == channels_last_input
        torch.testing.assert_close(out.detach(), want, rtol=0, atol=0)
