"""Reference implementations of :mod:`nimbleops.rl`, one module per family as there: Bellman
backups and solvers, return estimators, tabular TD updates, eligibility traces. Plain loops,
numpy in and out, float64 math; only for small inputs."""
from .bellman import (bellman_expectation_backup, bellman_optimality_backup, finite_horizon, greedy_policy,
                      modified_policy_iteration, policy_evaluation, policy_iteration, q_values, value_iteration)
from .returns import discounted_returns, gae, lambda_returns, n_step_returns, vtrace
from .td import double_q_learning_update_, expected_sarsa_update_, q_learning_update_, sarsa_update_, td0_update_
from .traces import (linear_td0_update_, linear_td_lambda_step_, sarsa_lambda_step_, td_lambda_step_,
                     true_online_td_lambda_step_, watkins_q_lambda_step_)

__all__ = ["bellman_expectation_backup", "bellman_optimality_backup", "finite_horizon", "greedy_policy",
           "modified_policy_iteration", "policy_evaluation", "policy_iteration", "q_values", "value_iteration",
           "discounted_returns", "gae", "lambda_returns", "n_step_returns", "vtrace",
           "double_q_learning_update_", "expected_sarsa_update_", "q_learning_update_", "sarsa_update_",
           "td0_update_", "linear_td0_update_", "linear_td_lambda_step_", "sarsa_lambda_step_", "td_lambda_step_",
           "true_online_td_lambda_step_", "watkins_q_lambda_step_"]
