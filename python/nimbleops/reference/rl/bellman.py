"""Reference Bellman backups and tabular MDP solvers: loops over states, actions, successors.

Same names, signatures and semantics as :mod:`nimbleops.rl` (see its docstrings). Only for
small MDPs: every sum is a Python loop. Accepts dense ``P [..., S, A, S]`` or a
:class:`nimbleops.rl.SparseTransitions`; numpy in, numpy out (float64 math).
"""
from __future__ import annotations

import math

import numpy as np

from ...rl.bellman import FiniteHorizonSolution, MDPSolution
from ...rl.mdp import SparseTransitions

NEG_INF = float("-inf")


def _successors(P):
    """For each MDP in the batch: succ[s][a] = list of (next_state, probability)."""
    if isinstance(P, SparseTransitions):
        S, A = P.num_states, P.num_actions
        succ = [[[] for _ in range(A)] for _ in range(S)]
        for s in range(S):
            for a in range(A):
                row = s * A + a
                for k in range(P.indptr[row], P.indptr[row + 1]):
                    succ[s][a].append((int(P.indices[k]), float(P.data[k])))
        return (), [succ]
    P = np.asarray(P, dtype=float)
    batch, S, A = P.shape[:-3], P.shape[-3], P.shape[-2]
    models = []
    for P1 in P.reshape((-1, S, A, S)):
        models.append([[[(t, P1[s, a, t]) for t in range(S) if P1[s, a, t] != 0] for a in range(A)] for s in range(S)])
    return batch, models


def _rewards(P, R, batch, S, A):
    """Expected rewards [B, S, A]; R [..., S, A, S] is reduced with P (P = 0 contributes nothing)."""
    R = np.asarray(R, dtype=float)
    if R.ndim == len(batch) + 3:
        P = np.asarray(P, dtype=float)
        out = np.zeros(batch + (S, A))
        for idx in np.ndindex(*batch, S, A):
            total = 0.0
            for t in range(S):
                if P[idx][t] > 0:
                    total += P[idx][t] * R[idx][t]
            out[idx] = total
        R = out
    return np.broadcast_to(R, batch + (S, A)).reshape(-1, S, A)


def _setup(P, R):
    batch, models = _successors(P)
    S = len(models[0])
    A = len(models[0][0])
    return batch, models, _rewards(P, R, batch, S, A), S, A


def _leaky(succ):
    """Whether some row of this MDP sums to less than 1 (beyond 1e-5): the span stopping rule and
    its midrange step then do not hold, and the solvers use the sup rule."""
    return any(sum(p for _, p in row) < 1 - 1e-5 for rows in succ for row in rows)


def _q(succ, R, V, gamma, s, a):
    if R[s, a] == NEG_INF:
        return NEG_INF
    expected = 0.0
    for t, p in succ[s][a]:
        expected += p * V[t]
    return R[s, a] + gamma * expected


def _greedy(succ, R, V, gamma, s):
    """(max_a q, lowest maximising a)."""
    best, arg = NEG_INF, 0
    for a in range(len(succ[s])):
        q = _q(succ, R, V, gamma, s, a)
        if q > best:
            best, arg = q, a
    return best, arg


def _expected(succ, R, V, gamma, s, policy_s):
    if np.ndim(policy_s) == 0:
        return _q(succ, R, V, gamma, s, int(policy_s))
    return sum(p * _q(succ, R, V, gamma, s, a) for a, p in enumerate(policy_s) if p > 0)


def q_values(P, R, V, gamma, *, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    V = np.asarray(V, dtype=float).reshape(-1, S)
    Q = np.zeros((len(models), S, A))
    for b, succ in enumerate(models):
        for s in range(S):
            for a in range(A):
                Q[b, s, a] = _q(succ, Rb[b], V[b], gamma, s, a)
    return Q.reshape(batch + (S, A))


def bellman_optimality_backup(P, R, V, gamma, *, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    V = np.asarray(V, dtype=float).reshape(-1, S)
    V_new = np.zeros((len(models), S))
    policy = np.zeros((len(models), S), dtype=np.int64)
    for b, succ in enumerate(models):
        for s in range(S):
            V_new[b, s], policy[b, s] = _greedy(succ, Rb[b], V[b], gamma, s)
    return V_new.reshape(batch + (S,)), policy.reshape(batch + (S,))


def greedy_policy(P, R, V, gamma, *, check=True):
    return bellman_optimality_backup(P, R, V, gamma)[1]


def bellman_expectation_backup(P, R, V, gamma, policy, *, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    V = np.asarray(V, dtype=float).reshape(-1, S)
    policy = np.asarray(policy)
    policy = policy.reshape((-1, S) + policy.shape[len(batch) + 1 :])
    V_new = np.zeros((len(models), S))
    for b, succ in enumerate(models):
        for s in range(S):
            V_new[b, s] = _expected(succ, Rb[b], V[b], gamma, s, policy[b, s])
    return V_new.reshape(batch + (S,))


def _finish(batch, V, policy, iterations, residual, converged):
    S = V.shape[-1]
    if batch == ():
        return MDPSolution(V[0], policy[0], int(iterations[0]), float(residual[0]), bool(converged[0]))
    return MDPSolution(
        V.reshape(batch + (S,)),
        policy.reshape(batch + policy.shape[1:]),
        np.array(iterations).reshape(batch),
        np.array(residual).reshape(batch),
        np.array(converged).reshape(batch),
    )


def value_iteration(P, R, gamma, *, tol=1e-6, max_iter=10_000, V0=None, stop="sup", gauss_seidel=False, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    if gamma > 0:
        threshold = tol * (1 - gamma) / (2 * gamma) if stop == "sup" else tol * (1 - gamma) / gamma
    else:
        threshold = math.inf
    V_all = np.zeros((len(models), S)) if V0 is None else np.array(V0, dtype=float).reshape(-1, S)
    policy = np.zeros((len(models), S), dtype=np.int64)
    iterations, residual, converged = [], [], []
    for b, succ in enumerate(models):
        V = V_all[b].copy()
        it, res, done = 0, math.nan, False
        rule = "sup" if stop == "span" and _leaky(succ) else stop
        threshold_b = threshold if rule == stop else (tol * (1 - gamma) / (2 * gamma) if gamma > 0 else math.inf)
        while it < max_iter and not done:
            it += 1
            new = V if gauss_seidel else V.copy()
            diffs = []
            for s in range(S):
                value, _ = _greedy(succ, Rb[b], V, gamma, s)
                diffs.append(value - V[s])
                new[s] = value
            V = new
            res = max(abs(d) for d in diffs) if rule == "sup" else max(diffs) - min(diffs)
            done = res < threshold_b
            if done and rule == "span" and gamma > 0:  # midrange correction
                V = V + (max(diffs) + min(diffs)) / 2 * gamma / (1 - gamma)
        for s in range(S):
            policy[b, s] = _greedy(succ, Rb[b], V, gamma, s)[1]
        V_all[b] = V
        iterations.append(it)
        residual.append(res)
        converged.append(done)
    return _finish(batch, V_all, policy, iterations, residual, converged)


def policy_evaluation(P, R, gamma, policy, *, tol=1e-6, max_iter=10_000, V0=None, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    threshold = tol * (1 - gamma) / gamma if gamma > 0 else math.inf
    policy = np.asarray(policy)
    policy = policy.reshape((-1, S) + policy.shape[len(batch) + 1 :])
    V_all = np.zeros((len(models), S)) if V0 is None else np.array(V0, dtype=float).reshape(-1, S)
    iterations, residual, converged = [], [], []
    for b, succ in enumerate(models):
        V = V_all[b].copy()
        it, res, done = 0, math.nan, False
        while it < max_iter and not done:
            it += 1
            new = np.array([_expected(succ, Rb[b], V, gamma, s, policy[b, s]) for s in range(S)])
            res = float(np.max(np.abs(new - V)))
            V = new
            done = res < threshold
        V_all[b] = V
        iterations.append(it)
        residual.append(res)
        converged.append(done)
    return _finish(batch, V_all, policy, iterations, residual, converged)


def policy_iteration(P, R, gamma, *, policy0=None, eval_tol=1e-8, eval_max_iter=100_000, max_iter=1_000, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    if policy0 is None:
        policy_all = bellman_optimality_backup(P, R, np.zeros(batch + (S,)), gamma)[1].reshape(-1, S).copy()
    else:
        policy_all = np.array(policy0, dtype=np.int64).reshape(-1, S)
    threshold = eval_tol * (1 - gamma) / gamma if gamma > 0 else math.inf
    V_all = np.zeros((len(models), S))
    iterations, residual, converged = [], [], []
    for b, succ in enumerate(models):
        V, pol = V_all[b].copy(), policy_all[b]
        it, res, done = 0, math.nan, False
        while it < max_iter and not done:
            it += 1
            for _ in range(eval_max_iter):  # evaluate, warm-started
                new = np.array([_q(succ, Rb[b], V, gamma, s, pol[s]) for s in range(S)])
                change = float(np.max(np.abs(new - V)))
                V = new
                if change < threshold:
                    break
            switched, res = 0, 0.0
            for s in range(S):  # improve: switch only to a strictly better action
                best, arg = _greedy(succ, Rb[b], V, gamma, s)
                if best > _q(succ, Rb[b], V, gamma, s, pol[s]):
                    pol[s] = arg
                    switched += 1
                res = max(res, abs(best - V[s]))
            done = switched == 0
        V_all[b] = V
        iterations.append(it)
        residual.append(res)
        converged.append(done)
    return _finish(batch, V_all, policy_all, iterations, residual, converged)


def modified_policy_iteration(P, R, gamma, *, k=20, tol=1e-6, max_iter=10_000, V0=None, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    threshold = tol * (1 - gamma) / gamma if gamma > 0 else math.inf
    if V0 is None:
        V_all = np.array([[Rb[b][Rb[b] > NEG_INF].min() / (1 - gamma)] * S for b in range(len(models))])
    else:
        V_all = np.array(V0, dtype=float).reshape(-1, S)
    policy = np.zeros((len(models), S), dtype=np.int64)
    iterations, residual, converged = [], [], []
    for b, succ in enumerate(models):
        v = V_all[b].copy()
        it, res, done = 0, math.nan, False
        leaky = _leaky(succ)
        while it < max_iter and not done:
            it += 1
            u = np.zeros(S)
            for s in range(S):
                u[s], policy[b, s] = _greedy(succ, Rb[b], v, gamma, s)
            diff = u - v
            if leaky:  # the sup rule, and u as it is
                res = float(np.abs(diff).max())
                if res < (threshold / 2):
                    v, done = u, True
                    break
                for _ in range(k):
                    u = np.array([_q(succ, Rb[b], u, gamma, s, policy[b, s]) for s in range(S)])
                v = u
                continue
            res = float(diff.max() - diff.min())
            if res < threshold:
                v = u + (diff.max() + diff.min()) / 2 * gamma / (1 - gamma)
                done = True
                break
            for _ in range(k):
                u = np.array([_q(succ, Rb[b], u, gamma, s, policy[b, s]) for s in range(S)])
            v = u
        V_all[b] = v
        iterations.append(it)
        residual.append(res)
        converged.append(done)
    return _finish(batch, V_all, policy, iterations, residual, converged)


def finite_horizon(P, R, gamma, horizon, *, terminal_values=None, check=True):
    batch, models, Rb, S, A = _setup(P, R)
    B = len(models)
    V = np.zeros((horizon + 1, B, S))
    if terminal_values is not None:
        V[horizon] = np.asarray(terminal_values, dtype=float).reshape(B, S)
    policy = np.zeros((horizon, B, S), dtype=np.int64)
    for t in range(horizon - 1, -1, -1):
        for b, succ in enumerate(models):
            for s in range(S):
                V[t, b, s], policy[t, b, s] = _greedy(succ, Rb[b], V[t + 1, b], gamma, s)
    return FiniteHorizonSolution(V.reshape((horizon + 1,) + batch + (S,)), policy.reshape((horizon,) + batch + (S,)))
