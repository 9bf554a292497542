"""nms and batched_nms: reference, torchvision (the same kept set, bit for bit), the cap, kinds,
SIMD levels, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import KINDS, assert_same_bits_at_any_thread_count_and_simd_level, needs_torch, to_kind, to_numpy, torch


def random_boxes(rng, K, dtype, ties=False):
    """Boxes of 1-80 px on a 300 px image, many overlapping; scores in [0, 1), or in 4 values."""
    xy = rng.random((K, 2)) * 300
    boxes = np.concatenate((xy, xy + rng.random((K, 2)) * 80 + 1), 1).astype(dtype)
    scores = (np.floor(rng.random(K) * 4) if ties else rng.random(K)).astype(dtype)
    return boxes, scores


def torchvision_ops():
    tv = pytest.importorskip("torchvision")
    return tv.ops


@given(st.integers(0, 2**31 - 1), st.integers(0, 60), st.floats(0.0, 1.0), st.booleans(),
       st.sampled_from(["float32", "float64"]), st.sampled_from(KINDS))
def test_nms_matches_reference(seed, K, threshold, ties, dtype, kind):
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, K, dtype, ties)
    keep = vision.nms(to_kind(boxes, kind), to_kind(scores, kind), threshold)
    np.testing.assert_array_equal(to_numpy(keep), ref.nms(boxes, scores, threshold))
    assert to_numpy(keep).dtype == np.int64
    groups = rng.integers(0, 4, K)
    keep = vision.batched_nms(to_kind(boxes, kind), to_kind(scores, kind), to_kind(groups, kind), threshold)
    np.testing.assert_array_equal(to_numpy(keep), ref.batched_nms(boxes, scores, groups, threshold))


@given(st.integers(0, 2**31 - 1), st.integers(0, 60), st.integers(0, 70), st.booleans())
def test_max_output_keeps_the_first(seed, K, cap, grouped):
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, K, "float32", ties=True)
    if grouped:
        groups = rng.integers(0, 3, K)
        full = vision.batched_nms(boxes, scores, groups, 0.3)
        np.testing.assert_array_equal(vision.batched_nms(boxes, scores, groups, 0.3, max_output=cap), full[:cap])
    else:
        full = vision.nms(boxes, scores, 0.3)
        np.testing.assert_array_equal(vision.nms(boxes, scores, 0.3, max_output=cap), full[:cap])
        np.testing.assert_array_equal(ref.nms(boxes, scores, 0.3, max_output=cap), full[:cap])


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0, 0.1 + 0.2])
def test_nms_equals_torchvision(dtype, threshold):
    ops = torchvision_ops()
    rng = np.random.default_rng(3)
    for K, ties in ((0, False), (1, False), (17, True), (500, False), (2000, False), (700, True)):
        boxes, scores = random_boxes(rng, K, dtype, ties)
        b, s = torch.from_numpy(boxes), torch.from_numpy(scores)
        assert torch.equal(vision.nms(b, s, threshold), ops.nms(b, s, threshold))


def iou_f32(a, b):
    """torchvision's float32 IoU of box rows a and b, vectorised."""
    w = np.maximum(np.float32(0), np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]))
    h = np.maximum(np.float32(0), np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]))
    inter = w * h
    return inter / ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)


@needs_torch
def test_nms_equals_torchvision_at_the_threshold():
    """Pairs of boxes whose float32 IoU is exactly the float just below 0.7 or the one above it,
    against thresholds float32 cannot hold (0.7, and a point that rounds up to the float above) and
    ones it can: decided as torchvision decides them, the float ratio against the double threshold."""
    ops = torchvision_ops()
    rng = np.random.default_rng(8)
    n = 400_000
    a = np.tile(np.array([[0, 0, 100, 100]], np.float32), (n, 1))
    shift = (17.6 + rng.random(n) * 0.1).astype(np.float32)
    height = (100 - rng.random(n) * 0.01).astype(np.float32)
    b = np.stack((shift, np.zeros(n, np.float32), shift + 100, height), 1).astype(np.float32)
    iou = iou_f32(a, b)
    below, above = np.float32(0.7), np.nextafter(np.float32(0.7), np.float32(1))
    pairs = [np.flatnonzero(iou == v)[:20] for v in (below, above)]
    assert all(len(p) for p in pairs)  # the search met both values
    scores = torch.tensor([2.0, 1.0])
    lo, hi = float(below), float(above)
    for threshold in (0.7, lo, hi, (lo + hi) / 2 + 1e-12):
        for k in np.concatenate(pairs):
            pair = torch.from_numpy(np.stack((a[k], b[k])))
            got = vision.nms(pair, scores, threshold)
            assert torch.equal(got, ops.nms(pair, scores, threshold)), (threshold, iou[k])
            assert len(got) == (1 if float(iou[k]) > threshold else 2)


@needs_torch
def test_batched_nms_equals_torchvision_per_group():
    """torchvision's per-group batched_nms (what it runs on 4000 values or more), its final unstable
    sort by score aside: the same kept set, ties here in index order."""
    ops = torchvision_ops()
    from torchvision.ops.boxes import _batched_nms_vanilla

    rng = np.random.default_rng(4)
    for K in (0, 5, 300, 3000):
        boxes, scores = random_boxes(rng, K, "float32", ties=K == 300)
        groups = rng.integers(0, 7, K)
        b, s, g = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups)
        want = _batched_nms_vanilla(b, s, g, 0.5)
        want = want[np.lexsort((want.numpy(), -scores[want.numpy()]))]
        assert torch.equal(vision.batched_nms(b, s, g, 0.5), want)
        assert ops.batched_nms(b, s, g, 0.5).sort().values.equal(want.sort().values)


def test_nan_scores_come_first_and_nan_boxes_suppress_nothing():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10], [np.nan, 0, 10, 10]], np.float32)
    scores = np.array([0.5, np.nan, 0.9, 1.0], np.float32)
    keep = vision.nms(boxes, scores, 0.5)
    np.testing.assert_array_equal(keep, [1, 3])  # box 1 (nan score) first; it suppresses 0 and 2
    np.testing.assert_array_equal(keep, ref.nms(boxes, scores, 0.5))
    if torch is not None:
        ops = torchvision_ops()
        assert keep.tolist() == ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).tolist()


def test_same_bits_at_any_simd_level():
    rng = np.random.default_rng(9)
    boxes, scores = random_boxes(rng, 333, "float32")
    groups = rng.integers(0, 3, 333)
    assert_same_bits_at_any_thread_count_and_simd_level(
        lambda: (vision.nms(boxes, scores, 0.6), vision.batched_nms(boxes, scores, groups, 0.4),
                 vision.nms(boxes.astype(np.float64), scores.astype(np.float64), 0.6)))


@needs_torch
def test_tensors_that_require_grad_and_lazy_views():
    rng = np.random.default_rng(2)
    boxes, scores = random_boxes(rng, 50, "float64")
    b = torch.from_numpy(boxes).requires_grad_()
    s = torch.from_numpy(-scores)
    want = vision.nms(boxes, scores, 0.5)
    np.testing.assert_array_equal(vision.nms(b, torch._neg_view(s), 0.5).numpy(), want)


def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(monkeypatch):
    """``_C.vision.nms_plain`` (one binding call reading the arrays in C++) keeps what the general
    path keeps, in an int64 array of the boxes' kind, and answers None for any other call."""
    from nimbleops import _C

    rng = np.random.default_rng(3)
    boxes, scores = random_boxes(rng, 60, "float32")
    groups = rng.integers(0, 3, 60)
    plain = _C.vision.nms_plain
    kinds = [np.asarray] + ([torch.from_numpy] if torch is not None else [])
    for make in kinds:
        for g, cap in ((None, None), (groups, None), (groups, 5), (None, 0)):
            args = [make(boxes), make(scores), None if g is None else make(g), 0.4, cap]
            with monkeypatch.context() as m:
                m.setattr(_C.vision, "nms_plain", lambda *_: None)  # the general path alone
                want = (vision.nms(*args[:2], 0.4, max_output=cap) if g is None else
                        vision.batched_nms(*args[:3], 0.4, max_output=cap))
            got = plain(*args)
            assert type(got) is type(want) and got.dtype == want.dtype
            np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
        declined = [dict(boxes=make(boxes[:, :3])), dict(boxes=make(boxes[:0]), scores=make(scores[:0])),
                    dict(scores=make(scores.astype("float64"))), dict(scores=make(scores[:5])),
                    dict(groups=make(groups.astype(np.int32))), dict(iou=float("nan")), dict(iou=np.float32(0.4)),
                    dict(cap=-1), dict(cap=2.0), dict(boxes=make(np.asfortranarray(boxes)))]
        for change in declined:
            call = dict(boxes=make(boxes), scores=make(scores), groups=None, iou=0.4, cap=None)
            call.update(change)
            assert plain(call["boxes"], call["scores"], call["groups"], call["iou"], call["cap"]) is None, change


def test_bad_input():
    boxes, scores = random_boxes(np.random.default_rng(0), 4, "float32")
    with pytest.raises(TypeError, match="boxes: expected a numpy array or torch tensor"):
        vision.nms(boxes.tolist(), scores, 0.5)
    with pytest.raises(TypeError, match="boxes: expected float32 or float64, got dtype int64"):
        vision.nms(boxes.astype(np.int64), scores, 0.5)
    with pytest.raises(ValueError, match=r"boxes: expected \[K, 4\], got shape \[4, 3\]"):
        vision.nms(boxes[:, :3], scores, 0.5)
    with pytest.raises(ValueError, match=r"scores: expected \[4\] like boxes, got shape \[3\]"):
        vision.nms(boxes, scores[:3], 0.5)
    with pytest.raises(TypeError, match="scores: expected dtype float32 like boxes, got float64"):
        vision.nms(boxes, scores.astype(np.float64), 0.5)
    with pytest.raises(ValueError, match="iou_threshold: expected a number, got nan"):
        vision.nms(boxes, scores, float("nan"))
    with pytest.raises(TypeError, match="iou_threshold: expected a real number, got str"):
        vision.nms(boxes, scores, "0.5")
    with pytest.raises(ValueError, match="max_output: expected an integer >= 0, got -1"):
        vision.nms(boxes, scores, 0.5, max_output=-1)
    with pytest.raises(TypeError, match="groups: expected an integer dtype, got float32"):
        vision.batched_nms(boxes, scores, scores, 0.5)
    with pytest.raises(ValueError, match=r"groups: expected \[4\] like boxes, got shape \[2\]"):
        vision.batched_nms(boxes, scores, np.zeros(2, np.int64), 0.5)
    if torch is not None:
        with pytest.raises(TypeError, match="scores: expected a numpy array like boxes"):
            vision.nms(boxes, torch.from_numpy(scores), 0.5)
        with pytest.raises(TypeError, match="boxes: expected float32 or float64, got dtype bfloat16"):
            vision.nms(torch.from_numpy(boxes).bfloat16(), torch.from_numpy(scores).bfloat16(), 0.5)
        with pytest.raises(TypeError, match="groups: expected a torch tensor like boxes"):
            vision.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), np.zeros(4, np.int64), 0.5)
