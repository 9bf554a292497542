"""Tabular TD updates: kernel vs reference in both modes, numpy.add.at equality, duplicates,
invariances, bad input (nothing written on failure)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import rl
from nimbleops.reference import rl as ref

from ..conftest import HOST_KINDS, TOL, assert_same_bits_at_any_thread_count_and_simd_level, torch

RULES = ["td0", "sarsa", "q_learning", "expected_sarsa_probs", "expected_sarsa_eps", "double_q"]


def batch(rng, S, A, N, dtype):
    return dict(s=rng.integers(0, S, N), a=rng.integers(0, A, N), r=rng.standard_normal(N).astype(dtype),
                s_next=rng.integers(0, S, N), a_next=rng.integers(0, A, N), terminated=rng.random(N) < 0.2,
                probs=(lambda p: (p / p.sum(-1, keepdims=True)).astype(dtype))(rng.random((N, A))),
                update_first=rng.random(N) < 0.5, alpha_arr=rng.uniform(0, 1, N).astype(dtype))


def run(module, rule, tables, b, alpha, gamma, mode):
    common = dict(alpha=alpha, gamma=gamma, mode=mode)
    if rule == "td0":
        return module.td0_update_(tables[0], b["s"], b["r"], b["s_next"], b["terminated"], **common)
    if rule == "sarsa":
        return module.sarsa_update_(tables[0], b["s"], b["a"], b["r"], b["s_next"], b["a_next"], b["terminated"], **common)
    if rule == "q_learning":
        return module.q_learning_update_(tables[0], b["s"], b["a"], b["r"], b["s_next"], b["terminated"], **common)
    if rule == "expected_sarsa_probs":
        return module.expected_sarsa_update_(tables[0], b["s"], b["a"], b["r"], b["s_next"], b["terminated"],
                                             probs=b["probs"], **common)
    if rule == "expected_sarsa_eps":
        return module.expected_sarsa_update_(tables[0], b["s"], b["a"], b["r"], b["s_next"], b["terminated"],
                                             epsilon=0.2, **common)
    return module.double_q_learning_update_(tables[0], tables[1], b["s"], b["a"], b["r"], b["s_next"], b["terminated"],
                                            update_first=b["update_first"], **common)


def tables_for(rng, rule, S, A, dtype):
    shape = (S,) if rule == "td0" else (S, A)
    n = 2 if rule == "double_q" else 1
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mode", ["sequential", "accumulate"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(seed=st.integers(0, 2**31 - 1), S=st.integers(1, 5), A=st.integers(1, 4), N=st.integers(0, 30),
       alpha_kind=st.sampled_from(["scalar", "array"]))
def test_matches_reference(rule, mode, dtype, seed, S, A, N, alpha_kind):
    """Few states, many transitions: duplicates are the rule, not the exception."""
    rng = np.random.default_rng(seed)
    b = batch(rng, S, A, N, dtype)
    ours = tables_for(rng, rule, S, A, dtype)
    theirs = [t.copy() for t in ours]
    alpha = 0.3 if alpha_kind == "scalar" else b["alpha_arr"]
    d_ours = run(rl, rule, ours, b, alpha, 0.9, mode)
    d_ref = run(ref, rule, theirs, b, alpha, 0.9, mode)
    tol = TOL[dtype]
    np.testing.assert_allclose(d_ours, d_ref, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    for t_ours, t_ref in zip(ours, theirs):
        assert t_ours.dtype == np.dtype(dtype)
        np.testing.assert_allclose(t_ours, t_ref, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("A", list(range(1, 20)))
def test_bootstrap_max_at_every_row_width_and_position(dtype, A, rng):
    """The CPU row max works in vectors (the last one overlapping where A is not a multiple of its
    lanes): every width, with the maximum at every position, against numpy's max."""
    S = A + 1
    Q = rng.standard_normal((S, A)).astype(dtype)
    for p in range(A):  # row p has its maximum at position p; row A is all equal
        Q[p, p] = Q[p].max() + 1
    Q[A] = -3.0
    s_next = np.arange(S)
    s, a = np.zeros(S, np.int64), np.zeros(S, np.int64)
    r, terminated = np.zeros(S, dtype), np.zeros(S, bool)
    expected = Q[s_next].max(1) - Q[0, 0]
    for rule in ("q_learning", "expected_sarsa"):
        d = getattr(rl, rule + "_update_")(Q.copy(), s, a, r, s_next, terminated, alpha=0.5, gamma=1.0,
                                           mode="accumulate", **({"epsilon": 0.0} if rule == "expected_sarsa" else {}))
        np.testing.assert_array_equal(d, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accumulate_is_numpy_add_at_to_the_bit(dtype, rng):
    S, A, N = 50, 4, 5000
    b = batch(rng, S, A, N, dtype)
    Q = rng.standard_normal((S, A)).astype(dtype)
    expected = Q.copy()
    td = rl.q_learning_update_(Q, b["s"], b["a"], b["r"], b["s_next"], b["terminated"], alpha=b["alpha_arr"],
                               gamma=0.9, mode="accumulate")
    np.add.at(expected, (b["s"], b["a"]), b["alpha_arr"] * td)
    np.testing.assert_array_equal(Q, expected)


def test_sequential_sees_earlier_updates():
    Q = np.zeros((2, 1))
    s = np.array([0, 0])
    td = rl.q_learning_update_(Q, s, np.array([0, 0]), np.array([1.0, 1.0]), np.array([1, 1]), np.array([True, True]),
                               alpha=0.5, gamma=0.9, mode="sequential")
    np.testing.assert_allclose(td, [1.0, 0.5])
    np.testing.assert_allclose(Q[0, 0], 0.75)
    Q = np.zeros((2, 1))
    td = rl.q_learning_update_(Q, s, np.array([0, 0]), np.array([1.0, 1.0]), np.array([1, 1]), np.array([True, True]),
                               alpha=0.5, gamma=0.9, mode="accumulate")
    np.testing.assert_allclose(td, [1.0, 1.0])
    np.testing.assert_allclose(Q[0, 0], 1.0)


def test_torch_tables_update_in_place(rng):
    torch = pytest.importorskip("torch")
    Q = torch.zeros(10, 3)
    b = batch(rng, 10, 3, 20, "float32")
    td = rl.q_learning_update_(Q, torch.from_numpy(b["s"]), b["a"], b["r"], b["s_next"], b["terminated"], alpha=0.5,
                               gamma=0.9)
    assert isinstance(td, torch.Tensor) and td.dtype == torch.float32
    assert Q.abs().sum() > 0


@pytest.mark.parametrize("rule", ["td0", "q_learning", "sarsa", "expected_sarsa", "double_q"])
def test_plain_cpu_tensors_numpy_and_the_torch_path_agree(rule, rng):
    """Plain CPU tensors run the numpy path on their memory; a table that requires grad (updated
    under no_grad) takes the torch path; numpy arrays their own: the same tables, errors and
    version bumps."""
    torch = pytest.importorskip("torch")
    b = batch(rng, 10, 3, 20, "float64")
    call = {
        "td0": lambda T, T2, x: rl.td0_update_(T, x["s"], x["r"], x["s_next"], x["terminated"], alpha=0.5,
                                               gamma=0.9),
        "q_learning": lambda T, T2, x: rl.q_learning_update_(T, x["s"], x["a"], x["r"], x["s_next"], x["terminated"],
                                                             alpha=0.5, gamma=0.9, mode="accumulate"),
        "sarsa": lambda T, T2, x: rl.sarsa_update_(T, x["s"], x["a"], x["r"], x["s_next"], x["a"], x["terminated"],
                                                   alpha=0.5, gamma=0.9),
        "expected_sarsa": lambda T, T2, x: rl.expected_sarsa_update_(T, x["s"], x["a"], x["r"], x["s_next"],
                                                                     x["terminated"], alpha=0.5, gamma=0.9, epsilon=0.1),
        "double_q": lambda T, T2, x: rl.double_q_learning_update_(T, T2, x["s"], x["a"], x["r"], x["s_next"],
                                                                  x["terminated"], alpha=0.5, gamma=0.9,
                                                                  update_first=x["update_first"]),
    }[rule]
    Q0 = rng.standard_normal((10,) if rule == "td0" else (10, 3))
    Qn, Q2n = Q0.copy(), Q0[::-1].copy()
    td_numpy = call(Qn, Q2n, b)
    tensors = {k: torch.from_numpy(v) for k, v in b.items()}
    Qt, Q2t = torch.from_numpy(Q0.copy()), torch.from_numpy(Q0[::-1].copy())
    version = Qt._version
    td_plain = call(Qt, Q2t, tensors)
    assert isinstance(td_plain, torch.Tensor) and Qt._version > version
    Qg, Q2g = torch.from_numpy(Q0.copy()).requires_grad_(), torch.from_numpy(Q0[::-1].copy())
    with torch.no_grad():
        td_torch = call(Qg, Q2g, tensors)
    for t in (td_plain, td_torch.detach()):
        np.testing.assert_array_equal(t.numpy(), td_numpy)
    for Q, Q2 in ((Qt, Q2t), (Qg.detach(), Q2g)):
        np.testing.assert_array_equal(Q.numpy(), Qn)
        np.testing.assert_array_equal(Q2.numpy(), Q2n)


@pytest.mark.parametrize("rule", ["td0", "q_learning", "sarsa"])
@pytest.mark.parametrize("mode", ["sequential", "accumulate"])
def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(rule, mode, rng, monkeypatch):
    """``_C.rl.td_update_plain`` (one binding call reading the arrays in C++) runs the common call,
    updating the table and returning the TD errors as the general path does (bumping a torch
    table's version), and answers None for any other call, which the general path then serves."""
    from nimbleops import _C

    b = batch(rng, 10, 3, 20, "float64")
    Q0 = rng.standard_normal((10,) if rule == "td0" else (10, 3))
    for make, back in HOST_KINDS:
        want = Q0.copy()
        with monkeypatch.context() as m:
            m.setattr(_C.rl, "td_update_plain", lambda *_: None)  # the general path alone
            td_want = run(rl, rule, [want], b, 0.5, 0.9, mode)
        x = {k: make(v.copy()) for k, v in b.items()}
        Q = make(Q0.copy())
        version = getattr(Q, "_version", 0)
        args = dict(rule=rule, Q=Q, s=x["s"], a=None if rule == "td0" else x["a"], r=x["r"], s_next=x["s_next"],
                    a_next=x["a_next"] if rule == "sarsa" else None, terminated=x["terminated"], alpha=0.5,
                    gamma=0.9, mode=mode)
        td = _C.rl.td_update_plain(**args)
        assert type(td) is type(Q) and getattr(Q, "_version", 1) > version
        np.testing.assert_array_equal(back(td), back(td_want) if not isinstance(td_want, np.ndarray) else td_want)
        np.testing.assert_array_equal(back(Q), want)
        before = back(Q).copy()
        declined = [
            {"Q": make(Q0.astype(np.float32))},  # rewards of another dtype
            {"Q": make(np.stack([Q0] * 2, -1)[..., 0])},  # not contiguous
            {"s": make(b["s"].astype(np.int32))},
            {"s": make(b["s"][:5])},  # lengths differ
            {"terminated": make(b["terminated"].astype(np.uint8))},
            {"a": None} if rule != "td0" else {"a": x["a"]},
            {"a_next": x["a"]} if rule != "sarsa" else {"a_next": None},
            {"alpha": float("inf")}, {"alpha": -0.5}, {"alpha": np.float64(0.5)}, {"gamma": 1.5}, {"gamma": True},
            {"mode": "parallel"}, {"mode": None},
        ]
        if isinstance(Q, np.ndarray):
            frozen = Q0.copy()
            frozen.flags.writeable = False
            declined += [{"Q": frozen}] + ([{"s": torch.from_numpy(b["s"])}] if torch is not None else [])
        else:
            declined += [{"Q": torch.from_numpy(Q0.copy()).requires_grad_()}, {"s": b["s"]},
                         {"s": torch._neg_view(torch.from_numpy(-b["s"]))}]
        for change in declined:
            assert _C.rl.td_update_plain(**{**args, **change}) is None, change
        np.testing.assert_array_equal(back(Q), before)  # nothing written by a declined call
        with pytest.raises(IndexError):  # the kernel's own check, before anything is written
            _C.rl.td_update_plain(**{**args, "s_next": make(np.full(20, 10))})
        np.testing.assert_array_equal(back(Q), before)


def test_thread_count_does_not_change_results(rng):
    S, A, N = 1000, 8, 50_000
    b = batch(rng, S, A, N, "float32")
    Q0 = rng.standard_normal((S, A)).astype(np.float32)

    def run():
        Q = Q0.copy()
        td = rl.q_learning_update_(Q, b["s"], b["a"], b["r"], b["s_next"], b["terminated"], alpha=0.1, gamma=0.99,
                                   mode="accumulate")
        return Q, td

    assert_same_bits_at_any_thread_count_and_simd_level(run)


def changed(x, index, value):
    """A copy of x with x[index] = value."""
    y = x.copy()
    y[index] = value
    return y


def read_only(x):
    y = x.copy()
    y.setflags(write=False)
    return y


def q_learning(Q, b, **over):
    """q_learning_update_ on the batch b, with some arguments replaced."""
    args = dict(Q=Q, s=b["s"], a=b["a"], r=b["r"], s_next=b["s_next"], terminated=b["terminated"], alpha=0.1,
                gamma=0.9, mode="sequential")
    args.update(over)
    return rl.q_learning_update_(args.pop("Q"), args.pop("s"), args.pop("a"), args.pop("r"), args.pop("s_next"),
                                 args.pop("terminated"), **args)


# (case, call(Q [5, 3] float64, batch b of 6 transitions), exception, message); S = 5, A = 3
BAD_INPUT = [
    ("s out of range", lambda Q, b: q_learning(Q, b, s=changed(b["s"], -1, 5)),
     IndexError, r"s: 5 at position 5 is out of range \[0, 5\)"),
    ("negative a", lambda Q, b: q_learning(Q, b, a=changed(b["a"], 2, -1), mode="accumulate"),
     IndexError, "a: -1 at position 2"),
    ("s_next out of range", lambda Q, b: q_learning(Q, b, s_next=changed(b["s"], -1, 5)), IndexError, "s_next"),
    ("r length", lambda Q, b: q_learning(Q, b, r=b["r"][:-1]), ValueError, "r: expected length N = 6"),
    ("int mask", lambda Q, b: q_learning(Q, b, terminated=b["terminated"].astype(int)),
     TypeError, "terminated: expected a bool mask"),
    ("nan reward", lambda Q, b: q_learning(Q, b, r=changed(b["r"], 3, np.nan), mode="accumulate"),
     ValueError, "r: expected finite rewards"),
    ("float indices", lambda Q, b: q_learning(Q, b, s=b["s"].astype(float)), TypeError, "s: expected integer indices"),
    ("int table", lambda Q, b: q_learning(Q.astype(np.int64), b), TypeError, "Q: expected a float32 or float64 table"),
    ("strided table", lambda Q, b: q_learning(np.asfortranarray(np.zeros((5, 3)))[:, :2], b),
     ValueError, "Q: expected a contiguous table"),
    ("read-only table", lambda Q, b: q_learning(read_only(Q), b), ValueError, "Q: expected a writeable table"),
    ("mode", lambda Q, b: q_learning(Q, b, mode="parallel"), ValueError, "mode"),
    ("gamma", lambda Q, b: q_learning(Q, b, gamma=1.5), ValueError, "gamma"),
    ("alpha", lambda Q, b: q_learning(Q, b, alpha=-0.1), ValueError, "alpha"),
    ("neither probs nor epsilon", lambda Q, b: rl.expected_sarsa_update_(
        Q, b["s"], b["a"], b["r"], b["s_next"], b["terminated"], alpha=0.1, gamma=0.9),
     TypeError, "exactly one of probs and epsilon"),
    ("probs not summing to 1", lambda Q, b: rl.expected_sarsa_update_(
        Q, b["s"], b["a"], b["r"], b["s_next"], b["terminated"], alpha=0.1, gamma=0.9, probs=np.full((6, 3), 0.5)),
     ValueError, "probs: expected rows of probabilities"),
    ("Q2 shape", lambda Q, b: rl.double_q_learning_update_(
        Q, np.zeros((5, 4)), b["s"], b["a"], b["r"], b["s_next"], b["terminated"], alpha=0.1, gamma=0.9,
        update_first=b["update_first"]), ValueError, "Q2: expected a table like Q1"),
    ("a Q table as V", lambda Q, b: rl.td0_update_(Q, b["s"], b["r"], b["s_next"], b["terminated"], alpha=0.1,
                                                   gamma=0.9),
     ValueError, r"V: expected a non-empty table of shape \[S\]"),
]


@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_errors_and_nothing_is_written(call, exc, match):
    rng = np.random.default_rng(1234)
    b = batch(rng, 5, 3, 6, "float64")
    Q = rng.standard_normal((5, 3))
    before = Q.copy()
    with pytest.raises(exc, match=match):
        call(Q, b)
    np.testing.assert_array_equal(Q, before)  # a failed call writes nothing


@pytest.mark.skipif(not nimbleops.has_cuda(), reason="no usable CUDA GPU")
@pytest.mark.parametrize("rule", ["td0", "sarsa", "q_learning", "expected_sarsa", "double_q"])
@pytest.mark.parametrize("mode", ["sequential", "accumulate"])
def test_cuda_matches_cpu(rule, mode):
    """The CUDA kernels against the CPU ones (same bits: the same arithmetic in the same order)."""
    import torch

    rng = np.random.default_rng(11)
    S, A, N = 20, 4, 300
    tables = [torch.from_numpy(rng.standard_normal((S, A))) for _ in range(2)]
    s, a, sn, an = (torch.from_numpy(rng.integers(0, hi, N)) for hi in (S, A, S, A))
    r = torch.from_numpy(rng.standard_normal(N))
    term = torch.from_numpy(rng.random(N) < 0.1)
    first = torch.from_numpy(rng.random(N) < 0.5)
    results = []
    for dev in ("cpu", "cuda"):
        Q1, Q2 = (t.clone().to(dev) for t in tables)
        args = dict(alpha=0.3, gamma=0.9, mode=mode)
        if rule == "td0":
            V = Q1[:, 0].contiguous()
            td = rl.td0_update_(V, s, r, sn, term, **args)
            results.append((td.cpu(), V.cpu()))
            continue
        if rule == "sarsa":
            td = rl.sarsa_update_(Q1, s, a, r, sn, an, term, **args)
        elif rule == "q_learning":
            td = rl.q_learning_update_(Q1, s, a, r, sn, term, **args)
        elif rule == "expected_sarsa":
            td = rl.expected_sarsa_update_(Q1, s, a, r, sn, term, epsilon=0.2, **args)
        else:
            td = rl.double_q_learning_update_(Q1, Q2, s, a, r, sn, term, update_first=first, **args)
        results.append((td.cpu(), Q1.cpu(), Q2.cpu()))
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
