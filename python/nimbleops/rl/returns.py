"""Return and advantage estimators over rollouts ``[T, *batch]`` (time-major; ``time_dim`` for
other layouts).

Every function follows one convention (torchrl's and Gymnasium's):

- ``rewards[t]`` is the reward of step t; ``values[t] = V(s_t)``; ``next_values[t] = V(s_{t+1})``
  (for a truncated step, the value of the final observation).
- ``terminated[t]``: the episode reached a terminal state at step t, so nothing is bootstrapped
  from ``next_values[t]``. ``truncated[t]``: it was cut by a time limit, so ``next_values[t]`` is
  bootstrapped but the recursion stops there. ``done = terminated | truncated``. Both are bool
  arrays of the rollout's shape (``None``: all False).
- The last step bootstraps from ``next_values[T-1]`` (unless terminated).
- ``gamma``: a number in [0, 1] or an array broadcastable to the rollout (per-step discounts;
  a 0 acts like a termination).

Inputs are numpy arrays or torch tensors (CPU, and CUDA when built); outputs follow them. With
torch inputs every function is differentiable with respect to ``rewards``, ``values`` and
``next_values`` (the estimators are linear in them; the backward is the adjoint scan) and works
under ``torch.compile`` (registered as custom ops in :mod:`nimbleops.torch_ops`). float32 and
float64 (other real dtypes compute in float64). Rewards with nan or inf raise ``ValueError``.
"""
from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np

from .. import _C, _arrays as ar
from .._arrays import Array
from ._returns_kernel import TWO_OUTPUTS, run_forward

ESTIMATORS = ("discounted", "lambda", "gae", "n_step", "vtrace")


def discounted_returns(rewards: Array, next_values: Array, terminated: Array, truncated: Array, *, gamma: Array,
                       time_dim: int = 0) -> Array:
    """Discounted returns: ``G_t = r_t + gamma_t (1 - terminated_t) * (G_{t+1} if the episode
    goes on, else next_values[t])``: Monte-Carlo returns within the rollout, bootstrapped from
    ``next_values`` at truncations and at the last step.

    Args:
        rewards: ``[T, *batch]``, finite.
        next_values: ``V(s_{t+1})`` ``[T, *batch]``.
        terminated, truncated, gamma, time_dim: the episode ends, the discount and the time axis
            (the module docstring states the conventions).

    Returns:
        ``G [T, *batch]``.
    """
    out = ar.plain_call(_C.rl.returns_plain, "discounted", rewards, None, next_values, terminated, truncated, gamma,
                        1.0, 1, time_dim)
    if out is not None:
        return out[0]
    return _estimate("discounted", rewards, None, next_values, terminated, truncated, gamma=gamma, time_dim=time_dim)[0]


def n_step_returns(rewards: Array, next_values: Array, terminated: Array, truncated: Array, *, gamma: Array, n: int,
                   time_dim: int = 0) -> Array:
    """n-step returns: ``G_t = sum_{k<m} D_k r_{t+k} + D_m (1 - terminated) next_values[t+m-1]``
    with ``D_k = prod_{j<k} gamma_{t+j}`` and ``m = min(n, steps left in the rollout, steps to
    the end of the episode (done) inclusive)``; ``n = 1`` gives the one-step TD target.

    Args:
        rewards: ``[T, *batch]``, finite.
        next_values: ``V(s_{t+1})`` ``[T, *batch]``.
        terminated, truncated, gamma, time_dim: the episode ends, the discount and the time axis
            (the module docstring states the conventions).
        n: the number of steps (>= 1).

    Returns:
        ``G [T, *batch]``.
    """
    out = ar.plain_call(_C.rl.returns_plain, "n_step", rewards, None, next_values, terminated, truncated, gamma, 1.0, n,
                        time_dim)
    if out is not None:
        return out[0]
    n = ar.check_int(n, "n", 1)
    return _estimate("n_step", rewards, None, next_values, terminated, truncated, gamma=gamma, n=n,
                     time_dim=time_dim)[0]


def lambda_returns(rewards: Array, next_values: Array, terminated: Array, truncated: Array, *, gamma: Array, lam: float,
                   time_dim: int = 0) -> Array:
    """TD(lambda) returns: ``G_t = r_t + gamma_t (1 - terminated_t) ((1 - lam) next_values[t] +
    lam * (G_{t+1} if the episode goes on, else next_values[t]))``.

    Args:
        rewards: ``[T, *batch]``, finite.
        next_values: ``V(s_{t+1})`` ``[T, *batch]``.
        terminated, truncated, gamma, time_dim: the episode ends, the discount and the time axis
            (the module docstring states the conventions).
        lam: lambda in [0, 1].

    Returns:
        ``G [T, *batch]``: torchrl's ``td_lambda_return_estimate``, rlax's ``lambda_returns``.
    """
    out = ar.plain_call(_C.rl.returns_plain, "lambda", rewards, None, next_values, terminated, truncated, gamma, lam, 1,
                        time_dim)
    if out is not None:
        return out[0]
    return _estimate("lambda", rewards, None, next_values, terminated, truncated, gamma=gamma, lam=lam,
                     time_dim=time_dim)[0]


def gae(rewards: Array, values: Array, next_values: Array, terminated: Array, truncated: Array, *, gamma: Array,
        lam: float, time_dim: int = 0) -> Tuple[Array, Array]:
    """Generalized advantage estimation (Schulman et al. 2016), torchrl's semantics:
    ``delta_t = r_t + gamma_t (1 - terminated_t) next_values[t] - values[t]``,
    ``A_t = delta_t + gamma_t lam (1 - done_t) A_{t+1}`` (``A_T = 0``).

    Args:
        rewards: ``[T, *batch]``, finite.
        values: ``V(s_t)`` ``[T, *batch]``.
        next_values: ``V(s_{t+1})`` ``[T, *batch]``.
        terminated, truncated, gamma, time_dim: the episode ends, the discount and the time axis
            (the module docstring states the conventions).
        lam: lambda in [0, 1].

    Returns:
        ``(advantages, value_targets)``, both ``[T, *batch]``, ``value_targets = advantages +
        values``.
    """
    out = ar.plain_call(_C.rl.returns_plain, "gae", rewards, values, next_values, terminated, truncated, gamma, lam, 1,
                        time_dim)
    if out is not None:
        return out
    return _estimate("gae", rewards, values, next_values, terminated, truncated, gamma=gamma, lam=lam,
                     time_dim=time_dim)


@ar.resolving
def vtrace(rewards: Array, values: Array, next_values: Array, log_rhos: Array, terminated: Array, truncated: Array, *,
           gamma: Array, lam: float = 1.0, rho_clip: float = 1.0, c_clip: float = 1.0,
           time_dim: int = 0) -> Tuple[Array, Array]:
    """V-trace targets (Espeholt et al. 2018, IMPALA).

    With truncated importance weights ``rho_t = min(rho_clip, exp(log_rhos[t]))`` and traces
    ``c_t = lam * min(c_clip, exp(log_rhos[t]))``: ``vs_t = values[t] + a_t`` with
    ``a_t = rho_t (r_t + gamma_t (1 - terminated_t) next_values[t] - values[t])
    + gamma_t c_t (1 - done_t) a_{t+1}``; policy-gradient advantages
    ``rho_t (r_t + gamma_t (1 - terminated_t) (vs_{t+1} if the episode goes on, else
    next_values[t]) - values[t])`` (the same ``rho_clip`` truncation as the targets).

    Args:
        rewards: ``[T, *batch]``, finite.
        values: ``V(s_t)`` ``[T, *batch]``.
        next_values: ``V(s_{t+1})`` ``[T, *batch]``.
        log_rhos: ``log(pi(a_t | s_t) / mu(a_t | s_t))`` ``[T, *batch]``; treated as constants (no
            gradient), as IMPALA does.
        terminated, truncated, gamma, time_dim: the episode ends, the discount and the time axis
            (the module docstring states the conventions).
        lam: lambda in [0, 1] (1: the paper's V-trace).
        rho_clip: the truncation of rho (> 0).
        c_clip: the truncation of c (> 0).

    Returns:
        ``(vs, pg_advantages)``, both ``[T, *batch]``, differentiable with respect to rewards,
        values and next_values.
    """
    return _estimate("vtrace", rewards, values, next_values, terminated, truncated, gamma=gamma, lam=lam,
                     log_rhos=log_rhos, rho_clip=rho_clip, c_clip=c_clip, time_dim=time_dim)


# ------------------------------------------------------------------------------ the plumbing


def _unit_interval(x, name: str) -> float:
    x = ar.check_real_scalar(x, name)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {x}")
    return x


@ar.resolving
def _estimate(estimator, rewards, values, next_values, terminated, truncated, *, gamma, lam=1.0, n=1, log_rhos=None,
              rho_clip=1.0, c_clip=1.0, time_dim=0) -> Tuple[Any, Any]:
    host = ar.cpu_tensors_as_numpy(rewards, values, next_values, terminated, truncated, log_rhos, gamma)
    if host is not None:  # plain CPU tensors outside autograd: the numpy path on their memory
        r, v, nv, te, tr, lr, g = host
        out0, out1 = _estimate(estimator, r, v, nv, te, tr, gamma=g, lam=lam, n=n, log_rhos=lr, rho_clip=rho_clip,
                               c_clip=c_clip, time_dim=time_dim)
        return ar.tensor_from_numpy(out0), None if out1 is None else ar.tensor_from_numpy(out1)
    lam = _unit_interval(lam, "lam")
    rho_clip = ar.check_real_scalar(rho_clip, "rho_clip")
    c_clip = ar.check_real_scalar(c_clip, "c_clip")
    if estimator == "vtrace" and not (rho_clip > 0 and c_clip > 0):
        raise ValueError(f"rho_clip, c_clip: expected numbers > 0, got {rho_clip}, {c_clip}")
    arrays = dict(rewards=rewards, values=values, next_values=next_values, terminated=terminated,
                  truncated=truncated, log_rhos=log_rhos)
    if type(gamma) is not float and (not isinstance(gamma, (int, float, np.floating, np.integer))
                                     or isinstance(gamma, bool)):
        arrays["gamma"] = gamma
        ar.refuse_grad(gamma=gamma)
    ar.refuse_grad(log_rhos=log_rhos)
    kind = ar.kind_of(**{k: v for k, v in arrays.items() if v is not None})
    if rewards is None:
        raise TypeError("rewards: expected an array [T, *batch], got None")
    shape = tuple(ar.shape_of(rewards))
    if len(shape) == 0:
        raise ValueError("rewards: expected an array [T, *batch] with a time axis, got a scalar")
    ndim = len(shape)
    time_dim = ar.check_int(time_dim, "time_dim")
    if not -ndim <= time_dim < ndim:
        raise ValueError(f"time_dim: expected an axis of rewards (ndim {ndim}), got {time_dim}")
    time_dim %= ndim
    dtype = ar.compute_dtype(rewards if (isinstance(rewards, np.ndarray) or ar.is_torch(rewards)) else np.asarray(rewards), "rewards")
    canon_shape = (shape[time_dim],) + shape[:time_dim] + shape[time_dim + 1:]
    T = shape[time_dim]
    B = math.prod(canon_shape[1:])

    np_dtype = np.dtype(dtype)

    def canon(x, name, want_dtype, required=True):
        if x is None:
            if required:
                raise TypeError(f"{name}: expected an array of shape {list(shape)}, got None")
            return None
        ar.check_copy(x, name)
        if not kind.torch and isinstance(x, np.ndarray) and x.shape == shape and time_dim == 0:
            # fast path: numpy, time-major (no copy when dtype and layout fit)
            if want_dtype == "bool":
                if x.dtype != np.bool_:
                    raise TypeError(f"{name}: expected a bool mask, got dtype {x.dtype}")
            elif x.dtype != np_dtype:
                ar.compute_dtype(x, name)
                x = x.astype(np_dtype)
            return np.ascontiguousarray(x).reshape(T, B)
        if not (isinstance(x, np.ndarray) or ar.is_torch(x)):
            x = np.asarray(x)
        if tuple(ar.shape_of(x)) != shape:
            raise ValueError(f"{name}: expected shape {list(shape)} like rewards, got {list(ar.shape_of(x))}")
        d = ar.dtype_name(x)
        if want_dtype == "bool":
            if d != "bool":
                raise TypeError(f"{name}: expected a bool mask, got dtype {d}")
        else:
            ar.compute_dtype(x, name)
        x = ar.to_array(x, name, kind, want_dtype) if want_dtype != "bool" else _to_kind(x, kind)
        x = _moveaxis(x, time_dim, 0)
        return x.reshape(T, B) if ar.is_torch(x) else np.ascontiguousarray(x).reshape(T, B)

    r = canon(rewards, "rewards", dtype)
    v = canon(values, "values", dtype, required=estimator in TWO_OUTPUTS)
    nv = canon(next_values, "next_values", dtype)
    lr = canon(log_rhos, "log_rhos", dtype, required=estimator == "vtrace")
    masks = []
    for name, m in (("terminated", terminated), ("truncated", truncated)):
        if m is None:
            m = ar.zeros(shape, "bool", kind)
        masks.append(canon(m, name, "bool"))
    term, trunc = masks
    gamma_scalar, gamma_arr = _gamma(gamma, shape, time_dim, T, B, dtype, kind)
    if ar.is_torch(r):
        from .. import torch_ops  # here, not at the top: torch is optional

        out0, out1 = torch_ops.returns(estimator, r.contiguous(), None if v is None else v.contiguous(),
                                       nv.contiguous(), term.contiguous(), trunc.contiguous(),
                                       None if gamma_arr is None else gamma_arr.contiguous(), gamma_scalar, lam, n,
                                       None if lr is None else lr.contiguous(), rho_clip, c_clip)
    else:
        out0, out1 = run_forward(estimator, r, v, nv, term, trunc, gamma_arr, gamma_scalar, lam, n, lr, rho_clip,
                                 c_clip)
    restore = lambda x: None if x is None else _moveaxis(x.reshape(canon_shape), 0, time_dim)  # noqa: E731
    return restore(out0), restore(out1) if estimator in TWO_OUTPUTS else None


def _to_kind(x, kind: ar.Kind):
    if kind.torch:
        torch = ar._torch()
        if not ar.is_torch(x):
            x = torch.from_numpy(np.ascontiguousarray(x))
        return x.to(kind.device)
    return np.asarray(x)


def _moveaxis(x, src: int, dst: int):
    if src == dst:
        return x
    if ar.is_torch(x):
        return x.movedim(src, dst).contiguous()
    return np.ascontiguousarray(np.moveaxis(x, src, dst))


def _gamma(gamma, shape, time_dim, T, B, dtype, kind):
    """(scalar, None) or (0.0, [T, B] array) for gamma."""
    if isinstance(gamma, bool):
        raise TypeError("gamma: expected a number in [0, 1] or an array, got bool")
    if isinstance(gamma, (int, float, np.floating, np.integer)):
        return _unit_interval(gamma, "gamma"), None
    g = gamma
    if not (isinstance(g, np.ndarray) or ar.is_torch(g)):
        g = np.asarray(g)
    ar.compute_dtype(g, "gamma")
    g = ar.to_array(g, "gamma", kind, dtype)
    try:
        g = g.expand(shape) if ar.is_torch(g) else np.broadcast_to(g, shape)
    except (ValueError, RuntimeError):
        raise ValueError(f"gamma: expected a number or an array broadcastable to {list(shape)}, got shape "
                         f"{list(ar.shape_of(gamma))}") from None
    if not ar.capturing() and not bool(((g >= 0) & (g <= 1)).all()):
        raise ValueError("gamma: expected discounts in [0, 1]")
    g = _moveaxis(g, time_dim, 0)
    return 0.0, (g.reshape(T, B) if ar.is_torch(g) else np.ascontiguousarray(g).reshape(T, B))
