"""The RL examples do what they say: PPO on CartPole-v1 with rl.gae reaches the return of 475;
tabular Q-learning on Taxi with rl.q_learning_update_ reaches the optimal policy's return, with
the same table as the numpy.add.at loop; the large gridworld's solvers (ours, scipy.sparse's,
QuantEcon's) agree (on a small grid here)."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from ..conftest import import_peer

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ppo_cartpole_reaches_475():
    import_peer("gymnasium")
    torch = import_peer("torch")
    threads = torch.get_num_threads()
    try:
        assert _load("ppo_cartpole").main(["--steps", "400000"]) >= 475
    finally:
        torch.set_num_threads(threads)


def test_q_learning_taxi_reaches_the_optimal_return():
    import_peer("gymnasium")
    achieved, optimal, same = _load("q_learning_taxi").main(["--envs", "256", "--steps", "1500"])
    assert same
    assert achieved == pytest.approx(optimal, rel=1e-9)


def test_large_gridworld_solvers_agree():
    import_peer("scipy")
    assert _load("large_gridworld").main(["--n", "40", "--peers"])

