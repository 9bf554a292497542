"""The C++ API as an embedding program sees it: the installed headers and CMake package, and
examples/cpp built against them and run (its results checked against the Python API's)."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import nimbleops
from nimbleops import rl

from .conftest import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADERS = ("nimbleops.h", "view.h", "enums.h", "runtime.h", "rl.h", "vision.h")

needs_toolchain = pytest.mark.skipif(
    shutil.which("cmake") is None or not any(shutil.which(c) for c in ("c++", "g++", "clang++")),
    reason="building the C++ example needs cmake and a C++ compiler on PATH",
)


def test_package_locations():
    include = pathlib.Path(nimbleops.get_include())
    cmake_dir = pathlib.Path(nimbleops.get_cmake_dir())
    for name in HEADERS:
        assert (include / "nimbleops" / name).is_file(), name
    assert (cmake_dir / "nimbleopsConfig.cmake").is_file()
    assert (cmake_dir / "nimbleopsConfigVersion.cmake").is_file()
    for flag, expected in (("--includedir", include), ("--cmakedir", cmake_dir), ("--version", nimbleops.__version__)):
        out = subprocess.run([sys.executable, "-m", "nimbleops", flag], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == str(expected)


def test_headers_need_no_python():
    for name in HEADERS:
        text = (pathlib.Path(nimbleops.get_include()) / "nimbleops" / name).read_text()
        includes = re.findall(r'#include\s+[<"]([^>"]+)[>"]', text)
        assert all(i.startswith("nimbleops/") or "/" not in i for i in includes), (name, includes)
        assert "Python.h" not in text and "pybind11" not in text, name


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    build = tmp_path_factory.mktemp("examples-cpp")
    configure = ["cmake", "-S", str(ROOT / "examples" / "cpp"), "-B", str(build),
                 f"-Dnimbleops_DIR={nimbleops.get_cmake_dir()}", "-DCMAKE_BUILD_TYPE=Release"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    if torch is not None:
        configure.append(f"-DTORCH_DIR={os.path.dirname(torch.__file__)}")
    for command in (configure, ["cmake", "--build", str(build), "-j", "2"]):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return build


def run_example(build, name):
    done = subprocess.run([str(build / name)], capture_output=True, text=True, timeout=300)
    print(done.stdout)  # the example's output, shown in the test log with -s / on failure
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"
    return done.stdout


def gridworld(n=6):
    """The example's gridworld, in numpy."""
    S, A = n * n, 4
    goal, pit = S - 1, S - 1 - n
    reward = np.full(S, -0.04)
    reward[goal], reward[pit] = 1.0, -1.0
    P, R = np.zeros((S, A, S)), np.zeros((S, A))

    def move(s, a):
        r, c = divmod(s, n)
        nr, nc = r + (-1, 0, 1, 0)[a], c + (0, 1, 0, -1)[a]
        return s if not (0 <= nr < n and 0 <= nc < n) else nr * n + nc

    for s in range(S):
        for a in range(A):
            if s in (goal, pit):
                P[s, a, s] = 1.0
                continue
            for nxt, p in ((move(s, a), 0.8), (move(s, (a + 1) % A), 0.1), (move(s, (a + 3) % A), 0.1)):
                P[s, a, nxt] += p
                R[s, a] += p * reward[nxt]
    return P, R


@needs_toolchain
def test_gridworld_example(examples):
    out = run_example(examples, "gridworld")
    P, R = gridworld()
    sol = rl.value_iteration(P, R, 0.95, tol=1e-8)
    start = float(re.search(r"V\*\(start\) = (\S+)", out).group(1))
    assert start == pytest.approx(sol.V[0], abs=1e-6)
    arrows = "^>v<"
    rows = [line.split() for line in out.splitlines() if re.fullmatch(r"\s+([\^>v<XG] ?)+", line)]
    printed = [c for row in rows for c in row]
    expected = [("G" if s == 35 else "X" if s == 29 else arrows[a]) for s, a in enumerate(sol.policy)]
    assert printed == expected
    # the C++ exceptions carry the Python API's messages
    errors = re.findall(r"^error: (.*)$", out, re.M)
    broken = P.copy()
    broken.reshape(-1)[5] = -0.5
    with pytest.raises(ValueError) as python_error:
        rl.value_iteration(broken, R, 0.95)
    assert errors[0] == str(python_error.value)
    Q = np.zeros((36, 4))
    with pytest.raises(IndexError) as python_index_error:
        rl.q_learning_update_(Q, np.array([36]), np.array([0]), np.array([0.0]), np.array([0]), np.array([False]),
                              alpha=0.1, gamma=0.95)
    assert errors[1] == str(python_index_error.value)


@needs_toolchain
@pytest.mark.skipif(torch is None, reason="LibTorch comes with the torch package")
def test_libtorch_example(examples):
    run_example(examples, "libtorch_gae")
