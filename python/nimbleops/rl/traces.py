"""Eligibility-trace steps for B parallel environments sharing one table or weight vector, in
place (names end with ``_``); each returns the TD errors ``delta [B]``.

Synchronous semantics: every environment's TD error comes from the table / weights as they are
before the step; the updates of all environments are summed (in environment order, so results
never depend on the thread count). ``done = terminated | truncated`` resets an environment's
traces after its update; ``terminated`` also means no bootstrap. ``alpha`` (the step size),
``gamma`` (the discount) and ``lam`` (the trace decay) are numbers in [0, 1].

Tabular (``Q [S, A]`` or ``V [S]``, traces ``e [B, S, A]`` / ``[B, S]``), per environment:
the trace of the visited ``(s, a)`` is bumped (``kind="accumulating"``: ``e += 1``;
``"replacing"``: ``e = 1``; ``"dutch"``: ``e = (1 - alpha) e + 1``), the table moves by
``alpha * delta * e``, then the traces decay by ``gamma * lam`` (or reset where done; Watkins'
Q(lambda) also resets them where the next action is not greedy).

Linear function approximation (weights ``w [d]``, features ``phi``, ``phi_next [B, d]``, traces
``z [B, d]``): semi-gradient TD(0), TD(lambda) and true online TD(lambda) (van Seijen & Sutton
2014, with ``v_old [B]`` kept between steps).

CPU tables and weights (numpy or CPU torch tensors), float32 or float64; every index and value is
checked before anything is written. The written arrays (table, traces, weights, ``v_old``) share no
memory with each other or with the other arguments; as for the TD updates, calls on the same
arrays from several Python threads run one after another, and torch tensors are updated as by
torch's in-place ops (leaves that require grad refused, version counters bumped). ``B = 0``
environments is a step that changes nothing.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array
from .td import _numpy, _numpy_2d, _table, check_on_host, to_device

TRACE_KINDS = ("accumulating", "replacing", "dutch")


def _scalar_in(x, name: str, hi: float) -> float:
    x = ar.check_real_scalar(x, name)
    if not 0 <= x <= hi:
        raise ValueError(f"{name}: expected a number in [0, {hi}], got {x}")
    return x


def _traces(e, name: str, shape, dtype: str):
    e = _table(e, name, len(shape), allow_empty=True)  # B = 0 transitions: an empty batch of traces
    if tuple(e.shape) != tuple(shape) or ar.dtype_name(e) != dtype:
        raise ValueError(f"{name}: expected traces of shape {list(shape)} and dtype {dtype}, got "
                         f"{list(e.shape)} {ar.dtype_name(e)}")
    return e


def _tabular(rule, Q, e, s, a, r, s_next, a_next, terminated, truncated, alpha, gamma, lam, trace_kind):
    host = ar.cpu_tensors_as_numpy(Q, e, s, a, r, s_next, a_next, terminated, truncated)
    if host is not None:  # plain CPU tensors: the numpy path on their memory
        td = _tabular(rule, *host, alpha, gamma, lam, trace_kind)
        ar.bump_versions(Q, e)
        return ar._torch().from_numpy(td) if ar.is_torch(Q) else td  # td: a fresh contiguous array
    if trace_kind not in TRACE_KINDS:
        raise ValueError(f"kind: expected one of {TRACE_KINDS}, got {trace_kind!r}")
    name = "V" if rule == "td_lambda" else "Q"
    Q = _table(Q, name, 1 if rule == "td_lambda" else 2)
    dtype = ar.dtype_name(Q)
    s = _numpy(s, "s", None, "index")
    B = s.shape[0]
    table_shape = tuple(Q.shape)
    e = _traces(e, "e", (B,) + table_shape, dtype)
    s_next = _numpy(s_next, "s_next", B, "index")
    a = None if a is None else _numpy(a, "a", B, "index")
    a_next = None if a_next is None else _numpy(a_next, "a_next", B, "index")
    r = _numpy(r, "r", B, "real", dtype)
    terminated = _numpy(terminated, "terminated", B, "mask")
    truncated = _numpy(truncated, "truncated", B, "mask")
    alpha = _scalar_in(alpha, "alpha", 1.0)
    gamma = _scalar_in(gamma, "gamma", 1.0)
    lam = _scalar_in(lam, "lam", 1.0)
    kind = ar.kind(Q)
    td = ar.empty((B,), dtype, kind)
    written = Q, e
    if rule == "td_lambda":  # views: updates land in V and e
        Q, e = Q.reshape(-1, 1), e.reshape(B, Q.shape[0], 1)
    view = ar.view_or_none
    stream = 0
    if kind.is_cuda:
        if e.device != kind.device:
            raise ValueError(f"e: expected traces on {kind.device} like the table, got {e.device}")
        S, A = Q.shape
        check_on_host((s, S, "s"), (s_next, S, "s_next"), (a, A, "a"), (a_next, A, "a_next"), rewards=r)
        s, s_next, a, a_next, r, terminated, truncated = to_device(kind, s, s_next, a, a_next, r, terminated,
                                                                   truncated)
        stream = ar.cuda_stream(kind)
    getattr(_C.rl, f"tabular_trace_step_{kind.suffix}")(
        rule, trace_kind, ar.view(Q), ar.view(e), ar.view(s), ar.view(s_next), view(a), view(a_next), ar.view(r),
        ar.view(terminated), ar.view(truncated), alpha, gamma, lam, ar.view(td), stream)
    ar.bump_versions(*written)
    return td


def td_lambda_step_(V: Array, e: Array, s: Array, r: Array, s_next: Array, terminated: Array, truncated: Array, *,
                    alpha: float, gamma: float, lam: float, kind: str = "accumulating") -> Array:
    """Tabular TD(lambda): ``delta = r + gamma (1 - terminated) V[s_next] - V[s]``,
    ``V += alpha sum_b delta_b e_b``.

    Args:
        V: the table ``[S]``, updated in place.
        e: traces ``[B, S]``, updated in place.
        s, r, s_next, terminated, truncated: the transitions of the B environments, ``[B]``
            each.
        alpha, gamma, lam, kind: the step size, the discount, the trace decay and the trace kind
            (module docstring).

    Returns:
        The TD errors ``delta [B]``; the table (or weights) and traces are updated in place.
    """
    out = ar.plain_call(_C.rl.tabular_trace_plain, "td_lambda", V, e, s, None, r, s_next, None, terminated, truncated,
                        alpha, gamma, lam, kind)
    if out is not None:
        return out
    return _general_tabular("td_lambda", V, e, s, None, r, s_next, None, terminated, truncated, alpha, gamma, lam,
                            kind)


def sarsa_lambda_step_(Q: Array, e: Array, s: Array, a: Array, r: Array, s_next: Array, a_next: Array,
                       terminated: Array, truncated: Array, *, alpha: float, gamma: float, lam: float,
                       kind: str = "accumulating") -> Array:
    """SARSA(lambda): ``delta = r + gamma (1 - terminated) Q[s_next, a_next] - Q[s, a]``,
    ``Q += alpha sum_b delta_b e_b``.

    Args:
        Q: the table ``[S, A]``, updated in place.
        e: traces ``[B, S, A]``, updated in place.
        s, a, r, s_next, a_next, terminated, truncated: the transitions of the B environments, ``[B]``
            each.
        alpha, gamma, lam, kind: the step size, the discount, the trace decay and the trace kind
            (module docstring).

    Returns:
        The TD errors ``delta [B]``; the table (or weights) and traces are updated in place.
    """
    out = ar.plain_call(_C.rl.tabular_trace_plain, "sarsa_lambda", Q, e, s, a, r, s_next, a_next, terminated, truncated,
                        alpha, gamma, lam, kind)
    if out is not None:
        return out
    return _general_tabular("sarsa_lambda", Q, e, s, a, r, s_next, a_next, terminated, truncated, alpha, gamma, lam,
                            kind)


def watkins_q_lambda_step_(Q: Array, e: Array, s: Array, a: Array, r: Array, s_next: Array, a_next: Array,
                           terminated: Array, truncated: Array, *, alpha: float, gamma: float, lam: float,
                           kind: str = "accumulating") -> Array:
    """Watkins' Q(lambda): ``delta = r + gamma (1 - terminated) max Q[s_next] - Q[s, a]``,
    ``Q += alpha sum_b delta_b e_b``; the traces reset after the update where ``a_next`` (the
    action taken next) is not greedy, ``Q[s_next, a_next] < max Q[s_next]`` (greedy ties keep
    the traces).

    Args and Returns: as for :func:`sarsa_lambda_step_`.
    """
    out = ar.plain_call(_C.rl.tabular_trace_plain, "watkins_q_lambda", Q, e, s, a, r, s_next, a_next, terminated,
                        truncated, alpha, gamma, lam, kind)
    if out is not None:
        return out
    return _general_tabular("watkins_q_lambda", Q, e, s, a, r, s_next, a_next, terminated, truncated, alpha, gamma,
                            lam, kind)


def _linear(rule, w, z, v_old, phi, r, phi_next, terminated, truncated, alpha, gamma, lam):
    host = ar.cpu_tensors_as_numpy(w, z, v_old, phi, r, phi_next, terminated, truncated)
    if host is not None:  # plain CPU tensors: the numpy path on their memory
        td = _linear(rule, *host, alpha, gamma, lam)
        ar.bump_versions(w, z, v_old)
        return ar._torch().from_numpy(td) if ar.is_torch(w) else td  # td: a fresh contiguous array
    w = _table(w, "w", 1)
    dtype = ar.dtype_name(w)
    d = w.shape[0]

    def features(x, name):
        x = _numpy_2d(x, name)
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"{name}: expected features [B, d] with d = {d}, got shape {list(x.shape)}")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected real features, got dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=dtype)

    phi = features(phi, "phi")
    B = phi.shape[0]
    phi_next = features(phi_next, "phi_next")
    if phi_next.shape[0] != B:
        raise ValueError(f"phi_next: expected {B} rows like phi, got {phi_next.shape[0]}")
    r = _numpy(r, "r", B, "real", dtype)
    terminated = _numpy(terminated, "terminated", B, "mask")
    truncated = None if truncated is None else _numpy(truncated, "truncated", B, "mask")
    if z is not None:
        z = _traces(z, "z", (B, d), dtype)
    if v_old is not None:
        v_old = _traces(v_old, "v_old", (B,), dtype)
    alpha = _scalar_in(alpha, "alpha", np.inf)
    gamma = _scalar_in(gamma, "gamma", 1.0)
    lam = _scalar_in(lam, "lam", 1.0)
    kind = ar.kind(w)
    td = ar.empty((B,), dtype, kind)
    view = ar.view_or_none
    stream = 0
    if kind.is_cuda:
        for t, name in ((z, "z"), (v_old, "v_old")):
            if t is not None and t.device != kind.device:
                raise ValueError(f"{name}: expected a tensor on {kind.device} like w, got {t.device}")
        check_on_host(rewards=r)
        phi, r, phi_next, terminated, truncated = to_device(kind, phi, r, phi_next, terminated, truncated)
        stream = ar.cuda_stream(kind)
    getattr(_C.rl, f"linear_td_step_{kind.suffix}")(
        rule, ar.view(w), view(z), view(v_old), ar.view(phi), ar.view(r), ar.view(phi_next), ar.view(terminated),
        view(truncated), alpha, gamma, lam, ar.view(td), stream)
    ar.bump_versions(w, z, v_old)
    return td


def linear_td0_update_(w: Array, phi: Array, r: Array, phi_next: Array, terminated: Array, *, alpha: Array,
                       gamma: Array) -> Array:
    """Semi-gradient TD(0): ``delta = r + gamma (1 - terminated) w.phi_next - w.phi``,
    ``w += alpha sum_b delta_b phi_b``.

    Args:
        w: weights ``[d]``, updated in place.
        phi, r, phi_next, terminated: the features ``[B, d]`` of the states and of the next states,
            the rewards and the terminations, ``[B]`` each.
        alpha, gamma: the step size and the discount (module docstring).

    Returns:
        The TD errors ``delta [B]``; ``w`` is updated in place.
    """
    out = ar.plain_call(_C.rl.linear_trace_plain, "td0", w, None, None, phi, r, phi_next, terminated, None, alpha,
                        gamma, 0.0)
    if out is not None:
        return out
    return _general_linear("td0", w, None, None, phi, r, phi_next, terminated, None, alpha, gamma, 0.0)


def linear_td_lambda_step_(w: Array, z: Array, phi: Array, r: Array, phi_next: Array, terminated: Array,
                           truncated: Array, *, alpha: float, gamma: float, lam: float) -> Array:
    """Semi-gradient TD(lambda) with accumulating traces: ``z = gamma lam z + phi``,
    ``w += alpha sum_b delta_b z_b``; ``z_b = 0`` after the update where done.

    Args:
        w: weights ``[d]``, updated in place.
        z: traces ``[B, d]``, updated in place.
        phi, r, phi_next, terminated: the features ``[B, d]`` of the states and of the next states,
            the rewards and the terminations, ``[B]`` each.
        truncated: ``[B]`` bool.
        alpha, gamma, lam: the step size, the discount and the trace decay (module docstring).

    Returns:
        The TD errors ``delta [B]``; the table (or weights) and traces are updated in place.
    """
    out = ar.plain_call(_C.rl.linear_trace_plain, "td_lambda", w, z, None, phi, r, phi_next, terminated, truncated,
                        alpha, gamma, lam)
    if out is not None:
        return out
    return _general_linear("td_lambda", w, z, None, phi, r, phi_next, terminated, truncated, alpha, gamma, lam)


def true_online_td_lambda_step_(w: Array, z: Array, v_old: Array, phi: Array, r: Array, phi_next: Array,
                                terminated: Array, truncated: Array, *, alpha: float, gamma: float,
                                lam: float) -> Array:
    """True online TD(lambda) (van Seijen & Sutton 2014) with dutch traces:
    ``z = gamma lam z + (1 - alpha gamma lam z.phi) phi``,
    ``w += alpha sum_b ((delta + v - v_old) z - (v - v_old) phi)`` with ``v = w.phi``; then
    ``v_old = w.phi_next`` (before the update), and ``z, v_old = 0`` where done.

    Args:
        w, z, phi, r, phi_next, terminated, truncated, alpha, gamma, lam: as for
            :func:`linear_td_lambda_step_`; ``z`` holds dutch traces here.
        v_old: ``[B]`` (zeros at the start of an episode), updated in place.

    Returns:
        The TD errors ``delta [B]``; the table (or weights) and traces are updated in place.
    """
    if v_old is None:
        raise TypeError("v_old: expected an array [B] (zeros at the start of each episode), got None")
    out = ar.plain_call(_C.rl.linear_trace_plain, "true_online", w, z, v_old, phi, r, phi_next, terminated, truncated,
                        alpha, gamma, lam)
    if out is not None:
        return out
    return _general_linear("true_online", w, z, v_old, phi, r, phi_next, terminated, truncated, alpha, gamma, lam)


_general_tabular = ar.resolving(_tabular)
_general_linear = ar.resolving(_linear)
