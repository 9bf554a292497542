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
]
