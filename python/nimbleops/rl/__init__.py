"""Reinforcement-learning value updates: Bellman backups and tabular MDP solvers."""
from .bellman import (
    FiniteHorizonSolution,
    MDPSolution,
    bellman_expectation_backup,
    bellman_optimality_backup,
    finite_horizon,
    greedy_policy,
    modified_policy_iteration,
    policy_evaluation,
    policy_iteration,
    q_values,
    value_iteration,
)
from .mdp import SparseTransitions, from_gymnasium
from .returns import discounted_returns, gae, lambda_returns, n_step_returns, vtrace
from .traces import (
    linear_td0_update_,
    linear_td_lambda_step_,
    sarsa_lambda_step_,
    td_lambda_step_,
    true_online_td_lambda_step_,
    watkins_q_lambda_step_,
)
from .td import (
    double_q_learning_update_,
    expected_sarsa_update_,
    q_learning_update_,
    sarsa_update_,
    td0_update_,
)

__all__ = [
    "SparseTransitions",
    "from_gymnasium",
    "q_values",
    "bellman_optimality_backup",
    "bellman_expectation_backup",
    "greedy_policy",
    "value_iteration",
    "policy_evaluation",
    "policy_iteration",
    "modified_policy_iteration",
    "finite_horizon",
    "MDPSolution",
    "FiniteHorizonSolution",
    "discounted_returns",
    "n_step_returns",
    "lambda_returns",
    "gae",
    "vtrace",
    "td0_update_",
    "sarsa_update_",
    "q_learning_update_",
    "expected_sarsa_update_",
    "double_q_learning_update_",
    "td_lambda_step_",
    "sarsa_lambda_step_",
    "watkins_q_lambda_step_",
    "linear_td0_update_",
    "linear_td_lambda_step_",
    "true_online_td_lambda_step_",
]
