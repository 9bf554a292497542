"""Bellman backups and solvers: kernel vs reference, textbook cases, invariances, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nimbleops
from nimbleops import rl
from nimbleops.reference import rl as ref

from ..conftest import (HOST_KINDS, import_peer, KINDS, assert_close, assert_same_bits_at_any_thread_count_and_simd_level,
                        random_mdp, to_kind, to_numpy, torch)

DTYPES = ["float64", "float32"]


@st.composite
def mdps(draw, allow_batch=True):
    seed = draw(st.integers(0, 2**31 - 1))
    S = draw(st.integers(1, 6))
    A = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (2, 3)])) if allow_batch else ()
    density = draw(st.sampled_from([1.0, 0.5, 0.2]))
    infeasible = draw(st.sampled_from([0.0, 0.3]))
    rng = np.random.default_rng(seed)
    P, R = random_mdp(rng, S, A, batch, density=density, infeasible=infeasible)
    V = rng.standard_normal(batch + (S,))
    return P, R, V, rng


def model(P, sparse, dtype):
    if not sparse:
        return P.astype(dtype)
    S, A = P.shape[-3], P.shape[-2]
    import scipy.sparse as sp

    return rl.SparseTransitions.from_scipy(sp.csr_matrix(P.reshape(S * A, S).astype(dtype)), A)


def cases(P, R, V, kind, dtype, sparse):
    """(model for nimbleops, R and V of the kind) in dtype; the reference gets float64 of the same values."""
    Pm = model(P, sparse, dtype)
    return (Pm if sparse else to_kind(Pm, kind)), to_kind(R.astype(dtype), kind), to_kind(V.astype(dtype), kind)


def reference_inputs(P, R, V, dtype):
    return P.astype(dtype).astype(float), R.astype(dtype).astype(float), V.astype(dtype).astype(float)


# ------------------------------------------------------------------ operators vs the reference


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True])
@given(case=mdps(), gamma=st.sampled_from([0.0, 0.5, 0.99, 1.0]))
def test_operators_match_reference(kind, dtype, sparse, case, gamma):
    P, R, V, rng = case
    if sparse and P.ndim > 3:
        P, R, V = P.reshape((-1,) + P.shape[-3:])[0], R.reshape((-1,) + R.shape[-2:])[0], V.reshape(-1, V.shape[-1])[0]
    Pk, Rk, Vk = cases(P, R, V, kind, dtype, sparse)
    Pr, Rr, Vr = reference_inputs(P, R, V, dtype)
    scale = 1 + np.abs(Vr).max()

    Q = rl.q_values(Pk, Rk, Vk, gamma)
    assert type(Q) is type(Rk)
    assert_close(Q, ref.q_values(Pr, Rr, Vr, gamma), dtype, scale)

    V_new, pol = rl.bellman_optimality_backup(Pk, Rk, Vk, gamma)
    V_ref, pol_ref = ref.bellman_optimality_backup(Pr, Rr, Vr, gamma)
    assert_close(V_new, V_ref, dtype, scale)
    assert str(pol.dtype).endswith("int64")
    if dtype == "float64":  # float32 rounding may reorder near-ties
        np.testing.assert_array_equal(to_numpy(pol), pol_ref)
    np.testing.assert_array_equal(to_numpy(rl.greedy_policy(Pk, Rk, Vk, gamma)), to_numpy(pol))

    # a deterministic policy (the greedy one) and a stochastic one over feasible actions
    assert_close(rl.bellman_expectation_backup(Pk, Rk, Vk, gamma, to_kind(pol_ref, kind)),
                 ref.bellman_expectation_backup(Pr, Rr, Vr, gamma, pol_ref), dtype, scale)
    probs = rng.random(R.shape) * np.isfinite(R)
    probs /= probs.sum(-1, keepdims=True)
    probs = probs.astype(dtype)
    assert_close(rl.bellman_expectation_backup(Pk, Rk, Vk, gamma, to_kind(probs, kind)),
                 ref.bellman_expectation_backup(Pr, Rr, Vr, gamma, probs.astype(float)), dtype, scale)


@pytest.mark.parametrize("kind", KINDS)
def test_rewards_per_transition_are_reduced_once(kind, rng):
    P, _ = random_mdp(rng, 4, 3, (2,), density=0.5)
    R3 = rng.standard_normal(P.shape)
    R3[P == 0] = -np.inf  # impossible transitions contribute nothing, even at -inf
    V = rng.standard_normal((2, 4))
    Q = rl.q_values(to_kind(P, kind), to_kind(R3, kind), to_kind(V, kind), 0.9)
    assert_close(Q, ref.q_values(P, R3, V, 0.9), "float64")
    expected_R = np.where(P > 0, P * np.where(P > 0, R3, 0), 0).sum(-1)
    assert_close(Q, ref.q_values(P, expected_R, V, 0.9), "float64")


def test_rewards_broadcast_over_the_batch(rng):
    P, R = random_mdp(rng, 4, 3, (5,))
    V = rng.standard_normal((5, 4))
    assert_close(rl.q_values(P, R[0], V, 0.9), ref.q_values(P, np.broadcast_to(R[0], R.shape), V, 0.9), "float64")


# -------------------------------------------------------------------- solvers vs the reference


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sparse", [False, True])
@given(case=mdps(), gamma=st.sampled_from([0.0, 0.5, 0.9]), stop=st.sampled_from(["sup", "span"]),
       gauss_seidel=st.booleans())
def test_value_iteration_matches_reference(kind, sparse, case, gamma, stop, gauss_seidel):
    P, R, V, _ = case
    if sparse and P.ndim > 3:
        P, R = P.reshape((-1,) + P.shape[-3:])[0], R.reshape((-1,) + R.shape[-2:])[0]
    if gauss_seidel and (kind == "torch-cuda" or stop == "span"):
        with pytest.raises(ValueError, match="gauss_seidel"):
            rl.value_iteration(to_kind(P, kind), to_kind(R, kind), gamma, stop=stop, gauss_seidel=True)
        return
    Pk, Rk, _ = cases(P, R, V, kind, "float64", sparse)
    got = rl.value_iteration(Pk, Rk, gamma, tol=1e-8, stop=stop, gauss_seidel=gauss_seidel)
    want = ref.value_iteration(P, R, gamma, tol=1e-8, stop=stop, gauss_seidel=gauss_seidel)
    assert_close(got.V, want.V, "float64", 1e3)
    np.testing.assert_array_equal(to_numpy(got.policy), want.policy)
    np.testing.assert_array_equal(got.iterations, want.iterations)
    np.testing.assert_array_equal(got.converged, want.converged)
    np.testing.assert_allclose(got.residual, want.residual, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@given(case=mdps(), gamma=st.sampled_from([0.0, 0.6, 0.95]), stochastic=st.booleans())
def test_policy_evaluation_matches_reference(kind, case, gamma, stochastic):
    P, R, V0, rng = case
    if stochastic:
        policy = rng.random(R.shape) * np.isfinite(R)
        policy /= policy.sum(-1, keepdims=True)
    else:
        policy = np.argmax(R, axis=-1)  # a feasible action
    got = rl.policy_evaluation(to_kind(P, kind), to_kind(R, kind), gamma, to_kind(policy, kind), tol=1e-9,
                               V0=to_kind(V0, kind))
    want = ref.policy_evaluation(P, R, gamma, policy, tol=1e-9, V0=V0)
    assert_close(got.V, want.V, "float64", 1e3)
    np.testing.assert_array_equal(got.iterations, want.iterations)
    assert np.all(got.converged)
    # the guarantee: within tol of the exact value of the policy
    S, A = P.shape[-3], P.shape[-2]
    Pf, Rf, pf = P.reshape(-1, S, A, S), R.reshape(-1, S, A), policy.reshape((-1, S) + policy.shape[len(P.shape) - 2:])
    for b in range(Pf.shape[0]):
        if stochastic:
            P_pi = np.einsum("sa,sat->st", pf[b], Pf[b])
            r_pi = np.where(pf[b] > 0, pf[b] * np.where(pf[b] > 0, Rf[b], 0), 0).sum(-1)
        else:
            P_pi = Pf[b][np.arange(S), pf[b]]
            r_pi = Rf[b][np.arange(S), pf[b]]
        exact = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
        np.testing.assert_allclose(to_numpy(got.V).reshape(-1, S)[b], exact, atol=1e-9 + 1e-12)


@given(case=mdps(), gamma=st.sampled_from([0.5, 0.9]))
def test_sparse_policy_solvers_match_reference(case, gamma):
    """Policy evaluation, policy iteration and modified policy iteration on a sparse model: their
    evaluation sweeps read the policy's rows gathered once (CPU), against the reference."""
    P, R, _, _ = case
    if P.ndim > 3:
        return
    Ps = model(P, True, "float64")
    policy = np.argmax(R, axis=-1)
    got = rl.policy_evaluation(Ps, R, gamma, policy, tol=1e-10)
    want = ref.policy_evaluation(P, R, gamma, policy, tol=1e-10)
    assert_close(got.V, want.V, "float64", 1e3)
    assert got.iterations == want.iterations
    got, want = rl.policy_iteration(Ps, R, gamma, eval_tol=1e-10), ref.policy_iteration(P, R, gamma, eval_tol=1e-10)
    assert_close(got.V, want.V, "float64", 1e3)
    np.testing.assert_array_equal(got.policy, want.policy)
    for k in (0, 1, 3):
        got = rl.modified_policy_iteration(Ps, R, gamma, k=k, tol=1e-8)
        want = ref.modified_policy_iteration(P, R, gamma, k=k, tol=1e-8)
        assert_close(got.V, want.V, "float64", 1e3)
        np.testing.assert_array_equal(got.policy, want.policy)
        assert got.iterations == want.iterations


@pytest.mark.parametrize("kind", KINDS)
@given(case=mdps(), gamma=st.sampled_from([0.0, 0.5, 0.9]))
def test_policy_iteration_and_mpi_match_reference(kind, case, gamma):
    P, R, _, _ = case
    Pk, Rk = to_kind(P, kind), to_kind(R, kind)
    got = rl.policy_iteration(Pk, Rk, gamma, eval_tol=1e-10)
    want = ref.policy_iteration(P, R, gamma, eval_tol=1e-10)
    assert_close(got.V, want.V, "float64", 1e3)
    np.testing.assert_array_equal(to_numpy(got.policy), want.policy)
    np.testing.assert_array_equal(got.iterations, want.iterations)
    assert np.all(got.converged)
    for k in (0, 3):
        got = rl.modified_policy_iteration(Pk, Rk, gamma, k=k, tol=1e-8)
        want = ref.modified_policy_iteration(P, R, gamma, k=k, tol=1e-8)
        assert_close(got.V, want.V, "float64", 1e3)
        np.testing.assert_array_equal(to_numpy(got.policy), want.policy)
        np.testing.assert_array_equal(got.iterations, want.iterations)


@pytest.mark.parametrize("kind", KINDS)
@given(case=mdps(), gamma=st.sampled_from([0.0, 0.9, 1.0]), horizon=st.integers(0, 4))
def test_finite_horizon_matches_reference(kind, case, gamma, horizon):
    P, R, V_T, _ = case
    got = rl.finite_horizon(to_kind(P, kind), to_kind(R, kind), gamma, horizon, terminal_values=to_kind(V_T, kind))
    want = ref.finite_horizon(P, R, gamma, horizon, terminal_values=V_T)
    assert tuple(got.V.shape) == (horizon + 1,) + V_T.shape
    assert_close(got.V, want.V, "float64", 10)
    np.testing.assert_array_equal(to_numpy(got.policy), want.policy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_solvers_in_float32_agree_with_float64(dtype, rng):
    P, R = random_mdp(rng, 30, 4, (3,))
    a = rl.value_iteration(P.astype(dtype), R.astype(dtype), 0.9, tol=1e-3)
    b = ref.value_iteration(P, R, 0.9, tol=1e-3)
    np.testing.assert_allclose(a.V, b.V, atol=1e-3)
    assert a.V.dtype == np.dtype(dtype) and a.policy.dtype == np.int64


# ------------------------------------------------------------------------ textbook and peers


def puterman_two_state():
    """Puterman (1994) Example 6.2.1: s1 has a11 (r=5, to s1/s2 w.p. 1/2) and a12 (r=10, to s2);
    s2 has only a21 (r=-1, stays). With lambda = 0.95: v*(s1) = -60/7, v*(s2) = -20."""
    P = np.zeros((2, 2, 2))
    P[0, 0] = [0.5, 0.5]
    P[0, 1] = [0.0, 1.0]
    P[1, 0] = [0.0, 1.0]
    P[1, 1] = [0.0, 1.0]
    R = np.array([[5.0, 10.0], [-1.0, -np.inf]])
    return P, R


@pytest.mark.parametrize("kind", KINDS)
def test_puterman_example(kind):
    P, R = puterman_two_state()
    P, R = to_kind(P, kind), to_kind(R, kind)
    v_star = np.array([-60 / 7, -20.0])
    for sol in (
        rl.value_iteration(P, R, 0.95, tol=1e-8),
        rl.value_iteration(P, R, 0.95, tol=1e-8, stop="span"),
        rl.policy_iteration(P, R, 0.95, eval_tol=1e-12),
        rl.modified_policy_iteration(P, R, 0.95, tol=1e-10),
    ):
        np.testing.assert_allclose(to_numpy(sol.V), v_star, atol=1e-6)
        np.testing.assert_array_equal(to_numpy(sol.policy), [0, 0])
        assert sol.converged
    vi = rl.value_iteration(P, R, 0.95, tol=1e-6)
    assert np.max(np.abs(to_numpy(vi.V) - v_star)) < 1e-6 / 2  # the sup rule's guarantee


def test_against_pymdptoolbox_and_quantecon():
    mdptoolbox = import_peer("mdptoolbox.mdp")
    qe = import_peer("quantecon")
    rng = np.random.default_rng(7)
    P, R = random_mdp(rng, 40, 5, leak=0.0)  # stochastic rows for the peers
    gamma = 0.9
    vi = mdptoolbox.ValueIteration([P[:, a, :] for a in range(5)], R, gamma, epsilon=1e-8, max_iter=10_000)
    vi.run()
    ours = rl.value_iteration(P, R, gamma, tol=1e-8, stop="span")
    np.testing.assert_array_equal(ours.policy, vi.policy)
    ddp = qe.markov.DiscreteDP(R, P, gamma)
    # QuantEcon starts VI from max_a R, which is our first sweep from V0 = 0
    for method, fn in (("value_iteration", lambda: rl.value_iteration(P, R, gamma, tol=1e-8, V0=R.max(-1))),
                       ("modified_policy_iteration", lambda: rl.modified_policy_iteration(P, R, gamma, tol=1e-8))):
        res = ddp.solve(method=method, epsilon=1e-8)
        sol = fn()
        np.testing.assert_allclose(sol.V, res.v, atol=1e-7)
        np.testing.assert_array_equal(sol.policy, res.sigma)
        assert sol.iterations == res.num_iter
    res = ddp.solve(method="policy_iteration")
    np.testing.assert_allclose(rl.policy_iteration(P, R, gamma, eval_tol=1e-12).V, res.v, atol=1e-8)


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "Taxi-v4"])
def test_gymnasium_solved_by_vi_pi_mpi_to_the_same_policy(env_id):
    gym = import_peer("gymnasium")
    env = gym.make(env_id, map_name="8x8") if env_id == "FrozenLake-v1" else gym.make(env_id)
    P, R = rl.from_gymnasium(env)
    S, A = R.shape
    assert P.shape == (S, A, S) and np.all(P.sum(-1) <= 1 + 1e-12)
    gamma = 0.99
    vi = rl.value_iteration(P, R, gamma, tol=1e-10)
    pi = rl.policy_iteration(P, R, gamma, eval_tol=1e-12)
    mpi = rl.modified_policy_iteration(P, R, gamma, tol=1e-10)
    assert vi.converged and pi.converged and mpi.converged
    np.testing.assert_allclose(pi.V, vi.V, atol=1e-8)
    np.testing.assert_allclose(mpi.V, vi.V, atol=1e-8)
    np.testing.assert_array_equal(vi.policy, mpi.policy)
    # PI keeps its action on an exact tie (FrozenLake's symmetric states have some), so compare
    # with the exact optimal Q: every policy is greedy, and they agree wherever the best is unique
    P_pi = P[np.arange(S), pi.policy]
    v_star = np.linalg.solve(np.eye(S) - gamma * P_pi, R[np.arange(S), pi.policy])
    Q = rl.q_values(P, R, v_star, gamma)
    gap = np.sort(Q, -1)[:, -1] - np.sort(Q, -1)[:, -2]
    unique = gap > 1e-9
    for sol in (vi, pi, mpi):
        np.testing.assert_allclose(Q[np.arange(S), sol.policy], Q.max(-1), atol=1e-9)
        np.testing.assert_array_equal(sol.policy[unique], vi.policy[unique])
    assert unique.mean() >= 0.5  # ties: terminal states (all actions 0) and symmetric ones
    # the same from the sparse form
    sp = pytest.importorskip("scipy.sparse")
    Psp = rl.SparseTransitions.from_scipy(sp.csr_matrix(P.reshape(S * A, S)), A)
    sparse_vi = rl.value_iteration(Psp, R, gamma, tol=1e-10)
    np.testing.assert_allclose(sparse_vi.V, vi.V, atol=1e-10)
    np.testing.assert_array_equal(sparse_vi.policy[unique], vi.policy[unique])


def test_from_gymnasium_accumulates_duplicates_and_drops_terminated_mass():
    class Space:
        def __init__(self, n):
            self.n = n

    class Toy:
        observation_space, action_space = Space(2), Space(1)
        P = {0: {0: [(0.25, 1, 1.0, False), (0.25, 1, 1.0, False), (0.5, 0, 10.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}

    P, R = rl.from_gymnasium(Toy())
    np.testing.assert_allclose(P[0, 0], [0.0, 0.5])
    np.testing.assert_allclose(P[1, 0], [0.0, 0.0])
    np.testing.assert_allclose(R[:, 0], [5.5, 0.0])


# ------------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_threads_or_simd_level(dtype, rng):
    P, R = random_mdp(rng, 300, 4, dtype=dtype)
    P2, R2 = random_mdp(rng, 16, 3, (64,), dtype=dtype)
    V = rng.standard_normal(300).astype(dtype)

    def run():
        return (rl.bellman_optimality_backup(P, R, V, 0.9)[0], rl.q_values(P, R, V, 0.9),
                rl.value_iteration(P, R, 0.9, tol=1e-4).V, rl.value_iteration(P2, R2, 0.9, tol=1e-4).V,
                rl.modified_policy_iteration(P2, R2, 0.9).V)

    assert_same_bits_at_any_thread_count_and_simd_level(run)


def test_numpy_inputs_are_not_copied_when_they_fit(rng):
    from nimbleops import _arrays as ar

    P, _ = random_mdp(rng, 3, 2)
    assert ar.to_array(P, "P", ar.Kind(), "float64") is P
    assert ar.to_array(P[::2], "P", ar.Kind(), "float64") is not P


def test_torch_in_torch_out_and_numpy_mixed(rng):
    torch = pytest.importorskip("torch")
    P, R = random_mdp(rng, 5, 3)
    V = np.zeros(5)
    V_new, pol = rl.bellman_optimality_backup(torch.from_numpy(P).float(), R, V, 0.9)
    assert isinstance(V_new, torch.Tensor) and V_new.dtype == torch.float32 and pol.dtype == torch.int64
    sol = rl.value_iteration(torch.from_numpy(P), torch.from_numpy(R), 0.9)
    assert isinstance(sol.V, torch.Tensor) and isinstance(sol.iterations, int)
    non_contig = torch.from_numpy(np.ascontiguousarray(np.swapaxes(P, 0, 2))).transpose(0, 2)
    assert not non_contig.is_contiguous()
    np.testing.assert_allclose(rl.q_values(non_contig, R, V, 0.9).numpy(), ref.q_values(P, R, V, 0.9))


def test_batched_results_have_batch_shaped_statistics(rng):
    P, R = random_mdp(rng, 6, 2, (2, 3))
    sol = rl.value_iteration(P, R, 0.9, max_iter=5)
    assert sol.V.shape == (2, 3, 6) and sol.policy.shape == (2, 3, 6)
    assert sol.iterations.shape == (2, 3) and np.all(sol.iterations == 5) and not sol.converged.any()


def test_max_iter_is_honoured_and_gamma_zero_stops_at_once(rng):
    P, R = random_mdp(rng, 10, 3, leak=0.0)
    sol = rl.value_iteration(P, R, 0.999, tol=1e-12, max_iter=7)
    assert sol.iterations == 7 and not sol.converged
    sol = rl.value_iteration(P, R, 0.0)
    assert sol.iterations == 1 and sol.converged
    np.testing.assert_allclose(sol.V, R.max(-1))


def test_mdp_with_no_termination_and_gamma_one_raises_not_hangs(rng):
    P, R = random_mdp(rng, 4, 2, leak=0.0)
    for fn in (rl.value_iteration, rl.policy_iteration, rl.modified_policy_iteration):
        with pytest.raises(ValueError, match="gamma"):
            fn(P, R, 1.0)
    with pytest.raises(ValueError, match="gamma"):
        rl.policy_evaluation(P, R, 1.0, np.zeros(4, dtype=np.int64))
    assert rl.finite_horizon(P, R, 1.0, 3).V.shape == (4, 4)


# ------------------------------------------------------------------------------- bad input


def changed(x, index, value):
    """A copy of x with x[index] = value."""
    y = x.copy()
    y[index] = value
    return y


# (case, call(P [4, 3, 4], R [4, 3], V [4]), exception, message)
BAD_INPUT = [
    ("P shape", lambda P, R, V: rl.q_values(P[..., :3], R, V, 0.9), ValueError, r"P: expected shape \[..., S, A, S\]"),
    ("R shape", lambda P, R, V: rl.q_values(P, R[:, :2], V, 0.9), ValueError, "R: expected shape"),
    ("V shape", lambda P, R, V: rl.q_values(P, R, np.zeros(5), 0.9), ValueError, "V: expected shape"),
    ("complex P", lambda P, R, V: rl.q_values(P.astype(complex), R, V, 0.9), TypeError, "P: expected a real-valued"),
    ("string R", lambda P, R, V: rl.q_values(P, R.astype(str), V, 0.9), TypeError, "R: expected a real-valued array"),
    ("negative probability", lambda P, R, V: rl.q_values(changed(P, (0, 0, 0), -0.1), R, V, 0.9),
     ValueError, r"P: expected finite probabilities in \[0, 1\]"),
    ("probability above 1", lambda P, R, V: rl.q_values(changed(P, (0, 0, 0), 1.5), R, V, 0.9),
     ValueError, r"P: expected finite probabilities in \[0, 1\]"),
    ("nan probability", lambda P, R, V: rl.q_values(changed(P, (0, 0, 0), np.nan), R, V, 0.9),
     ValueError, r"P: expected finite probabilities in \[0, 1\]"),
    ("row sum above 1", lambda P, R, V: rl.value_iteration(changed(P, (1, 2), 0.5), R, 0.9),
     ValueError, "sum to at most 1"),
    ("nan reward", lambda P, R, V: rl.value_iteration(P, changed(R, (0, 0), np.nan), 0.9),
     ValueError, "R: expected rewards without nan"),
    ("+inf reward, unchecked", lambda P, R, V: rl.value_iteration(P, changed(R, (0, 0), np.inf), 0.9, check=False),
     ValueError, r"\+inf"),
    ("state without a feasible action", lambda P, R, V: rl.value_iteration(P, changed(R, 0, -np.inf), 0.9),
     ValueError, "at least one feasible action"),
    ("gamma -0.1", lambda P, R, V: rl.value_iteration(P, R, -0.1), ValueError, "gamma"),
    ("gamma 1 in a solver", lambda P, R, V: rl.value_iteration(P, R, 1.0), ValueError, "gamma"),
    ("gamma 2", lambda P, R, V: rl.value_iteration(P, R, 2.0), ValueError, "gamma"),
    ("gamma 1.5 in a backup", lambda P, R, V: rl.q_values(P, R, V, 1.5), ValueError, "gamma"),
    ("gamma a string", lambda P, R, V: rl.q_values(P, R, V, "0.9"), TypeError, "gamma"),
    ("stop", lambda P, R, V: rl.value_iteration(P, R, 0.9, stop="l2"), ValueError, "stop"),
    ("tol 0", lambda P, R, V: rl.value_iteration(P, R, 0.9, tol=0), ValueError, "tol"),
    ("max_iter 0", lambda P, R, V: rl.value_iteration(P, R, 0.9, max_iter=0), ValueError, "max_iter"),
    ("max_iter 1.5", lambda P, R, V: rl.value_iteration(P, R, 0.9, max_iter=1.5), TypeError, "max_iter"),
    ("policy action out of range", lambda P, R, V: rl.bellman_expectation_backup(P, R, V, 0.9, np.array([0, 1, 3, 0])),
     IndexError, r"policy: actions must lie in \[0, 3\)"),
    ("policy0 action out of range", lambda P, R, V: rl.policy_iteration(P, R, 0.9, policy0=np.array([0, -1, 0, 0])),
     IndexError, "policy0"),
    ("float policy [S]", lambda P, R, V: rl.bellman_expectation_backup(P, R, V, 0.9, np.zeros(4)),
     ValueError, r"policy: expected int actions \[4\] or probabilities \[4, 3\]"),
    ("float policy0", lambda P, R, V: rl.policy_iteration(P, R, 0.9, policy0=np.zeros(4)),
     TypeError, "policy0: expected integer actions"),
    ("policy rows not summing to 1", lambda P, R, V: rl.bellman_expectation_backup(P, R, V, 0.9, np.full((4, 3), 0.5)),
     ValueError, "sum to 1"),
    ("policy taking an infeasible action", lambda P, R, V: rl.bellman_expectation_backup(
        P, changed(R, (2, 1), -np.inf), V, 0.9, np.array([0, 0, 1, 0])), ValueError, "infeasible"),
    ("stochastic policy on an infeasible action", lambda P, R, V: rl.bellman_expectation_backup(
        P, changed(R, (2, 1), -np.inf), V, 0.9, np.full((4, 3), 1 / 3)), ValueError, "infeasible"),
    ("batch shapes", lambda P, R, V: rl.q_values(np.stack([P, P]), np.stack([R, R, R]), np.zeros((2, 4)), 0.9),
     ValueError, "batch shape"),
]


@pytest.mark.parametrize("call, exc, match", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_errors(call, exc, match):
    P, R = random_mdp(np.random.default_rng(1234), 4, 3)
    with pytest.raises(exc, match=match):
        call(P, R, np.zeros(4))


def test_unchecked_call_trusts_the_caller(rng):
    P, R = random_mdp(rng, 4, 3)
    rl.q_values(changed(P, (1, 2), 0.5), R, np.zeros(4), 0.9, check=False)  # rows summing above 1: not checked


def test_bad_sparse_input_errors():
    indptr = np.array([0, 1, 2, 3, 4])
    with pytest.raises(IndexError, match=r"indices: next state 2 is out of range \[0, 2\)"):
        rl.SparseTransitions(indptr, np.array([0, 1, 2, 0]), np.ones(4), 2, 2)
    with pytest.raises(ValueError, match="indptr: expected shape"):
        rl.SparseTransitions(indptr[:-1], np.array([0, 1, 1, 0]), np.ones(4), 2, 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        rl.SparseTransitions(np.array([0, 2, 1, 3, 4]), np.array([0, 1, 1, 0]), np.ones(4), 2, 2)
    with pytest.raises(ValueError, match="indptr"):
        rl.SparseTransitions(np.array([0, 1, 2, 3, 3]), np.array([0, 1, 1, 0]), np.ones(4), 2, 2)
    with pytest.raises(ValueError, match="sum to at most 1"):
        rl.SparseTransitions(np.array([0, 2, 3, 4, 4]), np.array([0, 0, 1, 0]), np.ones(4), 2, 2)
    with pytest.raises(ValueError, match=r"data: expected finite probabilities in \[0, 1\]"):
        rl.SparseTransitions(indptr, np.array([0, 1, 1, 0]), -np.ones(4), 2, 2)
    with pytest.raises(ValueError, match=r"data: expected finite probabilities in \[0, 1\]"):
        rl.SparseTransitions(indptr, np.array([0, 1, 1, 0]), np.full(4, np.nan), 2, 2)
    with pytest.raises(TypeError, match="indices: expected an integer array"):
        rl.SparseTransitions(indptr, np.zeros(4), np.ones(4), 2, 2)
    P = rl.SparseTransitions(indptr, np.array([0, 1, 1, 0]), np.full(4, 0.5), 2, 2)
    with pytest.raises(ValueError, match="sparse transitions take expected rewards"):
        rl.q_values(P, np.zeros((2, 2, 2)), np.zeros(2), 0.9)
    with pytest.raises(ValueError, match="R: expected shape"):
        rl.q_values(P, np.zeros((3, 2)), np.zeros(2), 0.9)
    assert not P.indices.flags.writeable  # validated arrays stay valid
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="matrix: expected shape"):
        rl.SparseTransitions.from_scipy(sp.csr_matrix(np.eye(3)), 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_csr_row_sums_match_numpy(rng, dtype):
    """The C++ row sums behind the sparse checks and the leaky-MDP rule: smallest and largest row
    sum (empty rows sum to 0), the lowest row at the largest, the first value outside [0, 1]."""
    from nimbleops import _C
    from nimbleops import _arrays as ar

    lengths = rng.integers(0, 5, 3000)
    lengths[[5, 17]] = 0
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = rng.random(indptr[-1]).astype(dtype) / 2
    sums = np.add.reduceat(data.astype(np.float64), indptr[:-1]) * (lengths > 0)
    lo, hi, row, bad = _C.rl.csr_row_sums(ar.view(indptr), ar.view(data))
    assert lo == 0.0 and bad == data.size
    assert hi == pytest.approx(sums.max(), rel=1e-12) and row == int(sums.argmax())
    data[[7, 9]] = [np.nan, -0.5]
    assert _C.rl.csr_row_sums(ar.view(indptr), ar.view(data))[3] == 7
    assert _C.rl.csr_row_sums(ar.view(np.zeros(1, np.int64)), ar.view(data[:0]))[3] == 0


def test_sparse_duplicates_add_up():
    P = rl.SparseTransitions(np.array([0, 2, 3]), np.array([1, 1, 0]), np.array([0.25, 0.5, 1.0]), 2, 1)
    np.testing.assert_allclose(P.to_dense()[0, 0], [0.0, 0.75])
    np.testing.assert_allclose(rl.q_values(P, np.zeros((2, 1)), np.array([0.0, 4.0]), 1.0)[:, 0], [3.0, 0.0])


def _exact_values(P, R, policy, gamma):
    S = P.shape[0]
    Pp, Rp = P[np.arange(S), policy], R[np.arange(S), policy]
    return np.linalg.solve(np.eye(S) - gamma * Pp, Rp)


@pytest.mark.parametrize("solver", ["mpi", "vi_span"])
def test_leaky_rows_use_the_sup_rule(solver):
    """Rows that sum to less than 1 (a probability of ending) break the span rule: with identical
    rows the span of u - v is 0 at once, and the midrange step then lands away from V* (6% here,
    'converged'). Such MDPs stop on the sup rule."""
    P = np.array([[[0.33, 0.61]], [[0.33, 0.61]]])  # rows sum to 0.94, identical
    R = np.array([[0.03], [0.55]])
    stochastic = np.array([[[0.3, 0.7]], [[0.3, 0.7]]])
    gamma = 0.9375
    run = (lambda P_, R_: rl.modified_policy_iteration(P_, R_, gamma, tol=1e-9)) if solver == "mpi" else \
        (lambda P_, R_: rl.value_iteration(P_, R_, gamma, tol=1e-9, stop="span"))
    want = _exact_values(P, R, np.zeros(2, int), gamma)
    np.testing.assert_allclose(run(P, R).V, want, rtol=1e-7)
    np.testing.assert_allclose(ref.modified_policy_iteration(P, R, gamma, tol=1e-9).V if solver == "mpi" else
                               ref.value_iteration(P, R, gamma, tol=1e-9, stop="span").V, want, rtol=1e-7)
    batch = run(np.stack([P, stochastic]), np.stack([R, R]))  # one leaky, one not: each its own rule
    np.testing.assert_allclose(batch.V[0], want, rtol=1e-7)
    np.testing.assert_allclose(batch.V[1], _exact_values(stochastic, R, np.zeros(2, int), gamma), rtol=1e-6)
    sparse = rl.SparseTransitions(np.array([0, 2, 4]), np.array([0, 1, 0, 1]), P.reshape(-1), 2, 1)
    np.testing.assert_allclose(run(sparse, R).V, want, rtol=1e-7)


@pytest.mark.parametrize("shape", [(600, 4), (1, 40, 6), (64, 8, 3), (32, 16, 4)])  # (S, A) or (B, S, A)
@pytest.mark.parametrize("defect", ["negative", "nan", "above_one", "row_sum"])
@pytest.mark.parametrize("op", ["q_values", "optimality", "expectation"])
def test_the_check_inside_the_sweep_reports_the_first_bad_row(shape, defect, op):
    """The default check of the operators runs inside their sweep (dense CPU): the same errors,
    naming the lowest bad row whatever the thread count, and nothing returned."""
    rng = np.random.default_rng(7)
    batch, (S, A) = shape[:-2], shape[-2:]
    P, R = random_mdp(rng, S, A, batch)
    V = rng.standard_normal(batch + (S,))
    rows = P.reshape(-1, S)
    first, later = rows.shape[0] // 3, 2 * rows.shape[0] // 3
    for row in (later, first):  # two defects: the lowest one is named
        if defect == "negative":
            rows[row, 0] = -0.25
        elif defect == "nan":
            rows[row, 1 % S] = np.nan
        elif defect == "above_one":
            rows[row, 0] = 1.5
        else:
            rows[row] *= 1.2 / rows[row].sum()
    call = {"q_values": lambda: rl.q_values(P, R, V, 0.9),
            "optimality": lambda: rl.bellman_optimality_backup(P, R, V, 0.9),
            "expectation": lambda: rl.bellman_expectation_backup(P, R, V, 0.9, np.zeros(batch + (S,), int))}[op]
    match = f"row {first} sums to" if defect == "row_sum" else f"row {first} \\(flat state-action index\\) has a value"
    threads = nimbleops.get_num_threads()
    try:
        for n in (1, 2, 3):
            nimbleops.set_num_threads(n)
            with pytest.raises(ValueError, match=f"^P: expected .*{match}"):
                call()
    finally:
        nimbleops.set_num_threads(threads)


@pytest.mark.parametrize("op", ["q_values", "optimality_backup"])
def test_the_plain_binding_takes_the_common_call_and_declines_the_rest(op, monkeypatch):
    """``_C.rl.bellman_plain`` (one binding call reading the arrays in C++) gives the general
    path's results and errors for the common call, and answers None for every other call."""
    from nimbleops import _C
    from nimbleops.rl import bellman

    rng = np.random.default_rng(9)
    P, R = random_mdp(rng, 6, 3, (2,), infeasible=0.2)
    V = rng.standard_normal((2, 6))
    public = {"q_values": rl.q_values, "optimality_backup": rl.bellman_optimality_backup}[op]

    def general(*args, **kw):
        with monkeypatch.context() as m:
            m.setattr(_C.rl, "bellman_plain", lambda *_: None)
            return public(*args, **kw)

    def plain(P, R, V, gamma=0.9, check=True):
        return _C.rl.bellman_plain(op, P, R, V, gamma, check, *bellman.ROW_SUM_TOL.values())

    for make, back in HOST_KINDS:
        for dtype in ("float32", "float64"):
            args = [make(x.astype(dtype)) for x in (P, R, V)]
            got, want = plain(*args), general(*args, 0.9)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                assert type(g) is type(w)
                np.testing.assert_array_equal(back(g), back(w))
        args = [make(x.copy()) for x in (P, R, V)]
        for bad, match in ((0, "P: expected"), (1, "R: expected rewards without nan")):
            broken = [back(a).copy() for a in args]
            broken[bad].reshape(-1)[7] = np.nan
            broken = [make(x) for x in broken]
            with pytest.raises(ValueError, match=match) as from_plain:
                plain(*broken)
            with pytest.raises(ValueError) as from_general:
                general(*broken, 0.9)
            assert str(from_plain.value) == str(from_general.value)
        declined = [
            dict(P=make(P.astype("float32"))), dict(V=make(V[:1])), dict(R=make(R[0])),  # R broadcast
            dict(R=make(np.broadcast_to(R[..., None], P.shape).copy())),  # R [..., S, A, S]
            dict(P=make(P[..., :5])), dict(gamma=1.5), dict(gamma=np.float64(0.9)), dict(check=1),
            dict(P=make(np.stack([P] * 2, -1)[..., 0])),  # not contiguous
        ]
        if torch is not None:
            declined.append(dict(V=torch.from_numpy(V) if make is not torch.from_numpy else V))
        for change in declined:
            assert plain(**{**dict(P=args[0], R=args[1], V=args[2]), **change}) is None, change


@pytest.mark.parametrize("shape", [(600, 4), (64, 8, 3), (32, 16, 4)])
def test_the_check_inside_the_sweep_changes_no_result(shape):
    rng = np.random.default_rng(8)
    batch, (S, A) = shape[:-2], shape[-2:]
    P, R = random_mdp(rng, S, A, batch)
    V = rng.standard_normal(batch + (S,))
    for f in (lambda c: rl.q_values(P, R, V, 0.9, check=c),
              lambda c: rl.bellman_optimality_backup(P, R, V, 0.9, check=c),
              lambda c: rl.bellman_expectation_backup(P, R, V, 0.9, np.ones(batch + (S,), int), check=c)):
        checked, unchecked = f(True), f(False)
        checked = checked if isinstance(checked, tuple) else (checked,)
        unchecked = unchecked if isinstance(unchecked, tuple) else (unchecked,)
        for a, b in zip(checked, unchecked):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [8, 16, 24, 32, 64])
@pytest.mark.parametrize("A", [1, 3, 4, 5, 8, 129])
def test_short_rows_folded_together_give_each_row_its_own_bits(dtype, S, A):
    """The optimality backup folds the rows of short MDPs (S of 8 to 64) several at a time; every
    q value keeps the bits of q_values' one-row fold, with and without the check, at every thread
    count and SIMD level, and ties still go to the lowest action."""
    rng = np.random.default_rng(S * 1000 + A)
    B = 3 if A > 8 else 40
    P, R = random_mdp(rng, S, A, (B,), density=0.5, infeasible=0.2)
    P, R = P.astype(dtype), R.astype(dtype)
    R[:, ::3, :] = 0.5  # tied actions in every third state
    P[:, ::3] = P[:, ::3, :1]
    V = rng.standard_normal((B, S)).astype(dtype)
    Q = rl.q_values(P, R, V, 0.9)
    for check in (True, False):
        V_new, pol = rl.bellman_optimality_backup(P, R, V, 0.9, check=check)
        np.testing.assert_array_equal(V_new, Q.max(-1))
        np.testing.assert_array_equal(pol, Q.argmax(-1))
    assert_same_bits_at_any_thread_count_and_simd_level(lambda: rl.bellman_optimality_backup(P, R, V, 0.9))


@pytest.mark.parametrize("S", [16, 600])
def test_the_check_inside_the_sweep_passes_negative_zero_and_exact_ones(S):
    """-0 is a valid probability and 1 the largest one: the in-sweep check's fast test (on the
    values' bits) counts -0 as outside, so such rows are re-read by the exact check, which passes
    them; deterministic rows of exact ones pass at once."""
    rng = np.random.default_rng(9)
    P = np.zeros((4, S, 3, S))
    P[..., 0] = 1.0
    P[1, 2, 1] = -0.0
    R = rng.standard_normal((4, S, 3))
    V = rng.standard_normal((4, S))
    want = rl.bellman_optimality_backup(P, R, V, 0.9, check=False)
    for got, expected in zip(rl.bellman_optimality_backup(P, R, V, 0.9), want):
        np.testing.assert_array_equal(got, expected)
    P[2, 1, 2, 3] = -1e-300
    with pytest.raises(ValueError, match=f"row {(2 * S + 1) * 3 + 2} \\(flat state-action index\\) has a value"):
        rl.bellman_optimality_backup(P, R, V, 0.9)


@pytest.mark.parametrize("op", ["q_values", "optimality", "expectation", "value_iteration", "policy_evaluation",
                                "policy_iteration", "modified_policy_iteration", "finite_horizon"])
def test_plain_cpu_tensors_numpy_and_the_torch_path_agree(op, rng):
    """Plain CPU tensors run the numpy path on their memory; a tensor subclass (a Parameter that
    does not require grad) takes the torch path: the same bits, tensors out, a policy evaluated
    returned as given."""
    torch = pytest.importorskip("torch")
    P, R = random_mdp(rng, 12, 3, (2,))
    V = rng.standard_normal((2, 12))
    pol = rng.integers(0, 3, (2, 12))
    call = {
        "q_values": lambda P, R, V, pol: rl.q_values(P, R, V, 0.9),
        "optimality": lambda P, R, V, pol: rl.bellman_optimality_backup(P, R, V, 0.9),
        "expectation": lambda P, R, V, pol: rl.bellman_expectation_backup(P, R, V, 0.9, pol),
        "value_iteration": lambda P, R, V, pol: rl.value_iteration(P, R, 0.9, V0=V, stop="span"),
        "policy_evaluation": lambda P, R, V, pol: rl.policy_evaluation(P, R, 0.9, pol),
        "policy_iteration": lambda P, R, V, pol: rl.policy_iteration(P, R, 0.9, policy0=pol),
        "modified_policy_iteration": lambda P, R, V, pol: rl.modified_policy_iteration(P, R, 0.9, k=5),
        "finite_horizon": lambda P, R, V, pol: rl.finite_horizon(P, R, 0.9, 4, terminal_values=V),
    }[op]

    def arrays(out):
        if isinstance(out, tuple):
            return list(out)
        if hasattr(out, "policy"):
            return [out.V, out.policy]
        return [out]

    want = arrays(call(P, R, V, pol))
    plain = [torch.from_numpy(x) for x in (P, R, V, pol)]
    subclass = plain[:1] + [torch.nn.Parameter(plain[1], requires_grad=False)] + plain[2:]
    for args in (plain, subclass):
        out = call(*args)
        got = arrays(out)
        for g, w in zip(got, want):
            assert isinstance(g, torch.Tensor)
            np.testing.assert_array_equal(g.detach().numpy(), w)
        if op == "policy_evaluation":
            assert out.policy is args[3]
