"""PPO on CartPole-v1 in a plain PyTorch loop (CleanRL's recipe), advantages from nimbleops.rl.gae.

The rollout stays in torch tensors on the policy's device; rl.gae takes them as they are
(time-major [T, num_envs]) with Gymnasium's terminated / truncated: a truncated step bootstraps
from the value of its final observation, a terminated one does not. The vector env resets in the
same step (AutoresetMode.SAME_STEP), so every step of the rollout is a real transition.

    python examples/ppo_cartpole.py [--steps 300000] [--seed 0]

Stops when the mean return of the last 20 episodes reaches 475 (CartPole-v1's threshold).
"""
from __future__ import annotations

import argparse
import time
from collections import deque

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from nimbleops import rl


def layer(i, o, std=np.sqrt(2)):
    lin = nn.Linear(i, o)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.zeros_(lin.bias)
    return lin


class Agent(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.critic = nn.Sequential(layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, 1.0))
        self.actor = nn.Sequential(layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, n_actions, 0.01))

    def value(self, x):
        return self.critic(x).squeeze(-1)

    def act(self, x, action=None):
        dist = torch.distributions.Categorical(logits=self.actor(x))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(x)


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--rollout", type=int, default=128)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    device = torch.device("cpu")
    envs = gym.make_vec("CartPole-v1", num_envs=args.num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    agent = Agent(envs.single_observation_space.shape[0], envs.single_action_space.n).to(device)
    opt = torch.optim.Adam(agent.parameters(), lr=2.5e-4, eps=1e-5)
    T, N = args.rollout, args.num_envs
    gamma, lam, clip, epochs, minibatches = 0.99, 0.95, 0.2, 4, 4
    obs_buf = torch.zeros((T, N) + envs.single_observation_space.shape, device=device)
    act_buf, logp_buf = torch.zeros((T, N), dtype=torch.long, device=device), torch.zeros((T, N), device=device)
    rew_buf, val_buf, next_val = (torch.zeros((T, N), device=device) for _ in range(3))
    term_buf, trunc_buf = (torch.zeros((T, N), dtype=torch.bool, device=device) for _ in range(2))
    returns = deque(maxlen=20)
    obs, _ = envs.reset(seed=args.seed)
    obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
    updates = args.steps // (T * N)
    start, gae_time = time.perf_counter(), 0.0
    for update in range(1, updates + 1):
        for g in opt.param_groups:  # linear annealing
            g["lr"] = 2.5e-4 * (1.0 - (update - 1.0) / updates)
        for t in range(T):
            with torch.no_grad():
                action, logp, _, value = agent.act(obs)
            next_obs, reward, terminated, truncated, info = envs.step(action.cpu().numpy())
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs, action, logp, value
            rew_buf[t] = torch.as_tensor(reward, device=device)
            term_buf[t] = torch.as_tensor(terminated, device=device)
            trunc_buf[t] = torch.as_tensor(truncated, device=device)
            final = next_obs.copy()
            done = np.logical_or(terminated, truncated)
            if done.any():  # the value to bootstrap from is the final observation's, not the reset one's
                final[done] = np.stack(info["final_obs"][done])
                for r in info["episode"]["r"][info["_episode"]]:
                    returns.append(float(r))
            with torch.no_grad():
                next_val[t] = agent.value(torch.as_tensor(final, dtype=torch.float32, device=device))
            obs = torch.as_tensor(next_obs, dtype=torch.float32, device=device)
        t0 = time.perf_counter()
        adv, ret = rl.gae(rew_buf, val_buf, next_val, term_buf, trunc_buf, gamma=gamma, lam=lam)
        gae_time += time.perf_counter() - t0
        b_obs, b_act, b_logp = obs_buf.reshape((-1,) + obs_buf.shape[2:]), act_buf.reshape(-1), logp_buf.reshape(-1)
        b_adv, b_ret, b_val = adv.reshape(-1), ret.reshape(-1), val_buf.reshape(-1)
        size = T * N
        for _ in range(epochs):
            perm = torch.randperm(size, device=device)
            for mb in perm.split(size // minibatches):
                _, logp, entropy, value = agent.act(b_obs[mb], b_act[mb])
                ratio = (logp - b_logp[mb]).exp()
                a = b_adv[mb]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
                v_clipped = b_val[mb] + (value - b_val[mb]).clamp(-clip, clip)
                v_loss = 0.5 * torch.max((value - b_ret[mb]) ** 2, (v_clipped - b_ret[mb]) ** 2).mean()
                loss = pg - 0.01 * entropy.mean() + 0.5 * v_loss
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                opt.step()
        mean = float(np.mean(returns)) if returns else 0.0
        if update % 10 == 0 or mean >= 475:
            print(f"step {update * size:7d}  mean return (last 20 episodes) {mean:6.1f}  "
                  f"{time.perf_counter() - start:6.1f} s  (rl.gae: {1e3 * gae_time / update:.3f} ms / update)",
                  flush=True)
        if len(returns) == returns.maxlen and mean >= 475:
            break
    envs.close()
    return float(np.mean(returns)) if returns else 0.0


if __name__ == "__main__":
    main()
