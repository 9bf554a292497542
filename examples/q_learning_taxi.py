"""Tabular Q-learning on Taxi-v4 with a Gymnasium vector env and rl.q_learning_update_.

Every step of the N environments is one batch of N transitions, applied with
``mode="accumulate"`` (the TD errors from the table before the batch, increments summed where a
(state, action) repeats: the semantics and the bits of ``numpy.add.at``). The same loop runs a
second time with that numpy update, from the same seed: the tables agree to the bit, and the two
wall-clock times compare the update alone.

The learned greedy policy is checked against the optimal one: ``rl.from_gymnasium`` gives Taxi's
model, ``rl.value_iteration`` its optimal values, ``rl.policy_evaluation`` the greedy policy's;
their expectations over Taxi's initial states must agree.

    python examples/q_learning_taxi.py [--envs 256] [--steps 1500]
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

from nimbleops import rl

GAMMA = 0.99


def numpy_update(Q, s, a, r, s_next, terminated, alpha, gamma):
    delta = r + gamma * (~terminated) * Q[s_next].max(1) - Q[s, a]
    np.add.at(Q, (s, a), alpha * delta)
    return delta


def nimbleops_update(Q, s, a, r, s_next, terminated, alpha, gamma):
    return rl.q_learning_update_(Q, s, a, r, s_next, terminated, alpha=alpha, gamma=gamma, mode="accumulate")


def train(update, n_envs: int, steps: int, seed: int):
    """Q [S, A] after `steps` steps of n_envs environments, and the seconds spent in `update`."""
    envs = gym.make_vec("Taxi-v4", num_envs=n_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    S, A = envs.single_observation_space.n, envs.single_action_space.n
    Q = np.zeros((S, A))
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=seed)
    spent = 0.0
    for step in range(steps):
        epsilon = max(0.05, 1.0 - step / (0.6 * steps))
        greedy = Q[obs].argmax(1)
        explore = rng.random(n_envs) < epsilon
        actions = np.where(explore, rng.integers(0, A, n_envs), greedy)
        next_obs, reward, terminated, truncated, info = envs.step(actions)
        s_next = next_obs.copy()
        done = terminated | truncated
        if done.any():  # the vector env reset these already: their transition ends in the final state
            s_next[done] = np.asarray(info["final_obs"])[done]
        t0 = time.perf_counter()
        update(Q, obs, actions, reward.astype(np.float64), s_next, terminated, 0.5, GAMMA)
        spent += time.perf_counter() - t0
        obs = next_obs
    envs.close()
    return Q, spent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    Q, ours = train(nimbleops_update, args.envs, args.steps, args.seed)
    total = time.perf_counter() - t0
    Q_np, theirs = train(numpy_update, args.envs, args.steps, args.seed)
    same = np.array_equal(Q, Q_np)

    env = gym.make("Taxi-v4")
    P, R = rl.from_gymnasium(env)
    start = env.unwrapped.initial_state_distrib
    best = rl.value_iteration(P, R, GAMMA, tol=1e-10)
    learned = rl.policy_evaluation(P, R, GAMMA, Q.argmax(1), tol=1e-10)
    optimal, achieved = float(start @ best.V), float(start @ learned.V)
    print(f"{args.envs} envs x {args.steps} steps = {args.envs * args.steps} transitions, {total:.1f} s")
    print(f"update time: nimbleops {1e3 * ours:.0f} ms, numpy.add.at loop {1e3 * theirs:.0f} ms "
          f"({theirs / ours:.1f}x); same table: {same}")
    print(f"expected discounted return from Taxi's initial states: greedy policy {achieved:.6f}, optimal {optimal:.6f}")
    return achieved, optimal, same


if __name__ == "__main__":
    main()
