"""Eligibility-trace steps: kernel vs reference over several steps (tabular: three rules x three
kinds; linear: TD(0), TD(lambda), true online TD(lambda)), invariances, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import rl
from nimbleops.reference import rl as ref

from ..conftest import HOST_KINDS, TOL, assert_same_bits_at_any_thread_count_and_simd_level


def tabular_steps(module, rule, kind, Q, e, steps, dtype):
    deltas = []
    for st_ in steps:
        common = dict(alpha=0.3, gamma=0.9, lam=0.8, kind=kind)
        if rule == "td_lambda":
            d = module.td_lambda_step_(Q, e, st_["s"], st_["r"], st_["s_next"], st_["term"], st_["trunc"], **common)
        else:
            fn = module.sarsa_lambda_step_ if rule == "sarsa_lambda" else module.watkins_q_lambda_step_
            d = fn(Q, e, st_["s"], st_["a"], st_["r"], st_["s_next"], st_["a_next"], st_["term"], st_["trunc"], **common)
        deltas.append(np.asarray(d))
    return deltas


@pytest.mark.parametrize("rule", ["td_lambda", "sarsa_lambda", "watkins_q_lambda"])
@pytest.mark.parametrize("kind", ["accumulating", "replacing", "dutch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(seed=st.integers(0, 2**31 - 1), S=st.integers(1, 5), A=st.integers(1, 3), B=st.integers(1, 4))
def test_tabular_matches_reference(rule, kind, dtype, seed, S, A, B):
    rng = np.random.default_rng(seed)
    shape = (S,) if rule == "td_lambda" else (S, A)
    Q = rng.standard_normal(shape).astype(dtype)
    e = np.zeros((B,) + shape, dtype)
    steps = [dict(s=rng.integers(0, S, B), a=rng.integers(0, A, B), r=rng.standard_normal(B).astype(dtype),
                  s_next=rng.integers(0, S, B), a_next=rng.integers(0, A, B), term=rng.random(B) < 0.2,
                  trunc=rng.random(B) < 0.1) for _ in range(4)]
    Q_ref, e_ref = Q.copy(), e.copy()
    got = tabular_steps(rl, rule, kind, Q, e, steps, dtype)
    want = tabular_steps(ref, rule, kind, Q_ref, e_ref, steps, dtype)
    tol = dict(rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol)
    np.testing.assert_allclose(Q, Q_ref, **tol)
    np.testing.assert_allclose(e, e_ref, **tol)


@pytest.mark.parametrize("rule", ["td0", "td_lambda", "true_online"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(seed=st.integers(0, 2**31 - 1), B=st.integers(1, 4), d=st.integers(1, 6))
def test_linear_matches_reference(rule, dtype, seed, B, d):
    rng = np.random.default_rng(seed)
    w = (0.1 * rng.standard_normal(d)).astype(dtype)
    z, v_old = np.zeros((B, d), dtype), np.zeros(B, dtype)
    w_ref, z_ref, v_ref = w.copy(), z.copy(), v_old.copy()
    for _ in range(4):
        phi, phi_next = (rng.standard_normal((B, d)).astype(dtype) for _ in range(2))
        r = rng.standard_normal(B).astype(dtype)
        term, trunc = rng.random(B) < 0.2, rng.random(B) < 0.1
        args = dict(alpha=0.05, gamma=0.9)
        if rule == "td0":
            got = rl.linear_td0_update_(w, phi, r, phi_next, term, **args)
            want = ref.linear_td0_update_(w_ref, phi, r, phi_next, term, **args)
        elif rule == "td_lambda":
            got = rl.linear_td_lambda_step_(w, z, phi, r, phi_next, term, trunc, lam=0.8, **args)
            want = ref.linear_td_lambda_step_(w_ref, z_ref, phi, r, phi_next, term, trunc, lam=0.8, **args)
        else:
            got = rl.true_online_td_lambda_step_(w, z, v_old, phi, r, phi_next, term, trunc, lam=0.8, **args)
            want = ref.true_online_td_lambda_step_(w_ref, z_ref, v_ref, phi, r, phi_next, term, trunc, lam=0.8, **args)
        tol = dict(rtol=TOL[dtype]["rtol"] * 100, atol=TOL[dtype]["atol"] * 100)
        np.testing.assert_allclose(got, want, **tol)
        np.testing.assert_allclose(w, w_ref, **tol)
        np.testing.assert_allclose(z, z_ref, **tol)
        np.testing.assert_allclose(v_old, v_ref, **tol)


def test_true_online_td_lambda_over_one_episode():
    """One environment through a whole episode: kernel and reference agree after every step, and
    the episode's end resets z and v_old."""
    rng = np.random.default_rng(0)
    d, T = 4, 6
    phis = rng.standard_normal((T + 1, d))
    r = rng.standard_normal(T)
    w = np.zeros(d)
    z, v_old = np.zeros((1, d)), np.zeros(1)
    for t in range(T):
        term = np.array([t == T - 1])
        rl.true_online_td_lambda_step_(w, z, v_old, phis[t][None], r[t:t + 1], phis[t + 1][None], term,
                                       np.array([False]), alpha=0.01, gamma=0.9, lam=0.7)
    w2 = np.zeros(d)
    z2, v2 = np.zeros((1, d)), np.zeros(1)
    for t in range(T):
        term = np.array([t == T - 1])
        ref.true_online_td_lambda_step_(w2, z2, v2, phis[t][None], r[t:t + 1], phis[t + 1][None], term,
                                        np.array([False]), alpha=0.01, gamma=0.9, lam=0.7)
    np.testing.assert_allclose(w, w2, rtol=1e-12, atol=1e-14)
    assert not z.any() and not v_old.any()  # reset at the episode end


@pytest.mark.parametrize("rule", ["sarsa_lambda", "true_online"])
def test_plain_cpu_tensors_numpy_and_the_torch_path_agree(rule, rng):
    """Plain CPU tensors run the numpy path on their memory; a table that requires grad (updated
    under no_grad) takes the torch path: the same tables, traces and TD errors as numpy arrays."""
    torch = pytest.importorskip("torch")
    B, S, A, d = 4, 7, 2, 5
    x = dict(s=rng.integers(0, S, B), a=rng.integers(0, A, B), s2=rng.integers(0, S, B), a2=rng.integers(0, A, B),
             r=rng.standard_normal(B), term=rng.random(B) < 0.3, trunc=rng.random(B) < 0.3,
             phi=rng.standard_normal((B, d)), phi2=rng.standard_normal((B, d)))
    if rule == "sarsa_lambda":
        tables = [rng.standard_normal((S, A)), rng.random((B, S, A))]
        call = lambda t, x: rl.sarsa_lambda_step_(t[0], t[1], x["s"], x["a"], x["r"], x["s2"], x["a2"],  # noqa: E731
                                                  x["term"], x["trunc"], alpha=0.5, gamma=0.9, lam=0.7)
    else:
        tables = [rng.standard_normal(d), rng.random((B, d)), rng.standard_normal(B)]
        call = lambda t, x: rl.true_online_td_lambda_step_(t[0], t[1], t[2], x["phi"], x["r"], x["phi2"],  # noqa: E731
                                                           x["term"], x["trunc"], alpha=0.1, gamma=0.9, lam=0.7)
    numpy_tables = [t.copy() for t in tables]
    td_numpy = call(numpy_tables, x)
    tensors = {k: torch.from_numpy(v) for k, v in x.items()}
    plain = [torch.from_numpy(t.copy()) for t in tables]
    td_plain = call(plain, tensors)
    graph = [torch.from_numpy(t.copy()) for t in tables]
    graph[0].requires_grad_()
    with torch.no_grad():
        td_torch = call(graph, tensors)
    for td in (td_plain, td_torch):
        assert isinstance(td, torch.Tensor)
        np.testing.assert_array_equal(td.detach().numpy(), td_numpy)
    for ts in (plain, graph):
        for t, want in zip(ts, numpy_tables):
            np.testing.assert_array_equal(t.detach().numpy(), want)


@pytest.mark.parametrize("rule", ["td_lambda", "sarsa_lambda", "watkins_q_lambda", "linear_td0", "linear_td_lambda",
                                  "true_online"])
def test_the_plain_bindings_take_the_common_call_and_decline_the_rest(rule, rng, monkeypatch):
    """``_C.rl.tabular_trace_plain`` / ``linear_trace_plain`` (one binding call reading the arrays
    in C++) update the tables and traces and return the TD errors as the general path does (torch
    versions bumped), and answer None for any other call, writing nothing."""
    from nimbleops import _C

    B, S, A, d = 4, 7, 2, 5
    x = dict(s=rng.integers(0, S, B), a=rng.integers(0, A, B), s2=rng.integers(0, S, B), a2=rng.integers(0, A, B),
             r=rng.standard_normal(B), term=rng.random(B) < 0.3, trunc=rng.random(B) < 0.3,
             phi=rng.standard_normal((B, d)), phi2=rng.standard_normal((B, d)))
    common = dict(alpha=0.5, gamma=0.9, lam=0.7)
    if rule in ("td_lambda", "sarsa_lambda", "watkins_q_lambda"):
        td = rule == "td_lambda"
        tables = [rng.standard_normal((S,) if td else (S, A)), rng.random((B, S) if td else (B, S, A))]
        binding, public = "tabular_trace_plain", {"td_lambda": rl.td_lambda_step_, "sarsa_lambda": rl.sarsa_lambda_step_,
                                                  "watkins_q_lambda": rl.watkins_q_lambda_step_}[rule]
        plain_args = lambda t, x: dict(rule=rule, Q=t[0], e=t[1], s=x["s"], a=None if td else x["a"], r=x["r"],  # noqa: E731
                                       s_next=x["s2"], a_next=None if td else x["a2"], terminated=x["term"],
                                       truncated=x["trunc"], kind="replacing", **common)
        call = (lambda t, x: public(t[0], t[1], x["s"], x["r"], x["s2"], x["term"], x["trunc"], kind="replacing",  # noqa: E731
                                    **common)) if td else \
            (lambda t, x: public(t[0], t[1], x["s"], x["a"], x["r"], x["s2"], x["a2"], x["term"], x["trunc"],
                                 kind="replacing", **common))
        declined = [dict(kind="spiky"), dict(alpha=1.5), dict(s=x["s"].astype(np.int32)), dict(a=x["a"] if td else None)]
    else:
        name = rule.replace("linear_", "")
        tables = [rng.standard_normal(d)] + ([rng.random((B, d))] if name != "td0" else []) + \
            ([rng.standard_normal(B)] if name == "true_online" else [])
        binding = "linear_trace_plain"
        plain_args = lambda t, x: dict(  # noqa: E731
            rule=name, w=t[0], z=t[1] if len(t) > 1 else None, v_old=t[2] if len(t) > 2 else None, phi=x["phi"],
            r=x["r"], phi_next=x["phi2"], terminated=x["term"], truncated=None if name == "td0" else x["trunc"],
            **{**common, "lam": 0.0 if name == "td0" else 0.7})
        call = {"td0": lambda t, x: rl.linear_td0_update_(t[0], x["phi"], x["r"], x["phi2"], x["term"], alpha=0.5,
                                                          gamma=0.9),
                "td_lambda": lambda t, x: rl.linear_td_lambda_step_(t[0], t[1], x["phi"], x["r"], x["phi2"], x["term"],
                                                                    x["trunc"], **common),
                "true_online": lambda t, x: rl.true_online_td_lambda_step_(t[0], t[1], t[2], x["phi"], x["r"], x["phi2"],
                                                                           x["term"], x["trunc"], **common)}[name]
        declined = [dict(phi=x["phi"][:, :3]), dict(r=x["r"][:3]), dict(gamma=-0.1), dict(w=x["phi"])]
    for make, back in HOST_KINDS:
        want = [t.copy() for t in tables]
        with monkeypatch.context() as m:
            m.setattr(_C.rl, binding, lambda *_: None)  # the general path alone
            td_want = call(want, x)
        got = [make(t.copy()) for t in tables]
        xs = {k: make(v) for k, v in x.items()}
        versions = [getattr(t, "_version", 0) for t in got]
        td_got = getattr(_C.rl, binding)(**plain_args(got, xs))
        assert type(td_got) is type(got[0])
        np.testing.assert_array_equal(back(td_got), td_want)
        for t, w, v in zip(got, want, versions):
            np.testing.assert_array_equal(back(t), w)
            assert getattr(t, "_version", 1) > v
        before = [back(t).copy() for t in got]
        for change in declined + [dict(r=back(xs["r"]).astype(np.float32))]:
            change = {k: make(v) if isinstance(v, np.ndarray) else v for k, v in change.items()}
            assert getattr(_C.rl, binding)(**{**plain_args(got, xs), **change}) is None, change
        for t, b in zip(got, before):
            np.testing.assert_array_equal(back(t), b)


def test_thread_count_does_not_change_results(rng):
    S, A, B = 3000, 4, 16
    Q0 = rng.standard_normal((S, A)).astype(np.float32)
    s, a, sn, an = (rng.integers(0, n, B) for n in (S, A, S, A))
    r = rng.standard_normal(B).astype(np.float32)
    term, trunc = rng.random(B) < 0.2, rng.random(B) < 0.1

    def run():
        Q, e = Q0.copy(), np.zeros((B, S, A), np.float32)
        d = [rl.sarsa_lambda_step_(Q, e, s, a, r, sn, an, term, trunc, alpha=0.1, gamma=0.9, lam=0.8) for _ in range(3)]
        return (Q, e, *d)

    assert_same_bits_at_any_thread_count_and_simd_level(run)


def _nan_first(x):
    y = x.copy()
    y[0] = np.nan
    return y


def sarsa_lambda(Q, traces, d, **over):
    """sarsa_lambda_step_ on the transitions d with the traces, some arguments replaced."""
    args = dict(e=traces, s=d["s"], a=d["a"], r=d["r"], s_next=d["s"], a_next=d["a"], terminated=d["no"],
                truncated=d["no"], alpha=0.1, gamma=0.9, lam=0.9)
    args.update(over)
    return rl.sarsa_lambda_step_(Q, args.pop("e"), args.pop("s"), args.pop("a"), args.pop("r"), args.pop("s_next"),
                                 args.pop("a_next"), args.pop("terminated"), args.pop("truncated"), **args)


# (case, call(Q [5, 3], e [4, 5, 3], transitions d of 4 environments), exception, message)
BAD_INPUT = [
    ("traces shape", lambda Q, e, d: sarsa_lambda(Q, e, d, e=np.zeros((4, 5, 4))),
     ValueError, r"e: expected traces of shape \[4, 5, 3\]"),
    ("a_next out of range", lambda Q, e, d: sarsa_lambda(Q, e, d, a_next=d["a"] + 3), IndexError, "a_next"),
    ("kind", lambda Q, e, d: sarsa_lambda(Q, e, d, kind="fancy"), ValueError, "kind"),
    ("lam", lambda Q, e, d: sarsa_lambda(Q, e, d, lam=1.5), ValueError, "lam"),
    ("int mask", lambda Q, e, d: sarsa_lambda(Q, e, d, truncated=d["no"].astype(int)),
     TypeError, "truncated: expected a bool mask"),
    ("nan reward", lambda Q, e, d: sarsa_lambda(Q, e, d, r=_nan_first(d["r"])),
     ValueError, "r: expected finite rewards"),
    ("features of another width", lambda Q, e, d: rl.linear_td0_update_(
        np.zeros(3), np.zeros((4, 4)), d["r"], np.zeros((4, 4)), d["no"], alpha=0.1, gamma=0.9),
     ValueError, r"phi: expected features \[B, d\] with d = 3"),
    ("no v_old", lambda Q, e, d: rl.true_online_td_lambda_step_(
        np.zeros(3), np.zeros((4, 3)), None, np.zeros((4, 3)), d["r"], np.zeros((4, 3)), d["no"], d["no"], alpha=0.1,
        gamma=0.9, lam=0.9), TypeError, "v_old"),
]


@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_errors(call, exc, match):
    rng = np.random.default_rng(1234)
    Q, e = rng.standard_normal((5, 3)), np.zeros((4, 5, 3))
    before = Q.copy()
    d = dict(s=rng.integers(0, 5, 4), a=rng.integers(0, 3, 4), r=rng.standard_normal(4), no=np.zeros(4, bool))
    with pytest.raises(exc, match=match):
        call(Q, e, d)
    np.testing.assert_array_equal(Q, before)  # a failed call writes nothing


@pytest.mark.skipif(not nimbleops.has_cuda(), reason="no usable CUDA GPU")
@pytest.mark.parametrize("kind", ["accumulating", "replacing", "dutch"])
def test_cuda_matches_cpu(kind):
    import torch

    rng = np.random.default_rng(12)
    S, A, B, d = 15, 3, 8, 10
    Q0 = torch.from_numpy(rng.standard_normal((S, A)))
    s, a, sn, an = (torch.from_numpy(rng.integers(0, hi, B)) for hi in (S, A, S, A))
    r = torch.from_numpy(rng.standard_normal(B))
    term, trunc = torch.from_numpy(rng.random(B) < 0.2), torch.from_numpy(rng.random(B) < 0.1)
    w0 = torch.from_numpy(rng.standard_normal(d))
    phi, phin = (torch.from_numpy(rng.standard_normal((B, d))) for _ in range(2))
    out = {}
    for dev in ("cpu", "cuda"):
        Q, e = Q0.clone().to(dev), torch.zeros(B, S, A, dtype=torch.float64, device=dev)
        for _ in range(3):
            rl.watkins_q_lambda_step_(Q, e, s, a, r, sn, an, term, trunc, alpha=0.1, gamma=0.9, lam=0.8, kind=kind)
            rl.sarsa_lambda_step_(Q, e, s, a, r, sn, an, term, trunc, alpha=0.1, gamma=0.9, lam=0.8, kind=kind)
        w, z, v_old = w0.clone().to(dev), torch.zeros(B, d, dtype=torch.float64, device=dev), torch.zeros(
            B, dtype=torch.float64, device=dev)
        for _ in range(3):
            rl.true_online_td_lambda_step_(w, z, v_old, phi, r, phin, term, trunc, alpha=0.01, gamma=0.9, lam=0.8)
            rl.linear_td_lambda_step_(w, z, phi, r, phin, term, trunc, alpha=0.01, gamma=0.9, lam=0.8)
            rl.linear_td0_update_(w, phi, r, phin, term, alpha=0.01, gamma=0.9)
        out[dev] = [t.cpu() for t in (Q, e, w, z, v_old)]
    for got, want in zip(out["cuda"], out["cpu"]):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
