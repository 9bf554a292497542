"""nimbleops.nn.convert / revert on whole torchvision models, and the nn.Conv2d arguments the
modules accept or refuse."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nimbleops import nn as nno  # noqa: E402

from ..conftest import import_peer  # noqa: E402


@pytest.mark.parametrize("arch", ["shufflenet_v2_x1_0", "mobilenet_v3_small"])
def test_converted_torchvision_models_agree(arch):
    models = import_peer("torchvision.models")
    torch.manual_seed(0)
    stock = getattr(models, arch)(num_classes=10).double()
    ours, report = nno.convert(stock, report=True)
    assert len(report.swapped) > 20 and all("dense" in why for _, _, why in report.kept)
    assert list(ours.state_dict()) == list(stock.state_dict())
    kinds = {type(m) for m in ours.modules()}
    assert nno.DepthwiseConv2d in kinds and nno.PointwiseConv2d in kinds
    if arch.startswith("shufflenet"):  # its stages and stem as wholes
        assert type(ours.conv1) is nno.ShuffleV2Stem and type(ours.maxpool) is torch.nn.Identity
        assert all(type(getattr(ours, f"stage{i}")) is nno.ShuffleV2Stage for i in (2, 3, 4))
    assert not any(type(m) is nno.DepthwiseConv2d for m in stock.modules())  # a copy was converted
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    for train in (True, False):
        stock.train(train), ours.train(train)
        xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
        out = []
        for m, xi in zip((stock, ours), xs):
            torch.manual_seed(1)  # mobilenet_v3's dropout draws the same mask
            out.append(m(xi))
        torch.testing.assert_close(out[1], out[0], rtol=1e-9, atol=1e-9)
        g = torch.randn_like(out[0])
        for o in out:
            o.backward(g)
        torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=1e-9, atol=1e-9)
        for (name, p), q in zip(ours.named_parameters(), stock.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-8, atol=1e-9, msg=lambda m, n=name: f"{n}: {m}")
        stock.zero_grad(), ours.zero_grad()
    for (name, a), b in zip(ours.state_dict().items(), stock.state_dict().values()):  # the running statistics
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=lambda m, n=name: f"{n}: {m}")
    back = nno.revert(ours)
    assert not any(isinstance(m, (nno.DepthwiseConv2d, nno.PointwiseConv2d, nno.ShuffleV2Stage, nno.ShuffleV2Stem))
                   for m in back.modules())
    assert {type(m) for m in back.modules()} == {type(m) for m in stock.modules()}
    assert list(back.state_dict()) == list(stock.state_dict())
    back.eval(), stock.eval()
    with torch.no_grad():
        torch.testing.assert_close(back(x), stock(x), rtol=1e-12, atol=1e-12)


def test_convert_in_place_shares_the_parameters_and_reports_what_it_kept():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),                            # depthwise
        torch.nn.Conv2d(8, 16, 1, groups=2),                                      # grouped pointwise
        torch.nn.Conv2d(16, 32, 5, padding=2, groups=16, bias=False),             # depth multiplier 2
        torch.nn.Conv2d(32, 32, 3, padding=1, groups=32, padding_mode="reflect"),  # kept
        torch.nn.Conv2d(32, 32, 1, stride=2),                                     # kept: strided 1x1
        torch.nn.Conv2d(32, 32, 3, padding=1),                                    # kept: dense
        torch.nn.Conv2d(32, 32, 4, padding="same", groups=32),                    # kept: uneven "same"
        torch.nn.ChannelShuffle(4))
    weight = net[0].weight
    same, report = nno.convert(net, inplace=True, report=True)
    assert same is net and net[0].weight is weight
    assert [type(m) for m in net] == [nno.DepthwiseConv2d, nno.PointwiseConv2d, nno.DepthwiseConv2d,
                                      torch.nn.Conv2d, torch.nn.Conv2d, torch.nn.Conv2d, torch.nn.Conv2d,
                                      nno.ChannelShuffle]
    reasons = dict((n, why) for n, _, why in report.kept)
    assert "padding_mode='reflect'" in reasons["3"] and "stride (2, 2)" in reasons["4"]
    assert "dense" in reasons["5"] and "unevenly" in reasons["6"]
    assert "swapped 4 module(s), kept 4" in str(report)


def test_convert_keeps_half_precision():
    conv = torch.nn.Conv2d(4, 4, 3, groups=4).half()
    out, report = nno.convert(conv, report=True)
    assert type(out) is torch.nn.Conv2d and "float16" in report.kept[0][2]


def test_psroi_modules_convert_and_revert():
    ops = import_peer("torchvision.ops")
    head = torch.nn.ModuleDict({"a": ops.PSRoIAlign(7, 1 / 16, 2), "p": ops.PSRoIPool(7, 1 / 16)})
    ours = nno.convert(head)
    assert type(ours["a"]) is nno.PSRoIAlign and type(ours["p"]) is nno.PSRoIPool
    x = torch.randn(1, 98, 20, 20, dtype=torch.float64)
    rois = torch.tensor([[0, 10.0, 20, 200, 150]], dtype=torch.float64)
    torch.testing.assert_close(ours["a"](x, rois), head["a"](x, rois))
    back = nno.revert(ours)
    assert type(back["a"]) is ops.PSRoIAlign and type(back["p"]) is ops.PSRoIPool


def test_revert_keeps_fused_pointwise():
    m = nno.PointwiseConv2d(4, 4, activation="relu")
    out, report = nno.revert(m, report=True)
    assert out is not m and type(out) is nno.PointwiseConv2d and "fused ReLU" in report.kept[0][2]


def test_modules_take_conv2d_arguments():
    dw = nno.DepthwiseConv2d(8, 8, 5, padding="same", groups=8, padding_mode="zeros")
    assert dw.padding == (2, 2)
    assert nno.DepthwiseConv2d(8, 8, (3, 5), padding="same", dilation=2).padding == (2, 4)
    assert nno.DepthwiseConv2d(8, 8, 3, padding="valid").padding == (0, 0)
    pw = nno.PointwiseConv2d(8, 4, kernel_size=1, stride=(1, 1), padding="same", padding_mode="zeros")
    assert pw.weight.shape == (4, 8, 1, 1)
    with pytest.raises(ValueError, match="groups: a depthwise convolution has groups = in_channels = 8, got 2"):
        nno.DepthwiseConv2d(8, 8, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode: expected 'zeros'"):
        nno.DepthwiseConv2d(8, 8, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding: 'same' with kernel 4"):
        nno.DepthwiseConv2d(8, 8, 4, padding="same")
    with pytest.raises(ValueError, match="padding: 'same' needs stride 1"):
        nno.DepthwiseConv2d(8, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="stride: a pointwise convolution takes 1, got 2"):
        nno.PointwiseConv2d(8, 8, stride=2)
    with pytest.raises(ValueError, match="kernel_size: a pointwise convolution takes 1"):
        nno.PointwiseConv2d(8, 8, kernel_size=3)
    with pytest.raises(TypeError, match="module: expected a torch.nn.Module"):
        nno.convert("model")


def test_convert_fuses_batch_norm_and_relu_in_sequentials():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8))
    keys = list(net.state_dict())
    ours, report = nno.convert(net, report=True)
    assert [type(m) for m in ours] == [nno.PointwiseConv2d, nno.BatchNorm2d, torch.nn.Identity, nno.DepthwiseConv2d,
                                       nno.BatchNorm2d]
    assert ours[1].relu and not ours[4].relu and list(ours.state_dict()) == keys
    assert ("2", "ReLU", "Identity (fused)") in report.swapped
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    net.double(), ours.double()
    torch.testing.assert_close(ours(x), net(x))  # training mode: batch statistics, running stats updated
    for k, v in ours.state_dict().items():
        torch.testing.assert_close(v, net.state_dict()[k], msg=k)
    back = nno.revert(ours)
    assert [type(m) for m in back] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU, torch.nn.Conv2d,
                                       torch.nn.BatchNorm2d]
    assert list(back.state_dict()) == keys


def test_shufflenet_stages_anywhere_and_what_convert_leaves():
    """Any nn.Sequential of torchvision's InvertedResidual becomes a ShuffleV2Stage: the same
    function (stride-2 units inside a stage too) and children; a stage with other parameter dtypes
    is kept; the stem rewrite needs torchvision's ShuffleNetV2 (whose forward applies conv1, then
    maxpool)."""
    import_peer("torchvision")
    from torchvision.models.shufflenetv2 import InvertedResidual

    torch.manual_seed(3)
    units = torch.nn.Sequential(InvertedResidual(8, 8, 1), InvertedResidual(8, 16, 2), InvertedResidual(16, 16, 1),
                                InvertedResidual(16, 24, 2), InvertedResidual(24, 24, 1))
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), units).double()
    ours, report = nno.convert(net, report=True)
    assert type(ours[1]) is nno.ShuffleV2Stage and ("1", "Sequential of InvertedResidual",
                                                    "nimbleops.nn.ShuffleV2Stage") in report.swapped
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    out = [m(xi) for m, xi in zip((net, ours), xs)]
    torch.testing.assert_close(out[1], out[0], rtol=1e-10, atol=1e-10)
    g = torch.randn_like(out[0])
    for o in out:
        o.backward(g)
    torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=1e-10, atol=1e-10)
    back = nno.revert(ours)
    assert type(back[1]) is torch.nn.Sequential and all(type(u) is InvertedResidual for u in back[1])
    half, report = nno.convert(net.half(), report=True)
    assert type(half[1]) is torch.nn.Sequential
    assert ("1", "Sequential of InvertedResidual", "parameters other than float32/float64") in report.kept
    stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
    holder = torch.nn.Module()
    holder.conv1, holder.maxpool = stem, torch.nn.MaxPool2d(3, 2, 1)  # not a ShuffleNetV2: its order is unknown
    assert type(nno.convert(holder).maxpool) is torch.nn.MaxPool2d
