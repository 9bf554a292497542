"""ThunderNet beyond eager mode: torch.compile and torch.export of the nimbleops backend, ONNX export
of the torch backend's backbone, and data-parallel training (DistributedDataParallel, gloo, two
CPU processes) equal to one process on the same global batch."""
from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")

from nimbleops.models import SNet, ThunderNet  # noqa: E402

from ..conftest import compile_backend, import_peer  # noqa: E402


def test_compile_fullgraph_and_export_of_the_backbone():
    torch.manual_seed(0)
    net = SNet("snet49").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = net(x)
        compiled = torch.compile(net, fullgraph=True, backend=compile_backend())(x)
        exported = torch.export.export(net, (x,)).module()(x)
    for a, b, c in zip(expected, compiled, exported):
        torch.testing.assert_close(b, a)
        torch.testing.assert_close(c, a)


def test_compile_training_step():
    # float64: in float32 the compiled conv1 rounds differently, and the max pool after it sends a
    # window's gradient to either of two inputs within rounding of each other
    torch.manual_seed(0)
    net = SNet("snet49").double().train()
    ref = SNet("snet49").double().train()
    ref.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    compiled = torch.compile(net, backend=compile_backend())
    for m in (compiled, ref):
        c4, c5 = m(x)
        (c4.square().mean() + c5.mean()).backward()
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=lambda m, n=name: f"{n}: {m}")


def test_compiled_detector_detects_as_eager():
    torch.manual_seed(0)
    model = ThunderNet("snet49", num_classes=3, box_score_thresh=0.0).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        a, b = model(x), torch.compile(model, backend=compile_backend())(x)
    torch.testing.assert_close(b[0]["boxes"], a[0]["boxes"], rtol=1e-4, atol=1e-3)
    assert torch.equal(b[0]["labels"], a[0]["labels"])


def test_torch_backbone_exports_to_onnx(tmp_path):
    import_peer("onnx")
    ort = import_peer("onnxruntime")
    torch.manual_seed(0)
    net = SNet("snet146", backend="torch").eval()
    x = torch.randn(1, 3, 96, 96)
    path = tmp_path / "snet146.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17, input_names=["image"],
                      output_names=["c4", "c5"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    c4, c5 = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        e4, e5 = net(x)
    torch.testing.assert_close(torch.from_numpy(c4), e4, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(c5), e5, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------- DDP

STEPS, PER_RANK = 3, 2
DETECTOR = dict(num_classes=3, rpn_batch_size_per_image=64, box_batch_size_per_image=32)


def _batch(step: int):
    """The global batch of a step: 4 images and their targets, the same in every process."""
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(2 * PER_RANK, 3, 128, 128, generator=g, dtype=torch.float64)
    targets = []
    for _ in range(2 * PER_RANK):
        xy = torch.rand(2, 2, generator=g, dtype=torch.float64) * 70
        wh = 16 + torch.rand(2, 2, generator=g, dtype=torch.float64) * 40
        targets.append({"boxes": torch.cat((xy, xy + wh), 1), "labels": torch.randint(1, 4, (2,), generator=g)})
    return x, targets


def _model():
    torch.manual_seed(0)
    return ThunderNet("snet49", **DETECTOR).double().train()


def _ddp_worker(rank: int, port: int, out_path: str):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for step in range(STEPS):
            x, targets = _batch(step)
            mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
            torch.manual_seed(1000 * step + rank)  # the anchors' and proposals' samples of this half
            loss = sum(model(x[mine], targets[mine]).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        if rank == 0:
            torch.save({k: v.detach() for k, v in model.module.named_parameters()}, out_path)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_processes_equals_one_process(tmp_path):
    import torch.multiprocessing as mp

    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    out = str(tmp_path / "ddp.pt")
    mp.start_processes(_ddp_worker, args=(_free_port(), out), nprocs=2, join=True, start_method="spawn")
    ddp = torch.load(out)

    # one process, the same global batch: the gradient is the mean of the two halves' (each half's
    # batch norms use that half's statistics, as each DDP process does)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for step in range(STEPS):
        x, targets = _batch(step)
        opt.zero_grad()
        for rank in range(2):
            mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
            torch.manual_seed(1000 * step + rank)
            (sum(model(x[mine], targets[mine]).values()) / 2).backward()
        opt.step()
    for name, p in model.named_parameters():
        torch.testing.assert_close(ddp[name], p.detach(), rtol=1e-9, atol=1e-10, msg=lambda m, n=name: f"{n}: {m}")
    assert os.path.getsize(out) > 0
