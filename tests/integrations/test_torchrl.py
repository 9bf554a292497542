"""nimbleops.integrations.torchrl: torchrl's estimators with nimbleops' recursions give torchrl's
results, through the same constructors, keys and calls."""
from __future__ import annotations

import os

import pytest

from ..conftest import import_peer

os.environ.setdefault("RL_WARNINGS", "False")
torch = import_peer("torch")
import_peer("torchrl")

from tensordict import TensorDict  # noqa: E402
from tensordict.nn import TensorDictModule  # noqa: E402
from torchrl.objectives import value as tv  # noqa: E402
from torchrl.objectives.value import functional as tf  # noqa: E402

from nimbleops.integrations import torchrl as ours  # noqa: E402


def _rollout(batch, T, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shape = batch + (T, 1)
    done = torch.rand(shape, generator=g) < 0.15
    terminated = done & (torch.rand(shape, generator=g) < 0.5)
    return TensorDict({
        "obs": torch.randn(batch + (T, 3), generator=g, dtype=dtype),
        "state_value": torch.randn(shape, generator=g, dtype=dtype),
        "next": {"obs": torch.randn(batch + (T, 3), generator=g, dtype=dtype),
                 "reward": torch.randn(shape, generator=g, dtype=dtype), "done": done, "terminated": terminated,
                 "truncated": done & ~terminated, "state_value": torch.randn(shape, generator=g, dtype=dtype)},
    }, batch + (T,))


def _net(dtype=torch.float32):
    torch.manual_seed(0)
    return TensorDictModule(torch.nn.Linear(3, 1).to(dtype), in_keys=["obs"], out_keys=["state_value"])


def _same(a, b, keys=("advantage", "value_target")):
    for k in keys:  # (average_gae over a single step is nan in both: the std of one value)
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("batch, T", [((), 1), ((), 9), ((3,), 17), ((2, 3), 5)])
@pytest.mark.parametrize("options", [{}, {"average_gae": True}, {"shifted": True}, {"network": False}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gae_equals_torchrls(batch, T, options, dtype):
    options = dict(options)
    net = None if options.pop("network", True) is False else _net(dtype)
    data = _rollout(batch, T, seed=T, dtype=dtype)
    theirs = tv.GAE(gamma=0.97, lmbda=0.9, value_network=net, **options)(data.clone())
    mine = ours.GAE(gamma=0.97, lmbda=0.9, value_network=net, **options)(data.clone())
    _same(mine, theirs)


@pytest.mark.parametrize("batch, T", [((), 7), ((4,), 12)])
@pytest.mark.parametrize("gamma, lmbda", [(0.99, 0.95), (0.9, 0.3), (0.5, 1.0)])
def test_td_lambda_estimator_equals_torchrls(batch, T, gamma, lmbda):
    data = _rollout(batch, T, seed=3)
    theirs = tv.TDLambdaEstimator(gamma=gamma, lmbda=lmbda, value_network=_net())(data.clone())
    mine = ours.TDLambdaEstimator(gamma=gamma, lmbda=lmbda, value_network=_net())(data.clone())
    _same(mine, theirs)


def test_gae_is_differentiable_like_torchrls():
    data = _rollout((3,), 10, seed=5)
    net_a, net_b = _net(), _net()
    a = tv.GAE(gamma=0.9, lmbda=0.8, value_network=net_a, differentiable=True)(data.clone())
    b = ours.GAE(gamma=0.9, lmbda=0.8, value_network=net_b, differentiable=True)(data.clone())
    for key in ("advantage", "value_target"):  # where torchrl's hold no graph, neither do ours
        assert b[key].requires_grad == a[key].requires_grad
        if a[key].requires_grad:
            ga = torch.autograd.grad(a[key].square().sum(), net_a.module.weight)[0]
            gb = torch.autograd.grad(b[key].square().sum(), net_b.module.weight)[0]
            torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("time_dim", [-2, 0, 1])
def test_functional_estimates_equal_torchrls(time_dim):
    g = torch.Generator().manual_seed(1)
    shape = (6, 5, 1) if time_dim != 1 else (4, 6, 1)
    value, next_value, reward = (torch.randn(shape, generator=g) for _ in range(3))
    done = torch.rand(shape, generator=g) < 0.2
    terminated = done & (torch.rand(shape, generator=g) < 0.5)
    per_step_gamma = torch.rand(shape, generator=g) * 0.5 + 0.5
    for gamma in (0.9, torch.tensor(0.9), per_step_gamma):
        for a, b in zip(ours.generalized_advantage_estimate(gamma, 0.8, value, next_value, reward, done, terminated,
                                                             time_dim=time_dim),
                        tf.vec_generalized_advantage_estimate(gamma, 0.8, value, next_value, reward, done, terminated,
                                                              time_dim=time_dim)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            ours.td_lambda_return_estimate(gamma, 0.8, next_value, reward, done, terminated, time_dim=time_dim),
            tf.vec_td_lambda_return_estimate(gamma, 0.8, next_value, reward, done, terminated, time_dim=time_dim),
            rtol=1e-5, atol=1e-5)
    # what nimbleops does not compute goes to torchrl's own: a per-step lambda
    lmbda = torch.rand(shape, generator=g)
    torch.testing.assert_close(
        ours.generalized_advantage_estimate(0.9, lmbda, value, next_value, reward, done, terminated, time_dim=time_dim),
        tf.vec_generalized_advantage_estimate(0.9, lmbda, value, next_value, reward, done, terminated,
                                              time_dim=time_dim))
    with pytest.raises(RuntimeError, match="share a unique shape"):
        ours.generalized_advantage_estimate(0.9, 0.8, value, next_value[:-1], reward, done, time_dim=time_dim)
