"""Reference Bellman backups and tabular MDP solvers: loops over states, actions, successors.

Same names, signatures and semantics as :mod:`nimbleops.rl` (see its docstrings). Only for
small MDPs: every sum is a Python loop. Accepts dense ``P [..., S, A, S]`` or a
:class:`nimbleops.rl.SparseTransitions`; numpy in, numpy out (float64 math).
"""
from __future__ import annotations

import math

import numpy as np

from ..rl.bellman import FiniteHorizonSolution, MDPSolution
from ..rl.mdp import SparseTransitions

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


# ------------------------------------------------------------------- return estimators
# Loops over each column b and time step t of the canonical [T, B] layout; time_dim moves the
# time axis first. Conventions: nimbleops.rl.returns.


def _rollout(time_dim, rewards, terminated, truncated, gamma, *others):
    """(r, term, trunc, gamma, *others) as [T, B] arrays with time first (None stays None), the
    rollout's shape and the normalised time axis. Missing masks are all False."""
    shape = np.shape(rewards)
    time_dim %= max(len(shape), 1)
    T = shape[time_dim]

    def canon(x, dtype=float):
        if x is None:
            return None
        return np.moveaxis(np.broadcast_to(np.asarray(x, dtype=dtype), shape), time_dim, 0).reshape(T, -1)

    no_end = np.zeros(shape, bool)
    term = canon(no_end if terminated is None else terminated, bool)
    trunc = canon(no_end if truncated is None else truncated, bool)
    return (canon(rewards), term, trunc, canon(gamma), *[canon(x) for x in others]), shape, time_dim


def _restore(x, shape, time_dim):
    T = shape[time_dim]
    rest = shape[:time_dim] + shape[time_dim + 1:]
    return np.moveaxis(x.reshape((T,) + rest), 0, time_dim)


def _step_info(term, trunc, gamma, t, b, T):
    """(gamma_t, not_terminated_t, episode continues to t + 1)."""
    g = float(gamma[t, b])
    nt = 0.0 if term[t, b] else 1.0
    cont = t < T - 1 and not (term[t, b] or trunc[t, b])
    return g, nt, cont


def discounted_returns(rewards, next_values, terminated, truncated, *, gamma, time_dim=0):
    (r, term, trunc, g, nv), shape, td = _rollout(time_dim, rewards, terminated, truncated, gamma, next_values)
    T, B = r.shape
    G = np.zeros((T, B))
    for b in range(B):
        for t in reversed(range(T)):
            gt, nt, cont = _step_info(term, trunc, g, t, b, T)
            after = G[t + 1, b] if cont else nv[t, b]
            G[t, b] = r[t, b] + gt * nt * after
    return _restore(G, shape, td)


def n_step_returns(rewards, next_values, terminated, truncated, *, gamma, n, time_dim=0):
    (r, term, trunc, g, nv), shape, td = _rollout(time_dim, rewards, terminated, truncated, gamma, next_values)
    T, B = r.shape
    G = np.zeros((T, B))
    for b in range(B):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(n):
                j = t + k
                total += discount * r[j, b]
                gt, nt, cont = _step_info(term, trunc, g, j, b, T)
                if k == n - 1 or not cont:  # the window ends here: bootstrap
                    total += discount * gt * nt * nv[j, b]
                    break
                discount *= gt
            G[t, b] = total
    return _restore(G, shape, td)


def lambda_returns(rewards, next_values, terminated, truncated, *, gamma, lam, time_dim=0):
    (r, term, trunc, g, nv), shape, td = _rollout(time_dim, rewards, terminated, truncated, gamma, next_values)
    T, B = r.shape
    G = np.zeros((T, B))
    for b in range(B):
        for t in reversed(range(T)):
            gt, nt, cont = _step_info(term, trunc, g, t, b, T)
            after = G[t + 1, b] if cont else nv[t, b]
            G[t, b] = r[t, b] + gt * nt * ((1 - lam) * nv[t, b] + lam * after)
    return _restore(G, shape, td)


def gae(rewards, values, next_values, terminated, truncated, *, gamma, lam, time_dim=0):
    (r, term, trunc, g, v, nv), shape, td = _rollout(time_dim, rewards, terminated, truncated, gamma, values,
                                                     next_values)
    T, B = r.shape
    A = np.zeros((T, B))
    for b in range(B):
        for t in reversed(range(T)):
            gt, nt, cont = _step_info(term, trunc, g, t, b, T)
            delta = r[t, b] + gt * nt * nv[t, b] - v[t, b]
            A[t, b] = delta + (gt * lam * A[t + 1, b] if cont else 0.0)
    return _restore(A, shape, td), _restore(A + v, shape, td)


def vtrace(rewards, values, next_values, log_rhos, terminated, truncated, *, gamma, lam=1.0, rho_clip=1.0,
           c_clip=1.0, time_dim=0):
    (r, term, trunc, g, v, nv, lr), shape, td = _rollout(time_dim, rewards, terminated, truncated, gamma, values,
                                                         next_values, log_rhos)
    T, B = r.shape
    vs = np.zeros((T, B))
    pg = np.zeros((T, B))
    for b in range(B):
        acc = 0.0  # vs_{t+1} - v_{t+1}
        for t in reversed(range(T)):
            gt, nt, cont = _step_info(term, trunc, g, t, b, T)
            rho = min(rho_clip, math.exp(lr[t, b]))
            c = lam * min(c_clip, math.exp(lr[t, b]))
            acc = rho * (r[t, b] + gt * nt * nv[t, b] - v[t, b]) + (gt * c * acc if cont else 0.0)
            vs[t, b] = v[t, b] + acc
        for t in range(T):
            gt, nt, cont = _step_info(term, trunc, g, t, b, T)
            rho = min(rho_clip, math.exp(lr[t, b]))
            boot = vs[t + 1, b] if cont else nv[t, b]
            pg[t, b] = rho * (r[t, b] + gt * nt * boot - v[t, b])
    return _restore(vs, shape, td), _restore(pg, shape, td)


# ------------------------------------------------------------------- tabular TD updates
# One transition at a time. "sequential": each update before the next TD error; "accumulate":
# every TD error from the table as it was, then the increments in transition order.


def _td_boot(rule, X, Y, s_next, a_next, probs_i, epsilon):
    row = X[s_next]
    if rule == "td0":
        return X[s_next]
    if rule == "sarsa":
        return row[a_next]
    if rule == "q_learning":
        return max(row)
    if rule == "expected_sarsa":
        if probs_i is not None:
            return sum(p * q for p, q in zip(probs_i, row))
        return (1 - epsilon) * max(row) + epsilon * sum(row) / len(row)
    best = 0  # double Q: argmax of X (lowest index), evaluated by Y
    for k in range(len(row)):
        if row[k] > row[best]:
            best = k
    return Y[s_next][best]


def _td_update(rule, tables, s, a, r, s_next, a_next, terminated, alpha, gamma, mode, probs=None, epsilon=None,
               update_first=None):
    N = len(s)
    alpha = np.broadcast_to(alpha, (N,))
    gamma = np.broadcast_to(gamma, (N,))
    work = [t.astype(np.float64).copy() for t in tables]  # float64 math, results cast back
    before = [t.copy() for t in work]
    deltas = np.zeros(N)
    increments = []
    for i in range(N):
        which = 0 if (update_first is None or update_first[i]) else 1
        source = work if mode == "sequential" else before
        X, Y = source[which], source[1 - which] if len(source) > 1 else None
        cell = (s[i],) if rule == "td0" else (s[i], a[i])
        boot = _td_boot(rule, X, Y, s_next[i], None if a_next is None else a_next[i],
                        None if probs is None else probs[i], epsilon)
        target = r[i] + gamma[i] * (0.0 if terminated[i] else 1.0) * boot
        deltas[i] = target - X[cell]
        if mode == "sequential":
            work[which][cell] += alpha[i] * deltas[i]
        else:
            increments.append((which, cell, alpha[i] * deltas[i]))
    for which, cell, inc in increments:
        work[which][cell] += inc
    for t, w in zip(tables, work):
        t[...] = w
    return deltas


def td0_update_(V, s, r, s_next, terminated, *, alpha, gamma, mode="sequential"):
    return _td_update("td0", [V], s, None, r, s_next, None, terminated, alpha, gamma, mode)


def sarsa_update_(Q, s, a, r, s_next, a_next, terminated, *, alpha, gamma, mode="sequential"):
    return _td_update("sarsa", [Q], s, a, r, s_next, a_next, terminated, alpha, gamma, mode)


def q_learning_update_(Q, s, a, r, s_next, terminated, *, alpha, gamma, mode="sequential"):
    return _td_update("q_learning", [Q], s, a, r, s_next, None, terminated, alpha, gamma, mode)


def expected_sarsa_update_(Q, s, a, r, s_next, terminated, *, alpha, gamma, mode="sequential", probs=None,
                           epsilon=None):
    return _td_update("expected_sarsa", [Q], s, a, r, s_next, None, terminated, alpha, gamma, mode, probs=probs,
                      epsilon=epsilon)


def double_q_learning_update_(Q1, Q2, s, a, r, s_next, terminated, *, alpha, gamma, mode="sequential",
                              update_first):
    return _td_update("double_q", [Q1, Q2], s, a, r, s_next, None, terminated, alpha, gamma, mode,
                      update_first=update_first)


# ------------------------------------------------------------------- eligibility traces
# Synchronous steps: all TD errors from the table / weights as they were, the updates of all
# environments summed (in environment order).


def _trace_step(rule, Q, e, s, a, r, s_next, a_next, terminated, truncated, alpha, gamma, lam, kind):
    vector = Q.ndim == 1
    Qw = (Q.reshape(-1, 1) if vector else Q).astype(np.float64)
    ew = (e.reshape(e.shape[0], Q.shape[0], 1) if vector else e).astype(np.float64)
    B, S, A = ew.shape
    deltas = np.zeros(B)
    decay = np.zeros(B)
    for b in range(B):
        ab = 0 if vector else a[b]
        anb = 0 if vector else a_next[b]
        next_row = Qw[s_next[b]]
        best = max(next_row)
        boot = best if rule == "watkins_q_lambda" else next_row[anb]
        deltas[b] = r[b] + gamma * (0.0 if terminated[b] else 1.0) * boot - Qw[s[b], ab]
        if kind == "accumulating":
            ew[b, s[b], ab] += 1.0
        elif kind == "replacing":
            ew[b, s[b], ab] = 1.0
        else:
            ew[b, s[b], ab] = (1 - alpha) * ew[b, s[b], ab] + 1.0
        cut = rule == "watkins_q_lambda" and next_row[anb] < best
        decay[b] = 0.0 if (terminated[b] or truncated[b] or cut) else gamma * lam
    for b in range(B):
        for x in range(S):
            for k in range(A):
                Qw[x, k] += alpha * deltas[b] * ew[b, x, k]
    for b in range(B):
        ew[b] *= decay[b]
    Q[...] = Qw.reshape(Q.shape)
    e[...] = ew.reshape(e.shape)
    return deltas


def td_lambda_step_(V, e, s, r, s_next, terminated, truncated, *, alpha, gamma, lam, kind="accumulating"):
    return _trace_step("td_lambda", V, e, s, None, r, s_next, None, terminated, truncated, alpha, gamma, lam, kind)


def sarsa_lambda_step_(Q, e, s, a, r, s_next, a_next, terminated, truncated, *, alpha, gamma, lam,
                       kind="accumulating"):
    return _trace_step("sarsa_lambda", Q, e, s, a, r, s_next, a_next, terminated, truncated, alpha, gamma, lam, kind)


def watkins_q_lambda_step_(Q, e, s, a, r, s_next, a_next, terminated, truncated, *, alpha, gamma, lam,
                           kind="accumulating"):
    return _trace_step("watkins_q_lambda", Q, e, s, a, r, s_next, a_next, terminated, truncated, alpha, gamma, lam,
                       kind)


def _linear_step(rule, w, z, v_old, phi, r, phi_next, terminated, truncated, alpha, gamma, lam):
    B, d = phi.shape
    w0 = w.astype(np.float64).copy()
    increment = np.zeros(d)
    deltas = np.zeros(B)
    for b in range(B):
        v = sum(w0[j] * phi[b, j] for j in range(d))
        v_next = sum(w0[j] * phi_next[b, j] for j in range(d))
        deltas[b] = r[b] + gamma * (0.0 if terminated[b] else 1.0) * v_next - v
        if rule == "td0":
            increment += alpha * deltas[b] * phi[b]
            continue
        done = terminated[b] or truncated[b]
        if rule == "td_lambda":
            z[b] = gamma * lam * z[b] + phi[b]
            increment += alpha * deltas[b] * z[b]
        else:
            z_phi = sum(z[b, j] * phi[b, j] for j in range(d))
            z[b] = gamma * lam * z[b] + (1 - alpha * gamma * lam * z_phi) * phi[b]
            increment += alpha * (deltas[b] + v - v_old[b]) * z[b] - alpha * (v - v_old[b]) * phi[b]
            v_old[b] = 0.0 if done else v_next
    w[...] = w0 + increment
    if rule != "td0":
        for b in range(B):
            if terminated[b] or truncated[b]:
                z[b] = 0.0
    return deltas


def linear_td0_update_(w, phi, r, phi_next, terminated, *, alpha, gamma):
    return _linear_step("td0", w, None, None, phi, r, phi_next, terminated, None, alpha, gamma, 0.0)


def linear_td_lambda_step_(w, z, phi, r, phi_next, terminated, truncated, *, alpha, gamma, lam):
    return _linear_step("td_lambda", w, z, None, phi, r, phi_next, terminated, truncated, alpha, gamma, lam)


def true_online_td_lambda_step_(w, z, v_old, phi, r, phi_next, terminated, truncated, *, alpha, gamma, lam):
    return _linear_step("true_online", w, z, v_old, phi, r, phi_next, terminated, truncated, alpha, gamma, lam)
