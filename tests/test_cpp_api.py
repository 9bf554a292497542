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


def cmake_build(source, build, *options):
    configure = ["cmake", "-S", str(source), "-B", str(build), f"-Dnimbleops_DIR={nimbleops.get_cmake_dir()}",
                 "-DCMAKE_BUILD_TYPE=Release", *options]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    for command in (configure, ["cmake", "--build", str(build), "-j", "2"]):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    build = tmp_path_factory.mktemp("examples-cpp")
    torch_dir = [f"-DTORCH_DIR={os.path.dirname(torch.__file__)}"] if torch is not None else []
    cmake_build(ROOT / "examples" / "cpp", build, *torch_dir)
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



@needs_toolchain
@pytest.mark.skipif(torch is None, reason="the gradients are compared with torch autograd over the Python ops")
def test_every_family_against_python(tmp_path):
    """tests/cpp/api_check.cpp runs the C++ API of each family on inputs written here; its outputs
    equal the Python API's (the same kernels: bit for bit, or to rounding where autograd sums)."""
    import scipy.sparse

    from nimbleops import vision

    build = tmp_path / "build"
    cmake_build(ROOT / "tests" / "cpp", build)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)

    def put(name, array):
        np.ascontiguousarray(array).tofile(data / name)
        return array

    def get(name, dtype, shape):
        return np.fromfile(data / name, dtype=dtype).reshape(shape)

    f32 = np.float32
    dw = [put(n, rng.standard_normal(s).astype(f32)) for n, s in
          (("dw_x", (2, 6, 9, 9)), ("dw_w", (12, 1, 3, 3)), ("dw_b", (12,)), ("dw_grad", (2, 12, 5, 5)))]
    pw = [put(n, rng.standard_normal(s)) for n, s in
          (("pw_x", (2, 8, 5, 5)), ("pw_w", (6, 4)), ("pw_b", (6,)), ("pw_grad", (2, 6, 5, 5)))]
    sh_x = put("sh_x", rng.standard_normal((2, 6, 3, 3)).astype(f32))
    roi_x = put("roi_x", rng.standard_normal((1, 18, 10, 10)).astype(f32))
    boxes = put("roi_boxes", np.array([[0, 1.0, 2.0, 15.0, 12.0], [0, 0.0, 0.0, 19.0, 19.0], [0, 5.5, 3.0, 9.0, 18.5]]))
    roi_grad = put("roi_grad", rng.standard_normal((3, 2, 3, 3)).astype(f32))
    corners = rng.uniform(0, 30, (40, 2))
    nms_boxes = put("nms_boxes", np.concatenate((corners, corners + rng.uniform(2, 12, (40, 2))), 1).astype(f32))
    nms_scores, nms_groups = put("nms_scores", rng.random(40).astype(f32)), put("nms_groups", rng.integers(0, 3, 40))
    st = {n: put("st_" + n, rng.standard_normal(s).astype(f32) * 0.5) for n, s in (
        ("x", (1, 6, 7, 7)), ("a_dw", (6, 1, 3, 3)), ("a_dwb", (6,)), ("a_pw", (4, 6)), ("a_pwb", (4,)),
        ("a_pw1", (3, 6)), ("a_pw1b", (3,)), ("a_dw2", (3, 1, 3, 3)), ("a_dw2b", (3,)), ("a_pw2", (4, 3)),
        ("a_pw2b", (4,)), ("b_pw1", (5, 4)), ("b_pw1b", (5,)), ("b_dw", (5, 1, 5, 5)), ("b_pw2", (4, 5)),
        ("b_pw2b", (4,)))}
    cp = [put(n, rng.standard_normal(s)) for n, s in (("cp_x", (2, 3, 13, 15)), ("cp_w", (5, 3, 3, 3)), ("cp_b", (5,)))]
    T, B = 16, 3
    ret = dict(r=put("ret_r", rng.standard_normal((T, B))), nv=put("ret_nv", rng.standard_normal((T, B))),
               gamma=put("ret_gamma", rng.uniform(0.8, 1.0, (T, B))), term=put("ret_term", rng.random((T, B)) < 0.1),
               trunc=put("ret_trunc", rng.random((T, B)) < 0.1))
    S, A = 50, 3
    P = rng.random((S * A, S)) * (rng.random((S * A, S)) < 0.1)
    P[np.arange(S * A), rng.integers(0, S, S * A)] += 0.5
    P /= P.sum(1, keepdims=True)
    model = rl.SparseTransitions.from_scipy(scipy.sparse.csr_matrix(P), A)
    put("mdp_indptr", model.indptr.astype(np.int64)), put("mdp_indices", model.indices.astype(np.int32))
    put("mdp_data", model.data)
    R = put("mdp_R", rng.standard_normal((S, A)))
    tr = dict(Q=put("tr_Q", rng.standard_normal((7, 2))), e=put("tr_e", rng.random((4, 7, 2))),
              r=put("tr_r", rng.standard_normal(4)), s=put("tr_s", np.array([0, 3, 3, 6])),
              a=put("tr_a", np.array([1, 0, 0, 1])), s2=put("tr_s2", np.array([1, 4, 2, 0])),
              a2=put("tr_a2", np.array([0, 1, 1, 0])), term=put("tr_term", np.array([False, True, False, False])),
              trunc=put("tr_trunc", np.array([False, False, False, True])))

    done = subprocess.run([str(build / "api_check"), str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr

    def forward_and_grads(fn, grad, *inputs, **kwargs):
        tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
        out = fn(*tensors, **kwargs)
        out.backward(torch.tensor(grad))
        return out.detach().numpy(), [t.grad.numpy() for t in tensors]

    out, grads = forward_and_grads(vision.depthwise_conv2d, dw[3], *dw[:3], stride=2, padding=1)
    np.testing.assert_array_equal(get("dw_out", f32, out.shape), out)
    for name, g in zip(("dw_gx", "dw_gw", "dw_gb"), grads):
        np.testing.assert_allclose(get(name, f32, g.shape), g, rtol=1e-5, atol=1e-5)
    out, grads = forward_and_grads(vision.pointwise_conv2d, pw[3], *pw[:3], groups=2, activation="relu")
    np.testing.assert_array_equal(get("pw_out", np.float64, out.shape), out)
    for name, g in zip(("pw_gx", "pw_gw", "pw_gb"), grads):
        np.testing.assert_allclose(get(name, np.float64, g.shape), g, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(get("sh_out", f32, sh_x.shape), vision.channel_shuffle(sh_x, 3))
    x = torch.tensor(roi_x, requires_grad=True)
    out = vision.ps_roi_align(x, torch.tensor(boxes), 3, spatial_scale=0.5, sampling_ratio=2)
    out.backward(torch.tensor(roi_grad))
    np.testing.assert_array_equal(get("roi_out", f32, out.shape), out.detach().numpy())
    np.testing.assert_allclose(get("roi_gx", f32, roi_x.shape), x.grad.numpy(), rtol=1e-6, atol=1e-6)
    keep = get("nms_keep", np.int64, (-1,))
    np.testing.assert_array_equal(keep, vision.nms(nms_boxes, nms_scores, 0.5))
    np.testing.assert_array_equal(get("nms_batched", np.int64, (-1,)),
                                  vision.batched_nms(nms_boxes, nms_scores, nms_groups, 0.3, max_output=10))
    assert 0 < len(keep) < 40
    units = [vision.ShuffleUnitWeights(st["a_pw1"], st["a_pw1b"], st["a_dw2"], st["a_dw2b"], st["a_pw2"], st["a_pw2b"],
                                       2, st["a_dw"], st["a_dwb"], st["a_pw"], st["a_pwb"]),
             vision.ShuffleUnitWeights(st["b_pw1"], st["b_pw1b"], st["b_dw"], None, st["b_pw2"], st["b_pw2b"])]
    np.testing.assert_array_equal(get("st_out", f32, (1, 8, 4, 4)), vision.shufflenet_stage(st["x"], units))
    np.testing.assert_array_equal(get("cp_out", np.float64, (2, 5, 4, 4)), vision.conv2d_relu_max_pool(*cp, 2, 1))
    expected = rl.lambda_returns(ret["r"], ret["nv"], ret["term"], ret["trunc"], gamma=ret["gamma"], lam=0.8)
    np.testing.assert_array_equal(get("ret_out", np.float64, (T, B)), expected)
    sol = rl.value_iteration(model, R, 0.9, tol=1e-8, stop="span")
    np.testing.assert_array_equal(get("mdp_V", np.float64, (S,)), sol.V)
    np.testing.assert_array_equal(get("mdp_policy", np.int64, (S,)), sol.policy)
    Q, e = tr["Q"].copy(), tr["e"].copy()
    td = rl.sarsa_lambda_step_(Q, e, tr["s"], tr["a"], tr["r"], tr["s2"], tr["a2"], tr["term"], tr["trunc"],
                               alpha=0.5, gamma=0.9, lam=0.7, kind="replacing")
    np.testing.assert_array_equal(get("tr_Q_out", np.float64, Q.shape), Q)
    np.testing.assert_array_equal(get("tr_e_out", np.float64, e.shape), e)
    np.testing.assert_array_equal(get("tr_td", np.float64, (4,)), td)
