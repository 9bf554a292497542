"""Stable-Baselines3 rollout buffers whose advantages come from :func:`nimbleops.rl.gae`.

``RolloutBuffer`` and ``DictRolloutBuffer`` are SB3's, with the same constructor and the same
results; only ``compute_returns_and_advantage`` differs (one kernel call instead of a Python loop
over the steps). Pass them to an on-policy algorithm::

    from stable_baselines3 import PPO
    from nimbleops.integrations.sb3 import RolloutBuffer

    model = PPO("MlpPolicy", "CartPole-v1", rollout_buffer_class=RolloutBuffer)

SB3's semantics are kept: a step followed by an episode start (or, for the last step, ``dones``)
is not bootstrapped and ends the recursion; timeouts reach the buffer as SB3's
``collect_rollouts`` leaves them (the discounted value of the final observation added to the
reward of the truncated step, and the step done).
"""
from __future__ import annotations

import numpy as np
from stable_baselines3.common import buffers as _buffers

from .. import rl

__all__ = ["RolloutBuffer", "DictRolloutBuffer"]


class _GaeFromNimbleops:
    """``compute_returns_and_advantage`` through ``rl.gae`` on the buffer's [T, n_envs] arrays."""

    def compute_returns_and_advantage(self, last_values, dones: np.ndarray) -> None:
        last = last_values.clone().cpu().numpy().reshape(1, -1).astype(self.values.dtype, copy=False)
        next_values = np.concatenate([self.values[1:], last])
        done = np.concatenate([self.episode_starts[1:] != 0, np.asarray(dones).reshape(1, -1) != 0])
        self.advantages, self.returns = rl.gae(self.rewards, self.values, next_values, done, None,
                                               gamma=float(self.gamma), lam=float(self.gae_lambda))


class RolloutBuffer(_GaeFromNimbleops, _buffers.RolloutBuffer):
    """SB3's ``RolloutBuffer`` with the advantages of :func:`nimbleops.rl.gae`."""


class DictRolloutBuffer(_GaeFromNimbleops, _buffers.DictRolloutBuffer):
    """SB3's ``DictRolloutBuffer`` with the advantages of :func:`nimbleops.rl.gae`."""
