"""Position-sensitive RoI align / pool: reference, torchvision's test case, gradients, layouts,
robustness, torch integration, thread-count invariance, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import (assert_close, assert_same_bits_at_any_thread_count_and_simd_level, compile_backend,
                       import_peer, KINDS, needs_torch, to_kind, torch)


OPS = ["align_avg", "align_max", "pool"]
ALIGN_MODE = {"align_avg": "avg", "align_max": "max"}  # op -> ps_roi_align's mode


def run(op, x, boxes, size, scale, sampling_ratio=-1, aligned=True, **kw):
    if op == "pool":
        return vision.ps_roi_pool(x, boxes, size, scale, **kw)
    return vision.ps_roi_align(x, boxes, size, scale, sampling_ratio, aligned=aligned, mode=ALIGN_MODE[op], **kw)


def run_ref(op, x, boxes, size, scale, sampling_ratio=-1, aligned=True):
    if op == "pool":
        return ref.ps_roi_pool(x, boxes, size, scale)
    return ref.ps_roi_align(x, boxes, size, scale, sampling_ratio, aligned=aligned, mode=ALIGN_MODE[op])


def run_ref_backward(op, g, x, boxes, size, scale, sampling_ratio=-1, aligned=True):
    if op == "pool":
        return ref.ps_roi_pool_backward(g, x, boxes, size, scale)
    return ref.ps_roi_align_backward(g, x, boxes, size, scale, sampling_ratio, aligned=aligned, mode=ALIGN_MODE[op])


def layout(x, how):
    """numpy x [N, C, H, W] float64 -> a torch tensor in the given memory layout (same values)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if how == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if how == "strided":  # a slice of a wider tensor: no stride is the contiguous one
        wide = torch.zeros(t.shape[0], t.shape[1] * 2, t.shape[2], t.shape[3] + 3, dtype=t.dtype)
        wide[:, ::2, :, 1:-2] = t
        return wide[:, ::2, :, 1:-2]
    return t


def random_boxes(rng, N, H, W, K, scale):
    """Boxes in image coordinates: inside, partly or wholly outside, tiny, degenerate, inverted."""
    boxes = np.zeros((K, 5))
    boxes[:, 0] = rng.integers(0, N, K)
    span_h, span_w = H / scale, W / scale
    for k in range(K):
        kind = rng.integers(0, 5)
        x1, y1 = rng.uniform(-0.5, 1.2) * span_w, rng.uniform(-0.5, 1.2) * span_h
        if kind == 0:  # regular
            x2, y2 = x1 + rng.uniform(0.1, 1.0) * span_w, y1 + rng.uniform(0.1, 1.0) * span_h
        elif kind == 1:  # tiny
            x2, y2 = x1 + rng.uniform(0, 0.3), y1 + rng.uniform(0, 0.3)
        elif kind == 2:  # zero size
            x2, y2 = x1, y1
        elif kind == 3:  # inverted
            x2, y2 = x1 - rng.uniform(0, 2), y1 - rng.uniform(0, 2)
        else:  # integer corners on the pixel grid
            x1, y1 = np.floor(x1), np.floor(y1)
            x2, y2 = x1 + rng.integers(0, 2 * W + 1) / scale, y1 + rng.integers(0, 2 * H + 1) / scale
        boxes[k, 1:] = x1, y1, x2, y2
    return boxes


@st.composite
def problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    N, C_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    K = draw(st.integers(0, 6))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25, 1 / 3]))
    x = rng.standard_normal((N, C_out * ph * pw, H, W))
    return dict(x=x, boxes=random_boxes(rng, N, H, W, K, scale), size=(ph, pw), scale=scale,
                sampling_ratio=draw(st.sampled_from([-1, 1, 2, 3])), aligned=draw(st.booleans()),
                op=draw(st.sampled_from(OPS)), dtype=draw(st.sampled_from(["float32", "float64"])),
                layout=draw(st.sampled_from(["numpy", "contiguous", "channels_last", "strided"])), seed=rng)


def call_args(p):
    return dict(sampling_ratio=p["sampling_ratio"], aligned=p["aligned"]) if p["op"] != "pool" else {}


@needs_torch
@given(problems())
def test_forward_matches_reference(p):
    x = p["x"].astype(p["dtype"])
    xk = x if p["layout"] == "numpy" else layout(x, p["layout"])
    got = run(p["op"], xk, p["boxes"], p["size"], p["scale"], **call_args(p))
    want = run_ref(p["op"], x.astype(np.float64), p["boxes"], p["size"], p["scale"], **call_args(p))
    assert type(got) is type(xk) and str(got.dtype).endswith(p["dtype"])
    assert_close(got, want, p["dtype"])


@needs_torch
@given(problems())
def test_backward_matches_reference(p):
    x = torch.tensor(p["x"], requires_grad=True)
    out = run(p["op"], x, p["boxes"], p["size"], p["scale"], **call_args(p))
    g = torch.from_numpy(p["seed"].standard_normal(tuple(out.shape)))
    out.backward(g)
    want = run_ref_backward(p["op"], g.numpy(), p["x"], p["boxes"], p["size"], p["scale"], **call_args(p))
    assert_close(x.grad, want, "float64")


def test_torchvision_forward_case():
    """torchvision's test_ops forward case: input 2x50x10x10, output 5x5, these boxes."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 50, 10, 10))
    boxes = np.array([[0, 0, 0, 9, 9], [0, 0, 5, 4, 9], [0, 5, 5, 9, 9], [1, 0, 0, 9, 9]], dtype=float)
    for op in OPS:
        for dtype in ("float32", "float64"):
            for kind in KINDS:
                got = run(op, to_kind(x.astype(dtype), kind), to_kind(boxes, kind), 5, 1.0)
                assert tuple(got.shape) == (4, 2, 5, 5)
                assert_close(got, run_ref(op, x, boxes, 5, 1.0), dtype)


def test_hand_computed_values():
    """A 1x4x2x2 map whose channel c holds c*10 + position, one 2x2-bin RoI over the map."""
    x = (np.arange(4)[:, None, None] * 10 + np.arange(4).reshape(2, 2))[None].astype(float)  # [1, 4, 2, 2]
    # pool: box (0, 0)-(2, 2): bins are single pixels, bin (i, j) reads channel i*2 + j at (i, j)
    out = vision.ps_roi_pool(x, [[0, 0, 0, 2, 2]], 2)
    np.testing.assert_array_equal(out[0, 0], [[0, 11], [22, 33]])
    # align without the half-pixel offset over (0, 0)-(2, 2), one sample per bin at the bin centre
    # (y, x) = (0.5, 0.5), (0.5, 1.5), (1.5, 0.5), (1.5, 1.5): bilinear in a 2x2 map, where 1.5 snaps
    # to the last row / column: channel 1 at (0.5, 1) = 10 + (1 + 3) / 2, channel 2 at (1, 0.5) = 20 + 2.5
    out = vision.ps_roi_align(x, [[0, 0, 0, 2, 2]], 2, 1.0, 1, aligned=False)
    np.testing.assert_allclose(out[0, 0], [[1.5, 12.0], [22.5, 33.0]])
    # max over a 2x2 grid of a bin: the largest bilinear sample
    out = vision.ps_roi_align(x, [[0, 0, 0, 2, 2]], 1, 1.0, 2, aligned=False, mode="max")
    np.testing.assert_allclose(out[0, 0, 0, 0], ref.ps_roi_align(x, [[0, 0, 0, 2, 2]], 1, 1.0, 2, aligned=False,
                                                                  mode="max")[0, 0, 0, 0])
    assert out[0, 0, 0, 0] == 3.0  # samples at 0.5 and 1.5 (snapped to 1): the max is pixel (1, 1)


@needs_torch
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("how", ["contiguous", "channels_last"])
def test_gradcheck(op, how):
    rng = np.random.default_rng(3)
    x = layout(rng.standard_normal((2, 8, 5, 6)), how).requires_grad_()
    boxes = torch.tensor([[0, 0.3, 0.7, 4.1, 3.9], [1, -1.2, 0.5, 3.3, 6.2], [1, 2.2, 1.1, 5.6, 4.4],
                          [0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    f = lambda t: run(op, t, boxes, 2, 1.0, 2)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("op", OPS)
def test_boxes_as_list_equal_boxes_as_rows(op):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 6, 6))
    per_image = [rng.uniform(0, 6, (3, 4)), rng.uniform(0, 6, (2, 4))]
    rows = np.concatenate([np.concatenate([np.full((len(b), 1), i), b], 1) for i, b in enumerate(per_image)])
    np.testing.assert_array_equal(run(op, x, per_image, 3, 1.0), run(op, x, rows, 3, 1.0))
    xt = torch.from_numpy(x)
    np.testing.assert_array_equal(run(op, xt, [torch.from_numpy(b) for b in per_image], 3, 1.0).numpy(),
                                  run(op, x, rows, 3, 1.0))


@needs_torch
@pytest.mark.parametrize("op", OPS)
def test_degenerate_and_non_finite_boxes(op):
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[0, 2, 2, 2, 2],  # zero size: finite (torchvision's align gives NaN)
                          [0, float("nan"), 0, 3, 3], [0, 0, float("inf"), 3, 3], [0, -float("inf"), 0, 3, 3],
                          [0, 0, 0, 1e300, 3],  # beyond 2^40 pixels: like infinite
                          [0, -50, -50, -40, -40]], dtype=torch.float64)  # wholly outside
    out = run(op, x, boxes, 2, 1.0)
    assert torch.isfinite(out).all()
    assert (out[1:] == 0).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    # only the zero-size box reaches the map
    expected = run_ref_backward(op, np.ones(tuple(out.shape)), x.detach().numpy(), boxes.numpy(), 2, 1.0)
    np.testing.assert_allclose(x.grad.numpy(), expected)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kind", KINDS)
def test_no_boxes(op, kind):
    x = to_kind(np.ones((2, 8, 4, 4)), kind)
    out = run(op, x, to_kind(np.zeros((0, 5)), kind), 2, 1.0)
    assert tuple(out.shape) == (0, 2, 2, 2)
    if kind != "numpy":
        xt = x.clone().requires_grad_()
        run(op, xt, to_kind(np.zeros((0, 5)), kind), 2, 1.0).sum().backward()
        assert (xt.grad == 0).all()


def test_nan_in_input_propagates_through_max():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    out = vision.ps_roi_align(x, [[0, 0, 0, 4, 4]], 1, 1.0, 2, aligned=False, mode="max")
    assert np.isnan(out[0, 0, 0, 0])


@needs_torch
@pytest.mark.parametrize("op", OPS)
def test_same_bits_at_any_thread_count(op):
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((3, 18, 9, 9)).astype(np.float32)).requires_grad_()
    boxes = torch.from_numpy(random_boxes(rng, 3, 9, 9, 40, 1.0))
    g = torch.from_numpy(rng.standard_normal((40, 2, 3, 3)).astype(np.float32))

    def once():
        x.grad = None
        out = run(op, x, boxes, 3, 1.0)
        out.backward(g)
        return out.detach(), x.grad.clone()

    assert_same_bits_at_any_thread_count_and_simd_level(once)


@needs_torch
@pytest.mark.parametrize("op", OPS)
def test_opcheck_and_compile(op):
    from nimbleops import torch_ops

    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.standard_normal((2, 8, 5, 5))).requires_grad_()
    rois = torch.tensor([[0, 0.5, 0.5, 4.0, 3.0], [1, 1.0, 0.0, 3.0, 4.5]], dtype=torch.float64)
    torch.library.opcheck(torch_ops.ps_roi_forward, (x, rois, op, [2, 2], 1.0, 2, True, False))
    g = torch.randn(2, 2, 2, 2, dtype=torch.float64)
    torch.library.opcheck(torch_ops.ps_roi_backward, (g, x.detach(), rois, op, [2, 2], 1.0, 2, True, False))

    def f(t, r):
        return run(op, t, r, 2, 1.0, 2).square().sum()

    compiled = torch.compile(f, fullgraph=True, backend=compile_backend())
    eager_val = f(x, rois)
    (eager_grad,) = torch.autograd.grad(eager_val, x)
    val = compiled(x, rois)
    (grad,) = torch.autograd.grad(val, x)
    torch.testing.assert_close(val, eager_val)
    torch.testing.assert_close(grad, eager_grad)


@needs_torch
def test_nn_modules():
    from nimbleops import nn

    x = torch.randn(1, 2 * 49, 20, 20)
    rois = torch.tensor([[0, 10.0, 20.0, 200.0, 150.0]])
    align = nn.PSRoIAlign(7, 1 / 16, 2)
    pool = nn.PSRoIPool(7, 1 / 16)
    torch.testing.assert_close(align(x, rois), vision.ps_roi_align(x, rois, 7, 1 / 16, 2))
    torch.testing.assert_close(pool(x, rois), vision.ps_roi_pool(x, rois, 7, 1 / 16))
    assert "sampling_ratio=2" in repr(align) and len(list(align.parameters())) == 0


def test_agrees_with_torchvision():
    """torchvision (when installed): align equals it (away from its NaN for zero-size boxes);
    pool equals it wherever no bin reaches the last row or column."""
    tv = import_peer("torchvision.ops")
    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((2, 2 * 49, 20, 20)))
    boxes = torch.from_numpy(np.concatenate([rng.integers(0, 2, (30, 1)), rng.uniform(-20, 300, (30, 4))], 1))
    boxes[:, 3:] = torch.maximum(boxes[:, 3:], boxes[:, 1:3] + 1)
    for sr in (-1, 2):
        torch.testing.assert_close(vision.ps_roi_align(x, boxes, 7, 1 / 16, sr), tv.ps_roi_align(x, boxes, 7, 1 / 16, sr))
    inner = boxes.clone()
    inner[:, 1:] = torch.from_numpy(rng.uniform(0, 200, (30, 4)))  # bins end before row/col 19 (image px 296)
    inner[:, 3:] = torch.maximum(inner[:, 1:3], inner[:, 3:]) + 16
    torch.testing.assert_close(vision.ps_roi_pool(x, inner, 7, 1 / 16), tv.ps_roi_pool(x, inner, 7, 1 / 16))


@pytest.mark.skipif(not nimbleops.has_cuda(), reason="no usable CUDA GPU")
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("deterministic", [False, True])
def test_cuda_backward_matches_cpu(op, deterministic):
    rng = np.random.default_rng(9)
    x = torch.from_numpy(rng.standard_normal((2, 18, 9, 9)))
    boxes = torch.from_numpy(random_boxes(rng, 2, 9, 9, 30, 1.0))
    g = torch.from_numpy(rng.standard_normal((30, 2, 3, 3)))
    outs = []
    for dev in ("cpu", "cuda"):
        xd = x.to(dev).requires_grad_()
        out = run(op, xd, boxes.to(dev), 3, 1.0, deterministic=deterministic)
        out.backward(g.to(dev))
        outs.append((out.detach().cpu(), xd.grad.cpu()))
    torch.testing.assert_close(outs[1][0], outs[0][0])
    torch.testing.assert_close(outs[1][1], outs[0][1])
    if deterministic:
        xd = x.cuda().requires_grad_()
        run(op, xd, boxes.cuda(), 3, 1.0, deterministic=True).backward(g.cuda())
        assert torch.equal(xd.grad.cpu(), outs[1][1])


def _boxes(rows, kind):
    return to_kind(np.array(rows, dtype=float), kind)


# (case, call(x [2, 8, 4, 4], good boxes, kind), exception, message): x and the boxes of the array kind
BAD_INPUT = [
    ("boxes [K, 4]", lambda x, good, k: vision.ps_roi_align(x, to_kind(np.zeros((3, 4)), k), 2),
     ValueError, r"boxes: expected \[K, 5\]"),
    ("per-image boxes [K, 5]", lambda x, good, k: vision.ps_roi_pool(x, [to_kind(np.zeros((3, 5)), k)], 2),
     ValueError, r"boxes\[0\]: expected \[K_0, 4\]"),
    ("channels not divisible", lambda x, good, k: vision.ps_roi_align(x, good, 3),
     ValueError, r"divisible by pooled_h \* pooled_w = 9"),
    ("int input", lambda x, good, k: vision.ps_roi_align(to_kind(np.zeros((2, 8, 4, 4), np.int64), k), good, 2),
     TypeError, "input: expected float32 or float64, got dtype int64"),
    ("3-d input", lambda x, good, k: vision.ps_roi_pool(to_kind(np.zeros((8, 4, 4)), k), good, 2),
     ValueError, r"input: expected \[N, C, H, W\]"),
    ("empty map", lambda x, good, k: vision.ps_roi_pool(to_kind(np.zeros((2, 8, 0, 4)), k), good, 2),
     ValueError, "input: expected a non-empty map"),
    ("batch index past N", lambda x, good, k: vision.ps_roi_align(x, _boxes([[0, 0, 0, 1, 1], [2, 0, 0, 1, 1]], k), 2),
     ValueError, r"batch index of RoI 1 must be an integer in \[0, 2\), got 2"),
    ("fractional batch index", lambda x, good, k: vision.ps_roi_pool(x, _boxes([[0.5, 0, 0, 1, 1]], k), 2),
     ValueError, r"batch index of RoI 0 must be an integer in \[0, 2\), got 0.5"),
    ("nan batch index", lambda x, good, k: vision.ps_roi_pool(x, _boxes([[np.nan, 0, 0, 1, 1]], k), 2),
     ValueError, "batch index of RoI 0 must be an integer"),
    ("output_size 0", lambda x, good, k: vision.ps_roi_align(x, good, 0),
     ValueError, "output_size: expected positive sizes"),
    ("output_size past 4096", lambda x, good, k: vision.ps_roi_pool(x, good, (1, 4097)),
     ValueError, "output_size: expected positive sizes up to 4096"),
    ("output_size triple", lambda x, good, k: vision.ps_roi_align(x, good, (2, 2, 2)),
     ValueError, "output_size: expected an int or a pair"),
    ("negative spatial_scale", lambda x, good, k: vision.ps_roi_align(x, good, 2, -1.0),
     ValueError, "spatial_scale: expected a positive finite number"),
    ("infinite spatial_scale", lambda x, good, k: vision.ps_roi_pool(x, good, 2, float("inf")),
     ValueError, "spatial_scale: expected a positive finite number"),
    ("mode", lambda x, good, k: vision.ps_roi_align(x, good, 2, mode="sum"),
     ValueError, "mode: expected 'avg' or 'max'"),
    ("fractional sampling_ratio", lambda x, good, k: vision.ps_roi_align(x, good, 2, 1.0, 2.5),
     TypeError, "sampling_ratio: expected an integer"),
    ("sampling_ratio past 1024", lambda x, good, k: vision.ps_roi_align(x, good, 2, 1.0, 1025),
     ValueError, "sampling_ratio: expected at most 1024 samples per side"),
    ("adaptive grid too large", lambda x, good, k: vision.ps_roi_align(x, _boxes([[0, 0, 0, 1e7, 1e7]], k), 2),
     ValueError, "adaptive sampling grid"),
    ("complex boxes", lambda x, good, k: vision.ps_roi_align(
        x, to_kind(np.zeros((1, 5), np.complex128), k) if k == "numpy" else np.zeros((1, 5), np.complex128), 2),
     TypeError, "boxes: expected a real-valued array"),
    ("nested-list input", lambda x, good, k: vision.ps_roi_pool([[[[1.0]]]], good, 1),
     TypeError, "input: expected a numpy array or torch tensor"),
    ("deterministic not a bool", lambda x, good, k: vision.ps_roi_pool(x, good, 2, deterministic="yes"),
     TypeError, "deterministic: expected a bool or None"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input(kind, call, exc, match):
    x = to_kind(np.zeros((2, 8, 4, 4)), kind)
    with pytest.raises(exc, match=match):
        call(x, _boxes([[0, 0, 0, 2, 2]], kind), kind)


@needs_torch
def test_torch_boxes_with_numpy_input():
    with pytest.raises(TypeError, match="boxes: a torch tensor given with a numpy input"):
        vision.ps_roi_pool(np.zeros((2, 8, 4, 4)), torch.zeros(1, 5), 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_bins_average_exactly(dtype):
    """One bin over an 8192 x 8192 constant map (a zero-stride view: nothing is copied) averages to
    the constant: the sums do not drift with the bin's size."""
    n = 8192
    x = np.broadcast_to(np.array(1.3, dtype=dtype), (1, 4, n, n))
    boxes = np.array([[0, 0, 0, n, n]], dtype=np.float64)
    want = np.array(1.3, dtype=dtype)
    tol = 0 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(vision.ps_roi_pool(x, boxes, 2), np.full((1, 1, 2, 2), want), rtol=tol, atol=0)
    # align: a million samples a bin, summed in one double accumulator
    np.testing.assert_allclose(vision.ps_roi_align(x, boxes, 2, sampling_ratio=1024, aligned=False),
                               np.full((1, 1, 2, 2), want), rtol=max(tol, 1e-10), atol=0)


@needs_torch
@pytest.mark.parametrize("op", ["align", "pool"])
def test_plain_cpu_tensors_numpy_and_the_autograd_path_agree(op):
    """A plain CPU tensor input runs the numpy path on its memory, one that requires grad the
    custom op: the same bits."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 9, 9, generator=g)
    boxes = torch.tensor([[0, 1.0, 1.0, 7.0, 8.0], [1, 0.5, 2.0, 8.5, 6.0]])
    fn = vision.ps_roi_align if op == "align" else vision.ps_roi_pool
    plain = fn(x, boxes, 2)
    graph = fn(x.clone().requires_grad_(), boxes, 2)
    want = fn(x.numpy(), boxes.numpy().astype(np.float64), 2)
    for out in (plain, graph):
        assert isinstance(out, torch.Tensor)
        np.testing.assert_array_equal(out.detach().numpy(), want)


@pytest.mark.parametrize("op", ["align_avg", "align_max", "pool"])
def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(op, monkeypatch):
    """``_C.vision.ps_roi_plain`` (one binding call reading the arrays in C++) gives the general
    path's output, float32 boxes widened exactly, and answers None for every other call."""
    from nimbleops import _C

    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 8, 9, 9)).astype("float32")
    boxes = np.array([[0, 1.0, 1.0, 7.0, 8.0], [1, 0.5, 2.0, 8.5, 6.0], [1, 2.25, 0.0, 5.0, 9.0]])
    plain = _C.vision.ps_roi_plain

    def call(x, boxes, size=2, scale=1.0, ratio=-1, aligned=True, deterministic=None):
        return plain(op, x, boxes, size, scale, 0 if op == "pool" else ratio, True if op == "pool" else aligned,
                     deterministic)

    def general(x, boxes):
        with monkeypatch.context() as m:
            m.setattr(_C.vision, "ps_roi_plain", lambda *_: None)
            if op == "pool":
                return vision.ps_roi_pool(x, boxes, 2)
            return vision.ps_roi_align(x, boxes, 2, mode=op.split("_")[1])

    kinds = [np.asarray] + ([torch.from_numpy] if torch is not None else [])
    for make in kinds:
        for xs in (x, np.moveaxis(np.moveaxis(x, 1, 3).copy(), 3, 1)):  # NCHW, channels_last
            for b in (boxes, boxes.astype("float32")):
                got, want = call(make(xs), make(b)), general(make(xs), make(b))
                assert type(got) is type(want) and got.dtype == want.dtype
                np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        declined = [dict(boxes=make(boxes[:, :4])), dict(boxes=make(boxes[:0])), dict(size=0), dict(size=(2, 2, 2)),
                    dict(scale=-1.0), dict(scale=np.float64(1.0)), dict(deterministic=1),
                    dict(x=make(x[:, :6].copy())),  # channels not a multiple of 2 * 2
                    dict(x=make(x[..., ::2]))]  # strided, neither NCHW nor channels_last
        if op != "pool":
            declined += [dict(aligned=1), dict(ratio=2.0)]
        for change in declined:
            assert call(**{**dict(x=make(x), boxes=make(boxes)), **change}) is None, change
        with pytest.raises(ValueError, match="batch index"):  # the kernel's own check
            call(make(x), make(np.array([[2, 1.0, 1.0, 7.0, 8.0]])))
