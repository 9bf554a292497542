"""Batched Bellman backups and the tabular MDP solvers built on them.

Every function takes ``P`` as a dense array ``[..., S, A, S']`` (a leading batch of MDPs of
equal size allowed) or a :class:`~nimbleops.rl.SparseTransitions`, and ``R`` as ``[..., S, A]``
(or ``[..., S, A, S']``, reduced once to expected rewards). See :mod:`nimbleops.rl.mdp` for the
model conventions (row sums <= 1, -inf rewards for infeasible actions).

Computation happens in P's dtype (float32 or float64; other real dtypes compute in float64).
Outputs follow the inputs: numpy in, numpy out; torch in, torch out on the same device. Each
operator is one fused pass over ``P`` (no temporaries of size S*A*S'); each solver runs its
whole loop and convergence test in C++. ``check=True`` (the default) checks that every row of P
holds finite probabilities in [0, 1] summing to at most 1 (+ a rounding tolerance): for the
operators on a dense CPU model inside their own sweep (each block of rows checked as the sweep
reads it, the error raised after the pass, nothing returned), elsewhere in a pass of its own; the
solvers check once per call. ``check=False`` skips it (shapes, rewards and index ranges are
always checked).

q(s, a) = R[s, a] + gamma * sum_s' P[s, a, s'] V[s'].
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Tuple, Union

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array
from .mdp import ROW_SUM_TOL, PreparedMdp, SparseTransitions, mark_leaky, prepare

Model = Union[Any, SparseTransitions]


@dataclass
class MDPSolution:
    """Result of an infinite-horizon solver.

    V: ``[..., S]`` values. policy: ``[..., S]`` int64 actions (for :func:`policy_evaluation`, the
    policy evaluated, as given). iterations, residual, converged: per MDP, numpy arrays of the
    batch shape (Python scalars for a single MDP). ``residual`` is the quantity the stopping rule
    tested last (see each solver).
    """

    V: Any
    policy: Any
    iterations: Any
    residual: Any
    converged: Any


@dataclass
class FiniteHorizonSolution:
    """Backward induction. V: ``[horizon+1, ..., S]`` with ``V[t]`` the optimal value with
    ``horizon - t`` steps to go (``V[horizon]`` = terminal values). policy: ``[horizon, ..., S]``,
    the optimal action at step t."""

    V: Any
    policy: Any


def _solution_as_tensors(out: Any, back: Callable[[Any], Any]) -> Any:
    """A solver's result from the numpy path with its values and policy as tensors (the statistics
    stay numpy / Python, as on the torch path)."""
    return replace(out, V=back(out.V), policy=back(out.policy))


_numpy_for_cpu_tensors = ar.numpy_path_for_cpu_tensors(result=_solution_as_tensors)


def _gamma(gamma, infinite_horizon: bool = False) -> float:
    g = ar.check_real_scalar(gamma, "gamma")
    if infinite_horizon and not 0.0 <= g < 1.0:
        raise ValueError(f"gamma: expected 0 <= gamma < 1 for an infinite-horizon solver, got {g}")
    if not 0.0 <= g <= 1.0:
        raise ValueError(f"gamma: expected 0 <= gamma <= 1, got {g}")
    return g


def _stats(m: PreparedMdp, stats) -> Tuple[Any, Any, Any]:
    it, res, conv = stats
    if m.batch_shape == ():
        return int(it[0]), float(res[0]), bool(conv[0])
    return it.reshape(m.batch_shape), res.reshape(m.batch_shape), conv.reshape(m.batch_shape)


def _fn(m: PreparedMdp, name: str):
    return getattr(_C.rl, f"{name}_{m.kind.suffix}")


def _actions(policy, m: PreparedMdp, name: str):
    """Integer actions [..., S] as int64 of this call's kind, range-checked."""
    shp = tuple(ar.shape_of(policy))
    if shp != m.batch_shape + (m.S,):
        raise ValueError(f"{name}: expected int actions of shape {list(m.batch_shape + (m.S,))}, got {list(shp)}")
    d = ar.dtype_name(policy) if (isinstance(policy, np.ndarray) or ar.is_torch(policy)) else np.asarray(policy).dtype.name
    if not d.startswith(("int", "uint")):
        raise TypeError(f"{name}: expected integer actions, got dtype {d}")
    pol = ar.to_array(policy, name, m.kind, "int64")
    if pol.numel() if ar.is_torch(pol) else pol.size:
        lo, hi = int(pol.min()), int(pol.max())
        if lo < 0 or hi >= m.A:
            raise IndexError(f"{name}: actions must lie in [0, {m.A}), found values in [{lo}, {hi}]")
    infeasible = _gather_rewards(m, pol) == float("-inf")
    if bool(infeasible.any()):
        raise ValueError(f"{name}: the policy chooses an infeasible action (reward -inf)")
    return pol


def _gather_rewards(m: PreparedMdp, pol):
    if ar.is_torch(pol):
        return m.R.gather(-1, pol.unsqueeze(-1)).squeeze(-1)
    return np.take_along_axis(m.R, pol[..., None], axis=-1)[..., 0]


def _policy(policy, m: PreparedMdp, name: str = "policy"):
    """A policy: int actions [..., S] or probabilities [..., S, A] (rows summing to 1)."""
    if policy is None:
        raise TypeError(f"{name}: expected int actions [..., S] or probabilities [..., S, A], got None")
    shp = tuple(ar.shape_of(policy))
    d = ar.dtype_name(policy) if (isinstance(policy, np.ndarray) or ar.is_torch(policy)) else np.asarray(policy).dtype.name
    if d.startswith(("int", "uint")):
        return _actions(policy, m, name)
    if shp != m.batch_shape + (m.S, m.A):
        raise ValueError(
            f"{name}: expected int actions {list(m.batch_shape + (m.S,))} or probabilities "
            f"{list(m.batch_shape + (m.S, m.A))}, got shape {list(shp)} dtype {d}"
        )
    ar.compute_dtype(policy, name)
    probs = ar.to_array(policy, name, m.kind, m.dtype)
    if not bool(((probs >= 0) & (probs <= 1)).all()):
        raise ValueError(f"{name}: expected probabilities in [0, 1] (and no nan)")
    tol = 1e-4 if m.dtype == "float32" else 1e-8
    sums = probs.sum(-1)
    if not bool((abs(sums - 1) <= tol).all()):
        raise ValueError(f"{name}: expected each state's action probabilities to sum to 1 (within {tol})")
    if bool(((probs > 0) & (m.R == float("-inf"))).any()):
        raise ValueError(f"{name}: the policy gives probability to an infeasible action (reward -inf)")
    return probs


# ---------------------------------------------------------------------------------- operators

_PLAIN_TOLERANCES = (ROW_SUM_TOL["float32"], ROW_SUM_TOL["float64"])  # the plain call's row-sum check


def q_values(P: Model, R: Array, V: Array, gamma: float, *, check: bool = True) -> Array:
    """Action values: ``Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s']``.

    Args:
        P, R: the MDP: transitions ``[..., S, A, S']`` or a SparseTransitions, rewards
            ``[..., S, A]``.
        V: values ``[..., S]``.
        gamma: discount in [0, 1].
        check: check P's rows (the module docstring says how); False skips it.

    Returns:
        ``Q [..., S, A]``, -inf for the infeasible actions.
    """
    out = ar.plain_call(_C.rl.bellman_plain, "q_values", P, R, V, gamma, check, *_PLAIN_TOLERANCES)
    return out if out is not None else _q_values(P, R, V, gamma, check=check)


@ar.resolving
@_numpy_for_cpu_tensors
def _q_values(P, R, V, gamma, *, check):
    m = prepare(P, R, check=check, extra={"V": V}, single_sweep=True)
    V = m.values(V, "V")
    Q = ar.empty(m.batch_shape + (m.S, m.A), m.dtype, m.kind)
    _fn(m, "q_values")(m.handle, ar.view(V), _gamma(gamma), ar.view(Q))
    return Q


def bellman_optimality_backup(P: Model, R: Array, V: Array, gamma: float, *, check: bool = True) -> Tuple[Array, Array]:
    """One sweep of the optimality operator: ``V_new[s] = max_a Q[s, a]``, Q as in
    :func:`q_values`.

    Args:
        P, R, V, gamma, check: as for :func:`q_values`.

    Returns:
        ``(V_new [..., S], greedy_policy [..., S] int64)``: the greedy policy is the maximising
        action, ties going to the lowest action index (numpy's argmax rule).
    """
    out = ar.plain_call(_C.rl.bellman_plain, "optimality_backup", P, R, V, gamma, check, *_PLAIN_TOLERANCES)
    return out if out is not None else _optimality_backup(P, R, V, gamma, check=check)


@ar.resolving
@_numpy_for_cpu_tensors
def _optimality_backup(P, R, V, gamma, *, check):
    m = prepare(P, R, check=check, extra={"V": V}, single_sweep=True)
    V = m.values(V, "V")
    V_new = ar.empty(m.batch_shape + (m.S,), m.dtype, m.kind)
    pol = ar.empty(m.batch_shape + (m.S,), "int64", m.kind)
    _fn(m, "optimality_backup")(m.handle, ar.view(V), _gamma(gamma), ar.view(V_new), ar.view(pol))
    return V_new, pol


@ar.resolving
def greedy_policy(P: Model, R: Array, V: Array, gamma: float, *, check: bool = True) -> Array:
    """The greedy action ``argmax_a Q[s, a]`` of :func:`bellman_optimality_backup`.

    Args:
        P, R, V, gamma, check: as for :func:`q_values`.

    Returns:
        ``[..., S]`` int64 actions, the lowest index on ties.
    """
    return bellman_optimality_backup(P, R, V, gamma, check=check)[1]


@ar.resolving
@_numpy_for_cpu_tensors
def bellman_expectation_backup(P: Model, R: Array, V: Array, gamma: float, policy: Array, *,
                               check: bool = True) -> Array:
    """One sweep of a policy's operator: ``V_new[s] = Q[s, policy[s]]`` for
    deterministic actions, ``V_new[s] = sum_a policy[s, a] Q[s, a]`` for probabilities.

    Args:
        P, R, V, gamma, check: as for :func:`q_values`.
        policy: int actions ``[..., S]`` or probabilities ``[..., S, A]`` summing to 1 per state;
            it may not use an infeasible action.

    Returns:
        ``V_new [..., S]``.
    """
    m = prepare(P, R, check=check, extra={"V": V, "policy": policy}, single_sweep=True)
    V = m.values(V, "V")
    pol = _policy(policy, m)
    V_new = ar.empty(m.batch_shape + (m.S,), m.dtype, m.kind)
    _fn(m, "expectation_backup")(m.handle, ar.view(V), _gamma(gamma), ar.view(pol), ar.view(V_new))
    return V_new


# ------------------------------------------------------------------------------------ solvers


def _initial_values(m: PreparedMdp, V0, name="V0"):
    if V0 is None:
        return ar.zeros(m.batch_shape + (m.S,), m.dtype, m.kind)
    V = m.values(V0, name)
    V = V.clone() if ar.is_torch(V) else V.copy()  # the solver writes into it
    if not bool(ar.isfinite(V).all()):
        raise ValueError(f"{name}: expected finite initial values")
    return V


def _common(tol, max_iter):
    tol = ar.check_real_scalar(tol, "tol")
    if not tol > 0:
        raise ValueError(f"tol: expected a number > 0, got {tol}")
    return tol, ar.check_int(max_iter, "max_iter", 1)


@ar.resolving
@_numpy_for_cpu_tensors
def value_iteration(
    P: Model,
    R: Array,
    gamma: float,
    *,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    V0: Array = None,
    stop: str = "sup",
    gauss_seidel: bool = False,
    check: bool = True,
) -> MDPSolution:
    """Value iteration ``V <- max_a Q(V)`` until a tol-optimal policy is certain, per MDP.

    Stopping rules (``residual`` holds the tested quantity):

    - ``stop="sup"``: ``||V' - V||_sup < tol * (1 - gamma) / (2 * gamma)`` (QuantEcon's rule;
      Puterman Thm 6.3.1): the greedy policy of the returned V is tol-optimal and
      ``||V' - V*||_sup < tol / 2``.
    - ``stop="span"``: ``span(V' - V) = max(V' - V) - min(V' - V) < tol * (1 - gamma) / gamma``
      (pymdptoolbox's rule, Puterman 6.6.3). The returned V is the last iterate shifted by
      ``midrange(V' - V) * gamma / (1 - gamma)`` (Puterman 6.6.12, as QuantEcon's MPI does),
      which brings it close to V*. The rule and the shift assume rows of P summing to 1: an MDP
      with a row summing to less (a probability of ending, beyond 1e-5) uses the sup rule.
    - ``gamma = 0`` stops after one sweep; ``max_iter`` sweeps at most.

    Args:
        P, R: the MDP: transitions ``[..., S, A, S']`` or a SparseTransitions, rewards
            ``[..., S, A]``.
        gamma: discount in [0, 1).
        tol: the optimality tolerance (> 0).
        max_iter: sweeps at most (>= 1).
        V0: initial values ``[..., S]`` (default zeros).
        stop: ``"sup"`` or ``"span"`` (above).
        gauss_seidel: update V in place, states in index order (each backup sees the states
            before it already updated); sequential within an MDP, parallel over a batch; CPU
            only, with ``stop="sup"``.
        check: check P's rows (the module docstring says how); False skips it.

    Returns:
        An :class:`MDPSolution` whose policy is greedy with respect to the returned V (one extra
        sweep, not counted in ``iterations``); ``converged`` says whether the rule was met.

    Differences from pymdptoolbox: with ``stop="span"`` it returns the unshifted iterate, which
    can be far from V* (its policy is still tol-optimal); here V is shifted.
    """
    m = prepare(P, R, check=check, extra={"V0": V0})
    tol, max_iter = _common(tol, max_iter)
    if stop not in ("sup", "span"):
        raise ValueError(f"stop: expected 'sup' or 'span', got {stop!r}")
    if gauss_seidel and stop == "span":
        raise ValueError("stop='span' needs Jacobi sweeps; use stop='sup' with gauss_seidel=True")
    if gauss_seidel and m.kind.is_cuda:
        raise ValueError("gauss_seidel=True is sequential over states and runs on the CPU only; got CUDA tensors")
    V = _initial_values(m, V0)
    pol = ar.empty(m.batch_shape + (m.S,), "int64", m.kind)
    if stop == "span":
        mark_leaky(m)
    stats = _fn(m, "value_iteration")(m.handle, _gamma(gamma, True), ar.view(V), ar.view(pol), tol, max_iter, stop, bool(gauss_seidel))
    return MDPSolution(V, pol, *_stats(m, stats))


@ar.resolving
@_numpy_for_cpu_tensors
def policy_evaluation(P: Model, R: Array, gamma: float, policy: Array, *, tol: float = 1e-6, max_iter: int = 10_000,
                      V0: Array = None, check: bool = True) -> MDPSolution:
    """Iterative policy evaluation ``V <- T_pi V``.

    Stops when ``||V' - V||_sup < tol * (1 - gamma) / gamma``, which guarantees
    ``||V' - V_pi||_sup < tol`` (``residual`` = the last ``||V' - V||_sup``).

    Args:
        P, R: the MDP: transitions ``[..., S, A, S']`` or a SparseTransitions, rewards
            ``[..., S, A]``.
        gamma: discount in [0, 1).
        policy: int actions ``[..., S]`` or probabilities ``[..., S, A]``.
        tol: the tolerance (> 0).
        max_iter: sweeps at most (>= 1).
        V0: initial values ``[..., S]`` (default zeros).
        check: check P's rows (the module docstring says how); False skips it.

    Returns:
        An :class:`MDPSolution`; its policy is the one given (converted to this call's kind).
    """
    m = prepare(P, R, check=check, extra={"policy": policy, "V0": V0})
    tol, max_iter = _common(tol, max_iter)
    pol = _policy(policy, m)
    V = _initial_values(m, V0)
    stats = _fn(m, "policy_evaluation")(m.handle, _gamma(gamma, True), ar.view(pol), ar.view(V), tol, max_iter)
    return MDPSolution(V, pol, *_stats(m, stats))


@ar.resolving
@_numpy_for_cpu_tensors
def policy_iteration(
    P: Model,
    R: Array,
    gamma: float,
    *,
    policy0: Array = None,
    eval_tol: float = 1e-8,
    eval_max_iter: int = 100_000,
    max_iter: int = 1_000,
    check: bool = True,
) -> MDPSolution:
    """Policy iteration with iterative evaluation.

    Each iteration evaluates the policy with :func:`policy_evaluation`'s rule to ``eval_tol``
    (warm-started from the previous values, at most ``eval_max_iter`` sweeps), then improves it:
    a state switches to the lowest-index greedy action only when that action is strictly better
    than its current one. Stops when no state switches (``converged``) or after ``max_iter``
    improvements; ``residual`` = ``||T V - V||_sup`` at the last improvement.

    Args:
        P, R: the MDP: transitions ``[..., S, A, S']`` or a SparseTransitions, rewards
            ``[..., S, A]``.
        gamma: discount in [0, 1).
        policy0: initial int actions ``[..., S]`` (default: greedy for V = 0).
        eval_tol: the evaluation tolerance (> 0).
        eval_max_iter: evaluation sweeps at most per iteration (>= 1).
        max_iter: improvements at most (>= 1).
        check: check P's rows (the module docstring says how); False skips it.

    Returns:
        An :class:`MDPSolution`; V is the value of the returned policy.
    """
    m = prepare(P, R, check=check, extra={"policy0": policy0})
    eval_tol, max_iter = _common(eval_tol, max_iter)
    eval_max_iter = ar.check_int(eval_max_iter, "eval_max_iter", 1)
    g = _gamma(gamma, True)
    V = ar.zeros(m.batch_shape + (m.S,), m.dtype, m.kind)
    if policy0 is None:
        V_tmp = ar.empty(m.batch_shape + (m.S,), m.dtype, m.kind)
        pol = ar.empty(m.batch_shape + (m.S,), "int64", m.kind)
        _fn(m, "optimality_backup")(m.handle, ar.view(V), g, ar.view(V_tmp), ar.view(pol))
    else:
        pol = _actions(policy0, m, "policy0")
        pol = pol.clone() if ar.is_torch(pol) else pol.copy()
    stats = _fn(m, "policy_iteration")(m.handle, g, ar.view(V), ar.view(pol), eval_tol, eval_max_iter, max_iter)
    return MDPSolution(V, pol, *_stats(m, stats))


@ar.resolving
@_numpy_for_cpu_tensors
def modified_policy_iteration(
    P: Model,
    R: Array,
    gamma: float,
    *,
    k: int = 20,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    V0: Array = None,
    check: bool = True,
) -> MDPSolution:
    """Modified policy iteration (Puterman 6.5), with QuantEcon DiscreteDP's rules.

    Each iteration: ``u = T v`` with greedy sigma; if ``span(u - v) < tol * (1 - gamma) / gamma``
    return ``v = u + midrange(u - v) * gamma / (1 - gamma)`` and sigma; else ``v = T_sigma^k u``.
    ``residual`` = the last ``span(u - v)``. The span rule and the midrange step assume rows of P
    summing to 1; an MDP with a row summing to less (a probability of ending, beyond 1e-5) stops
    when ``||u - v||_sup < tol * (1 - gamma) / (2 gamma)`` and returns ``u`` (its residual is that
    norm).

    Args:
        P, R: the MDP: transitions ``[..., S, A, S']`` or a SparseTransitions, rewards
            ``[..., S, A]``.
        gamma: discount in [0, 1).
        k: partial evaluation sweeps per iteration (>= 0).
        tol: the optimality tolerance (> 0).
        max_iter: iterations at most (>= 1).
        V0: initial values ``[..., S]``; default ``min finite R / (1 - gamma)`` per MDP (a lower
            bound on V*, as QuantEcon does).
        check: check P's rows (the module docstring says how); False skips it.

    Returns:
        An :class:`MDPSolution`.
    """
    m = prepare(P, R, check=check, extra={"V0": V0})
    tol, max_iter = _common(tol, max_iter)
    k = ar.check_int(k, "k", 0)
    g = _gamma(gamma, True)
    if V0 is None:
        V = ar.empty(m.batch_shape + (m.S,), m.dtype, m.kind)
        finite = m.R.clone() if ar.is_torch(m.R) else m.R.copy()
        finite[finite == float("-inf")] = float("inf")
        finite = finite.reshape(m.batch_shape + (-1,))
        low = ar._torch().amin(finite, -1) if ar.is_torch(finite) else finite.min(-1)
        V[...] = (low / (1.0 - g))[..., None]
    else:
        V = _initial_values(m, V0)
    pol = ar.empty(m.batch_shape + (m.S,), "int64", m.kind)
    mark_leaky(m)
    stats = _fn(m, "modified_policy_iteration")(m.handle, g, ar.view(V), ar.view(pol), k, tol, max_iter)
    return MDPSolution(V, pol, *_stats(m, stats))


@ar.resolving
@_numpy_for_cpu_tensors
def finite_horizon(
    P: Model, R: Array, gamma: float, horizon: int, *, terminal_values: Array = None, check: bool = True
) -> FiniteHorizonSolution:
    """Backward induction: ``V[t] = max_a Q(V[t+1])`` from ``V[horizon] = terminal_values``.

    Args:
        P, R: the MDP: transitions ``[..., S, A, S']`` or a SparseTransitions, rewards
            ``[..., S, A]``.
        gamma: discount in [0, 1] (1 allowed here).
        horizon: the number of steps (>= 0).
        terminal_values: ``[..., S]`` (default zeros).
        check: check P's rows (the module docstring says how); False skips it.

    Returns:
        A :class:`FiniteHorizonSolution`: V ``[horizon+1, ..., S]`` and policy ``[horizon, ..., S]``
        (time-major; the lowest action index on ties).
    """
    m = prepare(P, R, check=check, extra={"terminal_values": terminal_values})
    horizon = ar.check_int(horizon, "horizon", 0)
    cells = (horizon + 1) * int(np.prod(m.batch_shape, dtype=object)) * m.S
    if cells * 8 > ar.INT_LIMIT:
        raise ValueError(f"horizon: V [horizon + 1, ..., S] would hold {cells} values, more than memory can address")
    V = ar.empty((horizon + 1,) + m.batch_shape + (m.S,), m.dtype, m.kind)
    V[horizon] = 0 if terminal_values is None else m.values(terminal_values, "terminal_values")
    pol = ar.empty((horizon,) + m.batch_shape + (m.S,), "int64", m.kind)
    _fn(m, "finite_horizon")(m.handle, _gamma(gamma), horizon, ar.view(V), ar.view(pol))
    return FiniteHorizonSolution(V, pol)
