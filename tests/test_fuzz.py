"""Fuzzing every public op against nimbleops.reference.

Each test draws shapes (size-1 and empty dimensions included), dtypes, numpy or torch, a memory
layout per array (contiguous, transposed, every-other-element, negative strides for numpy,
zero-stride broadcast views) and argument values across their valid ranges, then compares with
the reference computed on the same values (integer and index outputs exactly, floats within the
stated tolerance). ``test_invalid_*`` draw one invalid argument and check a clear exception with
nothing written to the in-place outputs.

Profiles: the CI runs 25 examples a test, derandomized; ``NIMBLEOPS_FUZZ=long`` runs 40,000 a test
with fresh randomness each run (about an hour on 2 cores; ``NIMBLEOPS_FUZZ_EXAMPLES=N`` sets the
count; ``--hypothesis-show-statistics`` reports what ran).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nimbleops.reference import rl as rref
from nimbleops.reference import vision as vref
from nimbleops import rl, vision

from .conftest import TOL, random_mdp, to_numpy

torch = pytest.importorskip("torch")  # every test draws torch tensors among its inputs

LONG = os.environ.get("NIMBLEOPS_FUZZ") == "long"
EXAMPLES = int(os.environ.get("NIMBLEOPS_FUZZ_EXAMPLES", 40_000 if LONG else 25))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ERRORS = (ValueError, TypeError, IndexError)

LAYOUTS = ("contiguous", "transposed", "strided", "reversed", "broadcast")


def present(draw, arr, container, layout=None):
    """arr's values in the drawn container and memory layout. 'broadcast' repeats arr's first
    slice along axis 0 (a zero-stride view: the values change, the reference sees the new ones);
    'reversed' (negative strides) is numpy-only, torch gets a contiguous tensor."""
    arr = np.asarray(arr)
    layout = layout or draw(st.sampled_from(LAYOUTS))
    if arr.ndim == 0 or arr.size == 0:
        layout = "contiguous"
    if layout == "broadcast" and arr.shape[0] > 0:
        a = np.broadcast_to(arr[:1], arr.shape)
    elif layout == "transposed" and arr.ndim >= 2:
        a = np.asfortranarray(arr)
    elif layout == "strided":
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
        big[..., ::2] = arr
        a = big[..., ::2]
    elif layout == "reversed" and container == "numpy":
        a = np.flip(np.flip(arr, -1).copy(), -1)
    else:
        a = np.ascontiguousarray(arr)
    if container == "numpy":
        return a
    if layout == "broadcast":
        return torch.from_numpy(np.ascontiguousarray(arr[:1])).expand(arr.shape)
    if layout == "transposed" and arr.ndim >= 2:
        return torch.from_numpy(np.ascontiguousarray(np.swapaxes(arr, -1, -2))).transpose(-1, -2)
    if layout == "strided":
        big = torch.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), dtype=getattr(torch, arr.dtype.name))
        big[..., ::2] = torch.from_numpy(np.ascontiguousarray(arr))
        return big[..., ::2]
    return torch.from_numpy(np.ascontiguousarray(arr))


def owned(arr, container):
    """A fresh copy of arr in the container: an array an op may update in place."""
    return torch.from_numpy(arr.copy()) if container == "torch" else arr.copy()


def values(x):
    return None if x is None else np.array(to_numpy(x))


def close(got, want, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(values(got), want, rtol=tol["rtol"] * scale, atol=tol["atol"] * scale)


common = st.fixed_dictionaries({"seed": st.integers(0, 2**31 - 1), "dtype": st.sampled_from(["float32", "float64"]),
                                "container": st.sampled_from(["numpy", "torch"])})


# ---------------------------------------------------------------- returns

RETURNS = ["discounted_returns", "n_step_returns", "lambda_returns", "gae", "vtrace"]


@pytest.mark.parametrize("op", RETURNS)
@FUZZ
@given(c=common, data=st.data())
def test_returns(op, c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    T = draw(st.integers(1, 7))
    batch = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    shape = (T,) + batch
    time_dim = draw(st.integers(0, len(shape) - 1))
    perm = list(range(1, len(shape)))
    perm.insert(time_dim, 0)
    laid = lambda x: np.transpose(x, perm) if x is not None else None  # noqa: E731 - time axis at time_dim
    d = c["dtype"]
    r, v, nv = (rng.standard_normal(shape).astype(d) for _ in range(3))
    term, trunc = rng.random(shape) < 0.25, rng.random(shape) < 0.15
    lr = (rng.standard_normal(shape) * 0.5).astype(d)
    gamma = draw(st.one_of(st.floats(0, 1), st.just("array")))
    if gamma == "array":
        gamma = rng.random(shape).astype(d)
    kw = dict(lam=draw(st.floats(0, 1))) if op in ("lambda_returns", "gae", "vtrace") else {}
    if op == "n_step_returns":
        kw["n"] = draw(st.integers(1, T + 2))
    if op == "vtrace":
        kw.update(rho_clip=draw(st.floats(0.1, 3)), c_clip=draw(st.floats(0.1, 3)))
    pres = lambda x: None if x is None else present(draw, laid(x), c["container"])  # noqa: E731
    masks = [pres(m) if draw(st.booleans()) else None for m in (term, trunc)]
    g = gamma if np.isscalar(gamma) else pres(gamma)
    args = {"discounted_returns": (r, nv), "n_step_returns": (r, nv), "lambda_returns": (r, nv), "gae": (r, v, nv),
            "vtrace": (r, v, nv, lr)}[op]
    given_args = [pres(a) for a in args]
    got = getattr(rl, op)(*given_args, *masks, gamma=g, time_dim=time_dim, **kw)
    want = getattr(rref, op)(*[values(a).astype(np.float64) for a in given_args], *[values(m) for m in masks],
                            gamma=g if np.isscalar(g) else values(g).astype(np.float64), time_dim=time_dim, **kw)
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert tuple(values(a).shape) == tuple(np.shape(b))
        close(a, b, d, scale=10 * T)


# ---------------------------------------------------------------- Bellman operators and solvers

BELLMAN = ["q_values", "bellman_optimality_backup", "bellman_expectation_backup", "greedy_policy", "value_iteration",
           "policy_evaluation", "policy_iteration", "modified_policy_iteration", "finite_horizon"]


@pytest.mark.parametrize("op", BELLMAN)
@FUZZ
@given(c=common, data=st.data())
def test_bellman(op, c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    S, A = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
    d = c["dtype"]
    P, R = random_mdp(rng, S, A, batch, density=draw(st.sampled_from([1.0, 0.5])), dtype=d)
    V = rng.standard_normal(batch + (S,)).astype(d)
    pol = rng.integers(0, A, batch + (S,))
    gamma = draw(st.floats(0, 0.95))
    Pg, Rg = present(draw, P, c["container"]), present(draw, R, c["container"])
    Vg, polg = present(draw, V, c["container"]), present(draw, pol, c["container"])
    Pv, Rv, Vv, polv = values(Pg).astype(np.float64), values(Rg).astype(np.float64), values(Vg), values(polg)
    if op in ("q_values", "bellman_optimality_backup", "greedy_policy"):
        got = getattr(rl, op)(Pg, Rg, Vg, gamma)
        want = getattr(rref, op)(Pv, Rv, Vv.astype(np.float64), gamma)
    elif op == "bellman_expectation_backup":
        got, want = rl.bellman_expectation_backup(Pg, Rg, Vg, gamma, polg), \
            rref.bellman_expectation_backup(Pv, Rv, Vv.astype(np.float64), gamma, polv)
    elif op == "policy_evaluation":
        got, want = rl.policy_evaluation(Pg, Rg, gamma, polg, tol=1e-9).V, \
            rref.policy_evaluation(Pv, Rv, gamma, polv, tol=1e-9).V
    elif op == "finite_horizon":
        h = draw(st.integers(0, 4))
        got, want = rl.finite_horizon(Pg, Rg, gamma, h).V, rref.finite_horizon(Pv, Rv, gamma, h).V
    else:
        kw = dict(tol=1e-9) if op != "policy_iteration" else {}
        got, want = getattr(rl, op)(Pg, Rg, gamma, **kw).V, getattr(rref, op)(Pv, Rv, gamma, **kw).V
    if op == "greedy_policy":  # ties may break differently in the last bit: compare the values chosen
        q = rref.q_values(Pv, Rv, Vv.astype(np.float64), gamma)
        chosen = np.take_along_axis(q, values(got)[..., None].astype(np.int64), -1)[..., 0]
        close(chosen, q.max(-1), d, scale=10)
        return
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        if np.issubdtype(np.asarray(b).dtype, np.integer):
            continue  # the argmax of a backup: tie-sensitive, checked through greedy_policy
        close(a, b, d, scale=1e3 if op in ("value_iteration", "policy_iteration", "modified_policy_iteration",
                                           "policy_evaluation") else 10)


# ---------------------------------------------------------------- TD updates and traces

TD = ["td0_update_", "sarsa_update_", "q_learning_update_", "expected_sarsa_update_", "double_q_learning_update_"]
# Rules that pick actions by argmax: a float32 table can hold two equal values that float64 keeps
# apart (or the reverse), and then the kernel and the float64 reference legitimately take
# different actions. These are compared in float64 (their float32 kernels share the code).
TIE_SENSITIVE = ("expected_sarsa_update_", "double_q_learning_update_", "watkins_q_lambda_step_")


def _transitions(rng, N, S, A, d):
    return dict(s=rng.integers(0, S, N), a=rng.integers(0, A, N), r=rng.standard_normal(N).astype(d),
                s_next=rng.integers(0, S, N), a_next=rng.integers(0, A, N), terminated=rng.random(N) < 0.3)


@pytest.mark.parametrize("op", TD)
@FUZZ
@given(c=common, data=st.data())
def test_td(op, c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    N, S, A, d = draw(st.integers(0, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 4)), c["dtype"]
    d = "float64" if op in TIE_SENSITIVE else d
    t = _transitions(rng, N, S, A, d)
    shape = (S,) if op == "td0_update_" else (S, A)
    Q = rng.standard_normal(shape).astype(d)
    mode = draw(st.sampled_from(["sequential", "accumulate"]))
    rate = lambda hi: draw(st.one_of(st.floats(0, hi), st.just("array")))  # noqa: E731
    alpha, gamma = rate(1.0), rate(1.0)
    alpha = rng.random(N).astype(d) if isinstance(alpha, str) else alpha
    gamma = rng.random(N).astype(d) if isinstance(gamma, str) else gamma
    cont = c["container"]
    table = owned(Q, cont)
    Q2 = rng.standard_normal(shape).astype(d)
    table2 = owned(Q2, cont)
    keys = {"td0_update_": ["s", "r", "s_next", "terminated"], "sarsa_update_": ["s", "a", "r", "s_next", "a_next", "terminated"]}
    keys = keys.get(op, ["s", "a", "r", "s_next", "terminated"])
    args = {k: present(draw, t[k], cont) for k in keys}
    kw = dict(alpha=alpha if np.isscalar(alpha) else present(draw, alpha, cont),
              gamma=gamma if np.isscalar(gamma) else present(draw, gamma, cont), mode=mode)
    if op == "expected_sarsa_update_":
        if draw(st.booleans()):
            p = rng.random((N, A)) + 0.01
            kw["probs"] = present(draw, (p / p.sum(-1, keepdims=True)).astype(d), cont)
        else:
            kw["epsilon"] = draw(st.floats(0, 1))
    if op == "double_q_learning_update_":
        kw["update_first"] = present(draw, rng.random(N) < 0.5, cont)
    ref_kw = {k: (values(v) if not np.isscalar(v) and not isinstance(v, str) else v) for k, v in kw.items()}
    ref_args = {k: values(v) for k, v in args.items()}
    tables = (table, table2) if op == "double_q_learning_update_" else (table,)
    ref_tables = [values(x).astype(np.float64) for x in tables]
    got = getattr(rl, op)(*tables, *args.values(), **kw)
    want = getattr(rref, op)(*ref_tables, *ref_args.values(), **ref_kw)
    close(got, want, d, scale=10)
    for x, y in zip(tables, ref_tables):
        close(x, y, d, scale=10)


TRACES = ["td_lambda_step_", "sarsa_lambda_step_", "watkins_q_lambda_step_"]


@pytest.mark.parametrize("op", TRACES)
@FUZZ
@given(c=common, data=st.data())
def test_tabular_traces(op, c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    B, S, A, d = draw(st.integers(0, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 3)), c["dtype"]
    d = "float64" if op in TIE_SENSITIVE else d
    t = _transitions(rng, B, S, A, d)
    t["truncated"] = rng.random(B) < 0.2
    shape = (S,) if op == "td_lambda_step_" else (S, A)
    cont = c["container"]
    Q, e = rng.standard_normal(shape).astype(d), (rng.random((B,) + shape) * 0.5).astype(d)
    keys = ["s", "r", "s_next", "terminated", "truncated"] if op == "td_lambda_step_" else \
        ["s", "a", "r", "s_next", "a_next", "terminated", "truncated"]
    args = [present(draw, t[k], cont) for k in keys]
    kw = dict(alpha=draw(st.floats(0, 1)), gamma=draw(st.floats(0, 1)), lam=draw(st.floats(0, 1)),
              kind=draw(st.sampled_from(["accumulating", "replacing", "dutch"])))
    Qg, eg = owned(Q, cont), owned(e, cont)
    Qr, er = Q.astype(np.float64), e.astype(np.float64)
    got = getattr(rl, op)(Qg, eg, *args, **kw)
    want = getattr(rref, op)(Qr, er, *[values(a) for a in args], **kw)
    close(got, want, d, scale=10)
    close(Qg, Qr, d, scale=10)
    close(eg, er, d, scale=10)


LINEAR = ["linear_td0_update_", "linear_td_lambda_step_", "true_online_td_lambda_step_"]


@pytest.mark.parametrize("op", LINEAR)
@FUZZ
@given(c=common, data=st.data())
def test_linear_traces(op, c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    B, k, d, cont = draw(st.integers(0, 4)), draw(st.integers(1, 6)), c["dtype"], c["container"]
    w, z, v_old = (rng.standard_normal(k) * 0.3).astype(d), (rng.random((B, k)) * 0.3).astype(d), \
        (rng.standard_normal(B) * 0.3).astype(d)
    phi, phi_next = (rng.random((B, k)) * 0.5).astype(d), (rng.random((B, k)) * 0.5).astype(d)
    r, term, trunc = rng.standard_normal(B).astype(d), rng.random(B) < 0.3, rng.random(B) < 0.2
    kw = dict(alpha=draw(st.floats(0, 0.5)), gamma=draw(st.floats(0, 1)))
    io = [present(draw, x, cont) for x in (phi, r, phi_next, term)]
    io_ref = [values(x) for x in io]
    if op == "linear_td0_update_":
        written, written_ref = [owned(w, cont)], [w.astype(np.float64)]
        got = rl.linear_td0_update_(*written, *io, **kw)
        want = rref.linear_td0_update_(*written_ref, *io_ref, **kw)
    else:
        kw["lam"] = draw(st.floats(0, 1))
        tr = present(draw, trunc, cont)
        written = [owned(x, cont) for x in ([w, z] + ([v_old] if op == "true_online_td_lambda_step_" else []))]
        written_ref = [x.astype(np.float64) for x in ([w, z] + ([v_old] if len(written) == 3 else []))]
        got = getattr(rl, op)(*written, *io, tr, **kw)
        want = getattr(rref, op)(*written_ref, *io_ref, values(tr), **kw)
    close(got, want, d, scale=100)
    for x, y in zip(written, written_ref):
        close(x, y, d, scale=100)


# ---------------------------------------------------------------- vision

@FUZZ
@given(c=common, data=st.data())
def test_depthwise(c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    N, C, m = draw(st.integers(0, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    H = draw(st.integers(max(1, dil[0] * (KH - 1) + 1 - 2 * pad[0]), 10))
    W = draw(st.integers(max(1, dil[1] * (KW - 1) + 1 - 2 * pad[1]), 10))
    d, cont = c["dtype"], c["container"]
    x = rng.standard_normal((N, C, H, W)).astype(d)
    w = rng.standard_normal((C * m, 1, KH, KW)).astype(d)
    b = rng.standard_normal(C * m).astype(d) if draw(st.booleans()) else None
    xg = present(draw, x, cont)
    wg = present(draw, w, cont, "contiguous")
    bg = None if b is None else present(draw, b, cont, "contiguous")
    got = vision.depthwise_conv2d(xg, wg, bg, stride, pad, dil)
    want = vref.depthwise_conv2d(values(xg).astype(np.float64), w.astype(np.float64),
                                None if b is None else b.astype(np.float64), stride, pad, dil)
    assert values(got).shape == want.shape
    close(got, want, d, scale=KH * KW)


@FUZZ
@given(c=common, data=st.data())
def test_pointwise(c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    g = draw(st.integers(1, 3))
    Cin, Cout = g * draw(st.integers(1, 4)), g * draw(st.integers(1, 4))
    N, H, W = draw(st.integers(0, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    relu = draw(st.booleans())
    shuffle = draw(st.sampled_from([None] + [s for s in (2, 3) if Cout % s == 0]))
    d, cont = c["dtype"], c["container"]
    x = rng.standard_normal((N, Cin, H, W)).astype(d)
    w = rng.standard_normal((Cout, Cin // g, 1, 1)).astype(d)
    b = rng.standard_normal(Cout).astype(d) if draw(st.booleans()) else None
    xg = present(draw, x, cont)
    got = vision.pointwise_conv2d(xg, present(draw, w, cont, "contiguous"),
                                  None if b is None else present(draw, b, cont, "contiguous"), g,
                                  activation="relu" if relu else None, shuffle_groups=shuffle)
    xv = values(xg).astype(np.float64)
    cin_g, cout_g = Cin // g, Cout // g
    want = np.concatenate([np.einsum("ok,nkhw->nohw", w[j * cout_g:(j + 1) * cout_g, :, 0, 0].astype(np.float64),
                                     xv[:, j * cin_g:(j + 1) * cin_g]) for j in range(g)], 1)
    if b is not None:
        want = want + b[None, :, None, None]
    want = np.maximum(want, 0) if relu else want
    want = vref.channel_shuffle(want, shuffle) if shuffle else want
    close(got, want, d, scale=Cin)


@FUZZ
@given(c=common, data=st.data())
def test_channel_shuffle_and_concat_split(c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    g = draw(st.integers(1, 4))
    N, C, H, W = draw(st.integers(0, 2)), g * draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    d, cont = c["dtype"], c["container"]
    xg = present(draw, rng.standard_normal((N, C, H, W)).astype(d), cont)
    np.testing.assert_array_equal(values(vision.channel_shuffle(xg, g)), vref.channel_shuffle(values(xg), g))
    Ca = draw(st.integers(1, 4))
    Cb = Ca + draw(st.sampled_from([0, 2, 4])) if draw(st.booleans()) else Ca
    a = present(draw, rng.standard_normal((N, Ca, H, W)).astype(d), cont)
    b = present(draw, rng.standard_normal((N, Cb, H, W)).astype(d), cont)
    if (Ca + Cb) % 2:
        return
    got = vision.concat_shuffle_split(a, b)
    for x, y in zip(got, vref.concat_shuffle_split(values(a), values(b))):
        np.testing.assert_array_equal(values(x), y)


@pytest.mark.parametrize("op", ["ps_roi_align", "ps_roi_pool"])
@FUZZ
@given(c=common, data=st.data())
def test_ps_roi(op, c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    ph, pw, Cout = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    N, H, W, K = draw(st.integers(1, 2)), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(0, 4))
    d, cont = c["dtype"], c["container"]
    scale = draw(st.sampled_from([1.0, 0.5, 0.25]))
    x = present(draw, rng.standard_normal((N, Cout * ph * pw, H, W)).astype(d), cont)
    corners = rng.uniform(-2, max(H, W) / scale + 2, (K, 4))
    boxes = np.concatenate([rng.integers(0, N, (K, 1)), np.minimum(corners[:, :2], corners[:, 2:]),
                            np.maximum(corners[:, :2], corners[:, 2:])], 1)
    bg = present(draw, boxes.astype(d), cont, "contiguous")
    if op == "ps_roi_align":
        kw = dict(sampling_ratio=draw(st.integers(-1, 3)), aligned=draw(st.booleans()),
                  mode=draw(st.sampled_from(["avg", "max"])))
        if kw["sampling_ratio"] == 0:
            kw["sampling_ratio"] = -1
        got = vision.ps_roi_align(x, bg, (ph, pw), scale, **kw)
        want = vref.ps_roi_align(values(x).astype(np.float64), boxes, (ph, pw), scale, **kw)
    else:
        got = vision.ps_roi_pool(x, bg, (ph, pw), scale)
        want = vref.ps_roi_pool(values(x).astype(np.float64), boxes, (ph, pw), scale)
    close(got, want, d, scale=10)


@FUZZ
@given(c=common, data=st.data())
def test_batch_norm_relu(c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    N, C, H, W = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if N * H * W < 2:
        N = 2
    d, cont = c["dtype"], c["container"]
    x = present(draw, (rng.standard_normal((N, C, H, W)) * 2 + 1).astype(d), cont)
    w, b = rng.random(C).astype(d) + 0.5, rng.standard_normal(C).astype(d)
    relu = draw(st.booleans())
    rm, rv = owned(np.zeros(C, d), cont), owned(np.ones(C, d), cont)
    rm_ref, rv_ref = np.zeros(C), np.ones(C)
    got = vision.batch_norm_relu(x, owned(w, cont), owned(b, cont), rm, rv, relu=relu)
    want = vref.batch_norm_relu(values(x).astype(np.float64), w, b, rm_ref, rv_ref, relu=relu)
    if np.ptp(values(x).reshape(N, C, -1).transpose(1, 0, 2).reshape(C, -1), axis=1).min() == 0:
        return  # a constant channel: normalised noise of the rounding, compared by the unit tests
    close(got, want, d, scale=100)
    close(rm, rm_ref, d, scale=10)
    close(rv, rv_ref, d, scale=10)


# ---------------------------------------------------------------- invalid arguments


def _bad_td_call(draw, rng, cont):
    """(call, tables, name of the bad argument): q_learning_update_ with one invalid argument."""
    S, A, N = 4, 3, 5
    t = _transitions(rng, N, S, A, "float64")
    Q = rng.standard_normal((S, A))
    table = owned(Q, cont)
    args = dict(s=t["s"], a=t["a"], r=t["r"], s_next=t["s_next"], terminated=t["terminated"], alpha=0.5, gamma=0.9)
    bad = draw(st.sampled_from(["s", "a", "s_next", "r", "terminated", "alpha", "gamma", "mode"]))
    mode = "sequential"
    if bad in ("s", "s_next"):
        args[bad] = args[bad].copy()
        args[bad][draw(st.integers(0, N - 1))] = draw(st.sampled_from([-1, S, 2**40]))
    elif bad == "a":
        args["a"] = args["a"].copy()
        args["a"][draw(st.integers(0, N - 1))] = draw(st.sampled_from([-1, A]))
    elif bad == "r":
        args["r"] = draw(st.sampled_from([np.full(N, np.nan), np.ones(N + 1), np.array(["x"] * N), np.ones((N, 1))]))
    elif bad == "terminated":
        args["terminated"] = draw(st.sampled_from([np.ones(N), np.zeros(N - 1, bool)]))
    elif bad in ("alpha", "gamma"):
        args[bad] = draw(st.sampled_from([-0.1, float("nan"), "0.5", 1j, np.ones(N + 1), None]
                                         + ([1.5] if bad == "gamma" else [])))
    else:
        mode = draw(st.sampled_from(["serial", "", None]))
    return (lambda: rl.q_learning_update_(table, **args, mode=mode)), table, Q


@FUZZ
@given(c=common, data=st.data())
def test_invalid_td_arguments_raise_and_write_nothing(c, data):
    rng = np.random.default_rng(c["seed"])
    call, table, before = _bad_td_call(data.draw, rng, c["container"])
    with pytest.raises(ERRORS):
        call()
    np.testing.assert_array_equal(values(table), before)


@FUZZ
@given(c=common, data=st.data())
def test_invalid_trace_arguments_raise_and_write_nothing(c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    S, B = 4, 3
    V, e = rng.standard_normal(S), rng.random((B, S))
    cont = c["container"]
    Vg, eg = owned(V, cont), owned(e, cont)
    args = dict(s=rng.integers(0, S, B), r=rng.standard_normal(B), s_next=rng.integers(0, S, B),
                terminated=np.zeros(B, bool), truncated=np.zeros(B, bool))
    kw = dict(alpha=0.5, gamma=0.9, lam=0.8, kind="accumulating")
    bad = draw(st.sampled_from(["s", "r", "e", "lam", "kind", "truncated"]))
    if bad == "s":
        args["s"] = np.array([0, S, 1])
    elif bad == "r":
        args["r"] = np.array([0.0, np.inf, 1.0])
    elif bad == "e":
        eg = owned(rng.random((B + 1, S)), cont)
        e = values(eg)
    elif bad == "lam":
        kw["lam"] = draw(st.sampled_from([1.5, -1.0, "x"]))
    elif bad == "kind":
        kw["kind"] = "dutchy"
    else:
        args["truncated"] = np.zeros(B)
    with pytest.raises(ERRORS):
        rl.td_lambda_step_(Vg, eg, *args.values(), **kw)
    np.testing.assert_array_equal(values(Vg), V)
    np.testing.assert_array_equal(values(eg), e)


@FUZZ
@given(c=common, data=st.data())
def test_invalid_vision_arguments_raise(c, data):
    draw = data.draw
    cont = c["container"]
    x = present(draw, np.random.default_rng(c["seed"]).standard_normal((1, 4, 5, 5)).astype(c["dtype"]), cont)
    w = present(draw, np.ones((4, 1, 3, 3), c["dtype"]), cont, "contiguous")
    calls = [
        lambda: vision.depthwise_conv2d(x, w, stride=draw(st.sampled_from([0, -1, (1,), "2", 2**70]))),
        lambda: vision.depthwise_conv2d(x, w, padding=draw(st.sampled_from([-1, 2**63, (1, 2, 3), 1.5]))),
        lambda: vision.depthwise_conv2d(x, present(draw, np.ones((3, 1, 3, 3), c["dtype"]), cont)),
        lambda: vision.depthwise_conv2d(x, w, dilation=draw(st.sampled_from([0, 2**62]))),
        lambda: vision.pointwise_conv2d(x, present(draw, np.ones((4, 3, 1, 1), c["dtype"]), cont)),
        lambda: vision.pointwise_conv2d(x, present(draw, np.ones((4, 4, 1, 1), c["dtype"]), cont),
                                        groups=draw(st.sampled_from([0, 3, 5]))),
        lambda: vision.channel_shuffle(x, draw(st.sampled_from([0, 3, -2, 2.0]))),
        lambda: vision.ps_roi_align(x, np.array([[0, 0, 0, 4, 4]], float), draw(st.sampled_from([3, 0, 5000]))),
        lambda: vision.ps_roi_pool(x, np.array([[draw(st.sampled_from([1, -1, 0.5])), 0, 0, 4, 4]], float), 2),
        lambda: vision.ps_roi_align(x, np.array([[0, 0, 0, 4, 4]], float), 2,
                                    spatial_scale=draw(st.sampled_from([0.0, -1.0, float("inf"), "1"]))),
        lambda: vision.batch_norm_relu(x, np.ones(3), np.zeros(4)),
    ]
    with pytest.raises(ERRORS):
        draw(st.sampled_from(calls))()


@FUZZ
@given(c=common, data=st.data())
def test_invalid_bellman_and_returns_arguments_raise(c, data):
    draw = data.draw
    rng = np.random.default_rng(c["seed"])
    cont = c["container"]
    P, R = random_mdp(rng, 4, 2, dtype=c["dtype"])
    T = np.ones((5, 3))
    calls = [
        lambda: rl.value_iteration(present(draw, P * draw(st.sampled_from([-1.0, 2.0, np.nan])), cont), R, 0.9),
        lambda: rl.value_iteration(P, R, draw(st.sampled_from([1.0, -0.1, np.nan, "0.9"]))),
        lambda: rl.q_values(P, R, np.zeros(draw(st.sampled_from([3, 5]))), 0.9),
        lambda: rl.bellman_expectation_backup(P, R, np.zeros(4), 0.9, np.array([0, 1, 2, 0])),
        lambda: rl.finite_horizon(P, R, 0.9, draw(st.sampled_from([-1, 2**63, 1.5]))),
        lambda: rl.gae(T, T, T, None, None, gamma=draw(st.sampled_from([1.5, -1.0, "x"])), lam=0.9),
        lambda: rl.gae(T, T, np.ones((5, 4)), None, None, gamma=0.9, lam=0.9),
        lambda: rl.gae(T * np.nan, T, T, None, None, gamma=0.9, lam=0.9),
        lambda: rl.n_step_returns(T, T, None, None, gamma=0.9, n=draw(st.sampled_from([0, 2**63, 1.5]))),
        lambda: rl.discounted_returns(T, T, np.ones((5, 3)), None, gamma=0.9),
        lambda: rl.discounted_returns(T, T, None, None, gamma=0.9, time_dim=draw(st.sampled_from([2, -3]))),
    ]
    with pytest.raises(ERRORS):
        draw(st.sampled_from(calls))()
