"""nimbleops.integrations.sb3: the buffers give SB3's advantages and returns, and PPO trains with
them as with SB3's own."""
from __future__ import annotations

import numpy as np
import pytest

from ..conftest import import_peer

sb3 = import_peer("stable_baselines3")
torch = import_peer("torch")
gym = import_peer("gymnasium")

from stable_baselines3.common import buffers  # noqa: E402

from nimbleops.integrations import sb3 as ours  # noqa: E402


def _filled(cls, T, n, gamma, lam, data, dict_obs=False):
    obs = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (3,))}) if dict_obs else gym.spaces.Box(-1, 1, (3,))
    buf = cls(T, obs, gym.spaces.Discrete(2), device="cpu", gae_lambda=lam, gamma=gamma, n_envs=n)
    buf.rewards[:], buf.values[:], buf.episode_starts[:] = data
    return buf


@pytest.mark.parametrize("dict_obs", [False, True])
@pytest.mark.parametrize("T, n", [(1, 1), (5, 3), (64, 8), (2048, 1)])
@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 1.0), (1.0, 0.0), (0.0, 0.5)])
def test_same_advantages_and_returns_as_sb3(T, n, gamma, lam, dict_obs):
    rng = np.random.default_rng(T * 100 + n)
    data = (rng.standard_normal((T, n)).astype(np.float32) * 3, rng.standard_normal((T, n)).astype(np.float32),
            (rng.random((T, n)) < 0.1).astype(np.float32))
    theirs_cls = buffers.DictRolloutBuffer if dict_obs else buffers.RolloutBuffer
    ours_cls = ours.DictRolloutBuffer if dict_obs else ours.RolloutBuffer
    theirs, mine = _filled(theirs_cls, T, n, gamma, lam, data, dict_obs), _filled(ours_cls, T, n, gamma, lam, data,
                                                                                 dict_obs)
    last_values = torch.randn(n, 1)
    dones = rng.random(n) < 0.3
    theirs.compute_returns_and_advantage(last_values, dones)
    mine.compute_returns_and_advantage(last_values, dones)
    assert mine.advantages.dtype == theirs.advantages.dtype and mine.returns.shape == theirs.returns.shape
    np.testing.assert_allclose(mine.advantages, theirs.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mine.returns, theirs.returns, rtol=1e-5, atol=1e-5)


def test_ppo_on_cartpole_trains_as_with_sb3s_buffer(monkeypatch, tmp_path):
    """Timeouts included: CartPole-v1 truncates at 500 steps and SB3's collect_rollouts bootstraps
    them into the rewards the buffer sees. The same seed gives the same episodes with either
    buffer, and the policy learns."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # else each learn() leaves a folder in the system's temp
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    returns = {}
    for name, kwargs in (("sb3", {}), ("nimbleops", {"rollout_buffer_class": ours.RolloutBuffer})):
        model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4, seed=0), n_steps=128, batch_size=128,
                    n_epochs=4, learning_rate=1e-3, seed=0, device="cpu", **kwargs)
        assert isinstance(model.rollout_buffer, kwargs.get("rollout_buffer_class", buffers.RolloutBuffer))
        model.learn(1024)
        early = [e["r"] for e in model.ep_info_buffer]
        model.learn(8192, reset_num_timesteps=False)
        returns[name] = (early, [e["r"] for e in model.ep_info_buffer])
    np.testing.assert_allclose(returns["nimbleops"][1], returns["sb3"][1], rtol=1e-4)
    early, late = returns["nimbleops"]
    assert np.mean(late[-20:]) > 3 * np.mean(early), (np.mean(early), np.mean(late[-20:]))
