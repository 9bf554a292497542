"""nimbleops: fast, tested kernels for RL value updates and lightweight-CNN/detection ops.

CPU kernels are C++ with OpenMP and runtime-dispatched SIMD; CUDA kernels are built when a
CUDA compiler is found. Every op has a pure-Python reference in :mod:`nimbleops.reference`.
"""
from __future__ import annotations

import os
import warnings

from . import _C

__version__ = "0.1.0"

__all__ = ["build_info", "has_cuda", "set_num_threads", "get_num_threads", "set_simd_level", "get_include",
           "get_cmake_dir", "rl", "vision", "reference"]


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

    Results do not depend on it. It does not change torch's own thread count. ``n`` is an integer
    from 1 to 1024 (lower if OMP_THREAD_LIMIT says so); a count the system cannot start raises
    RuntimeError here rather than ending the process at the next op.

    In a process created by ``fork()`` from a process that had other threads (an OpenMP pool of
    nimbleops or of torch may be among them), the kernels run on one thread: OpenMP cannot start
    threads there. ``n > 1`` is then kept but has no effect, with a RuntimeWarning. Use the
    ``spawn`` or ``forkserver`` start method for parallel children.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"num_threads: expected an integer, got {type(n).__name__}")
    if not 1 <= n <= _C.max_num_threads():
        raise ValueError(f"num_threads: expected an integer in [1, {_C.max_num_threads()}], got {n}")
    _C.set_num_threads(n)
    if n > 1 and _C.serial_after_fork():
        warnings.warn("nimbleops.set_num_threads: this process was forked from one with other threads, where "
                      "OpenMP cannot start threads; the kernels run on one thread (use the spawn or forkserver "
                      "start method for parallel children)", RuntimeWarning, stacklevel=2)


def get_num_threads() -> int:
    """Threads the CPU kernels use (1 in a forked child, see :func:`set_num_threads`)."""
    return _C.get_num_threads()


def set_simd_level(level: str) -> None:
    """Force the SIMD level of the CPU kernels: 'baseline', 'avx2', 'avx512' or 'auto'.

    For benchmarks and tests; results are bit-identical at every level. The environment variable
    NIMBLEOPS_SIMD (a level name) caps the level for the whole process: the initial level and what
    'auto' returns to.
    """
    _C.set_simd_level(level)


def get_include() -> str:
    """The directory of the C++ API's headers (``nimbleops/nimbleops.h`` and the family headers), for
    compiling against the ``libnimbleops`` this package installed. With CMake, prefer
    :func:`get_cmake_dir` and the target ``nimbleops::nimbleops``."""
    return os.path.join(_package_dir(), "include")


def get_cmake_dir() -> str:
    """The directory of the CMake package config (``nimbleopsConfig.cmake``): pass it as
    ``-Dnimbleops_DIR=...`` (or put it in ``CMAKE_PREFIX_PATH``) and ``find_package(nimbleops CONFIG)``
    gives the imported target ``nimbleops::nimbleops``. Also ``python -m nimbleops --cmakedir``."""
    return os.path.join(_package_dir(), "share", "cmake", "nimbleops")


def _package_dir() -> str:
    # where the build installed the compiled parts (the extension, libnimbleops, headers, CMake
    # files): the package's own directory, except in an editable install, which keeps them apart
    return os.path.dirname(os.path.abspath(_C.__file__))


from . import rl  # noqa: E402
from . import vision  # noqa: E402
from . import reference  # noqa: E402
