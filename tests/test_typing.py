"""Typing: the compiled module's stubs match it, and a user's code calling the public API
type-checks with ``mypy --strict`` (the package ships py.typed) while a wrong call does not."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nimbleops
from nimbleops import _C

STUBS = Path(nimbleops.__file__).parent / "_C"


def _stub_names(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("module, stub", [(_C, "__init__.pyi"), (_C.rl, "rl.pyi"), (_C.vision, "vision.pyi")],
                         ids=["_C", "_C.rl", "_C.vision"])
def test_stubs_match_the_compiled_module(module, stub):
    stubbed = _stub_names(STUBS / stub)
    built = {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))}
    assert built <= stubbed, f"not in the stubs (regenerate them): {sorted(built - stubbed)}"
    missing = stubbed - built
    if nimbleops.build_info()["cuda"]:
        assert not missing, f"stubbed but not built: {sorted(missing)}"
    else:  # a CPU-only build lacks the CUDA entry points, and only those
        assert all(n.endswith("_cuda") for n in missing), sorted(missing)


USER_CODE = '''
import numpy as np
import nimbleops
from nimbleops import rl, vision

nimbleops.set_num_threads(1)
r = np.zeros((4, 3), np.float32)
done = np.zeros((4, 3), bool)
advantages, targets = rl.gae(r, r, r, done, done, gamma=0.99, lam=0.95)
P, R = np.full((2, 2, 2), 0.5), np.zeros((2, 2))
solution = rl.value_iteration(P, R, 0.9, tol=1e-8)
V: np.ndarray = solution.V
Q = np.zeros((2, 2))
delta = rl.q_learning_update_(Q, np.array([0]), np.array([1]), np.array([1.0]), np.array([1]), np.array([False]),
                              alpha=0.1, gamma=0.9)
y = vision.depthwise_conv2d(np.zeros((1, 4, 6, 6)), np.zeros((4, 1, 3, 3)), None, 1, 1)
z = vision.ps_roi_align(np.zeros((1, 8, 6, 6)), np.array([[0, 0, 0, 4, 4.0]]), 2, mode="max")
'''

WRONG_CALLS = '''
import numpy as np
from nimbleops import rl
r = np.zeros((4, 3))
advantages = rl.gae(r, r, r, r, r, gamma=0.99, lamb=0.95)
'''


def _mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(code)
    env = dict(os.environ)
    source = Path(nimbleops.__file__).parent.parent
    if "site-packages" not in str(source):  # a development checkout: mypy reads the source tree
        env["MYPYPATH"] = str(source)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
                           "user.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_user_code_type_checks_strictly(tmp_path):
    result = _mypy(tmp_path, USER_CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_keyword_is_a_type_error(tmp_path):
    result = _mypy(tmp_path, WRONG_CALLS)
    assert result.returncode == 1 and 'Unexpected keyword argument "lamb" for "gae"' in result.stdout, result.stdout
