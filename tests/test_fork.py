"""Ops in processes created by fork(): after the parent ran parallel regions (of nimbleops or of
torch), a child's first call must not wait forever on the parent's OpenMP pool.

Each scenario runs in a fresh interpreter (a subprocess with a deadline), so a hang is a failed
test and not a stuck suite, and the parent's thread state is the scenario's own.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import import_peer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")

_MDP = """
import numpy as np, os, nimbleops
from nimbleops import rl
rng = np.random.default_rng(0)
P = rng.random((120, 4, 120)); P /= P.sum(-1, keepdims=True); R = rng.random((120, 4))

def run_a_parallel_region():  # a sweep large enough to be split between threads
    big = rng.random((600, 8, 600)); big /= big.sum(-1, keepdims=True)
    rl.value_iteration(big, rng.random((600, 8)), 0.9, max_iter=3)
"""


def _run(code: str, timeout: float = 120) -> str:
    try:
        # OpenBLAS (numpy's) starts its own threads at import unless told not to; the scenarios
        # decide which threads the parent has
        out = subprocess.run([sys.executable, "-c", _MDP + textwrap.dedent(code)], capture_output=True, text=True,
                             timeout=timeout, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired as e:  # the defect this file guards against
        raise AssertionError(f"hung: {e}") from None
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("parent_ran", ["nimbleops", "torch", "nothing"])
def test_child_calls_after_fork(threads, parent_ran):
    if parent_ran == "torch":
        import_peer("torch")
    out = _run(f"""
        nimbleops.set_num_threads({threads})
        if "{parent_ran}" == "torch":
            import torch; torch.set_num_threads(2); torch.randn(256, 256) @ torch.randn(256, 256)
        if "{parent_ran}" == "nimbleops":
            run_a_parallel_region()
        import signal
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)
            got = rl.value_iteration(P, R, 0.9).V
            grand = os.fork()  # and the child's own children
            if grand == 0:
                signal.alarm(60)
                rl.value_iteration(P, R, 0.9)
                os._exit(0)
            _, st = os.waitpid(grand, 0)
            os.write(w, got.tobytes() + bytes([st != 0, nimbleops.get_num_threads()]))
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        data = os.read(r, 1 << 20)
        assert status == 0, status
        got = np.frombuffer(data[:-2], dtype=np.float64)
        assert data[-2] == 0, "grandchild failed"
        np.testing.assert_array_equal(got, rl.value_iteration(P, R, 0.9).V)
        print("child threads", data[-1])
    """)
    # a parent that had threads forks a serial child; one that never started any keeps the count
    started_threads = parent_ran == "torch" or (parent_ran == "nimbleops" and threads > 1)
    assert f"child threads {1 if started_threads else threads}" in out


def test_set_num_threads_in_a_serial_child_warns():
    _run("""
        import warnings
        nimbleops.set_num_threads(2); run_a_parallel_region()
        pid = os.fork()
        if pid == 0:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                nimbleops.set_num_threads(1)
                nimbleops.set_num_threads(2)
            ok = len(w) == 1 and "forked" in str(w[0].message) and nimbleops.get_num_threads() == 1
            rl.value_iteration(P, R, 0.9)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert status == 0
    """)


def test_multiprocessing_pool_with_fork():
    _run("""
        import multiprocessing as mp
        nimbleops.set_num_threads(2)
        run_a_parallel_region()
        want = rl.value_iteration(P, R, 0.9).V
        def solve(gamma):
            return rl.value_iteration(P, R, gamma).V
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map(solve, [0.9, 0.5, 0.9], chunksize=1)
        np.testing.assert_array_equal(got[0], want)
        np.testing.assert_array_equal(got[2], want)
        np.testing.assert_array_equal(got[1], rl.value_iteration(P, R, 0.5).V)
    """)


def test_dataloader_workers_call_a_vision_op():
    import_peer("torch")
    _run("""
        import torch
        from nimbleops import vision
        nimbleops.set_num_threads(2)
        w = torch.randn(8, 1, 3, 3)
        x = torch.randn(4, 8, 16, 16)
        run_a_parallel_region()
        torch.randn(128, 128) @ torch.randn(128, 128)

        class Data(torch.utils.data.Dataset):
            def __len__(self):
                return 6
            def __getitem__(self, i):
                return vision.depthwise_conv2d(x[i % 4:i % 4 + 1], w, padding=1)[0]

        loader = torch.utils.data.DataLoader(Data(), batch_size=2, num_workers=2,
                                             multiprocessing_context="fork", timeout=60)
        got = torch.cat(list(loader))
        want = torch.cat([Data()[i][None] for i in range(6)])
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    """)


def test_gymnasium_async_vector_env_calls_an_rl_op():
    import_peer("gymnasium")
    _run("""
        import gymnasium as gym

        class Solver(gym.Env):
            observation_space = gym.spaces.Box(-np.inf, np.inf, (120,), np.float64)
            action_space = gym.spaces.Discrete(2)
            def reset(self, seed=None, options=None):
                return rl.value_iteration(P, R, 0.9).V, {}
            def step(self, action):
                V = rl.value_iteration(P, R, 0.5 + 0.1 * int(action)).V
                return V, 0.0, True, False, {}

        nimbleops.set_num_threads(2)
        run_a_parallel_region()
        want = rl.value_iteration(P, R, 0.9).V
        envs = gym.vector.AsyncVectorEnv([Solver, Solver], context="fork")
        try:
            obs, _ = envs.reset(seed=0)
            np.testing.assert_array_equal(obs[0], want)
            obs, *_ = envs.step(np.array([1, 0]))
            np.testing.assert_array_equal(obs[1], rl.value_iteration(P, R, 0.5).V)
        finally:
            envs.close()
    """)
