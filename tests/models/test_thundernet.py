"""ThunderNet and SNet: shapes, the two backends against each other (outputs, gradients, running
statistics, losses, detections; float32 and float64), box utilities against torchvision, anchor
assignment by hand, bad input."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from nimbleops.models import SNet, ThunderNet, optimize_for_inference  # noqa: E402
from nimbleops.models import boxes as box_ops  # noqa: E402

from ..conftest import import_peer  # noqa: E402


def pair(cls, *args, dtype=torch.float64, seed=0, **kwargs):
    """The same model built on both backends, with the nimbleops model's parameters and buffers."""
    torch.manual_seed(seed)
    ours = cls(*args, backend="nimbleops", **kwargs).to(dtype)
    theirs = cls(*args, backend="torch", **kwargs).to(dtype)
    theirs.load_state_dict(ours.state_dict())
    for m in list(ours.modules()) + list(theirs.modules()):  # BN statistics away from the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            g = torch.Generator().manual_seed(m.num_features)
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g, dtype=dtype))
            m.running_var.copy_(1 + 0.2 * torch.rand(m.num_features, generator=g, dtype=dtype))
    return ours, theirs


TOL = {torch.float64: dict(rtol=1e-9, atol=1e-9), torch.float32: dict(rtol=2e-4, atol=2e-4)}


def assert_same_gradients(ours, theirs, dtype):
    """Parameter gradients equal to the dtype's rounding. In float32 conv1's are left out: the
    backends compute conv1 in different memory formats, and where two inputs of a max-pool window
    are within rounding of each other the window's gradient goes to either. The absolute tolerance scales
    with the largest gradient of the model: a bias whose exact gradient is 0 (a batch-norm shift
    followed by a linear layer and a training-mode batch norm, which removes it) holds rounding
    noise of the other gradients' size on both sides."""
    pairs = [(name, p.grad, q.grad) for (name, p), q in zip(ours.named_parameters(), theirs.parameters())
             if dtype == torch.float64 or "conv1" not in name]
    scale = max(float(q.abs().max()) for _, _, q in pairs)
    tol = TOL[dtype] if dtype == torch.float64 else dict(rtol=2e-3, atol=1e-4 * scale)
    for name, a, b in pairs:
        torch.testing.assert_close(a, b, **tol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("variant,c4,c5", [("snet49", 120, 512), ("snet146", 264, 528), ("snet535", 496, 992)])
def test_snet_shapes(variant, c4, c5):
    for backend in ("nimbleops", "torch"):
        net = SNet(variant, backend=backend).eval()
        with torch.no_grad():
            a, b = net(torch.randn(1, 3, 96, 128))
        assert a.shape == (1, c4, 6, 8) and b.shape == (1, c5, 3, 4)


def test_state_dict_keys_are_the_same_and_torchvision_style():
    ours, theirs = SNet("snet146"), SNet("snet146", backend="torch")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    keys = set(ours.state_dict())
    assert {"stage2.0.branch1.0.weight", "stage2.0.branch2.3.weight", "stage4.3.branch2.6.running_var"} <= keys
    assert ours.state_dict()["stage2.0.branch2.3.weight"].shape == (66, 1, 5, 5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("train", [False, True])
def test_snet_backends_agree(dtype, train):
    ours, theirs = pair(SNet, "snet49", dtype=dtype)
    ours.train(train), theirs.train(train)
    x = torch.randn(2, 3, 64, 96, dtype=dtype)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    outs = [m(xi) for m, xi in zip((ours, theirs), xs)]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, **TOL[dtype])
    g4, g5 = torch.randn_like(outs[0][0]), torch.randn_like(outs[0][1])
    for (c4, c5) in outs:
        torch.autograd.backward((c4, c5), (g4, g5))
    if dtype == torch.float64:  # in float32 the max pool's ties route it to either input (see below)
        torch.testing.assert_close(xs[0].grad, xs[1].grad, **TOL[dtype])
    assert_same_gradients(ours, theirs, dtype)
    for (name, b), c in zip(ours.named_buffers(), theirs.buffers()):
        torch.testing.assert_close(b, c, **TOL[dtype], msg=lambda m, name=name: f"{name}: {m}")  # running stats


def test_snet_channels_last_input():
    ours, theirs = pair(SNet, "snet49")
    ours.eval(), theirs.eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(ours(x.contiguous(memory_format=torch.channels_last)), theirs(x)):
            torch.testing.assert_close(a, b, **TOL[torch.float64])


def targets(dtype=torch.float64):
    return [{"boxes": torch.tensor([[10.0, 20, 100, 110], [60, 40, 124, 127]], dtype=dtype),
             "labels": torch.tensor([1, 3])},
            {"boxes": torch.zeros(0, 4, dtype=dtype), "labels": torch.zeros(0, dtype=torch.int64)}]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_detector_backends_agree_in_training(dtype):
    ours, theirs = pair(ThunderNet, "snet49", num_classes=3, dtype=dtype)
    x = torch.randn(2, 3, 128, 128, dtype=dtype)
    losses = []
    for m in (ours, theirs):
        m.train()
        torch.manual_seed(5)  # the same samples of anchors and proposals
        out = m(x, targets(dtype))
        sum(out.values()).backward()
        losses.append(out)
    assert set(losses[0]) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    # In float32 the proposals (top-k and NMS of the objectness) may differ where two scores are within
    # rounding of each other, and with them the sampled RoIs: the losses then agree to that
    # rounding and the gradients are compared in float64 only (the backbone's float32 gradients are
    # compared in test_snet_backends_agree).
    tol = TOL[dtype] if dtype == torch.float64 else dict(rtol=1e-3, atol=1e-3)
    for k in losses[0]:
        torch.testing.assert_close(losses[0][k], losses[1][k], **tol, msg=k)
        assert torch.isfinite(losses[0][k])
    if dtype == torch.float64:
        assert_same_gradients(ours, theirs, dtype)


def eval_pair(x, **kwargs):
    ours, theirs = pair(ThunderNet, "snet49", num_classes=3, **kwargs)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        return ours(x), theirs(x)


@pytest.mark.parametrize("thresh", [0.0, 0.25, 1.0])
def test_detector_backends_agree_in_eval(thresh):
    """The nimbleops backend decodes only the pairs above the score threshold (all, some or none of
    them here); torchvision's post-processing decodes every pair and filters after."""
    x = torch.randn(2, 3, 128, 160, dtype=torch.float64)
    a, b = eval_pair(x, box_score_thresh=thresh)
    assert len(a) == 2
    for da, db in zip(a, b):
        assert set(da) == {"boxes", "scores", "labels"} and (len(da["boxes"]) > 0) == (thresh < 1)
        assert da["boxes"].dtype == torch.float64 and da["labels"].dtype == torch.int64
        torch.testing.assert_close(da["boxes"], db["boxes"], **TOL[torch.float64])
        torch.testing.assert_close(da["scores"], db["scores"], **TOL[torch.float64])
        assert torch.equal(da["labels"], db["labels"])
        assert da["boxes"].shape[1] == 4 and (da["labels"] >= 1).all() and (da["labels"] <= 3).all()
        assert (da["boxes"][:, 2:] >= da["boxes"][:, :2]).all() and (da["boxes"][:, 2] <= 160).all()


def test_the_eval_score_threshold_keeps_some_pairs():
    """With NMS off (IoU threshold 1), every pair above the score threshold is a detection: 0.25
    keeps some of the pairs 0.0 keeps, and both backends keep the same."""
    x = torch.randn(2, 3, 128, 160, dtype=torch.float64)
    counts = {}
    for thresh in (0.0, 0.25):
        a, b = eval_pair(x, box_score_thresh=thresh, box_nms_thresh=1.0, detections_per_img=10**4)
        for da, db in zip(a, b):
            torch.testing.assert_close(da["boxes"], db["boxes"], **TOL[torch.float64])
            torch.testing.assert_close(da["scores"], db["scores"], **TOL[torch.float64])
            assert torch.equal(da["labels"], db["labels"])
        counts[thresh] = sum(len(d["boxes"]) for d in a)
    assert 0 < counts[0.25] < counts[0.0]


def test_labelled_outputs_equal_the_full_heads():
    """The nimbleops head's training outputs (class logits; box deltas of the positives' labels,
    from four rows of reg each) equal the full heads indexed, with the same gradients."""
    from nimbleops.models.thundernet import RCNNHead

    torch.manual_seed(3)
    head = RCNNHead(num_classes=6).double()
    x = torch.randn(40, 1024, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 7, (40,))
    labels[:3] = 0
    labels[3:6] = 2  # a label repeated: its rows' gradients summed
    logits, pos, deltas = head.labelled_outputs(x, labels)
    assert torch.equal(pos, torch.nonzero(labels > 0).flatten())
    full = head.reg(x).reshape(40, -1, 4)[pos, labels[pos]]
    torch.testing.assert_close(deltas, full, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, head.cls(x), rtol=1e-12, atol=1e-12)
    g, gl = torch.randn_like(deltas), torch.randn_like(logits)
    params = (x, head.cls.weight, head.cls.bias, head.reg.weight, head.reg.bias)
    grads = [torch.autograd.grad((d, lo), params, (g, gl)) for d, lo in ((deltas, logits), (full, head.cls(x)))]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    model = ThunderNet("snet49", num_classes=2).train()
    x = torch.randn(2, 3, 96, 96)
    t = [{"boxes": torch.tensor([[8.0, 8, 60, 70]]), "labels": torch.tensor([1])},
         {"boxes": torch.tensor([[30.0, 20, 90, 90]]), "labels": torch.tensor([2])}]
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    first = None
    for _ in range(12):
        torch.manual_seed(1)
        loss = sum(model(x, t).values())
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first


def test_anchors():
    a = box_ops.anchors((2, 3), 16, (32.0 ** 2, 64.0 ** 2), (0.5, 1.0, 2.0), torch.float64)
    assert a.shape == (2 * 3 * 6, 4)
    cell = a[6 * 4:6 * 5]  # cell (y=1, x=1): centre (24, 24)
    torch.testing.assert_close((cell[:, :2] + cell[:, 2:]) / 2, torch.full((6, 2), 24.0, dtype=torch.float64))
    w, h = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    torch.testing.assert_close(w * h, torch.tensor([32.0 ** 2] * 3 + [64.0 ** 2] * 3, dtype=torch.float64))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1, 2] * 2, dtype=torch.float64))


def test_box_coding_round_trip_and_iou_and_nms_against_torchvision():
    tv = import_peer("torchvision.ops")
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(200, 2, generator=g, dtype=torch.float64) * 100
    b = torch.cat((xy, xy + 1 + torch.rand(200, 2, generator=g, dtype=torch.float64) * 50), 1)
    ref = b.roll(1, 0)
    d = box_ops.encode(b, ref, (10, 10, 5, 5))
    torch.testing.assert_close(box_ops.decode(d, ref, (10, 10, 5, 5)), b)
    torch.testing.assert_close(box_ops.box_iou(b, ref), tv.box_iou(b, ref))
    scores = torch.rand(200, generator=g, dtype=torch.float64)
    assert torch.equal(box_ops.nms(b, scores, 0.5), tv.nms(b, scores, 0.5))


def test_nms_without_torchvision_equals_torchvision(monkeypatch):
    tv = import_peer("torchvision.ops")
    g = torch.Generator().manual_seed(4)
    xy = torch.rand(300, 2, generator=g) * 100
    b = torch.cat((xy, xy + 1 + torch.rand(300, 2, generator=g) * 40), 1)
    scores = torch.rand(300, generator=g)
    monkeypatch.setattr(box_ops, "_torchvision_ops", lambda: None)
    for t in (0.3, 0.5, 0.7):
        assert torch.equal(box_ops.nms(b, scores, t), tv.nms(b, scores, t))
    labels = torch.randint(0, 3, (300,), generator=g)
    assert torch.equal(box_ops.batched_nms(b, scores, labels, 0.5), tv.batched_nms(b, scores, labels, 0.5))


def test_rpn_assignment_by_hand(monkeypatch):
    """Anchor 0 overlaps the box at IoU 0.81 (positive), anchor 1 at 0.5 (ignored), anchors 2 and 3
    not at all (negative)."""
    import nimbleops.models.thundernet as tn

    model = ThunderNet("snet49", num_classes=1, rpn_batch_size_per_image=8)
    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 16.2], [100, 100, 110, 110], [50, 50, 60, 60]])
    gt = torch.tensor([[0.0, 0, 10, 8.1]])
    torch.testing.assert_close(box_ops.box_iou(anchors, gt)[:, 0], torch.tensor([0.81, 0.5, 0, 0]))
    seen = {}
    real = tn.F.binary_cross_entropy_with_logits

    def spy(input, target, **kw):
        seen["target"] = target
        return real(input, target, **kw)

    monkeypatch.setattr(tn.F, "binary_cross_entropy_with_logits", spy)
    losses = model._rpn_losses(torch.zeros(1, 4), torch.zeros(1, 4, 4), anchors,
                               [{"boxes": gt, "labels": torch.tensor([1])}])
    assert sorted(seen["target"].tolist()) == [0.0, 0.0, 1.0]
    torch.testing.assert_close(losses["loss_objectness"], torch.tensor(math.log(2.0)))
    # the positive anchor's target: (0, dy, 0, log h'/h) = (0, -0.095, 0, log 0.81), smooth-L1 summed over 3 samples
    target = box_ops.encode(gt, anchors[:1], (1, 1, 1, 1))[0]
    expected = torch.nn.functional.smooth_l1_loss(torch.zeros(4), target, beta=1 / 9, reduction="sum") / 3
    torch.testing.assert_close(losses["loss_rpn_box_reg"], expected)


@pytest.mark.parametrize("call,exc,match", [
    (lambda m: m(torch.randn(3, 64, 64)), ValueError, r"images: expected \[N, 3, H, W\]"),
    (lambda m: m(torch.zeros(1, 3, 64, 64, dtype=torch.int64)), TypeError, "images: expected a float tensor"),
    (lambda m: m([torch.randn(3, 64, 64), torch.randn(3, 64, 96)]), ValueError, "images: expected images of one size"),
    (lambda m: m("image"), TypeError, "images: expected a tensor"),
    (lambda m: m(torch.randn(1, 3, 64, 64), targets()), ValueError, "targets: expected None in eval mode"),
    (lambda m: m.train()(torch.randn(1, 3, 64, 64)), ValueError, "targets: expected one dict per image"),
    (lambda m: m.train()(torch.randn(2, 3, 64, 64), targets()[:1]), ValueError, "targets: expected a list of 2"),
    (lambda m: m.train()(torch.randn(1, 3, 64, 64), [{"boxes": torch.zeros(1, 4), "labels": torch.tensor([7])}]),
     ValueError, r"expected values in 1..3"),
    (lambda m: m.train()(torch.randn(1, 3, 64, 64), [{"boxes": torch.tensor([[5.0, 5, 1, 9]]),
                                                       "labels": torch.tensor([1])}]), ValueError, "x2 > x1"),
    (lambda m: m.train()(torch.randn(1, 3, 64, 64), [{"boxes": torch.zeros(1, 5), "labels": torch.tensor([1])}]),
     ValueError, r"expected a float tensor \[M, 4\]"),
])
def test_bad_input(call, exc, match):
    model = ThunderNet("snet49", num_classes=3).eval()
    with pytest.raises(exc, match=match):
        call(model)


def test_bad_construction():
    with pytest.raises(ValueError, match="backend: expected one of"):
        ThunderNet(backend="onnx")
    with pytest.raises(ValueError, match="variant: expected one of"):
        SNet("snet50")
    with pytest.raises(ValueError, match="num_classes: expected an integer >= 1"):
        ThunderNet(num_classes=0)


# ------------------------------------------------------------------- optimize_for_inference


@pytest.mark.parametrize("source", ["nimbleops", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_optimized_backbone_equals_the_eval_model(source, dtype):
    ours, theirs = pair(SNet, "snet49", dtype=dtype)
    model = (ours if source == "nimbleops" else theirs).eval()
    fast = optimize_for_inference(model)
    x = torch.randn(2, 3, 64, 96, dtype=dtype)
    with torch.no_grad():
        for a, b in zip(fast(x), model(x)):
            torch.testing.assert_close(a, b, **TOL[dtype])
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())


@pytest.mark.parametrize("source", ["nimbleops", "torch"])
def test_optimized_detector_equals_the_eval_model(source):
    ours, theirs = pair(ThunderNet, "snet146", num_classes=4, box_score_thresh=0.0)
    model = (ours if source == "nimbleops" else theirs).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize_for_inference(model)
    x = torch.randn(2, 3, 128, 128, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(fast(x), model(x)):
            torch.testing.assert_close(a["boxes"], b["boxes"], **TOL[torch.float64])
            torch.testing.assert_close(a["scores"], b["scores"], **TOL[torch.float64])
            assert torch.equal(a["labels"], b["labels"])
        for a, b in zip(fast.backbone(x), model.backbone(x)):
            torch.testing.assert_close(a, b, **TOL[torch.float64])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    with pytest.raises(RuntimeError, match="eval mode only"):
        fast.train()
    fast.eval()  # allowed


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_optimized_backbone_in_one_call_per_stage_equals_unit_by_unit(dtype):
    """The stem as one op and the stages as one call each (plain CPU tensors) against torch's stem
    and the units one by one (the path of CUDA, autograd and capture): the stages give the same bits
    on the same input, the whole backbone the same values to rounding."""
    from nimbleops.models.snet import run_stage

    fast = optimize_for_inference(pair(SNet, "snet49", dtype=dtype)[0].eval())
    x = torch.randn(2, 3, 64, 96, dtype=dtype)
    with torch.no_grad():
        staged = fast(x)
        unit_by_unit = SNet.forward(fast, x)
        for a, b in zip(staged, unit_by_unit):
            torch.testing.assert_close(a, b, **TOL[dtype])
        y = torch.randn(2, 24, 16, 24, dtype=dtype)
        for stage, units in zip(fast.stages, (fast.stage2, fast.stage3, fast.stage4)):
            a, b = stage(y), run_stage(units, y, "nimbleops")
            assert torch.equal(a, b)
            y = a
    xg = x.clone().requires_grad_()
    c4, c5 = fast(xg)  # unit by unit, differentiable with respect to the input
    c5.sum().backward()
    assert xg.grad is not None
    torch.testing.assert_close(c5.detach(), staged[1], **TOL[dtype])


@pytest.mark.parametrize("N,h4,w4,h5,w5", [(1, 8, 10, 4, 5), (2, 8, 8, 4, 4), (1, 7, 9, 4, 5)])
def test_optimized_cem_equals_cem(N, h4, w4, h5, w5):
    """The in-place sums (exactly 2x sizes, one image or several) and the fallback (other sizes)."""
    from nimbleops.models.inference import _InferenceCEM
    from nimbleops.models.thundernet import CEM

    torch.manual_seed(5)
    cem = CEM(24, 32).double().eval()
    fast = _InferenceCEM(cem)
    c4, c5 = torch.randn(N, 24, h4, w4, dtype=torch.float64), torch.randn(N, 32, h5, w5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fast(c4, c5), cem(c4, c5), **TOL[torch.float64])


def test_optimize_for_inference_refuses_other_models():
    with pytest.raises(TypeError, match="expected a nimbleops.models ThunderNet or SNet"):
        optimize_for_inference(torch.nn.Linear(2, 2))
    fast = optimize_for_inference(ThunderNet("snet49", num_classes=2).eval())
    for made in (fast, fast.backbone):
        with pytest.raises(TypeError, match="already made by optimize_for_inference"):
            optimize_for_inference(made)
