"""Reference tabular TD updates (:mod:`nimbleops.rl.td`), numpy in and out, float64 math.

One transition at a time. "sequential": each update before the next TD error; "accumulate":
every TD error from the table as it was, then the increments in transition order.
"""
from __future__ import annotations

import numpy as np


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
