"""Reference eligibility-trace steps (:mod:`nimbleops.rl.traces`), numpy in and out, float64 math.

Synchronous steps: all TD errors from the table / weights as they were, the updates of all
environments summed (in environment order).
"""
from __future__ import annotations

import numpy as np


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
