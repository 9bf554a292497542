"""Shared test settings: tolerances per dtype, array kinds, random MDPs."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import settings

import nimbleops

settings.register_profile("default", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("default")

#: kernel vs float64 reference, per compute dtype
TOL = {
    "float64": dict(rtol=1e-10, atol=1e-10),
    "float32": dict(rtol=2e-5, atol=2e-5),
}

try:
    import torch
except ImportError:  # the numpy-only tests still run; the others skip through needs_torch
    torch = None

#: the mark of a test that needs torch: a skip that says so where torch is not installed
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

#: array kinds every op is tested with: torch where installed, CUDA only where a GPU is usable
KINDS = ["numpy"] + (["torch"] if torch is not None else []) + (["torch-cuda"] if nimbleops.has_cuda() else [])

#: (make, back) pairs of the host kinds: a numpy array as itself, and as a CPU tensor sharing its
#: memory where torch is installed; back gives a result's values as numpy
HOST_KINDS = [(lambda x: x, lambda x: x)] + ([(torch.from_numpy, lambda x: x.numpy())] if torch is not None else [])


def to_kind(x, kind):
    """A numpy array as the given kind (None passes through)."""
    if x is None or kind == "numpy":
        return x
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.cuda() if kind == "torch-cuda" else t


def to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_close(actual, expected, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def random_mdp(rng, S, A, batch=(), density=1.0, leak=0.1, infeasible=0.0, dtype="float64"):
    """A random MDP: P [*batch, S, A, S] rows summing to 1 - U(0, leak), R [*batch, S, A] with
    some -inf (infeasible) entries, never a whole state."""
    P = rng.random(batch + (S, A, S)) * (rng.random(batch + (S, A, S)) < density)
    P[..., 0] += 1e-3  # no empty row
    P /= P.sum(-1, keepdims=True)
    P *= 1 - leak * rng.random(batch + (S, A, 1))
    R = rng.standard_normal(batch + (S, A))
    if infeasible:
        mask = rng.random(batch + (S, A)) < infeasible
        mask[..., 0] = False
        perm = rng.permuted(np.broadcast_to(np.arange(A), batch + (S, A)), axis=-1)
        mask = np.take_along_axis(mask, perm, axis=-1)  # the always-feasible action moves around
        R[mask] = -np.inf
    return P.astype(dtype), R.astype(dtype)


@functools.lru_cache(maxsize=None)
def compile_backend() -> str:
    """torch.compile's backend for the tests: "inductor", or "aot_eager" where inductor cannot
    build its code (no working C++ compiler, as in a wheel's test environment). aot_eager traces the
    same graph, through the custom ops' fake and autograd registrations, and runs it eagerly."""
    try:
        from torch._inductor import cpp_builder

        cpp_builder.get_cpp_compiler()
        return "inductor"
    except Exception:  # noqa: BLE001 - any failure to find a compiler means inductor cannot run
        return "aot_eager"


def import_peer(module: str):
    """A peer library for a comparison test, or a skip that says why it is not usable: absent, or
    installed but failing to import (torchvision beside a torch it was not built for raises
    RuntimeError at import). A broken peer is never a failure of this suite."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        pytest.skip(f"{module} is not installed ({e})")
    except Exception as e:  # noqa: BLE001 - any import failure makes the peer unusable, not us wrong
        pytest.skip(f"{module} is installed but does not import: {type(e).__name__}: {e}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def assert_same_bits_at_any_thread_count(run):
    """run() -> a tuple of arrays: the same bits at 1, 2 and 3 threads (for the kernels whose last
    bits may depend on the SIMD level, e.g. FMA in the depthwise convolution)."""
    threads = nimbleops.get_num_threads()
    try:
        nimbleops.set_num_threads(1)
        expected = [to_numpy(x) for x in run()]
        for n in (2, 3):
            nimbleops.set_num_threads(n)
            for got, want in zip(run(), expected):
                np.testing.assert_array_equal(to_numpy(got), want)
    finally:
        nimbleops.set_num_threads(threads)


def assert_same_bits_at_any_thread_count_and_simd_level(run):
    """run() -> a tuple of arrays: the same bits at 1, 2 and 3 threads and every SIMD level this
    CPU supports up to the process's level (NIMBLEOPS_SIMD; baseline at 1 thread is the yardstick)."""
    threads = nimbleops.get_num_threads()
    levels = ("baseline", "avx2", "avx512")
    nimbleops.set_simd_level("auto")
    top = nimbleops.build_info()["simd_active"]
    levels = levels[:levels.index(top) + 1] if top in levels else levels
    try:
        nimbleops.set_num_threads(1)
        nimbleops.set_simd_level("baseline")
        expected = [to_numpy(x) for x in run()]
        for n in (1, 2, 3):
            nimbleops.set_num_threads(n)
            for level in levels:
                if level not in nimbleops.build_info()["simd_compiled"]:
                    continue
                try:
                    nimbleops.set_simd_level(level)
                except ValueError:
                    continue  # not supported by this CPU
                for got, want in zip(run(), expected):
                    np.testing.assert_array_equal(to_numpy(got), want)
    finally:
        nimbleops.set_num_threads(threads)
        nimbleops.set_simd_level("auto")
