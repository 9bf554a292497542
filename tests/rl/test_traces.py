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

from ..conftest import TOL, assert_same_bits_at_any_thread_count_and_simd_level


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


def test_bad_input_errors(rng):
    S, A, B = 5, 3, 4
    Q, e = rng.standard_normal((S, A)), np.zeros((B, S, A))
    before = Q.copy()
    s, a = rng.integers(0, S, B), rng.integers(0, A, B)
    r, no = rng.standard_normal(B), np.zeros(B, bool)
    with pytest.raises(ValueError, match=r"e: expected traces of shape \[4, 5, 3\]"):
        rl.sarsa_lambda_step_(Q, np.zeros((B, S, A + 1)), s, a, r, s, a, no, no, alpha=0.1, gamma=0.9, lam=0.9)
    with pytest.raises(IndexError, match="a_next"):
        rl.sarsa_lambda_step_(Q, e, s, a, r, s, a + A, no, no, alpha=0.1, gamma=0.9, lam=0.9)
    with pytest.raises(ValueError, match="kind"):
        rl.sarsa_lambda_step_(Q, e, s, a, r, s, a, no, no, alpha=0.1, gamma=0.9, lam=0.9, kind="fancy")
    with pytest.raises(ValueError, match="lam"):
        rl.sarsa_lambda_step_(Q, e, s, a, r, s, a, no, no, alpha=0.1, gamma=0.9, lam=1.5)
    with pytest.raises(TypeError, match="truncated: expected a bool mask"):
        rl.sarsa_lambda_step_(Q, e, s, a, r, s, a, no, no.astype(int), alpha=0.1, gamma=0.9, lam=0.9)
    bad = r.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="r: expected finite rewards"):
        rl.sarsa_lambda_step_(Q, e, s, a, bad, s, a, no, no, alpha=0.1, gamma=0.9, lam=0.9)
    np.testing.assert_array_equal(Q, before)
    w = np.zeros(3)
    with pytest.raises(ValueError, match=r"phi: expected features \[B, d\] with d = 3"):
        rl.linear_td0_update_(w, np.zeros((B, 4)), r, np.zeros((B, 4)), no, alpha=0.1, gamma=0.9)
    with pytest.raises(TypeError, match="v_old"):
        rl.true_online_td_lambda_step_(w, np.zeros((B, 3)), None, np.zeros((B, 3)), r, np.zeros((B, 3)), no, no,
                                       alpha=0.1, gamma=0.9, lam=0.9)


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
