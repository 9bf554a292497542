"""Reads and writes stay inside the arrays: every op runs on arrays placed flush against an
inaccessible page (mmap + PROT_NONE on both sides), at the start and at the end of their memory,
at every SIMD level. A kernel that touches a byte outside an array faults. (AddressSanitizer
does not see AVX-512 masked loads and stores, which the depthwise kernels use: this test does.)

Each SIMD level runs in a child process, so a fault is a failed test naming the last op started,
not a crashed suite.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import nimbleops

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="mmap / mprotect through ctypes: Linux")

SCRIPT = textwrap.dedent('''
import ctypes, math, mmap, sys
import numpy as np
import nimbleops
from nimbleops import _arrays as ar, rl, vision

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
PLACE = "end"


def guarded(shape, dtype, place=None):
    """An array whose memory starts (place 'start') or ends ('end') at an inaccessible page."""
    dtype = np.dtype(dtype)
    n = max(1, math.prod(shape)) * dtype.itemsize
    pages = (n + PAGE - 1) // PAGE
    base = libc.mmap(None, (pages + 2) * PAGE, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert base not in (None, ctypes.c_void_p(-1).value)
    assert libc.mprotect(base, PAGE, 0) == 0
    assert libc.mprotect(base + (pages + 1) * PAGE, PAGE, 0) == 0
    start = base + PAGE + ((pages * PAGE - n) if (place or PLACE) == "end" else 0)
    buf = (ctypes.c_char * n).from_address(start)
    return np.frombuffer(buf, dtype, count=math.prod(shape)).reshape(shape)  # the mapping is never unmapped


def like(a, place=None):
    g = guarded(a.shape, a.dtype, place)
    g[...] = a
    return g


_numpy_empty = ar.empty


def guarded_empty(shape, dtype, kind):  # the ops' own numpy outputs against guard pages too
    return guarded(tuple(shape), dtype) if not kind.torch else _numpy_empty(shape, dtype, kind)


ar.empty = guarded_empty
rng = np.random.default_rng(0)


def step(name):
    print(name, flush=True)


def vision_ops(dt):
    import torch
    for H, W in [(1, 1), (1, 17), (3, 5), (7, 7), (5, 16), (16, 16), (10, 33), (20, 20), (2, 40)]:
        for C in (1, 3, 16):
            x = like(rng.standard_normal((2, C, H, W)).astype(dt))
            for K, stride, pad in [(3, 1, 1), (3, 1, 0), (5, 1, 2), (3, 2, 1), (5, 2, 2), (1, 1, 0), (3, 3, 2)]:
                if H + 2 * pad < K or W + 2 * pad < K:
                    continue
                step(f"depthwise {dt} {C}x{H}x{W} k{K} s{stride} p{pad}")
                w = like(rng.standard_normal((C, 1, K, K)).astype(dt))
                b = like(rng.standard_normal(C).astype(dt))
                vision.depthwise_conv2d(x, w, b, stride, pad)
                xt = torch.from_numpy(x).requires_grad_()
                wt = torch.from_numpy(w).requires_grad_()
                torch.autograd.grad(vision.depthwise_conv2d(xt, wt, None, stride, pad).sum(), (xt, wt))
                xl = torch.from_numpy(like(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))).permute(0, 3, 1, 2)
                vision.depthwise_conv2d(xl, torch.from_numpy(w), None, stride, pad)
            step(f"pointwise {dt} {C}x{H}x{W}")
            wp = like(rng.standard_normal((8, C, 1, 1)).astype(dt))
            vision.pointwise_conv2d(x, wp, like(np.zeros(8, dt)), activation="relu")
            xt = torch.from_numpy(x).requires_grad_()
            torch.autograd.grad(vision.pointwise_conv2d(xt, torch.from_numpy(wp)).sum(), xt)
            if C % 2 == 0 or C == 16:
                step(f"shuffle {dt} {C}x{H}x{W}")
                vision.channel_shuffle(x, 2)
                vision.concat_shuffle_split(x, like(x))
            step(f"batch_norm {dt} {C}x{H}x{W}")
            vision.batch_norm_relu(x, like(np.ones(C, dt)), like(np.zeros(C, dt)))
            step(f"conv_pool {dt} {C}x{H}x{W}")
            vision.conv2d_relu_max_pool(x, like(rng.standard_normal((5, C, 3, 3)).astype(dt)),
                                        like(rng.standard_normal(5).astype(dt)), 2, 1)
            if C % 2 == 0:
                step(f"shufflenet_stage {dt} {C}x{H}x{W}")
                f = lambda *shape: like(rng.standard_normal(shape).astype(dt))  # noqa: E731
                down = vision.ShuffleUnitWeights(f(3, C), f(3), f(3, 1, 3, 3), f(3), f(C // 2, 3), f(C // 2), 2,
                                                 f(C, 1, 5, 5), f(C), f(C // 2, C, 1, 1), f(C // 2))
                unit = vision.ShuffleUnitWeights(f(4, C // 2), f(4), f(4, 1, 5, 5), None, f(C // 2, 4), f(C // 2))
                vision.shufflenet_stage(x, [unit, down, unit])
    for K in (0, 1, 7, 33):
        step(f"nms {dt} K{K}")
        corner = rng.random((K, 2)) * 20
        boxes = like(np.concatenate((corner, corner + rng.random((K, 2)) * 9 + 1), 1).astype(dt))
        scores = like(rng.random(K).astype(dt))
        vision.nms(boxes, scores, 0.5)
        vision.batched_nms(boxes, scores, like(rng.integers(0, 3, K)), 0.3, max_output=5)
    for ph in (1, 2, 3):
        x = like(rng.standard_normal((2, 2 * ph * ph, 9, 13)).astype(dt))
        boxes = like(np.array([[0, -2, -2, 20, 20], [1, 0, 0, 13, 9], [1, 12, 8, 13, 9], [0, 3, 3, 3, 3]], float))
        for mode in ("avg", "max", "pool"):
            step(f"ps_roi {mode} {dt} {ph}")
            if mode == "pool":
                vision.ps_roi_pool(x, boxes, ph)
            else:
                vision.ps_roi_align(x, boxes, ph, sampling_ratio=-1, mode=mode)
            xt = torch.from_numpy(x).requires_grad_()
            f = vision.ps_roi_pool if mode == "pool" else vision.ps_roi_align
            torch.autograd.grad(f(xt, torch.from_numpy(boxes), ph).sum(), xt)


def rl_ops(dt):
    # S of 8 to 64: the optimality sweep's grouped rows (a group across states; a partial last one)
    for S, A, batch in [(1, 1, ()), (7, 3, ()), (33, 5, ()), (5, 2, (3,)), (16, 4, (3,)), (8, 3, ()), (64, 5, ())]:
        step(f"bellman {dt} S{S} A{A} {batch}")
        P = rng.random(batch + (S, A, S))
        P /= P.sum(-1, keepdims=True)
        P, R = like(P.astype(dt)), like(rng.standard_normal(batch + (S, A)).astype(dt))
        V = like(rng.standard_normal(batch + (S,)).astype(dt))
        rl.q_values(P, R, V, 0.9)
        rl.bellman_optimality_backup(P, R, V, 0.9)
        rl.value_iteration(P, R, 0.9, max_iter=50)
        rl.policy_iteration(P, R, 0.9)
        rl.modified_policy_iteration(P, R, 0.9, max_iter=50)
        rl.finite_horizon(P, R, 0.9, 3)
    for T, B in [(1, 1), (5, 3), (17, 33)]:
        step(f"returns {dt} {T}x{B}")
        r, v, nv, lr = (like(rng.standard_normal((T, B)).astype(dt)) for _ in range(4))
        term, trunc = like(rng.random((T, B)) < 0.2), like(rng.random((T, B)) < 0.1)
        g = like(rng.random((T, B)).astype(dt))
        rl.discounted_returns(r, nv, term, trunc, gamma=g)
        rl.n_step_returns(r, nv, term, trunc, gamma=0.9, n=3)
        rl.lambda_returns(r, nv, term, trunc, gamma=0.9, lam=0.8)
        rl.gae(r, v, nv, term, trunc, gamma=0.9, lam=0.8)
        rl.vtrace(r, v, nv, lr, term, trunc, gamma=0.9)
    for N, S, A in [(1, 1, 1), (9, 5, 3), (40, 17, 4)]:
        step(f"td {dt} N{N} S{S} A{A}")
        s, a = like(rng.integers(0, S, N)), like(rng.integers(0, A, N))
        sn, an = like(rng.integers(0, S, N)), like(rng.integers(0, A, N))
        r, term = like(rng.standard_normal(N).astype(dt)), like(rng.random(N) < 0.3)
        for mode in ("sequential", "accumulate"):
            Q, Q2, V = like(np.zeros((S, A), dt)), like(np.zeros((S, A), dt)), like(np.zeros(S, dt))
            rl.q_learning_update_(Q, s, a, r, sn, term, alpha=0.5, gamma=0.9, mode=mode)
            rl.sarsa_update_(Q, s, a, r, sn, an, term, alpha=0.5, gamma=0.9, mode=mode)
            rl.expected_sarsa_update_(Q, s, a, r, sn, term, alpha=0.5, gamma=0.9, mode=mode, epsilon=0.1)
            rl.double_q_learning_update_(Q, Q2, s, a, r, sn, term, alpha=0.5, gamma=0.9, mode=mode,
                                         update_first=like(rng.random(N) < 0.5))
            rl.td0_update_(V, s, r, sn, term, alpha=0.5, gamma=0.9, mode=mode)
        step(f"traces {dt} N{N} S{S} A{A}")
        Q, e = like(np.zeros((S, A), dt)), like(np.zeros((N, S, A), dt))
        rl.sarsa_lambda_step_(Q, e, s, a, r, sn, an, term, like(np.zeros(N, bool)), alpha=0.5, gamma=0.9, lam=0.8)
        V, ev = like(np.zeros(S, dt)), like(np.zeros((N, S), dt))
        rl.td_lambda_step_(V, ev, s, r, sn, term, like(np.zeros(N, bool)), alpha=0.5, gamma=0.9, lam=0.8)
        w, z, vo = like(np.zeros(S, dt)), like(np.zeros((N, S), dt)), like(np.zeros(N, dt))
        phi, phn = like(rng.random((N, S)).astype(dt)), like(rng.random((N, S)).astype(dt))
        rl.true_online_td_lambda_step_(w, z, vo, phi, r, phn, term, like(np.zeros(N, bool)), alpha=0.1, gamma=0.9,
                                       lam=0.8)


level, threads = sys.argv[1], int(sys.argv[2])
nimbleops.set_simd_level(level)
nimbleops.set_num_threads(threads)
for PLACE in ("end", "start"):
    for dt in ("float32", "float64"):
        rl_ops(dt)
        vision_ops(dt)
print("done", flush=True)
''')


def _levels():
    levels = ["baseline", "avx2", "avx512"]
    detected = nimbleops.build_info()["simd_detected"]
    active = nimbleops.build_info()["simd_active"]
    top = min(levels.index(detected), levels.index(active)) if active in levels else levels.index(detected)
    return [lv for lv in levels[:top + 1] if lv in nimbleops.build_info()["simd_compiled"]]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("level", _levels())
def test_every_op_stays_inside_its_arrays(level, threads):
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", SCRIPT, level, str(threads)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and lines and lines[-1] == "done", (
        f"exit status {out.returncode} during: {lines[-1] if lines else '(nothing)'}\n{out.stderr[-3000:]}")


@pytest.mark.parametrize("place, offset", [("end", 0), ("start", -1)])
def test_the_guard_pages_fault(place, offset):
    """The harness itself: one element past the end (or before the start) of a guarded array faults."""
    probe = SCRIPT.split("level, threads = sys.argv")[0] + textwrap.dedent(f'''
        a = guarded((5,), "float64", "{place}")
        a[...] = 1.0
        address = a.ctypes.data + ({offset} if {offset} < 0 else a.nbytes)
        print("reading", flush=True)
        ctypes.c_char.from_address(address).value
        print("read", flush=True)
    ''')
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == -11 and out.stdout.strip().splitlines()[-1] == "reading", out
