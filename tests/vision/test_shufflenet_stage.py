"""shufflenet_stage: the reference, the unfused ops (the same bits), kinds and memory formats,
thread counts, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import vision
from nimbleops.reference import vision as ref

from ..conftest import assert_close, needs_torch, to_numpy, torch


def random_unit(rng, cin, half, mid, stride, k=5, dtype="float64", bias=True):
    """A unit's weights: stride 2 reads all cin channels, stride 1 the second half."""
    def f(*shape):
        return (rng.standard_normal(shape) * 0.4).astype(dtype)

    b = (lambda n: f(n)) if bias else (lambda n: None)
    u = dict(pw1_weight=f(mid, cin if stride == 2 else cin // 2, 1, 1), pw1_bias=b(mid), dw_weight=f(mid, 1, k, k),
             dw_bias=b(mid), pw2_weight=f(half, mid), pw2_bias=b(half), stride=stride)
    if stride == 2:
        u.update(branch1_dw_weight=f(cin, 1, k, k), branch1_dw_bias=b(cin), branch1_pw_weight=f(half, cin, 1, 1),
                 branch1_pw_bias=b(half))
    return vision.ShuffleUnitWeights(**u)


def random_stage(rng, cin, dtype="float64", pattern=(2, 1, 1), k=5, bias=True):
    units, c = [], cin
    for s in pattern:
        half = c // 2 if s == 1 else int(rng.integers(1, 6))
        units.append(random_unit(rng, c, half, int(rng.integers(1, 7)), s, k, dtype, bias))
        c = 2 * half
    return units


def unfused(x, units):
    """The unit-by-unit composition of the public ops (pointwise + ReLU, depthwise, concat_shuffle_split)."""
    def dw(t, w, b, s):
        return vision.depthwise_conv2d(t, w, b, s, (w.shape[2] // 2, w.shape[3] // 2))

    for u in units:
        def branch2(t):
            t = vision.pointwise_conv2d(t, u.pw1_weight, u.pw1_bias, activation="relu")
            t = dw(t, u.dw_weight, u.dw_bias, u.stride)
            return vision.pointwise_conv2d(t, u.pw2_weight, u.pw2_bias, activation="relu")

        if u.stride == 2:
            t = dw(x, u.branch1_dw_weight, u.branch1_dw_bias, 2)
            a, b = vision.concat_shuffle_split(vision.pointwise_conv2d(t, u.branch1_pw_weight, u.branch1_pw_bias,
                                                                       activation="relu"), branch2(x))
        else:
            half = x.shape[1] // 2
            a, b = vision.concat_shuffle_split(np.ascontiguousarray(x[:, :half]), branch2(x[:, half:]))
        x = np.concatenate([a, b], 1)
    return x


@given(st.integers(0, 2**31 - 1), st.integers(0, 2), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from([(2, 1, 1), (1, 1), (2,), (1, 2, 1), (2, 2), ()]), st.sampled_from([1, 3, 5]), st.booleans(),
       st.sampled_from(["float32", "float64"]))
def test_stage_matches_reference_and_the_unfused_ops(seed, N, H, W, pattern, k, bias, dtype):
    rng = np.random.default_rng(seed)
    cin = 2 * int(rng.integers(1, 5))
    x = rng.standard_normal((N, cin, H, W)).astype(dtype)
    units = random_stage(rng, cin, dtype, pattern, k, bias)
    y = vision.shufflenet_stage(x, units)
    assert y.dtype == x.dtype and y.flags.c_contiguous
    assert_close(y, ref.shufflenet_stage(x, units), dtype, scale=10)
    np.testing.assert_array_equal(y, unfused(x, units))  # the same kernels: the same bits


def test_snet_shapes_and_the_input_untouched():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 24, 40, 40)).astype(np.float32)
    before = x.copy()
    units = [random_unit(rng, 24, 66, 66, 2, dtype="float32")] + \
        [random_unit(rng, 132, 66, 66, 1, dtype="float32") for _ in range(3)]
    y = vision.shufflenet_stage(x, units)
    assert y.shape == (2, 132, 20, 20)
    np.testing.assert_array_equal(y, unfused(x, units))
    np.testing.assert_array_equal(x, before)
    # a stride-1 first unit: its input is read, never written
    y_before = y.copy()
    np.testing.assert_array_equal(vision.shufflenet_stage(y, units[1:]), unfused(y, units[1:]))
    np.testing.assert_array_equal(y, y_before)


def test_no_units_is_a_copy():
    x = np.arange(24.0).reshape(1, 4, 2, 3)
    y = vision.shufflenet_stage(x, [])
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(x, y)


def test_same_bits_at_any_thread_count():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 16, 21, 19)).astype(np.float32)
    units = random_stage(rng, 16, "float32", (2, 1, 1, 1))
    threads = nimbleops.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            nimbleops.set_num_threads(n)
            results.append(vision.shufflenet_stage(x, units))
    finally:
        nimbleops.set_num_threads(threads)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@needs_torch
@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_tensors_in_either_memory_format(channels_last):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 10, 12))
    units = random_stage(rng, 8, "float64", (2, 1))
    expected = vision.shufflenet_stage(x, units)
    t = torch.from_numpy(x)
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    tunits = [vision.ShuffleUnitWeights(*(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in u))
              for u in units]
    y = vision.shufflenet_stage(t, tunits)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    np.testing.assert_array_equal(to_numpy(y), expected)
    # parameters that do not require grad, and mappings of the fields, are taken as they are
    params = [{k: (torch.nn.Parameter(v, requires_grad=False) if isinstance(v, torch.Tensor) else v)
               for k, v in u._asdict().items()} for u in tunits]
    np.testing.assert_array_equal(to_numpy(vision.shufflenet_stage(t, params)), expected)


@needs_torch
@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:FutureWarning")
def test_refuses_gradients_and_capture():
    rng = np.random.default_rng(4)
    units = random_stage(rng, 4, "float64", (1,))
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    tunits = [vision.ShuffleUnitWeights(*(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in u))
              for u in units]
    with pytest.raises(ValueError, match="x: this op is not differentiable"):
        vision.shufflenet_stage(x, tunits)
    with torch.no_grad():
        vision.shufflenet_stage(x, tunits)  # no graph recorded: allowed
    w = tunits[0].pw1_weight.clone().requires_grad_()
    with pytest.raises(ValueError, match=r"units\[0\].pw1_weight: this op is not differentiable"):
        vision.shufflenet_stage(x.detach(), [tunits[0]._replace(pw1_weight=w)])
    with pytest.raises(TypeError, match="cannot capture"):
        torch.jit.trace(lambda t: vision.shufflenet_stage(t, tunits), (x.detach(),))


def test_bad_input():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, 6, 6))
    good = random_stage(rng, 8, "float64", (2, 1))
    u0, u1 = good

    def fails(exc, match, units, xx=x):
        with pytest.raises(exc, match=match):
            vision.shufflenet_stage(xx, units)

    fails(ValueError, r"x: expected \[N, C, H, W\]", good, x[0])
    fails(TypeError, "x: expected float32 or float64", good, x.astype(np.int64))
    fails(TypeError, "units: expected a sequence", u0)
    fails(TypeError, r"units\[1\]: expected a ShuffleUnitWeights", [u0, 3])
    fails(TypeError, r"units\[0\]: unknown fields \['pw3_weight'\]", [dict(u0._asdict(), pw3_weight=None)])
    fails(TypeError, r"units\[0\].dw_weight: expected an array, got None", [u0._replace(dw_weight=None)])
    fails(ValueError, r"units\[0\].pw1_weight: expected \[Cout, 8\]", [u0._replace(pw1_weight=u1.pw1_weight)])
    fails(ValueError, r"units\[0\].dw_weight: expected \[\d+, 1, KH, KW\] with odd KH and KW",
          [u0._replace(dw_weight=np.zeros(u0.dw_weight.shape[:2] + (4, 4)))])
    fails(ValueError, r"units\[0\].pw2_bias: expected \d+ elements", [u0._replace(pw2_bias=np.zeros(99))])
    fails(ValueError, r"units\[1\].stride: expected 1 or 2, got 3", [u0, u1._replace(stride=3)])
    fails(ValueError, r"units\[0\].branch1_dw_weight, branch1_pw_weight: expected both at stride 2",
          [u0._replace(branch1_pw_weight=None)])
    fails(ValueError, r"units\[1\].branch1_dw_weight, branch1_pw_weight: expected both at stride 2 and neither",
          [u0, u1._replace(branch1_dw_weight=u0.branch1_dw_weight)])
    fails(ValueError, r"units\[0\].stride: a stride-1 unit splits its input in two halves; got 7 channels",
          [u1], rng.standard_normal((1, 7, 6, 6)))
    fails(ValueError, r"units\[0\].branch1_pw_weight: expected as many output channels as pw2_weight",
          [u0._replace(branch1_pw_weight=np.zeros((u0.pw2_weight.shape[0] + 1, 8)),
                       branch1_pw_bias=None)])
    s1 = random_unit(rng, 8, 4, 3, 1)
    fails(ValueError, r"units\[0\].pw2_weight: expected 4 output channels", [s1._replace(pw2_weight=np.zeros((3, 3)),
                                                                                       pw2_bias=None)])
    fails(TypeError, r"units\[0\].dw_bias: expected dtype float64 like x, got float32",
          [u0._replace(dw_bias=u0.dw_bias.astype(np.float32))])
    fails(ValueError, r"units\[0\].stride: expected an integer >= 1", [u0._replace(stride=0)])


@needs_torch
def test_bad_torch_input():
    rng = np.random.default_rng(6)
    units = random_stage(rng, 8, "float64", (1,))
    with pytest.raises(TypeError, match=r"units\[0\].pw1_weight: a torch tensor given with a numpy x"):
        vision.shufflenet_stage(rng.standard_normal((1, 8, 4, 4)),
                                [units[0]._replace(pw1_weight=torch.from_numpy(units[0].pw1_weight))])
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="x: expected a CPU tensor"):
            vision.shufflenet_stage(torch.zeros(1, 8, 4, 4, device="cuda"), units)


@needs_torch
def test_a_stage_rereads_its_tensors_when_they_move_or_change():
    import copy
    import pickle

    rng = np.random.default_rng(7)
    units = random_stage(rng, 8, "float32", (2, 1))
    mods = [{k: (torch.nn.Parameter(torch.from_numpy(v), requires_grad=False) if isinstance(v, np.ndarray) else v)
             for k, v in u._asdict().items()} for u in units]
    stage = vision.ShuffleStage(mods)
    x = torch.randn(1, 8, 9, 9)
    first = stage(x)
    np.testing.assert_array_equal(first.numpy(), vision.shufflenet_stage(x.numpy(), units))
    with torch.no_grad():  # in place: the next call reads the new values
        mods[0]["pw1_weight"].mul_(2)
    np.testing.assert_array_equal(stage(x).numpy(), vision.shufflenet_stage(x, mods))
    assert not torch.equal(stage(x), first)
    for p in (v for m in mods for v in m.values() if isinstance(v, torch.Tensor)):  # moved, as Module.to does
        p.data = p.data.double()
    y = stage(x.double())
    assert y.dtype == torch.float64
    np.testing.assert_array_equal(y.numpy(), vision.shufflenet_stage(x.double(), mods).numpy())
    with pytest.raises(TypeError, match=r"units\[0\].pw1_weight: expected dtype float32 like x, got float64"):
        stage(x)
    mods[1]["dw_bias"].requires_grad_()
    with pytest.raises(ValueError, match=r"units\[1\].dw_bias: this op is not differentiable"):
        stage(x.double())
    with torch.no_grad():
        y = stage(x.double())
    for other in (copy.deepcopy(stage), pickle.loads(pickle.dumps(stage))):
        with torch.no_grad():
            np.testing.assert_array_equal(other(x.double()).numpy(), y.numpy())
