"""nimbleops: fast, tested kernels for RL value updates and lightweight-CNN/detection ops.

CPU kernels are C++ with OpenMP and runtime-dispatched SIMD; CUDA kernels are built when a
CUDA compiler is found. Every op has a pure-Python reference in :mod:`nimbleops.reference`.
"""
from __future__ import annotations

from . import _C

__version__ = "0.1.0"

__all__ = ["build_info", "has_cuda", "set_num_threads", "get_num_threads", "set_simd_level", "rl", "vision", "reference"]


def build_info() -> dict:
    """How this build was made and what the machine offers.

    Keys: ``compiler``, ``openmp`` (OpenMP version), ``simd_compiled`` (levels compiled for runtime
    dispatch), ``simd_detected`` (best level this CPU supports), ``simd_active`` (level in use),
    ``cuda`` (CUDA kernels compiled), ``cuda_version``, ``cuda_architectures``, ``cuda_devices``
    (usable GPUs now), ``cuda_error`` (why none, if none), ``num_threads``.
    """
    info = dict(_C.build_info())
    info["num_threads"] = _C.get_num_threads()
    return info


def has_cuda() -> bool:
    """True only when the CUDA kernels are compiled in and a GPU is usable. Never raises."""
    try:
        info = _C.build_info()
        return bool(info["cuda"]) and int(info["cuda_devices"]) > 0
    except Exception:  # pragma: no cover - defensive: importing and asking must never fail
        return False


def set_num_threads(n: int) -> None:
    """Threads the CPU kernels use (default: OMP_NUM_THREADS, else the core count).

    Results do not depend on it. It does not change torch's own thread count.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an integer >= 1, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the CPU kernels use."""
    return _C.get_num_threads()


def set_simd_level(level: str) -> None:
    """Force the SIMD level of the CPU kernels: 'baseline', 'avx2', 'avx512' or 'auto'.

    For benchmarks and tests; results are bit-identical at every level. The environment variable
    NIMBLEOPS_SIMD sets the initial level.
    """
    _C.set_simd_level(level)


from . import rl  # noqa: E402
from . import vision  # noqa: E402
from . import reference  # noqa: E402
