"""Reference return estimators (:mod:`nimbleops.rl.returns`), numpy in and out, float64 math.

Loops over each column b and time step t of the canonical [T, B] layout; time_dim moves the
time axis first. Conventions: nimbleops.rl.returns.
"""
from __future__ import annotations

import math

import numpy as np


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
