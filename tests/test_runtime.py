"""Build facts, threads, SIMD levels, torch coexistence, concurrent calls."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nimbleops
from nimbleops import rl

from .conftest import import_peer, random_mdp


def test_build_info_has_the_documented_keys():
    info = nimbleops.build_info()
    for key in ("compiler", "openmp", "simd_compiled", "simd_detected", "simd_active", "cuda", "cuda_version",
                "cuda_architectures", "cuda_devices", "cuda_error", "num_threads"):
        assert key in info
    assert "baseline" in info["simd_compiled"]
    assert info["simd_active"] in info["simd_compiled"]
    assert isinstance(nimbleops.has_cuda(), bool)
    if not info["cuda"] or info["cuda_devices"] == 0:
        assert nimbleops.has_cuda() is False


def test_set_num_threads():
    before = nimbleops.get_num_threads()
    try:
        nimbleops.set_num_threads(1)
        assert nimbleops.get_num_threads() == 1
        with pytest.raises(ValueError, match="num_threads"):
            nimbleops.set_num_threads(0)
        with pytest.raises(TypeError):
            nimbleops.set_num_threads(1.5)
    finally:
        nimbleops.set_num_threads(before)


def test_thread_counts_beyond_the_cap_are_refused():
    before = nimbleops.get_num_threads()
    try:
        for n in (1025, 100_000, 2**31 - 1, 2**70, -2**70):
            with pytest.raises(ValueError, match=r"num_threads: expected an integer in \[1, 1024\], got"):
                nimbleops.set_num_threads(n)
        assert nimbleops.get_num_threads() == before
    finally:
        nimbleops.set_num_threads(before)


def test_many_threads_run_and_agree():
    out = _run("""
import nimbleops, numpy as np
from nimbleops import rl
rng = np.random.default_rng(0)
P = rng.random((300, 4, 300)); P /= P.sum(-1, keepdims=True); R = rng.random((300, 4))
want = rl.value_iteration(P, R, 0.9, max_iter=5).V
nimbleops.set_num_threads(1024)
print(np.array_equal(rl.value_iteration(P, R, 0.9, max_iter=5).V, want))
""")
    assert out == "True"


def test_threads_the_system_refuses_are_an_error():
    """Under RLIMIT_NPROC the count is refused with RuntimeError (OpenMP itself would end the
    process). The limit does not bind root, so root runs the check as the nobody user."""
    import shutil
    code = """
import resource, nimbleops
resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
try:
    nimbleops.set_num_threads(64)
except RuntimeError as e:
    print("refused" if "could start only" in str(e) else e)
"""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: RLIMIT_NPROC would not bind")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0 and ("ModuleNotFoundError" in out.stderr or "Permission denied" in out.stderr):
        pytest.skip(f"the nobody user cannot import this checkout: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"


def test_simd_level_errors():
    with pytest.raises(ValueError, match="SIMD level"):
        nimbleops.set_simd_level("sse9")
    nimbleops.set_simd_level("auto")
    assert nimbleops.build_info()["simd_active"] == nimbleops.build_info()["simd_detected"] or \
        os.environ.get("NIMBLEOPS_SIMD", "auto") != "auto"


def _run(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_omp_num_threads_is_respected():
    assert _run("import nimbleops; print(nimbleops.get_num_threads())", OMP_NUM_THREADS="1") == "1"


def test_nimbleops_simd_env_selects_the_level_for_the_whole_process():
    code = """
import nimbleops
print(nimbleops.build_info()['simd_active'])
nimbleops.set_simd_level('auto')
print(nimbleops.build_info()['simd_active'])
"""
    assert _run(code, NIMBLEOPS_SIMD="baseline").split() == ["baseline", "baseline"]


@pytest.mark.parametrize("order", ["nimbleops,torch", "torch,nimbleops"])
def test_imports_beside_torch_in_either_order(order):
    pytest.importorskip("torch")
    first, second = order.split(",")
    code = f"""
import {first}, {second}
import numpy as np, torch
from nimbleops import rl
rng = np.random.default_rng(0)
P = rng.random((50, 4, 50)); P /= P.sum(-1, keepdims=True)
R = rng.random((50, 4))
for _ in range(3):
    a = rl.value_iteration(torch.from_numpy(P), torch.from_numpy(R), 0.9).V
    b = torch.from_numpy(P).reshape(200, 50) @ a  # torch's own threads in between
print(torch.get_num_threads(), nimbleops.get_num_threads(), bool(torch.isfinite(b).all()))
"""
    torch_threads, ours, finite = _run(code).split()
    assert finite == "True" and int(ours) >= 1 and int(torch_threads) >= 1


def test_concurrent_calls_from_python_threads(rng):
    P, R = random_mdp(rng, 200, 4)
    expected = rl.value_iteration(P, R, 0.95).V
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(rl.value_iteration(P, R, 0.95).V)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_views_of_torch_tensors(dtype):
    """ar.view of a torch tensor (View.of_tensor) gives its shape, strides (in elements), dtype and
    device, strided ones included; the first and later sightings of a dtype agree."""
    torch = pytest.importorskip("torch")
    from nimbleops import _arrays as ar

    t = torch.zeros(3, 4, 5, dtype=getattr(torch, dtype)).permute(2, 0, 1)[1:, :, ::2]
    for _ in range(2):
        v = ar.view(t)
        assert (v.shape, v.strides, v.dtype, v.device) == (list(t.shape), list(t.stride()), dtype, -1)
        assert v.is_contiguous is False
    assert ar.view(torch.zeros(())).shape == []


def test_view_of_an_unsupported_torch_dtype_names_it():
    torch = pytest.importorskip("torch")
    from nimbleops import _arrays as ar

    for _ in range(2):  # unsupported dtypes are not remembered: the same error each time
        with pytest.raises(ValueError, match="unsupported dtype 'float16'"):
            ar.view(torch.zeros(3, dtype=torch.float16))


def test_a_broken_peer_is_a_skip_with_its_reason(tmp_path, monkeypatch):
    """A peer that is installed but fails to import (torchvision beside a torch it was not built
    for) skips the comparison, saying why; it never fails the suite."""
    (tmp_path / "nimbleops_broken_peer.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="does not import: RuntimeError: operator torchvision::nms"):
        import_peer("nimbleops_broken_peer")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        import_peer("nimbleops_no_such_peer")


def _in_threads(work, n=4):
    errors = []

    def run(i):
        try:
            work(i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_concurrent_calls_of_every_family_agree_with_serial_ones(rng):
    from nimbleops import vision

    P, R = random_mdp(rng, 120, 4)
    T, B = 64, 32
    rew, val, nxt = (rng.normal(size=(T, B)) for _ in range(3))
    term = rng.random((T, B)) < 0.05
    x = rng.normal(size=(2, 16, 20, 20)).astype(np.float32)
    w = rng.normal(size=(16, 1, 3, 3)).astype(np.float32)
    pw = rng.normal(size=(24, 16, 1, 1)).astype(np.float32)
    boxes = np.array([[0, 1, 1, 15, 12], [1, 0, 3, 19, 19]], np.float64)
    calls = [
        lambda: (rl.value_iteration(P, R, 0.9).V,),
        lambda: rl.gae(rew, val, nxt, term, None, gamma=0.99, lam=0.95),
        lambda: (vision.depthwise_conv2d(x, w, padding=1),),
        lambda: (vision.pointwise_conv2d(x, pw),),
        lambda: (vision.ps_roi_align(x, boxes, 2, sampling_ratio=2),),
        lambda: (vision.channel_shuffle(x, 4),),
    ]
    want = [f() for f in calls]

    def work(i):
        for rep in range(6):
            k = (i + rep) % len(calls)
            for got, exp in zip(calls[k](), want[k]):
                np.testing.assert_array_equal(got, exp)

    _in_threads(work)


def test_in_place_updates_of_distinct_tables_from_threads(rng):
    N, S, A = 400, 50, 4
    batches = [dict(s=rng.integers(0, S, N), a=rng.integers(0, A, N), r=rng.normal(size=N),
                    s_next=rng.integers(0, S, N), terminated=rng.random(N) < 0.1) for _ in range(4)]

    def train(Q, b, mode):
        for _ in range(20):
            rl.q_learning_update_(Q, **b, alpha=0.1, gamma=0.9, mode=mode)

    for mode in ("sequential", "accumulate"):
        serial = [np.zeros((S, A)) for _ in batches]
        for Q, b in zip(serial, batches):
            train(Q, b, mode)
        tables = [np.zeros((S, A)) for _ in batches]
        _in_threads(lambda i: train(tables[i], batches[i], mode))
        for got, want in zip(tables, serial):
            np.testing.assert_array_equal(got, want)


def test_set_num_threads_while_another_thread_runs_ops(rng):
    P, R = random_mdp(rng, 300, 4)
    want = rl.value_iteration(P, R, 0.9).V
    before = nimbleops.get_num_threads()
    stop = threading.Event()

    def flip():
        n = 0
        while not stop.is_set():
            nimbleops.set_num_threads(1 + n % 3)
            n += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        for _ in range(15):
            np.testing.assert_array_equal(rl.value_iteration(P, R, 0.9).V, want)
    finally:
        stop.set()
        flipper.join()
        nimbleops.set_num_threads(before)


@pytest.mark.parametrize("mode", ["sequential", "accumulate"])
def test_in_place_updates_of_one_table_from_two_threads_serialise(rng, mode):
    """Two calls on the same table from two threads give the result of the two calls in one order
    or the other (each call runs whole: the documented behaviour)."""
    N, S, A = 200_000, 64, 4
    b1, b2 = (dict(s=rng.integers(0, S, N), a=rng.integers(0, A, N), r=rng.normal(size=N),
                   s_next=rng.integers(0, S, N), terminated=rng.random(N) < 0.1) for _ in range(2))
    start = rng.normal(size=(S, A))

    def apply(Q, *batches):
        for b in batches:
            rl.q_learning_update_(Q, **b, alpha=0.1, gamma=0.9, mode=mode)
        return Q

    orders = [apply(start.copy(), b1, b2), apply(start.copy(), b2, b1)]
    assert not np.array_equal(orders[0], orders[1])
    for _ in range(10):
        Q = start.copy()
        barrier = threading.Barrier(2)

        def run(i):
            barrier.wait()
            apply(Q, (b1, b2)[i])

        _in_threads(run, n=2)
        assert any(np.array_equal(Q, o) for o in orders)
