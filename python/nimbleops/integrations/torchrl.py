"""torchrl value estimators whose recursions run on nimbleops kernels.

``GAE`` and ``TDLambdaEstimator`` are torchrl's classes: the same constructors, tensordict keys,
value-network calls, ``done`` / ``terminated`` handling, ``shifted``, ``average_gae`` and
``time_dim``; their ``forward`` / ``value_estimate`` are torchrl's own code, with the recursion
over time computed by :func:`nimbleops.rl.gae` / :func:`nimbleops.rl.lambda_returns` instead of
torchrl's (the functions below, with torchrl's functional signatures). Use them where torchrl's
are used::

    from nimbleops.integrations.torchrl import GAE

    advantage = GAE(gamma=0.99, lmbda=0.95, value_network=value_net)
    advantage(rollout)  # sets rollout["advantage"], rollout["value_target"]

Cases nimbleops does not compute are passed to torchrl's own functions: a ``lmbda`` that varies per
step, a ``gamma`` tensor that is neither a single value nor of the rollout's shape, and
``rolling_gamma=False``.
"""
from __future__ import annotations

import functools
import types

import torch
from torchrl.objectives.value import advantages as _advantages
from torchrl.objectives.value import functional as _functional

from .. import rl

__all__ = ["GAE", "TDLambdaEstimator", "generalized_advantage_estimate", "td_lambda_return_estimate"]

_SHAPE_ERROR = "All input tensors (value, reward and done states) must share a unique shape."


def _number(x):
    """x as a float, or None for a tensor of more than one value."""
    if isinstance(x, torch.Tensor):
        return float(x) if x.numel() == 1 else None
    return float(x)


def _gamma(gamma, like: torch.Tensor):
    """A float, a tensor of the rollout's shape, or None (a shape nimbleops does not take)."""
    g = _number(gamma)
    if g is not None:
        return g
    return gamma.to(like.device, like.dtype) if tuple(gamma.shape) == tuple(like.shape) else None


def _masks(done: torch.Tensor, terminated):
    """torchrl's (done, terminated) as nimbleops' (terminated, truncated): terminated steps are
    not bootstrapped, and done steps that are not terminated end the recursion only."""
    done = done.bool()
    terminated = done if terminated is None else terminated.bool()
    return terminated, done & ~terminated


def generalized_advantage_estimate(gamma, lmbda, state_value, next_state_value, reward, done, terminated=None, *,
                                   time_dim: int = -2):
    """torchrl's ``generalized_advantage_estimate``: ``(advantage, value_target)``."""
    if not (state_value.shape == next_state_value.shape == reward.shape == done.shape):
        raise RuntimeError(_SHAPE_ERROR)
    g, lam = _gamma(gamma, reward), _number(lmbda)
    if g is None or lam is None:
        return _functional.vec_generalized_advantage_estimate(gamma, lmbda, state_value, next_state_value, reward,
                                                              done, terminated, time_dim=time_dim)
    term, trunc = _masks(done, terminated)
    return rl.gae(reward, state_value, next_state_value, term, trunc, gamma=g, lam=lam, time_dim=time_dim)


def td_lambda_return_estimate(gamma, lmbda, next_state_value, reward, done, terminated=None, rolling_gamma=None, *,
                              time_dim: int = -2):
    """torchrl's ``td_lambda_return_estimate`` (TD(lambda) returns)."""
    if not (next_state_value.shape == reward.shape == done.shape):
        raise RuntimeError(_SHAPE_ERROR)
    g, lam = _gamma(gamma, reward), _number(lmbda)
    if g is None or lam is None or (rolling_gamma is False and not isinstance(g, float)):
        return _functional.vec_td_lambda_return_estimate(gamma, lmbda, next_state_value, reward, done, terminated,
                                                         rolling_gamma, time_dim=time_dim)
    term, trunc = _masks(done, terminated)
    return rl.lambda_returns(reward, next_state_value, term, trunc, gamma=g, lam=lam, time_dim=time_dim)


def _rebuilt(function, namespace: dict):
    """A copy of a plain function reading globals from `namespace`."""
    copy = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                              function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    return functools.update_wrapper(copy, function)


def _decorated(method, replacements: dict):
    """torchrl's method, its code and its decorators, reading `replacements` where it names
    torchrl's recursion functions. Each decorator layer is a closure over the function it wraps
    (functools.wraps keeps the chain in __wrapped__): each is copied with its cell pointing at the
    new inner function, so the layers need not be known by name."""
    layers = [method]
    while hasattr(layers[-1], "__wrapped__"):
        layers.append(layers[-1].__wrapped__)
    inner = layers[-1]
    missing = [name for name in replacements if name not in inner.__code__.co_names]
    if missing:
        raise ImportError(f"nimbleops.integrations.torchrl: this torchrl's {inner.__qualname__} no longer calls "
                          f"{missing}; the adapter needs updating")
    function = _rebuilt(inner, dict(inner.__globals__, **replacements))
    for layer, wrapped in zip(reversed(layers[:-1]), reversed(layers[1:])):
        cells = tuple(types.CellType(function) if c.cell_contents is wrapped else c for c in layer.__closure__ or ())
        if not any(c.cell_contents is function for c in cells):
            raise ImportError(f"nimbleops.integrations.torchrl: a decorator of torchrl's {inner.__qualname__} does not "
                              "hold the function it wraps; the adapter needs updating")
        copy = types.FunctionType(layer.__code__, layer.__globals__, layer.__name__, layer.__defaults__, cells)
        copy.__kwdefaults__ = layer.__kwdefaults__
        function = functools.update_wrapper(copy, function)
    return function


class GAE(_advantages.GAE):
    """torchrl's ``GAE`` (same constructor and call), its recursion computed by :func:`nimbleops.rl.gae`."""

    forward = _decorated(_advantages.GAE.forward, {
        "generalized_advantage_estimate": generalized_advantage_estimate,
        "vec_generalized_advantage_estimate": generalized_advantage_estimate})


class TDLambdaEstimator(_advantages.TDLambdaEstimator):
    """torchrl's ``TDLambdaEstimator``, its recursion computed by :func:`nimbleops.rl.lambda_returns`."""

    value_estimate = _decorated(_advantages.TDLambdaEstimator.value_estimate, {
        "td_lambda_return_estimate": td_lambda_return_estimate,
        "vec_td_lambda_return_estimate": td_lambda_return_estimate})
